"""kill -9 of the CLI in every phase, then `run --resume` (issue 10, item 1): one run is
killed while each of its phases runs in turn (up, deploy, emulate, check, bench, report,
backup), each time resumed; it finishes with every iteration stored once (the counts the
runners were asked for, per site, in InfluxDB and in the report: none duplicated, none
missing) and a complete backup whose checksums verify.
The same kept run then loses its InfluxDB (issue 10, item 2): its influxd is killed
(SIGKILL) during a bench's load, then during the store step after a load; the points
wait in the spool (`status` counts them) and are written when it is back, at the next
write and by `femdc-bench store`: InfluxDB then holds each recorded sample once.
Last, a bench killed during its load, and `destroy`: nothing of the run is left (no
namespace, link, process: the orphaned ansible-playbook, the load agents).

Real parts only: namespaces, sshd, ansible, MariaDB, Keystone, InfluxDB, the userspace
WAN emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from femdc_bench.metrics.client import InfluxTarget, connect
from femdc_bench.metrics.names import API, SAMPLED
from femdc_bench.metrics.server import LocalInfluxd
from tests import holds
from tests.e2e.test_local_run import (
    CLI,
    femdc,
    influx_counts,
    keystone_two_sites,
    leftovers,
    why,
    write_experiment,
)
from tests.holds import env_with_holds

pytestmark = pytest.mark.e2e

def experiment() -> dict[str, Any]:
    # 12 s of load: long enough to be killed in the middle of it
    return keystone_two_sites("e2e-crash", {"type": "duration", "duration": "12s",
                                            "concurrency": 1}, "10ms")


def _status(run_dir: Path, phase: str) -> str | None:
    try:
        return json.loads((run_dir / "state.json").read_text())["phases"][phase]["status"]
    except (OSError, ValueError, KeyError):
        return None


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *args], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _newer(path: Path, t: float) -> bool:
    try:
        return path.stat().st_mtime > t
    except OSError:
        return False


def kill_during(proc: subprocess.Popen[str], run_dir: Path, phase: str,
                ready: Path | None = None, settle: float = 3.0, timeout: float = 900) -> str:
    """kill -9 the CLI once `phase` runs (and `ready` was written since the CLI started:
    the load's start file, `settle` s before the kill; or a test hold's file); its
    output."""
    t0, since = time.monotonic(), time.time()
    while _status(run_dir, phase) != "running" or (ready is not None
                                                     and not _newer(ready, since)):
        if proc.poll() is not None:
            pytest.fail(f"the CLI ended before {phase} ran:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"{phase} did not start in {timeout} s")
        time.sleep(0.01)
    if ready is not None:
        time.sleep(settle)  # in the middle of the load
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.stdout.read()


@dataclass
class Crashed:
    run_id: str
    run_dir: Path
    env: dict[str, str]
    out: str  # the last resume's output


PHASES = ("up", "deploy", "emulate@p0", "check@p0", "bench@p0", "report", "backup")


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory, results: Path) -> Iterator[Crashed]:
    """One run killed in every phase in turn, resumed after each kill, and kept: the
    tests below use it in this file's order (the last one destroys it)."""
    exp = write_experiment(tmp_path_factory.mktemp("crash") / "crash.yaml", experiment())
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    run_id = "e2e-crash"
    run_dir = results / run_id
    hold_backup = run_dir / "tmp" / "hold-backup"
    try:
        proc = _start(env, "run", str(exp), "--keep", "--run-id", run_id)
        t_cli = time.monotonic()
        start = run_dir / "samples" / "p0" / "start.json"
        for i, phase in enumerate(PHASES):
            if phase == "bench@p0":
                kill_during(proc, run_dir, phase, ready=start)
            elif phase == "backup":  # held before its archive is written
                kill_during(proc, run_dir, phase, ready=hold_backup, settle=0)
                hold_backup.unlink()
                assert not (run_dir / "backup" / f"{run_id}.backup.tar.gz").exists()
            else:
                kill_during(proc, run_dir, phase)
            assert _status(run_dir, phase) == "running"  # as the dead CLI left it
            print(f"\nkilled during {phase}, {time.monotonic() - t_cli:.0f} s after its CLI began")
            if phase == "bench@p0":
                samples = sum(len(f.read_text().splitlines())
                              for f in (run_dir / "samples" / "p0").glob("*.jsonl"))
                print(f"samples on the controller at the kill: {samples}")
            # The backup is short: the CLI that will be killed in it waits there.
            held = ["backup"] if PHASES[i + 1:i + 2] == ("backup",) else []
            proc = _start(env_with_holds(env, held) if held else env,
                          "run", "--resume", run_id, "--keep")
            t_cli = time.monotonic()
        out = proc.communicate(timeout=1200)[0]
        print(f"the last resume took {time.monotonic() - t_cli:.0f} s")
        assert proc.returncode == 0, out[-4000:]
        yield Crashed(run_id, run_dir, env, out)
    finally:
        if (run_dir / "provider" / "state.json").exists():
            subprocess.run([*CLI, "destroy", run_id], env=env, capture_output=True,
                           timeout=600)


