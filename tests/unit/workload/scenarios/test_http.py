"""Rally's HttpRequests scenarios, run by the agent against a real HTTP server on
127.0.0.1 (no OpenStack: the job's auth URL points at a closed port and is never used)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import femdc_bench.workload.scenarios  # noqa: F401  (registers)
from femdc_bench.workload import agent
from femdc_bench.workload.registry import REGISTRY


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: list[tuple[str, str]] = []

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))  # keep-alive: eat it
        _Handler.seen.append((self.command, self.path))
        code = 200 if self.path.startswith("/ok") else 404
        body = b"fine\n" if code == 200 else b"nope\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer  # noqa: N815 - http.server's names

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Handler.seen = []
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _run(tmp_path: Path, scenario: str, args: dict[str, Any], times: int = 6
         ) -> tuple[int, list[dict[str, Any]]]:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"site": "s1", "host": "h", "jobs": [{
        "scenario": scenario, "args": args,
        "runner": {"type": "times", "times": times, "concurrency": 2},
        "target_site": "s1",
        "auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "admin",
                 "password": "x", "project_name": "admin"},
        "name_prefix": "femdc-t-"}]}))
    out = tmp_path / "out.jsonl"
    code = agent.main(["--spec", str(spec), "--out", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines() if line]
    return code, rows


def test_check_request_times_each_request_as_rally_names_it(tmp_path: Path,
                                                            server: str) -> None:
    code, rows = _run(tmp_path, "HttpRequests.check_request",
                      {"url": f"{server}/ok", "method": "GET", "status_code": 200})
    assert code == 0
    its = [r for r in rows if not r.get("action")]
    acts = [r for r in rows if r.get("action")]
    assert len(its) == 6 and all(r["status"] == "ok" for r in its)
    assert {r["action"] for r in acts} == {"requests.check_request"} and len(acts) == 6
    assert its[0]["operation"] == "HttpRequests.check_request"
    assert _Handler.seen == [("GET", "/ok")] * 6  # one request per iteration


def test_a_wrong_status_is_a_failed_iteration_with_rallys_message(tmp_path: Path,
                                                                  server: str) -> None:
    _, rows = _run(tmp_path, "HttpRequests.check_request",
                   {"url": f"{server}/missing", "method": "HEAD", "status_code": 200},
                   times=2)
    its = [r for r in rows if not r.get("action")]
    assert [r["status"] for r in its] == ["error", "error"]
    assert "Expected HTTP request code is `200` actual `404`" in its[0]["error"]


def test_check_random_request_picks_from_the_list(tmp_path: Path, server: str) -> None:
    code, rows = _run(tmp_path, "HttpRequests.check_random_request", {
        "requests": [{"url": f"{server}/ok/a", "method": "GET"},
                     {"url": f"{server}/ok/b", "method": "POST", "data": "x",
                      "status_code": 200}],
        "status_code": 200}, times=40)
    assert code == 0
    assert all(r["status"] == "ok" for r in rows)
    assert {p for _, p in _Handler.seen} == {"/ok/a", "/ok/b"}


@pytest.mark.parametrize(("args", "message"), [
    ({"url": "ftp://x", "method": "GET", "status_code": 200}, "url: expected an http"),
    ({"url": "http://127.0.0.1/", "method": "FETCH", "status_code": 200}, "method:"),
    ({"url": "http://127.0.0.1/", "method": "GET"}, "status_code: expected"),
    ({"url": "http://127.0.0.1/", "method": "GET", "status_code": 200, "files": {}},
     "unknown arg 'files'"),
])
def test_bad_args_are_refused(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        REGISTRY.get("HttpRequests.check_request").resolve_args(args)


def test_bad_random_requests_name_their_index() -> None:
    sc = REGISTRY.get("HttpRequests.check_random_request")
    with pytest.raises(ValueError, match=r"requests\[1\]\.method"):
        sc.resolve_args({"requests": [{"url": "http://127.0.0.1/", "method": "GET"},
                                      {"url": "http://127.0.0.1/"}], "status_code": 200})
