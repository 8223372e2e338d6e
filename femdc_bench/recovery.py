"""Crash recovery: a run whose CLI died (kill -9, a crash, the OOM killer) has its
leftovers ended (orphaned ansible and ssh, load agents and samplers, faults in place)
before it goes on or away; and Ctrl-C, which keeps what the load measured."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from femdc_bench.ansible import control_dir
from femdc_bench.bench.controller import stop_bench
from femdc_bench.faults import undo_faults
from femdc_bench.metrics.store import store_metrics, store_samples
from femdc_bench.metrics.target import metrics_target
from femdc_bench.rundir import Progress, Run, log, noop


def _cli_alive(pid: int | None) -> bool:
    """Whether `pid` is still a femdc-bench CLI (not a dead one's reused PID)."""
    if pid is None:
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"femdc" in cmd and b"\0" in cmd


def _orphans(run: Run) -> list[int]:
    """Controller processes a dead CLI of this run left behind: its ansible-playbook
    runs (their inventory is the run's) and their ssh clients (the run's control path).
    Not the run's InfluxDB, nor the sshds of its hosts."""
    needles = (f"{run.dir}/ansible/".encode(), str(control_dir(run.dir)).encode())
    mine, pid = set(), os.getpid()
    while pid > 1:  # this process and its ancestors (pytest, a shell)
        mine.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in mine:
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if any(n in cmd for n in needles):
                out.append(int(entry))
    return out


def recover(run: Run, progress: Progress = noop) -> list[str]:
    """A run whose CLI died (kill -9, a crash, the OOM killer) left a phase `running` and
    maybe work going on: ansible-playbook and ssh on the controller, load agents and
    samplers on the hosts, faults in place. End all of it before the run goes on
    (`run --resume`) or away (`destroy`); the phase becomes `interrupted` (a later run
    does it again: each phase is idempotent, a bench replaces its point's samples).
    Returns what was done, one line each."""
    import signal

    stale = [n for n, ph in run.state.phases.items()
             if ph.status == "running" and not _cli_alive(ph.pid)]
    if not stale:
        return []
    done = [f"phase {', '.join(stale)} of a CLI that is gone: interrupted"]
    orphans = _orphans(run)
    if orphans:
        done.append(f"ended {len(orphans)} process(es) it left on this machine "
                    "(ansible-playbook, ssh)")
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while orphans and time.monotonic() < deadline:
        orphans = [p for p in orphans if Path(f"/proc/{p}").exists()
                   and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1][:3]]
        time.sleep(0.1)
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for name in stale:
        ph = run.state.phases[name]
        ph.status, ph.error = "interrupted", "its CLI died"
        run.event("phase", name, "interrupted (its CLI died)")
    run.state.status = "interrupted"
    run.save()
    benches = [n.split("@", 1)[1] for n in stale if n.startswith("bench@")]
    if benches and (run.dir / "inventory.json").exists():
        exp, inv = run.experiment(), run.inventory()
        for point in benches:
            progress(f"stopping the load of {point} left on the hosts")
            done += stop_bench(run, inv, point)
            done.append(f"stopped the load agents and samplers of {point}")
        if exp.workload.faults:
            progress("undoing the faults it may have left")
            done += undo_faults(run, exp, inv)
    return done


def interrupt(run: Run) -> None:
    """Ctrl-C: stop the agents and keep what they measured (the pipeline then tears
    down unless asked to keep the deployment)."""
    exp = run.experiment()
    point = run.state.current_point or "p0"
    ph = run.state.phases.get(f"bench@{point}")
    if ph and ph.status in ("running", "interrupted") and (run.dir / "inventory.json").exists():
        try:
            for w in stop_bench(run, run.inventory(), point):
                log.warning("after the interrupt: %s", w)
            target, _ = metrics_target(run, exp)
            store_samples(run, exp, target, point)
            store_metrics(run, exp, target, point)
        except Exception as e:  # noqa: BLE001 - best effort, the teardown must still run
            log.warning("could not collect samples after the interrupt: %s", e)
    run.state.status = "interrupted"
    run.save()

