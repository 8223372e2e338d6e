"""The bench path without ansible (bench/hosts.py, workload/host_*.py): frames,
the start margin, error lines, the ssh command line; then whole benches with the real
host side (BOOT, the session, the daemon, the sampler) reached through `sh -c` instead
of ssh: the only thing not run is the network."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from femdc_bench.ansible import proxy_command, ssh_argv
from femdc_bench.bench import hosts as bench_hosts
from femdc_bench.model import Host
from femdc_bench.workload import host_daemon
from femdc_bench.workload import host_protocol as proto
from femdc_bench.workload.host_protocol import FrameError, encode, file_frame, read_frame

MS = 1_000_000


# --------------------------------------------------------------------------- frames


def test_frames_round_trip_messages_and_files() -> None:
    data = b"line 1\nline 2\n\x00binary"
    stream = io.BytesIO(encode({"t": "ready", "setup_s": 0.1}) + file_frame("samples", data)
                        + encode({"t": "end"}))
    assert read_frame(stream) == {"t": "ready", "setup_s": 0.1}
    f = read_frame(stream)
    assert f is not None and (f["name"], f["size"], f["data"]) == ("samples", len(data), data)
    assert read_frame(stream) == {"t": "end"}
    assert read_frame(stream) is None  # EOF


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"t": "ready"}', "cut short"),  # no newline: the peer died mid-frame
    (b"hello\n", "not a frame"),
    (b'["t"]\n', "not a frame"),
    (b'{"x": 1}\n', "not a frame"),
    (b'{"t": "file", "name": "samples"}\n', "needs a name and a size"),
    (b'{"t": "file", "name": "samples", "size": 10}\nabc', r"cut short \(3 of 10 bytes\)"),
])
def test_bad_frames_are_errors(raw: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        read_frame(io.BytesIO(raw))


def test_boot_is_a_fixed_program_that_compiles() -> None:
    compile(proto.BOOT, "BOOT", "exec")
    assert bench_hosts.REMOTE.startswith("/usr/bin/python3 -S -u -c '")


# --------------------------------------------------------------------------- start margin


def test_margin_is_the_minimum_on_a_fast_network_with_equal_clocks() -> None:
    # 1 ms round trips, clocks equal: 0.1 s + 3 ms
    ex = {"a": [(0, MS // 2, MS)], "b": [(10 * MS, 10 * MS + MS // 2, 11 * MS)]}
    assert bench_hosts.start_margin_s(ex) == pytest.approx(0.103)
    assert bench_hosts.start_margin_s({}) == bench_hosts.MARGIN_MIN_S
    assert bench_hosts.start_margin_s({"a": []}) == bench_hosts.MARGIN_MIN_S


def test_margin_grows_with_the_slowest_round_trip_and_a_clock_ahead() -> None:
    # b: 40 ms round trip (shortest of its exchanges) and a clock 50 ms ahead
    ex = {"a": [(0, MS // 2, MS)],
          "b": [(0, 70 * MS, 60 * MS), (100 * MS, 170 * MS, 140 * MS)]}
    assert bench_hosts.start_margin_s(ex) == pytest.approx(0.1 + 3 * 0.040 + 0.050)
    # a clock behind adds nothing: that host waits a little longer, it is not late
    behind = {"b": [(0, -500 * MS, 2 * MS)]}
    assert bench_hosts.start_margin_s(behind) == pytest.approx(0.106)


def test_margin_is_capped() -> None:
    assert bench_hosts.start_margin_s({"a": [(0, 60_000 * MS, 2 * MS)]}) == bench_hosts.MARGIN_MAX_S


# --------------------------------------------------------------------------- error lines


def test_agent_failure_names_the_host_and_the_agents_last_error() -> None:
    assert bench_hosts.agent_failure("edge1-node", {"code": 0, "errors": []}) is None
    assert bench_hosts.agent_failure("edge1-node", {"code": 3, "errors": [
        "job 0 (keystone.list_users -> core): cannot authenticate"]}) == (
        "edge1-node: the load agent exited 3: job 0 (keystone.list_users -> core): "
        "cannot authenticate")
    assert bench_hosts.agent_failure("h", {"code": None, "errors": []}) == \
        "h: the load agent failed"


def test_failure_line_keeps_the_last_stderr_line() -> None:
    assert bench_hosts.failure_line("core-ctl", "its bench session ended early",
                                 ["", "ssh: connect to host 10.0.0.1 port 22: No route", " "]) \
        == "core-ctl: its bench session ended early (ssh: connect to host 10.0.0.1 port 22: " \
        "No route)"
    assert bench_hosts.failure_line("core-ctl", "not ready", []) == "core-ctl: not ready"


# --------------------------------------------------------------------------- ssh


def _host(**kw: Any) -> Host:
    return Host(alias="edge1-node", address="10.1.0.5", site="edge1", roles=("load",),
                ssh_user=kw.pop("user", "root"), ssh_port=2222, ssh_key="/r/ssh/id", **kw)


def test_ssh_argv_through_the_runs_master_connection() -> None:
    argv = ssh_argv(_host(), "REMOTE", control_dir=Path("/tmp/cp/abc"), become=True)
    assert argv[-2:] == ["root@10.1.0.5", "REMOTE"]  # no sudo: root already
    assert "ControlPath=/tmp/cp/abc/s-%C" in argv and "ControlMaster=auto" in argv
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-i") + 1] == "/r/ssh/id"
    assert "BatchMode=yes" in argv and "StrictHostKeyChecking=no" in argv
    plain = ssh_argv(_host(), "REMOTE")
    assert not any("Control" in a for a in plain)


def test_ssh_argv_becomes_root_and_goes_through_jump_hosts() -> None:
    h = _host(user="bench", extra={"ansible_become": True, "gateway": "access.grid5000.fr",
                                   "gateway_user": "jdoe"})
    argv = ssh_argv(h, "REMOTE", become=True)
    assert argv[-1] == "sudo -n REMOTE"
    assert argv[argv.index("-o", argv.index("-i")) + 1] == (
        "ProxyCommand=ssh -W %h:%p -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        " -o BatchMode=yes -l jdoe access.grid5000.fr")
    two = _host(extra={"gateway": "outer", "internal_gateway": "inner",
                       "internal_gateway_port": 2200})
    assert proxy_command(two) == (
        "ssh -W %h:%p -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o BatchMode=yes -l root -p 2200 -o 'ProxyCommand=ssh -W %%h:%%p -o "
        "StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes "
        "-l root outer' inner")
    assert proxy_command(_host()) is None


# --------------------------------------------------------------------------- whole benches


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Hosts whose 'ssh' is `sh -c REMOTE` on this machine, with this Python as the
    agent's; every process the daemons started is ended afterwards."""
    monkeypatch.setattr(bench_hosts, "ssh_argv", lambda h, remote, **kw: ["sh", "-c", remote])
    zip_path = tmp_path / "agent.zip"
    from femdc_bench.bench.controller import build_agent_zip

    build_agent_zip(zip_path)
    hosts = []

    def host(alias: str) -> Host:
        wd = tmp_path / "hosts" / alias
        wd.mkdir(parents=True)
        h = Host(alias=alias, address="127.0.0.1", site=alias.split("-")[0], roles=("load",),
                 workdir=str(wd))
        hosts.append(h)
        return h

    yield host, zip_path
    for h in hosts:
        pid = proto.pid_from(proto.Paths(h.workdir).daemon_pid, proto.DAEMON_NEEDLE)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)