def ran_per_site(run_dir: Path) -> dict[str, int]:
    """What each load host's runner counted itself, summed per site."""
    ran: dict[str, int] = {}
    for f in (run_dir / "samples" / "p0").glob("*.summary.json"):
        doc = json.loads(f.read_text())
        assert not doc["interrupted"]
        ran[doc["site"]] = ran.get(doc["site"], 0) + sum(j["count"] for j in doc["jobs"])
    return ran


def test_kill_9_in_every_phase_then_resume(crashed: Crashed) -> None:
    run_id, run_dir, out = crashed.run_id, crashed.run_dir, crashed.out
    assert "recovered: phase backup of a CLI that is gone: interrupted" in out, out[-3000:]
    state = json.loads((run_dir / "state.json").read_text())
    assert {k: v["status"] for k, v in state["phases"].items()} == dict.fromkeys(
        PHASES, "done")
    # InfluxDB and the report hold exactly the iterations the runners counted.
    ran = ran_per_site(run_dir)
    assert set(ran) == {"core", "edge"} and all(n > 10 for n in ran.values()), ran
    counts = influx_counts(state["metrics_url"], run_id)
    assert counts == {(s, "core", "authenticate_and_validate_token"): n
                      for s, n in ran.items()}, (counts, ran)
    report = json.loads((run_dir / "report.json").read_text())
    assert {r["site"]: r["count"] for r in report["rows"]} == ran
    assert all(r["errors"] == 0 for r in report["rows"])
    print(f"after 7 kills and resumes: {counts}")

    # The backup the killed CLI did not write: complete, its checksum manifest verifies
    # (sha256sum -c on the unpacked archive), its points are the run's.
    from femdc_bench.backup import open_archive

    archive = Path(json.loads((run_dir / "manifest.json").read_text())["backup"]["path"])
    assert archive == run_dir / "backup" / f"{run_id}.backup.tar.gz"
    assert sorted(p.name for p in archive.parent.iterdir()) == [archive.name]  # no .part
    opened = open_archive(archive)
    assert opened.meta["points"]["api"] == sum(ran.values())
    unpacked = run_dir / "tmp" / "unpacked"
    unpacked.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(unpacked)], check=True)
    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"],
                           cwd=unpacked / run_id, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr
    assert check.stdout.count(": OK") == len(opened.members) - 1
    print(f"backup after the kill in it: {opened.meta['points']}, "
          f"{len(opened.members)} members verified")


# --------------------------------------------------------------- InfluxDB outages


def _influxd_pid(run_dir: Path) -> int:
    """The run's own influxd, as the run recorded it (and it is that process)."""
    d = LocalInfluxd(run_dir / "influxdb")
    pid = d.pid
    assert pid is not None, "the run's influxd is not running"
    assert str(d.config_path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    return pid


def _wait(what: str, ok: Any, proc: subprocess.Popen[str] | None = None,
          timeout: float = 600) -> None:
    t0 = time.monotonic()
    while not ok():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the CLI ended before {what}:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"no {what} in {timeout} s")
        time.sleep(0.05)


