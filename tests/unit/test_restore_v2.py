"""`restore ARCHIVE --influxdb URL` into an InfluxDB 2.x, against a small local HTTP
server that answers as 2.x does and records every request (no 2.x server installs here:
Debian 12 ships influxdb 1.6.7, PyPI only clients). What is checked is what we send:
the token header (given by an environment variable or a 0600 file, never on the command
line), org, bucket and precision, every line of the archive exactly once, the bucket
created when missing, and the Flux count read back."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from femdc_bench import backup as backup_mod
from femdc_bench import backup as bk
from femdc_bench.cli import main
from femdc_bench.metrics.client import read_token
from femdc_bench.rundir import Run

ROOT = Path(__file__).resolve().parents[2]
LINES = [("api", f"api,run=r1,site=s1,operation=op\\ x duration_ms={i}.5,iteration={i}i "
                 f"{1_700_000_000_000_000_000 + i}") for i in range(7)] + [
    ("event", 'event,run=r1,kind=phase text="deploy, start" 1700000000000000009'),
    ("proc", "proc,run=r1,host=h1,service=keystone cpu_pct=1.5 1700000000000000010")]


class Fake2x:
    """Records requests; keeps the lines written per bucket; counts them for Flux."""

    def __init__(self, bucket_exists: bool = True) -> None:
        self.requests: list[dict[str, Any]] = []
        self.had_bucket = bucket_exists
        self.buckets = {"femdc"} if bucket_exists else set()
        # per bucket, as a set in arrival order: the same point twice is one point
        self.lines: dict[str, dict[str, None]] = {}
        self.lose = 0  # points the server loses

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _reply(self, code: int, body: str = "", ctype: str = "application/json"
                       ) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("X-Influxdb-Version", "v2.7.11")
                if data:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                u = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode() if n else ""
                fake.requests.append({"method": self.command, "path": u.path, "query": q,
                                      "auth": self.headers.get("Authorization"),
                                      "body": body})
                if u.path == "/ping":
                    return self._reply(204)
                if self.headers.get("Authorization") != "Token s3cret-token==":
                    return self._reply(401, '{"code":"unauthorized","message":"no"}')
                if u.path == "/api/v2/buckets" and self.command == "GET":
                    found = [{"id": "0000000000000b01", "name": q["name"],
                              "orgID": "00000000000000a1", "retentionRules": []}
                             ] if q.get("name") in fake.buckets else []
                    return self._reply(200, json.dumps({"buckets": found}))
                if u.path == "/api/v2/orgs":
                    return self._reply(200, json.dumps({"orgs": [
                        {"id": "00000000000000a1", "name": q.get("org", "")}]}))
                if u.path == "/api/v2/buckets" and self.command == "POST":
                    doc = json.loads(body)
                    fake.buckets.add(doc["name"])
                    return self._reply(201, json.dumps({**doc, "id": "0000000000000b02"}))
                if u.path == "/api/v2/write":
                    if q.get("bucket") not in fake.buckets:
                        return self._reply(404, '{"code":"not found","message":"bucket"}')
                    got = [ln for ln in body.split("\n") if ln]
                    fake.lines.setdefault(q["bucket"], {}).update(
                        dict.fromkeys(got[fake.lose:]))
                    return self._reply(204)
                if u.path == "/api/v2/query":
                    counts: dict[str, int] = {}
                    run = re.search(r'r\["run"\] == "([^"]+)"', json.loads(body)["query"])
                    assert run is not None
                    for ln in fake.lines.get("femdc", {}):
                        if f"run={run.group(1)}," in ln or f"run={run.group(1)} " in ln:
                            m = ln.split(",", 1)[0]
                            counts[m] = counts.get(m, 0) + 1
                    csv = ("#datatype,string,long,string,long\r\n"
                           "#group,false,false,true,false\r\n#default,_result,,,\r\n"
                           ",result,table,_measurement,n\r\n"
                           + "".join(f",,{i},{m},{c}\r\n"
                                     for i, (m, c) in enumerate(sorted(counts.items())))
                           + "\r\n")
                    return self._reply(200, csv, "text/csv; charset=utf-8")
                return self._reply(404, '{"code":"not found","message":"?"}')

            do_GET = do_POST = _handle  # noqa: N815

        return H


@pytest.fixture(params=[True, False], ids=["bucket-exists", "bucket-created"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, Fake2x]]:
    fake = Fake2x(bucket_exists=request.param)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", fake
    srv.shutdown()
    srv.server_close()


def archive(tmp_path: Path) -> Path:
    run = Run.create(ROOT / "topologies" / "default.yaml", tmp_path / "results", "r1")
    out = tmp_path / "r1.backup.tar.gz"
    bk.write_archive(run.dir, "r1", iter(LINES), out)
    shutil.rmtree(run.dir)
    return out


def test_restore_into_2x_sends_what_influx_write_would(tmp_path: Path,
                                                       server: tuple[str, Fake2x]) -> None:
    url, fake = server
    run, counts = backup_mod.restore(archive(tmp_path), tmp_path / "results", url, "femdc",
                                 org="lab", token="s3cret-token==")
    assert counts == {"api": 7, "event": 1, "proc": 1} and run.id == "r1"
    assert (run.dir / "experiment.yaml").exists()
    assert list(fake.lines["femdc"]) == [line for _, line in LINES]  # unchanged
    assert sum(len(r["body"].splitlines()) for r in fake.requests
               if r["path"] == "/api/v2/write") == len(LINES)  # each once
    writes = [r for r in fake.requests if r["path"] == "/api/v2/write"]
    assert writes and all(r["method"] == "POST" and r["query"] == {
        "org": "lab", "bucket": "femdc", "precision": "ns"} for r in writes)
    assert all(r["auth"] == "Token s3cret-token==" for r in fake.requests
               if r["path"] != "/ping")
    created = [r for r in fake.requests if r["path"] == "/api/v2/buckets"
               and r["method"] == "POST"]
    assert bool(created) != fake.had_bucket
    if created:  # a missing bucket is made in the org
        (c,) = created
        assert json.loads(c["body"])["name"] == "femdc"
        assert json.loads(c["body"])["orgID"] == "00000000000000a1"
    (query,) = [r for r in fake.requests if r["path"] == "/api/v2/query"]
    assert query["query"] == {"org": "lab"}
    flux = json.loads(query["body"])["query"]
    assert 'from(bucket: "femdc")' in flux and 'r["run"] == "r1"' in flux
    assert 'pivot(rowKey: ["_time"]' in flux and 'sum(column: "n")' in flux


def test_counts_that_differ_fail_the_restore(tmp_path: Path, server: tuple[str, Fake2x]
                                             ) -> None:
    url, fake = server
    fake.lose = 1  # a server that loses a point
    with pytest.raises(backup_mod.RestoreMismatch, match="restored points differ"):
        backup_mod.restore(archive(tmp_path), tmp_path / "results", url, "femdc", org="lab",
                       token="s3cret-token==")


def test_cli_token_from_env_or_0600_file(tmp_path: Path, server: tuple[str, Fake2x]) -> None:
    url, fake = server
    a = archive(tmp_path)
    res = CliRunner().invoke(main, ["--results", str(tmp_path / "o1"), "restore", str(a),
                                    "--influxdb", url, "--org", "lab",
                                    "--token-env", "FEMDC_TEST_TOKEN"],
                             env={"FEMDC_TEST_TOKEN": "s3cret-token=="})
    assert res.exit_code == 0, res.output
    assert "api 7, event 1, proc 1" in " ".join(res.output.split())
    assert "s3cret" not in res.output
    tok = tmp_path / "token"
    tok.write_text("s3cret-token==\n")
    tok.chmod(0o644)
    res = CliRunner().invoke(main, ["--results", str(tmp_path / "o2"), "restore", str(a),
                                    "--influxdb", url, "--org", "lab", "--token-file",
                                    str(tok)])
    assert res.exit_code == 2
    assert "readable by its owner only (chmod 600)" in " ".join(res.output.split())
    tok.chmod(0o600)
    res = CliRunner().invoke(main, ["--results", str(tmp_path / "o2"), "restore", str(a),
                                    "--influxdb", url, "--org", "lab", "--token-file",
                                    str(tok)])
    assert res.exit_code == 0, res.output
    # a wrong token: one line, exit 1, the token not in it
    res = CliRunner().invoke(main, ["--results", str(tmp_path / "o3"), "restore", str(a),
                                    "--influxdb", url, "--org", "lab",
                                    "--token-env", "FEMDC_TEST_TOKEN"],
                             env={"FEMDC_TEST_TOKEN": "wrong"})
    assert res.exit_code == 1 and "401" in res.output and "wrong" not in res.output


def test_read_token(tmp_path: Path) -> None:
    assert read_token(None, None, {}) is None
    assert read_token("T", None, {"T": " abc \n"}) == "abc"
    with pytest.raises(ValueError, match="T .*is not set"):
        read_token("T", None, {})
    f = tmp_path / "t"
    f.write_text("")
    f.chmod(0o600)
    with pytest.raises(ValueError, match="is empty"):
        read_token(None, f, {})
    with pytest.raises(ValueError, match="not both"):
        read_token("T", f, {"T": "x"})
