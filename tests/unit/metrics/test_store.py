"""InfluxDB away while a run stores its points (issue 10, item 2): the store steps put
everything in the run's spool instead of failing, a point benched again first sends what
waits, and the test hold opens a window at a known step.

Fast: no influxd. "Away" is a closed port, or a small HTTP server that stops between the
connection and the writes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from femdc_bench.metrics import store as metrics_store
from femdc_bench.metrics.client import InfluxClient, InfluxTarget
from femdc_bench.metrics.names import API, EVENT, SAMPLED
from femdc_bench.model import Sample
from femdc_bench.rundir import Run
from femdc_bench.wan import state as wan_state
from femdc_bench.wan.check import PairCheck, WanCheck
from femdc_bench.workload.sink import JsonlSink
from tests import holds
from tests.one_host import one_host_experiment

N_SAMPLES, N_PROC, N_HOST = 30, 10, 5


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    doc = one_host_experiment({"influxdb": "local"})
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(doc))
    r = Run.create(f, tmp_path / "results", run_id="r-out")
    base = 1_763_900_000_000_000_000
    with JsonlSink(str(r.samples_dir("p0") / "s1-h.jsonl")) as sink:
        for i in range(N_SAMPLES):
            sink.emit(Sample(site="s1", target_site="s1", service="identity",
                             operation="list_users", t0_ns=base + i * 10**6,
                             duration_ms=5.0, status="ok", host="s1-h", iteration=i))
    with open(r.metrics_dir("p0") / "s1-h.jsonl", "w") as out:
        for i in range(N_PROC + N_HOST):
            m = "proc" if i < N_PROC else "host"
            out.write(json.dumps({"m": m, "tags": {"host": "s1-h", "site": "s1",
                                                   "service": "keystone"},
                                  "fields": {"cpu_pct": 1.0 + i}, "t": base + i * 10**9}) + "\n")
    r.event("wan", "emulate@p0", "applied")
    return r


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(flag: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def _spooled(r: Run) -> Counter[str]:
    """Records in the run's spool, by measurement."""
    lines = [json.loads(x) for x in metrics_store.spool_file(r).read_text().splitlines()]
    return Counter(line.split(",", 1)[0] for line in lines)


def test_store_steps_spool_everything_while_influxdb_is_away(run: Run) -> None:
    """Nothing answers: samples, sampler records and events all wait in the spool, and
    no step raises (the bench goes on to its end; before, the first connect raised)."""
    exp = run.experiment()
    target = InfluxTarget(url=f"http://127.0.0.1:{_closed_port()}")
    assert metrics_store.store_samples(run, exp, target, "p0") == N_SAMPLES
    assert metrics_store.store_metrics(run, exp, target, "p0") == N_PROC + N_HOST
    n_events = metrics_store.store_events(run, exp, target)
    assert n_events == len(run.events()) >= 1
    assert metrics_store.spool_waiting(run) == N_SAMPLES + N_PROC + N_HOST + n_events
    assert _spooled(run) == {API: N_SAMPLES, "proc": N_PROC, "host": N_HOST, EVENT: n_events}
    # the WAN check's pairs too (before, the check phase raised on its connect)
    pair = PairCheck(src_site="s1", dst_site="s2", src_host="s1-h", dst_host="s2-h",
                     target_ms=20.0, measured_ms=20.4, p95_ms=21.0, loss_pct=0.0,
                     base_ms=None, tolerance_ms=2.0, ok=True)
    wan_state.store_wan(run, exp, target, "p0", WanCheck("p0", 10, False, (pair,)))
    assert _spooled(run)["wan"] == 1


class _Influx1x(BaseHTTPRequestHandler):
    """Enough of InfluxDB 1.x for connect() and the writer; records what was written."""

    written: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("X-Influxdb-Version", "1.6.7")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer(204)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/write"):
            type(self).written += body.decode().splitlines()
            self._answer(204)
            return
        self._answer(200, json.dumps({"results": [{"series": [
            {"name": "databases", "columns": ["name"], "values": [["femdc"]]}]}]}).encode())


