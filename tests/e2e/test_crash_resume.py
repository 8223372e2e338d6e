"""kill -9 of the CLI in every phase, then `run --resume` (issue 10, item 1): one run is
killed while each of its phases runs in turn (up, deploy, emulate, check, bench, report),
each time resumed; it finishes with every iteration stored once (the counts the runners
were asked for, per site, in InfluxDB and in the report: none duplicated, none missing).
Then a bench killed during its load, and `destroy`: nothing of the run is left (no
namespace, link, process: the orphaned ansible-playbook, the load agents).

Real parts only: namespaces, sshd, ansible, MariaDB, Keystone, InfluxDB, the userspace
WAN emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_local_run import (
    CLI,
    influx_counts,
    keystone_two_sites,
    leftovers,
    why,
    write_experiment,
)

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
                ready: Path | None = None, timeout: float = 900) -> str:
    """kill -9 the CLI once `phase` runs (and `ready` was written since the CLI started:
    the load's start file); its output."""
    t0, since = time.monotonic(), time.time()
    while _status(run_dir, phase) != "running" or (ready is not None
                                                     and not _newer(ready, since)):
        if proc.poll() is not None:
            pytest.fail(f"the CLI ended before {phase} ran:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"{phase} did not start in {timeout} s")
        time.sleep(0.01)
    if ready is not None:
        time.sleep(3)  # in the middle of the load
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.stdout.read()


def test_kill_9_in_every_phase_then_resume(tmp_path: Path, results: Path) -> None:
    exp = write_experiment(tmp_path / "crash.yaml", experiment())
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    run_id = "e2e-crash"
    run_dir = results / run_id
    try:
        proc = _start(env, "run", str(exp), "--keep", "--run-id", run_id)
        start = run_dir / "samples" / "p0" / "start.json"
        for phase in ("up", "deploy", "emulate@p0", "check@p0", "bench@p0", "report"):
            kill_during(proc, run_dir, phase, ready=start if phase == "bench@p0" else None)
            assert _status(run_dir, phase) == "running"  # as the dead CLI left it
            print(f"\nkilled during {phase}")
            if phase == "bench@p0":
                samples = sum(len(f.read_text().splitlines())
                              for f in (run_dir / "samples" / "p0").glob("*.jsonl"))
                print(f"samples on the controller at the kill: {samples}")
            proc = _start(env, "run", "--resume", run_id, "--keep")
        out = proc.communicate(timeout=1200)[0]
        assert proc.returncode == 0, out[-4000:]
        assert "recovered: phase report of a CLI that is gone: interrupted" in out, out[-3000:]
        state = json.loads((run_dir / "state.json").read_text())
        assert {k: v["status"] for k, v in state["phases"].items()} == {
            "up": "done", "deploy": "done", "emulate@p0": "done", "check@p0": "done",
            "bench@p0": "done", "report": "done", "backup": "done"}
        # What each load host's runner counted itself, once per site: InfluxDB and the
        # report hold exactly those iterations.
        ran = {}
        for f in (run_dir / "samples" / "p0").glob("*.summary.json"):
            doc = json.loads(f.read_text())
            assert not doc["interrupted"]
            ran[doc["site"]] = sum(j["count"] for j in doc["jobs"])
        assert set(ran) == {"core", "edge"} and all(n > 10 for n in ran.values()), ran
        counts = influx_counts(state["metrics_url"], run_id)
        assert counts == {(s, "core", "authenticate_and_validate_token"): n
                          for s, n in ran.items()}, (counts, ran)
        report = json.loads((run_dir / "report.json").read_text())
        assert {r["site"]: r["count"] for r in report["rows"]} == ran
        assert all(r["errors"] == 0 for r in report["rows"])
        print(f"after 6 kills and resumes: {counts}")

        # A bench killed during its load, then destroy: nothing is left.
        proc = _start(env, "bench", run_id)
        kill_during(proc, run_dir, "bench@p0", ready=start)
        # the load agents are children of each load host's bench daemon (same command line)
        agents = subprocess.run(["pgrep", "-f", f"workload.benchd.*/runs/{run_id}/"],
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
    finally:
        if (run_dir / "provider" / "state.json").exists():
            subprocess.run([*CLI, "destroy", run_id], env=env, capture_output=True,
                           timeout=600)
