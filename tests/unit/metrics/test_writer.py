"""Line protocol, tiebreak, buffering, spooling, quoting, client choice, local server state.

Fast: no InfluxDB server (a fake client records what would be sent).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from femdc_bench.metrics import client as influx
from femdc_bench.metrics import names
from femdc_bench.metrics.client import (
    InfluxClient,
    InfluxTarget,
    InfluxUnavailable,
    InfluxWriteRejected,
    LocalInfluxdError,
    V1Client,
    V2Client,
    connect,
    flux_string,
    influxql_ident,
    influxql_string,
    safe_url,
)
from femdc_bench.metrics.names import API
from femdc_bench.metrics.reader import InfluxReader
from femdc_bench.metrics.server import LocalInfluxd
from femdc_bench.metrics.writer import InfluxWriter, to_line
from femdc_bench.model import MetricsSpec, Sample


class FakeClient(InfluxClient):
    """Records batches; `down` makes it unreachable, `reject` makes it refuse."""

    api = "fake"

    def __init__(self) -> None:
        super().__init__(InfluxTarget(url="http://127.0.0.1:1"), "1.6.7")
        self.batches: list[list[str]] = []
        self.down = False
        self.reject = False
        self.calls = 0
        self.stored_rows: list[dict[str, Any]] = []

    def delete(self, measurement: str, where: Mapping[str, str]) -> None:
        raise NotImplementedError

    def ensure_database(self) -> None:
        pass

    def write_lines(self, lines: Sequence[str]) -> None:
        self.calls += 1
        if self.down:
            raise InfluxUnavailable("down")
        if self.reject:
            raise InfluxWriteRejected("HTTP 400: field type conflict")
        self.batches.append(list(lines))

    @property
    def lines(self) -> list[str]:
        return [line for b in self.batches for line in b]

    def rows(self, measurement: str, where: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        for r in self.stored_rows:
            if all(r.get(k) == v for k, v in where.items()):
                yield r

    def count(self, measurement: str, field_name: str, where: Mapping[str, str]) -> int:
        return sum(1 for _ in self.rows(measurement, where))


def _sample(t0: int = 1_700_000_000_000_000_000, host: str = "h1", it: int = 0) -> Sample:
    return Sample(
        site="s1",
        target_site="s2",
        service="identity",
        operation="authenticate",
        t0_ns=t0,
        duration_ms=12.0,
        status="ok",
        host=host,
        iteration=it,
    )


# --------------------------------------------------------------------------- line protocol


def test_to_line_escapes_with_point() -> None:
    line = to_line(
        "api",
        {"site": "a b,c=d", "empty": "", "none": None, "run": "r1"},
        {"error": 'say "hi" \\ bye', "duration_ms": 12.5, "iteration": 3, "ok": True},
        123,
    )
    assert line == (
        'api,run=r1,site=a\\ b\\,c\\=d duration_ms=12.5,error="say \\"hi\\" \\\\ bye",'
        "iteration=3i,ok=true 123"
    )


def test_to_line_drops_nonfinite_and_empty() -> None:
    assert to_line("api", {"a": "b"}, {"x": float("nan")}, 1) == ""
    assert to_line("api", {}, {"x": float("inf"), "y": 1.0}, 1) == "api y=1 1"


def test_write_samples_line_format() -> None:
    c = FakeClient()
    w = InfluxWriter(c, {"experiment": "ignored-by-explicit"})
    s = _sample(it=7)
    s.error = ""
    err = Sample("s1", "s1", "identity", "auth", 5, 3.0, "error", error="HTTP 500", host="h")
    assert w.write_samples([s, err], run="run-1", experiment="exp", point="p0") == 2
    w.close()
    ok_line, err_line = c.lines
    assert ok_line == (
        "api,experiment=exp,host=h1,operation=authenticate,point=p0,run=run-1,"
        "service=identity,site=s1,status=ok,target_site=s2 "
        'duration_ms=12,error="",iteration=7i 1700000000000000000'
    )
    assert "status=error" in err_line and 'error="HTTP 500"' in err_line
    # duration is always a float field (no "i" suffix), iteration always an int
    assert "duration_ms=3," in err_line and "iteration=0i" in err_line


def test_atomic_action_tag_and_extra_fields() -> None:
    c = FakeClient()
    w = InfluxWriter(c)
    whole = _sample(t0=5, it=2)
    act = _sample(t0=5, it=2)
    act.action = "glance.upload_data"
    act.fields = {"bytes": 1000000, "mb_per_s": 41.5}
    w.write_samples([whole, act], run="r", experiment="e", point="p0")
    w.close()
    whole_line, act_line = c.lines
    assert "action" not in whole_line  # whole iteration: no tag (no empty tag values)
    assert act_line == (
        "api,action=glance.upload_data,experiment=e,host=h1,operation=authenticate,point=p0,"
        "run=r,service=identity,site=s1,status=ok,target_site=s2 "
        'bytes=1000000,duration_ms=12,error="",iteration=2i,mb_per_s=41.5 5'
    )
    # another series: the same start ns does not overwrite (and is not bumped)
    assert w.stats.ts_bumped == 0
    bad = _sample()
    bad.fields = {"status": 1.0}
    with pytest.raises(ValueError, match="status"):
        w.write_samples([bad], run="r", experiment="e", point="p0")


def test_reader_returns_actions_and_fields() -> None:
    c = FakeClient()
    base = {
        "run": "r", "point": "p0", "site": "s1", "target_site": "s2", "service": "image",
        "operation": "GlanceImages.create_and_download_image", "status": "ok", "error": "",
        "host": "h1", "iteration": 0, "duration_ms": 20.0,
        # a sweep parameter tag (a string) is not a field
        "wan_default_delay": "25ms",
    }
    c.stored_rows = [
        {**base, "time": 1, "action": None, "bytes": None, "mb_per_s": None},
        {**base, "time": 2, "action": "glance.download_image", "bytes": 1000000,
         "mb_per_s": 50.0},
    ]
    whole, act = InfluxReader(c).api_samples("r")
    assert (whole.action, whole.fields) == ("", {})
    assert act.action == "glance.download_image"
    assert act.fields == {"bytes": 1e6, "mb_per_s": 50.0}
    assert isinstance(act.fields["bytes"], float)


def test_written_samples_read_back_the_same() -> None:
    """Writer and reader are symmetric: lines parsed back as an InfluxQL row would be."""
    c = FakeClient()
    w = InfluxWriter(c)
    whole = _sample(t0=7, it=1)
    act = _sample(t0=8, it=1)
    act.action, act.fields = "nova.boot_server", {"polls": 3.0}
    w.write_samples([whole, act], run="r", experiment="e", point="p0")
    w.close()
    for line in c.lines:
        head, fields, ts = line.split(" ")
        tags = dict(kv.split("=", 1) for kv in head.split(",")[1:])
        row: dict[str, Any] = {**tags, "time": int(ts)}
        for kv in fields.split(","):
            k, v = kv.split("=", 1)
            row[k] = (int(v[:-1]) if v.endswith("i") else
                      v.strip('"') if v.startswith('"') else float(v))
        c.stored_rows.append(row)
    assert InfluxReader(c).api_samples("r") == [whole, act]


def test_common_tags_are_added_and_overridable() -> None:
    c = FakeClient()
    w = InfluxWriter(c, {"run": "r", "experiment": "e"})
    w.write("event", {"kind": "phase", "run": "r2"}, {"msg": "up"}, 10)
    w.flush()
    assert c.lines == ['event,experiment=e,kind=phase,run=r2 msg="up" 10']


def test_unknown_measurement_refused() -> None:
    w = InfluxWriter(FakeClient())
    with pytest.raises(ValueError, match="unknown measurement"):
        w.write("apis", {}, {"x": 1}, 1)
    with pytest.raises(ValueError, match="no \\(finite\\) field"):
        w.write(API, {}, {"x": None}, 1)


def test_measurement_names_in_one_place() -> None:
    assert {"api", "proc", "tcp", "host", "db", "mq", "wan", "event"} == names.MEASUREMENTS


# --------------------------------------------------------------------------- tiebreak


def _ts(line: str) -> int:
    return int(line.rsplit(" ", 1)[1])


def test_tiebreak_bumps_repeated_series_timestamps() -> None:
    c = FakeClient()
    w = InfluxWriter(c, batch_size=2)  # collisions across batches too
    t = 1_000
    samples = [
        _sample(t, "h1", 0),
        _sample(t, "h1", 1),  # same series, same ns -> t+1
        _sample(t, "h2", 2),  # other host: other series, unchanged
        _sample(t, "h1", 3),  # -> t+2
        _sample(t + 1, "h1", 4),  # t+1 taken -> t+3
    ]
    w.write_samples(samples, run="r", experiment="e", point="p")
    w.close()
    assert [_ts(line) for line in c.lines] == [t, t + 1, t, t + 2, t + 3]
    assert w.stats.ts_bumped == 1 + 2 + 2
    # all (series, ts) pairs are distinct
    keys = {(line.split(" ")[0], _ts(line)) for line in c.lines}
    assert len(keys) == 5


def test_tiebreak_window_is_bounded() -> None:
    w = InfluxWriter(FakeClient(), dedup_window=10)
    for i in range(100):
        w.write(API, {"run": "r"}, {"x": 1.0}, i)
    assert len(w._recent) <= 11


# --------------------------------------------------------------------------- buffering


def test_batches_of_batch_size_and_flush_on_close() -> None:
    c = FakeClient()
    with InfluxWriter(c, batch_size=3) as w:
        for i in range(7):
            w.write(API, {"run": "r"}, {"x": float(i)}, i)
        assert [len(b) for b in c.batches] == [3, 3]
        assert w.pending == 1
    assert [len(b) for b in c.batches] == [3, 3, 1]
    assert w.stats.sent == 7 and w.stats.written == 7


def test_spool_when_down_then_replay_in_order(tmp_path: Path) -> None:
    c = FakeClient()
    spool = tmp_path / "sub" / "spool.jsonl"
    w = InfluxWriter(c, batch_size=2, spool_path=spool, retry_interval_s=3600)
    c.down = True
    for i in range(5):
        w.write(API, {"run": "r"}, {"msg": f"line\n{i}"}, i)  # newlines survive the spool
    # first auto flush failed; the second one did not even try (backoff)
    assert c.calls == 1
    assert w.spooled_count() == 4 and w.pending == 1
    w.flush()  # explicit flush tries again, still down: all spooled
    assert w.spooled_count() == 5 and w.pending == 0
    assert c.calls == 2
    c.down = False
    w.write(API, {"run": "r"}, {"msg": "later"}, 99)
    w.flush()
    assert [_ts(line) for line in c.lines] == [0, 1, 2, 3, 4, 99]
    assert c.lines[0] == 'api,run=r msg="line\n0" 0'
    assert w.spooled_count() == 0
    assert w.stats.replayed == 5 and w.stats.sent == 6 and w.stats.spooled == 5


def test_replay_from_a_new_writer(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    down = FakeClient()
    down.down = True
    w1 = InfluxWriter(down, spool_path=spool)
    w1.write_samples([_sample(i) for i in range(10)], run="r", experiment="e", point="p")
    w1.close()  # no exception: the data is safe on disk
    assert w1.spooled_count() == 10
    up = FakeClient()
    w2 = InfluxWriter(up, spool_path=spool, batch_size=4)
    assert w2.replay_spool() == 10
    assert [len(b) for b in up.batches] == [4, 4, 2]
    assert spool.read_text() == ""


def test_partial_replay_keeps_the_rest(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    spool.write_text("".join(json.dumps(f"api x=1 {i}") + "\n" for i in range(6)))

    class FlakyClient(FakeClient):
        def write_lines(self, lines: Sequence[str]) -> None:
            if self.calls == 1:
                self.calls += 1
                raise InfluxUnavailable("went away")
            super().write_lines(lines)

    c = FlakyClient()
    w = InfluxWriter(c, spool_path=spool, batch_size=2)
    with pytest.raises(InfluxUnavailable):
        w.replay_spool()
    assert c.lines == ["api x=1 0", "api x=1 1"]
    assert [json.loads(x) for x in spool.read_text().splitlines()] == [
        f"api x=1 {i}" for i in range(2, 6)
    ]


def test_no_spool_path_raises_and_keeps_buffer() -> None:
    c = FakeClient()
    c.down = True
    w = InfluxWriter(c)
    w.write(API, {"run": "r"}, {"x": 1.0}, 1)
    with pytest.raises(InfluxUnavailable):
        w.flush()
    assert w.pending == 1
    c.down = False
    assert w.flush() == 1


def test_rejected_points_are_kept_aside(tmp_path: Path) -> None:
    c = FakeClient()
    c.reject = True
    spool = tmp_path / "spool.jsonl"
    w = InfluxWriter(c, spool_path=spool)
    w.write(API, {"run": "r"}, {"x": 1.0}, 1)
    with pytest.raises(InfluxWriteRejected, match="type conflict"):
        w.flush()
    assert w.stats.rejected == 1 and w.spooled_count() == 0
    rejected = (tmp_path / "spool.jsonl.rejected").read_text().splitlines()
    assert [json.loads(x) for x in rejected] == ["api,run=r x=1 1"]


def test_writer_without_client_only_spools(tmp_path: Path) -> None:
    w = InfluxWriter(None, spool_path=tmp_path / "s.jsonl")
    w.write(API, {"run": "r"}, {"x": 1.0}, 1)
    w.close()
    assert w.spooled_count() == 1
    with pytest.raises(InfluxUnavailable):
        w.replay_spool()


# --------------------------------------------------------------------------- quoting


def test_influxql_string_escapes() -> None:
    assert influxql_string("plain") == "'plain'"
    assert influxql_string("it's") == "'it\\'s'"
    assert influxql_string("a\\b") == "'a\\\\b'"
    assert influxql_string("x' OR 'a'='a") == "'x\\' OR \\'a\\'=\\'a'"
    assert influxql_string("l1\nl2") == "'l1\\nl2'"
    assert influxql_ident('we"ird') == '"we\\"ird"'


def test_flux_string_escapes() -> None:
    assert flux_string("plain") == '"plain"'
    assert flux_string('a"b') == '"a\\"b"'
    assert flux_string("a\\b") == '"a\\\\b"'
    assert flux_string("${x}") == '"\\${x}"'
    assert flux_string("l1\nl2\t") == '"l1\\nl2\\t"'


def test_v2_query_uses_escaped_values() -> None:
    c = V2Client(InfluxTarget(url="http://127.0.0.1:1", bucket="b", org="o"), "v2.7.1")
    try:
        q = c.flux_rows_query(API, {"run": 'r") |> drop() //', "point": "p"})
    finally:
        c.close()
    assert 'from(bucket: "b")' in q
    assert 'r["run"] == "r\\") |> drop() //"' in q
    assert 'r["point"] == "p"' in q and "int(v: r._time)" in q


# --------------------------------------------------------------------------- target, connect


def test_target_hides_secrets_and_reads_env() -> None:
    spec = MetricsSpec(
        database="db1", bucket="bk", org="o", token_env="T", username_env="U", password_env="P"
    )
    t = InfluxTarget.from_spec(spec, "http://127.0.0.1:8086", {"T": "tok", "U": "u", "P": "pw"})
    assert (t.database, t.bucket, t.org, t.token, t.username, t.password) == (
        "db1",
        "bk",
        "o",
        "tok",
        "u",
        "pw",
    )
    assert "tok" not in repr(t) and "pw" not in repr(t)
    with pytest.raises(influx.InfluxError, match="T"):
        InfluxTarget.from_spec(MetricsSpec(token_env="T"), "http://x", {})
    assert safe_url("http://user:secret@127.0.0.1:8086/x") == "http://127.0.0.1:8086/x"
    assert safe_url("http://127.0.0.1:8086") == "http://127.0.0.1:8086"


@pytest.mark.parametrize(
    ("version", "cls"),
    [
        ("1.6.7~rc0", V1Client),
        ("1.8.10", V1Client),
        ("v2.7.11", V2Client),
        ("2.0.0", V2Client),
        ("", V1Client),
    ],
)
def test_connect_picks_api_by_version(
    monkeypatch: pytest.MonkeyPatch, version: str, cls: type
) -> None:
    monkeypatch.setattr(influx, "ping", lambda target, timeout_s=10.0: version)
    client = connect(InfluxTarget(url="http://127.0.0.1:1"), create=False)
    try:
        assert type(client) is cls and client.version == version
    finally:
        client.close()


def test_ping_unreachable_is_unavailable() -> None:
    with pytest.raises(InfluxUnavailable):
        influx.ping("http://127.0.0.1:1", timeout_s=1)


# --------------------------------------------------------------------------- reader


def test_reader_rows_to_samples_by_point() -> None:
    c = FakeClient()
    base = {
        "run": "r",
        "site": "s1",
        "target_site": "s2",
        "service": "identity",
        "operation": "auth",
        "status": "ok",
        "error": "",
        "host": "h1",
    }
    c.stored_rows = [
        {**base, "point": "p2", "time": 30, "duration_ms": 3, "iteration": 2},
        {**base, "point": "p1", "time": 10, "duration_ms": 1.5, "iteration": 0},
        {
            **base,
            "point": "p1",
            "time": 20,
            "duration_ms": 2.0,
            "iteration": 1,
            "status": "error",
            "error": "x",
            "host": None,
        },
    ]
    r = InfluxReader(c)
    by = r.api_samples_by_point("r")
    assert sorted(by) == ["p1", "p2"]
    assert [s.t0_ns for s in by["p1"]] == [10, 20]
    s2 = by["p1"][1]
    assert (s2.status, s2.error, s2.host, s2.iteration) == ("error", "x", "", 1)
    assert isinstance(by["p2"][0].duration_ms, float)
    assert [s.t0_ns for s in r.api_samples("r")] == [10, 20, 30]
    assert [s.t0_ns for s in r.api_samples("r", point="p2")] == [30]
    assert r.count("r") == 3 and r.count("other") == 0


# --------------------------------------------------------------------------- local server state


def _fake_influxd(tmp_path: Path, body: str) -> str:
    path = tmp_path / "bin" / "influxd"
    path.parent.mkdir()
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_start_failure_quotes_the_log(tmp_path: Path) -> None:
    fake = _fake_influxd(tmp_path, 'echo "run: open server: something broke" >&2; exit 1')
    d = LocalInfluxd(tmp_path / "influx", influxd=fake, start_timeout_s=5)
    with pytest.raises(LocalInfluxdError, match="something broke") as ei:
        d.start()
    assert "exited with code 1" in str(ei.value)
    assert not d.is_running()
    conf = d.config_path.read_text()
    assert "reporting-disabled = true" in conf and "8088" not in conf
    assert 'bind-address = "127.0.0.1:' in conf and "auth-enabled = false" in conf


def test_start_timeout_stops_what_it_started(tmp_path: Path) -> None:
    fake = _fake_influxd(tmp_path, "exec sleep 60")
    d = LocalInfluxd(tmp_path / "influx", influxd=fake, start_timeout_s=1, stop_timeout_s=5)
    with pytest.raises(LocalInfluxdError, match="did not answer /ping"):
        d.start()
    state = d.read_state()
    assert state is not None and state.pid is None
    assert not d.is_running()


def test_stop_refuses_a_pid_that_is_not_ours(tmp_path: Path) -> None:
    d = LocalInfluxd(tmp_path)
    # a state file naming this very test process: it is no influxd with our config
    d.state_path.write_text(
        json.dumps(
            {
                "config": str(d.config_path),
                "http_port": 1,
                "rpc_port": 2,
                "pid": os.getpid(),
                "url": "http://127.0.0.1:1",
            }
        )
    )
    assert not d.is_running()
    assert d.url is None
    assert d.stop() is False  # and we are still alive to assert it
    assert d.read_state().pid is None  # type: ignore[union-attr]


def test_no_state_means_not_running(tmp_path: Path) -> None:
    d = LocalInfluxd(tmp_path / "nothing")
    assert not d.is_running() and d.stop() is False and d.pid is None


# --------------------------------------------------------------------------- 2.x protocol

# What an InfluxDB 2.x answers (annotated CSV) to the reader's pivot query and count query.
_CSV_ROWS = '''\
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,\
string,string,double,string,long,long
#group,false,false,true,true,false,true,true,true,true,false,false,false,false
#default,_result,,,,,,,,,,,,
,result,table,_start,_stop,_time,_measurement,run,point,status,duration_ms,error,iteration,\
_femdc_ns
,,0,1970-01-01T00:00:00Z,2262-04-11T00:00:00Z,2023-11-14T22:13:20.000000001Z,api,r,p1,ok,\
12.5,,3,1700000000000000001
,,0,1970-01-01T00:00:00Z,2262-04-11T00:00:00Z,2023-11-14T22:13:20.000000002Z,api,r,p1,error,\
1.25,"x ""y""",4,1700000000000000002