def test_a_server_that_dies_before_the_first_batch_loses_nothing(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connected, then the server is gone (the test hold `store` is the window): the
    writer's first batch fails and every sample waits in the spool."""
    _Influx1x.written = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Influx1x)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    target = InfluxTarget(url=f"http://127.0.0.1:{srv.server_address[1]}")
    holds.install(["store"], monkeypatch)
    flag = run.dir / "tmp" / "hold-store"

    def kill_in_the_window() -> None:
        _wait_for(flag)
        srv.shutdown()
        srv.server_close()
        flag.unlink(missing_ok=True)

    killer = threading.Thread(target=kill_in_the_window)
    killer.start()
    try:
        assert metrics_store.store_samples(run, run.experiment(), target, "p0") == N_SAMPLES
    finally:
        killer.join(10)
        srv.shutdown()
    assert _Influx1x.written == []
    assert _spooled(run) == {API: N_SAMPLES}


class _Recorder(InfluxClient):
    """Records writes and deletes in order (what replace_point does, and when)."""

    api = "recorder"

    def __init__(self) -> None:
        super().__init__(InfluxTarget(url="http://127.0.0.1:1"), "1.6.7")
        self.ops: list[tuple[str, Any]] = []

    def ensure_database(self) -> None:
        pass

    def write_lines(self, lines: Sequence[str]) -> None:
        self.ops.append(("write", list(lines)))

    def delete(self, measurement: str, where: Mapping[str, str]) -> None:
        self.ops.append(("delete", (measurement, dict(where))))

    def rows(self, measurement: str, where: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        return iter(())

    def count(self, measurement: str, field_name: str, where: Mapping[str, str]) -> int:
        return 0


def test_a_point_benched_again_first_sends_what_waits(run: Run) -> None:
    """The spool holds an earlier bench of p0 (and of other points): sent before p0's
    points are deleted, so that none of it comes back on top of the new bench."""
    exp = run.experiment()
    target = InfluxTarget(url=f"http://127.0.0.1:{_closed_port()}")
    metrics_store.store_samples(run, exp, target, "p0")  # InfluxDB away: all spooled
    c = _Recorder()
    assert metrics_store.replace_point(run, c, "p0") == N_SAMPLES
    kinds = [op for op, _ in c.ops]
    assert kinds[0] == "write" and "write" not in kinds[kinds.index("delete"):]
    assert sum(len(arg) for op, arg in c.ops if op == "write") == N_SAMPLES
    deleted = [arg for op, arg in c.ops if op == "delete"]
    assert deleted == [(m, {"run": "r-out", "point": "p0"}) for m in (API, EVENT, *SAMPLED)]
    assert metrics_store.spool_waiting(run) == 0
    # nothing waits: only the deletes
    c2 = _Recorder()
    assert metrics_store.replace_point(run, c2, "p0") == 0
    assert [op for op, _ in c2.ops] == ["delete"] * (2 + len(SAMPLED))


def test_a_hold_waits_until_its_file_is_removed(run: Run, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """The tests' hold (tests/holds.py): the step waits while the file exists, and a
    hold nobody releases is an error, not a hang."""
    flag = run.dir / "tmp" / "hold-store"
    seen: list[float] = []

    def release() -> None:
        _wait_for(flag)
        seen.append(time.monotonic())
        time.sleep(0.3)
        flag.unlink(missing_ok=True)

    th = threading.Thread(target=release)
    th.start()
    holds.hold(run.dir, "store")
    th.join()
    assert seen and time.monotonic() - seen[0] >= 0.3

    monkeypatch.setenv("FEMDC_TEST_HOLD_S", "0.2")  # nobody releases it: an error
    with pytest.raises(RuntimeError, match="hold store"):
        holds.hold(run.dir, "store")
    assert not flag.exists()