def _spec(h: Host, times: int = 6, scenario: str = "Dummy.dummy",
          args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"site": h.site, "host": h.alias, "jobs": [{
        "scenario": scenario, "runner": {"type": "times", "times": times, "concurrency": 2},
        "target_site": "core", "args": args or {"sleep": 0.01},
        "auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "admin",
                 "password": "hunter2-secret", "project_name": "admin"},
        "name_prefix": "femdc-t-"}]}


def _sampler(h: Host) -> dict[str, Any]:
    return {"host": h.alias, "site": h.site, "address": h.address,
            "own_addresses": [h.address], "period_s": 1, "sites_by_address": {},
            "max_s": 120, "unit_prefix": "femdc-test-"}


def _bench(work: list[bench_hosts.HostWork], zip_path: Path, tmp_path: Path,
           **kw: Any) -> tuple[bench_hosts.Outcome, dict[str, Any]]:
    samples, metrics = tmp_path / "samples", tmp_path / "metrics"
    samples.mkdir(exist_ok=True)
    metrics.mkdir(exist_ok=True)
    started: dict[str, Any] = {}

    def on_start(start_ns: int, margin_s: float, timings: dict[str, Any]) -> None:
        started.update(start_ns=start_ns, margin_s=margin_s, timings=timings)

    out = bench_hosts.run_bench(work, python=sys.executable, zip_path=zip_path,
                             samples_dir=samples, metrics_dir=metrics,
                             control_dir=tmp_path / "cp", on_start=on_start, **kw)
    return out, started


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def test_a_bench_runs_every_host_from_one_start_and_reuses_the_daemon(
        local: Any, tmp_path: Path) -> None:
    host, zip_path = local
    a, b, c = host("core-ctl"), host("edge1-node"), host("edge2-node")
    work = [bench_hosts.HostWork(a, spec=_spec(a), sampler=_sampler(a)),
            bench_hosts.HostWork(b, spec=_spec(b, times=4)),
            bench_hosts.HostWork(c, sampler=_sampler(c))]  # a host with services only
    import threading

    seen: list[bytes] = []
    watching = threading.Event()

    def watch_argv() -> None:  # every process's command line, every 10 ms
        while not watching.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    with contextlib.suppress(OSError):
                        seen.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_argv, daemon=True)
    watcher.start()
    try:
        out, started = _bench(work, zip_path, tmp_path, timeout_s=60)
    finally:
        watching.set()
        watcher.join()
    assert any(b"femdc_bench.workload.host_daemon" in c for c in seen)  # the watch saw it run
    assert not [c for c in seen if b"hunter2" in c]  # the spec's password: never in argv
    samples = tmp_path / "samples"
    assert set(out.summaries) == {"core-ctl", "edge1-node"}
    assert out.summaries["core-ctl"]["jobs"][0]["count"] == 6
    assert json.loads((samples / "edge1-node.summary.json").read_text())["samples"] > 0
    rows = _rows(samples / "core-ctl.jsonl") + _rows(samples / "edge1-node.jsonl")
    assert len([r for r in rows if not r.get("action")]) == 10
    assert min(r["t0_ns"] for r in rows) >= out.start_ns == started["start_ns"]
    assert {r["host"] for r in rows} == {"core-ctl", "edge1-node"}
    # the samplers ran and their records came back; the one with no agent too
    for alias in ("core-ctl", "edge2-node"):
        recs = _rows(tmp_path / "metrics" / f"{alias}.jsonl")
        assert {"host", "proc"} <= {r["m"] for r in recs}, alias
    assert not (tmp_path / "metrics" / "edge1-node.jsonl").exists()
    t = started["timings"]
    assert t["hosts"]["core-ctl"]["daemon"] == "started"
    assert t["hosts"]["core-ctl"]["zip_sent"] is True
    assert 0 < t["hosts"]["core-ctl"]["sampler_s"] <= t["hosts"]["core-ctl"]["setup_s"]
    assert t["hosts"]["edge1-node"]["sampler_s"] is None  # no sampler there
    assert t["hosts"]["edge1-node"]["rtt_ms"] < 1000
    assert bench_hosts.MARGIN_MIN_S <= started["margin_s"] < 1
    # the spec (credentials) was never written on the host
    for h in (a, b):
        for root, _, files in os.walk(h.workdir):
            for f in files:
                if not f.endswith(".zip") and Path(root, f).is_file():
                    assert b"hunter2" not in Path(root, f).read_bytes(), f

    # a second bench: the zip is there, the daemon answers at once
    out2, started2 = _bench(work[:2], zip_path, tmp_path, timeout_s=60)
    hosts2 = started2["timings"]["hosts"]
    assert hosts2["core-ctl"]["daemon"] == "reused" and hosts2["core-ctl"]["zip_sent"] is False
    print(f"\nfirst bench ready in {t['ready_s']} s, second in "
          f"{started2['timings']['ready_s']} s")
    assert out2.summaries["edge1-node"]["jobs"][0]["count"] == 4

    # destroy's stop: the daemons end, nothing of theirs is left
    pid = proto.pid_from(proto.Paths(a.workdir).daemon_pid, proto.DAEMON_NEEDLE)
    assert pid is not None
    errors = bench_hosts.stop_hosts([a, b, c], zip_path=zip_path, control_dir=tmp_path / "cp",
                                 daemon=True)
    assert errors == []
    assert proto.pid_from(proto.Paths(a.workdir).daemon_pid, proto.DAEMON_NEEDLE) is None
    assert not os.path.exists(f"/proc/{pid}") or proto.alive(pid) is False