def _spooled(run_dir: Path) -> Counter[str]:
    spool = run_dir / "influx-spool.jsonl"
    lines = spool.read_text().splitlines() if spool.exists() else []
    return Counter(json.loads(x).split(",", 1)[0] for x in lines)


def _status_waiting(c: Crashed) -> int:
    """How many points wait, as `femdc-bench status RUN` says."""
    import re

    st = femdc(c.run_dir.parent, "status", c.run_id, check=True)
    m = re.search(r"InfluxDB spool: (\d+) points wait", st.stdout)
    assert m, st.stdout
    return int(m.group(1))


def _recorded(run_dir: Path) -> tuple[Counter[tuple[str, int, str]], dict[str, int]]:
    """The samples the agents recorded (host, iteration, action) and the sampler
    records by measurement: the point's files."""
    from femdc_bench.rundir import read_jsonl
    from femdc_bench.workload.sink import iter_samples

    samples = Counter((s.host, s.iteration, s.action)
                      for f in sorted((run_dir / "samples" / "p0").glob("*.jsonl"))
                      for s in iter_samples(str(f)))
    sampled = Counter(r["m"] for f in (run_dir / "metrics" / "p0").glob("*.jsonl")
                      for r in read_jsonl(f) if r.get("m") in SAMPLED)
    return samples, dict(sampled)


def _assert_stored_once(c: Crashed, label: str) -> None:
    """InfluxDB (started for this if the run left it stopped) holds every sample the
    agents recorded once, as many as their runners counted, and every sampler record."""
    ran = ran_per_site(c.run_dir)
    samples, sampled = _recorded(c.run_dir)
    assert sum(ran.values()) == sum(samples.values()) and max(samples.values()) == 1
    d = LocalInfluxd(c.run_dir / "influxdb")
    started = not d.is_running()
    url = d.start()
    try:
        counts = influx_counts(url, c.run_id)
        assert counts == {(s, "core", "authenticate_and_validate_token"): n
                          for s, n in ran.items()}, (counts, ran)
        with connect(InfluxTarget(url=url)) as client:
            rows = list(client.rows(API, {"run": c.run_id, "point": "p0"}))
            got = Counter((r["host"], int(r["iteration"]), r.get("action") or "")
                          for r in rows)
            assert got == samples  # each recorded sample once: none doubled, none missing
            stored = {m: n for m in SAMPLED
                      if (n := len(list(client.rows(m, {"run": c.run_id, "point": "p0"}))))}
        assert stored == sampled, (stored, sampled)
    finally:
        if started:
            d.stop()
    print(f"{label}: after: InfluxDB holds {dict(counts)} api points, sampled {stored}")


def test_influxd_killed_during_the_load_loses_nothing(crashed: Crashed) -> None:
    """SIGKILL of the run's influxd while the agents load Keystone: the bench stores its
    points into the spool and ends well; `status` counts them; the report (the next
    write) restarts influxd and sends them."""
    c = crashed
    start = c.run_dir / "samples" / "p0" / "start.json"
    held = c.run_dir / "tmp" / "hold-stored"
    t0 = time.monotonic()
    since = time.time()
    proc = _start(env_with_holds(c.env, ["stored"]), "bench", c.run_id)
    try:
        _wait("load", lambda: _status(c.run_dir, "bench@p0") == "running"
              and _newer(start, since), proc)
        start_ns = json.loads(start.read_text())["start_ns"]
        time.sleep(max(0.0, (start_ns - time.time_ns()) / 1e9) + 3)  # mid-load
        assert _status(c.run_dir, "bench@p0") == "running" and not held.exists()
        os.kill(_influxd_pid(c.run_dir), signal.SIGKILL)
        _wait("bench's end (held after it stored)", held.exists, proc)
        assert _status(c.run_dir, "bench@p0") == "done"
        samples, sampled = _recorded(c.run_dir)
        spooled = _spooled(c.run_dir)
        waiting = _status_waiting(c)
        assert waiting == sum(spooled.values())
        assert spooled[API] == sum(samples.values()) > 0
        assert {m: spooled[m] for m in sampled} == sampled
        print(f"\ninfluxd killed during the load: before: the agents recorded "
              f"{ran_per_site(c.run_dir)} samples; {waiting} points wait "
              f"({dict(spooled)})")
        held.unlink()
        out = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-4000:]
    assert f"InfluxDB away: {waiting} points of {c.run_id} wait" in out, out[-3000:]
    assert _status_waiting(c) == 0  # the report sent them
    _assert_stored_once(c, "influxd killed during the load")
    print(f"influxd killed during the load: {time.monotonic() - t0:.0f} s")