'''
_CSV_COUNT = """\
#datatype,string,long,long
#group,false,false,false
#default,_result,,
,result,table,_value
,,0,2

"""


class _Fake2x(BaseHTTPRequestHandler):
    """Just enough of the InfluxDB 2.x HTTP API for influxdb-client."""

    requests: list[tuple[str, str, str | None, bytes]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: bytes = b"", ctype: str = "application/json") -> None:
        self.send_response(code)
        if code == 204:
            self.send_header("X-Influxdb-Version", "v2.7.1")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, self.headers.get("Authorization"), b""))
        if self.path.startswith("/ping"):
            self._reply(204)
        elif self.path.startswith("/api/v2/buckets"):
            bucket = {"name": "b", "id": "1", "orgID": "o", "retentionRules": []}
            self._reply(200, json.dumps({"buckets": [bucket]}).encode())
        else:
            self._reply(404)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.requests.append(("POST", self.path, self.headers.get("Authorization"), body))
        if self.path.startswith("/api/v2/write"):
            self._reply(204)
        elif self.path.startswith("/api/v2/query"):
            csv = _CSV_COUNT if "count()" in json.loads(body)["query"] else _CSV_ROWS
            self._reply(200, csv.encode(), "text/csv")
        else:
            self._reply(404)


@pytest.fixture
def fake_2x() -> Iterator[str]:
    _Fake2x.requests = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Fake2x)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_v2_write_and_read_through_influxdb_client(fake_2x: str) -> None:
    client = connect(InfluxTarget(url=fake_2x, bucket="b", org="o", token="tok"))
    assert isinstance(client, V2Client) and client.version == "v2.7.1"
    with client, InfluxWriter(client) as w:
        w.write_samples([_sample(5)], run="r", experiment="e", point="p")
    writes = [r for r in _Fake2x.requests if r[1].startswith("/api/v2/write")]
    assert len(writes) == 1
    _, path, auth, body = writes[0]
    assert "bucket=b" in path and "org=o" in path and "precision=ns" in path
    assert auth == "Token tok"
    assert body.decode().startswith("api,experiment=e,host=h1,") and body.endswith(b" 5")

    reader = InfluxReader(client)
    by = reader.api_samples_by_point("r")
    assert list(by) == ["p1"]
    a, b = by["p1"]
    # exact ns come from the int(v: r._time) column, not the µs datetime
    assert (a.t0_ns, a.duration_ms, a.iteration, a.error) == (1700000000000000001, 12.5, 3, "")
    assert (b.t0_ns, b.status, b.error) == (1700000000000000002, "error", 'x "y"')
    assert reader.count("r") == 2


def test_concurrent_writers_threads_keep_points_distinct() -> None:
    c = FakeClient()
    w = InfluxWriter(c, batch_size=64)

    def work(k: int) -> None:
        for i in range(500):
            w.write_samples([_sample(1_000 + i % 50, "h1", k * 1000 + i)], "r", "e", "p")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    assert len(c.lines) == 2000
    assert len({_ts(line) for line in c.lines}) == 2000  # one series: every ts distinct