def test_a_failed_agent_names_its_host_and_the_others_still_finish(
        local: Any, tmp_path: Path) -> None:
    host, zip_path = local
    a, b = host("core-ctl"), host("edge1-node")
    bad = _spec(b, scenario="Dummy.openstack")  # authenticates: nothing listens there
    work = [bench_hosts.HostWork(a, spec=_spec(a)), bench_hosts.HostWork(b, spec=bad)]
    with pytest.raises(bench_hosts.BenchError) as e:
        _bench(work, zip_path, tmp_path, timeout_s=60)
    assert str(e.value).startswith("edge1-node: the load agent exited 3: job 0 "
                                   "(Dummy.openstack -> core): ")
    assert "hunter2" not in str(e.value)
    # the other host's load ran and came back
    assert len([r for r in _rows(tmp_path / "samples" / "core-ctl.jsonl")
                if not r.get("action")]) == 6


def _ctrl_c_once_loaded(tmp_path: Path) -> Any:
    """A bench's `progress` that, 1 s after "load running", does what SIGINT does to the
    CLI: KeyboardInterrupt in its main thread."""
    import threading

    def ctrl_c() -> None:
        while not (tmp_path / "go").exists():
            time.sleep(0.01)
        time.sleep(1.0)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    def progress(msg: str) -> None:
        if msg == "load running":
            (tmp_path / "go").touch()

    threading.Thread(target=ctrl_c, daemon=True).start()
    return progress