def test_influxd_killed_during_the_store_step_loses_nothing(
        crashed: Crashed, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the load, the bench connected to store its samples, then its influxd is
    killed (the test hold `store` is that window): the first batch fails, every point
    goes to the spool and the bench ends well; `femdc-bench store` sends them."""
    from femdc_bench.bench import controller as bench_controller
    from femdc_bench.rundir import Run

    c = crashed
    t0 = time.monotonic()
    held = c.run_dir / "tmp" / "hold-store"
    r = Run.open(c.run_id, c.run_dir.parent)
    holds.install(["store"], monkeypatch)
    with ThreadPoolExecutor(1) as pool:  # the bench phase, in this process
        bench = pool.submit(bench_controller.bench, r, "p0")
        _wait("store step", lambda: held.exists() or bench.done())
        if bench.done():
            pytest.fail(f"the bench ended before its store step: {bench.result()}")
        os.kill(_influxd_pid(c.run_dir), signal.SIGKILL)
        held.unlink()
        n = bench.result(timeout=600)
    monkeypatch.undo()
    assert json.loads((c.run_dir / "state.json").read_text())[
        "phases"]["bench@p0"]["status"] == "done"
    samples, sampled = _recorded(c.run_dir)
    spooled = _spooled(c.run_dir)
    waiting = _status_waiting(c)
    assert n == sum(samples.values()) == spooled[API] > 0
    assert {m: spooled[m] for m in sampled} == sampled
    assert waiting == sum(spooled.values())
    print(f"\ninfluxd killed during the store step: before: the agents recorded "
          f"{ran_per_site(c.run_dir)} samples; {waiting} points wait ({dict(spooled)})")
    st = femdc(c.run_dir.parent, "store", c.run_id, check=True)
    assert f"spooled: {waiting} points" in st.stdout and f"api@p0: {n} points" in st.stdout
    assert _status_waiting(c) == 0
    _assert_stored_once(c, "influxd killed during the store step")
    print(f"influxd killed during the store step: {time.monotonic() - t0:.0f} s")


def test_kill_9_during_a_bench_then_destroy_leaves_nothing(crashed: Crashed) -> None:
    """A bench killed during its load, then destroy: nothing is left."""
    run_id, run_dir, env = crashed.run_id, crashed.run_dir, crashed.env
    start = run_dir / "samples" / "p0" / "start.json"
    proc = _start(env, "bench", run_id)
    kill_during(proc, run_dir, "bench@p0", ready=start)
    # the load agents are children of each load host's bench daemon (same command line)
    agents = subprocess.run(["pgrep", "-f", f"workload.host_daemon.*/runs/{run_id}/"],
                            capture_output=True, text=True).stdout.split()
    print(f"killed during a second bench: {len(agents)} bench daemon and agent "
          "process(es) run")
    assert agents  # the daemons at least: destroy must end them
    d = subprocess.run([*CLI, "destroy", run_id], env=env, text=True,
                       capture_output=True, timeout=600)
    assert d.returncode == 0, why(d)
    assert "a CLI that is gone" in d.stdout + d.stderr, d.stdout + d.stderr
    assert leftovers(run_dir) == []
    assert not [p for p in agents if Path(f"/proc/{p}").exists()]