def test_an_interrupt_stops_every_agent_and_keeps_what_was_measured(
        local: Any, tmp_path: Path) -> None:
    host, zip_path = local
    a = host("core-ctl")
    long = _spec(a, times=100000, args={"sleep": 0.05})
    progress = _ctrl_c_once_loaded(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _bench([bench_hosts.HostWork(a, spec=long, sampler=_sampler(a))], zip_path, tmp_path,
               timeout_s=60, progress=progress)
    assert time.monotonic() - t0 < 20
    summary = json.loads((tmp_path / "samples" / "core-ctl.summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["jobs"][0]["count"] < 100000
    assert _rows(tmp_path / "samples" / "core-ctl.jsonl")
    assert _rows(tmp_path / "metrics" / "core-ctl.jsonl")  # the sampler was stopped
    p = proto.Paths(a.workdir)
    assert proto.pid_from(p.agent_pid, proto.DAEMON_NEEDLE) is None
    assert proto.pid_from(p.sampler_pid, proto.SAMPLER_NEEDLE) is None


def test_a_host_that_never_answers_is_named(local: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    host, zip_path = local
    a, b = host("core-ctl"), host("edge1-node")
    real = ["sh", "-c"]
    monkeypatch.setattr(bench_hosts, "ssh_argv", lambda h, remote, **kw: (
        ["sh", "-c", "echo 'ssh: connect to host: Connection timed out' >&2; sleep 30"]
        if h.alias == "edge1-node" else [*real, remote]))
    t0 = time.monotonic()
    with pytest.raises(bench_hosts.BenchError) as e:
        _bench([bench_hosts.HostWork(a, spec=_spec(a)), bench_hosts.HostWork(b, spec=_spec(b))],
               zip_path, tmp_path, timeout_s=3)
    assert time.monotonic() - t0 < 30
    assert str(e.value) == ("edge1-node: not ready within 3 s (the load agent's setup, or a "
                            "hung host) (ssh: connect to host: Connection timed out)")
    # the host that was ready was stopped before its load: nothing ran there
    summary = json.loads((tmp_path / "samples" / "core-ctl.summary.json").read_text())
    assert summary["jobs"][0]["skipped"] and summary["jobs"][0]["count"] == 0


# --------------------------------------------------------------------------- direct sessions


@pytest.fixture
def direct(local: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`local`, with the master connection's forward replaced by the daemon's own
    socket (same machine): the direct path, daemon side included, for real."""
    def forward(h: Host, control_dir: Path) -> tuple[Any, str]:
        s = proto.connect_socket(proto.Paths(h.workdir).sock)
        return (s, "") if s is not None else (None, "no daemon socket")

    monkeypatch.setattr(bench_hosts, "forward", forward)
    return local


def test_a_direct_session_needs_no_process_on_the_host_and_falls_back_to_ssh(
        direct: Any, tmp_path: Path) -> None:
    host, zip_path = direct
    a, c = host("core-ctl"), host("edge2-node")
    work = [bench_hosts.HostWork(a, spec=_spec(a), sampler=_sampler(a)),
            bench_hosts.HostWork(c, sampler=_sampler(c))]  # no agent: always over ssh
    # no daemon yet: the direct session cannot be had, ssh (BOOT) starts the daemon
    _, started = _bench(work, zip_path, tmp_path, timeout_s=60)
    h = started["timings"]["hosts"]
    assert (h["core-ctl"]["via"], h["core-ctl"]["daemon"]) == ("ssh", "started")
    assert h["core-ctl"]["direct_error"] == "no daemon socket"
    assert h["edge2-node"]["via"] == "ssh" and "direct_error" not in h["edge2-node"]

    # now the daemon answers: the session is one of its children, sampler included
    out, started = _bench(work, zip_path, tmp_path, timeout_s=60)
    h = started["timings"]["hosts"]
    assert (h["core-ctl"]["via"], h["core-ctl"]["daemon"]) == ("direct", "direct")
    assert "direct_error" not in h["core-ctl"] and h["core-ctl"]["zip_sent"] is False
    assert out.summaries["core-ctl"]["jobs"][0]["count"] == 6
    rows = _rows(tmp_path / "samples" / "core-ctl.jsonl")
    assert len([r for r in rows if not r.get("action")]) == 6
    assert min(r["t0_ns"] for r in rows) >= out.start_ns
    assert {"host", "proc"} <= {r["m"] for r in _rows(tmp_path / "metrics" / "core-ctl.jsonl")}
    p = proto.Paths(a.workdir)
    assert proto.pid_from(p.agent_pid, proto.DAEMON_NEEDLE) is None  # the agent ended
    assert proto.pid_from(p.sampler_pid, proto.SAMPLER_NEEDLE) is None

    # a failed agent is reported the same way over a direct session
    bad = _spec(a, scenario="Dummy.openstack")
    with pytest.raises(bench_hosts.BenchError, match=r"^core-ctl: the load agent exited 3: "):
        _bench([bench_hosts.HostWork(a, spec=bad)], zip_path, tmp_path, timeout_s=60)


def test_a_daemon_of_other_code_answers_stale_and_ssh_restarts_it(
        direct: Any, tmp_path: Path) -> None:
    import zipfile

    host, zip_path = direct
    a = host("core-ctl")
    work = [bench_hosts.HostWork(a, spec=_spec(a))]
    _bench(work, zip_path, tmp_path, timeout_s=60)  # the daemon of this zip
    old = proto.pid_from(proto.Paths(a.workdir).daemon_pid, proto.DAEMON_NEEDLE)
    other = tmp_path / "other.zip"  # the same code, another zip: another sha
    other.write_bytes(zip_path.read_bytes())
    with zipfile.ZipFile(other, "a") as z:
        z.comment = b"another build"
    out, started = _bench(work, other, tmp_path, timeout_s=60)
    h = started["timings"]["hosts"]["core-ctl"]
    assert (h["via"], h["daemon"], h["direct_error"]) == ("ssh", "started", "stale daemon")
    assert proto.pid_from(proto.Paths(a.workdir).daemon_pid, proto.DAEMON_NEEDLE) != old
    assert out.summaries["core-ctl"]["jobs"][0]["count"] == 6


def test_an_interrupt_over_a_direct_session_stops_the_agent(
        direct: Any, tmp_path: Path) -> None:
    host, zip_path = direct
    a = host("core-ctl")
    _, errors = bench_hosts.warm([a], python=sys.executable, zip_path=zip_path,
                              control_dir=tmp_path / "cp")
    assert errors == []
    long = _spec(a, times=100000, args={"sleep": 0.05})
    progress = _ctrl_c_once_loaded(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        _bench([bench_hosts.HostWork(a, spec=long)], zip_path, tmp_path, timeout_s=60,
               progress=progress)
    summary = json.loads((tmp_path / "samples" / "core-ctl.summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["jobs"][0]["count"] < 100000
    assert proto.pid_from(proto.Paths(a.workdir).agent_pid, proto.DAEMON_NEEDLE) is None


# --------------------------------------------------------------------------- auth cache


def test_the_auth_cache_goes_from_a_child_to_the_daemon_by_its_pipe() -> None:
    r, w = os.pipe()
    child = host_daemon.AuthCache({}, w, epoch="e1")
    key = child.key(["id", "public", "core", "True"])
    assert key == host_daemon.AuthCache({}, None, epoch="e1").key(["id", "public", "core", "True"])
    assert key != host_daemon.AuthCache({}, None, epoch="e2").key(["id", "public", "core", "True"])
    child.put(key, {"state": "{}", "endpoints": {"identity": "http://x/v3"}})
    os.close(w)
    buf, entries = bytearray(), {}
    while data := os.read(r, 1 << 16):
        buf += data
        host_daemon.take_cache_lines(buf, entries)
    os.close(r)
    assert buf == b"" and entries[key]["v"]["endpoints"] == {"identity": "http://x/v3"}
    # the next child gets it; too old, it is not used
    assert host_daemon.AuthCache(entries).get(key) == entries[key]["v"]
    entries[key]["t"] -= proto.AUTH_CACHE_S + 1
    assert host_daemon.AuthCache(entries).get(key) is None
    # a torn line waits for its end; garbage is skipped; the oldest go past the limit
    buf = bytearray(b'not json\n{"t": "cache", "k": "a", "v": {}}\n{"t": "ca')
    entries = {}
    host_daemon.take_cache_lines(buf, entries)
    assert set(entries) == {"a"} and buf == b'{"t": "ca'
    many = {f"k{i}": {"t": time.time() + i, "v": {}} for i in range(proto.AUTH_CACHE_MAX + 5)}
    host_daemon.take_cache_lines(bytearray(), many)
    assert len(many) == proto.AUTH_CACHE_MAX and "k0" not in many


def _job(**auth: Any) -> Any:
    from femdc_bench.workload.spec import AgentSpec

    spec = {"site": "core", "host": "core-ctl", "jobs": [{
        "scenario": "keystone.list_users", "runner": {"type": "times", "times": 1},
        "target_site": "core", "name_prefix": "femdc-t-",
        "auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "admin",
                 "password": "hunter2-secret", "project_name": "admin", **auth}}]}
    return AgentSpec.from_dict(spec).jobs[0]


def _token_state(expires_in_s: float) -> str:
    import datetime

    exp = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires_in_s)
    return json.dumps({"auth_token": "tok-1", "body": {"token": {
        "expires_at": exp.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), "methods": ["password"],
        "user": {"id": "u1", "name": "admin", "domain": {"id": "default"}},
        "project": {"id": "p1", "name": "admin", "domain": {"id": "default"}},
        "catalog": []}}})


def test_a_cached_token_and_endpoints_open_a_job_without_a_request() -> None:
    from femdc_bench.workload.context import JobContext, SetupError

    entries: dict[str, Any] = {}
    cache = host_daemon.AuthCache(entries, epoch="e1")
    jc = JobContext(_job())
    key = cache.key([jc.auth.get_cache_id(), "public", None, "True"])
    # nothing listens on port 9: without the cache, opening fails and nothing is kept
    with pytest.raises(SetupError, match="cannot authenticate"):
        jc.open(("identity",), cache=cache)
    assert entries == {}
    entries[key] = {"t": time.time(), "v": {"state": _token_state(3600),
                                            "endpoints": {"identity": "http://10.0.0.1/v3"}}}
    jc = JobContext(_job())
    jc.open(("identity",), cache=cache)
    assert jc.endpoint == "http://10.0.0.1/v3" and jc.project_id == "p1"
    # another password is another identity: not served from this entry
    with pytest.raises(SetupError):
        JobContext(_job(password="other")).open(("identity",), cache=cache)
    # a token near its expiry is not used: keystoneauth1 authenticates again (and fails)
    entries[key]["v"]["state"] = _token_state(60)
    with pytest.raises(SetupError, match="cannot authenticate"):
        JobContext(_job()).open(("identity",), cache=cache)
