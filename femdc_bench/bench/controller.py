"""The bench phase of a run, on the controller: the point's earlier points cleared, the
hosts' work planned (bench/plan.py) and run through their bench daemons
(bench/hosts.py), faults beside the load, then everything stored. Also the daemons
warmed at the end of deploy, and what a bench left on the hosts stopped."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from femdc_bench import ship
from femdc_bench.ansible import control_dir
from femdc_bench.bench import hosts as bench_hosts
from femdc_bench.bench.plan import agent_specs, agent_timeout, sampler_confs
from femdc_bench.clocks import record_clocks
from femdc_bench.faults import FaultInjector
from femdc_bench.metrics.store import (
    replace_point,
    store_events,
    store_metrics,
    store_samples,
)
from femdc_bench.metrics.target import metrics_target
from femdc_bench.model import Clouds, Inventory
from femdc_bench.rundir import Progress, Run, RunError, log, noop, run_tag


def build_agent_zip(path: Path) -> Path:
    """The subset of femdc_bench the hosts need: model + workload (stdlib + keystoneauth1)."""
    pkg = ship.PACKAGE
    workload = sorted(str(f.relative_to(pkg)) for f in (pkg / "workload").rglob("*.py"))
    return ship.package_zip(path, ["__init__.py", "catalog.py", "model.py", *workload,
                                   "metrics/__init__.py", "metrics/sampler.py"])


def bench(run: Run, point: str = "p0", progress: Progress = noop,
          only_from: Sequence[str] | None = None) -> int:
    """Run the workload from every site (or `only_from`) at one sweep point; every
    iteration to InfluxDB.

    Re-running a point replaces its samples (files and InfluxDB points).
    """
    import json

    exp, inv, clouds = run.experiment(), run.inventory(), run.clouds()
    sp = exp.point(point)
    admin = json.loads(Path(clouds.secrets_file).read_text())["admin"]
    run.state.current_point = point
    with run.phase(f"bench@{point}"):
        phase_ns, t_phase = time.time_ns(), time.monotonic()
        progress("starting InfluxDB")
        target, _ = metrics_target(run, exp)
        # The point's earlier points leave InfluxDB beside the hosts' setup; the load
        # starts only once that worked (InfluxDB not there, or refusing us: no load).
        clear = _Background(lambda: _clear_point(run, target, point))
        specs = agent_specs(exp, inv, clouds, admin, f"femdc-{run_tag(run)}-", only_from)
        if not specs:
            raise RunError(f"no load host runs anything at {point}"
                           + (f" from {', '.join(only_from)}" if only_from else ""))
        samples_dir = run.samples_dir(point)
        for old in samples_dir.glob("*"):
            old.unlink()
        progress(f"load from {len(specs)} host(s) at {point} ({sp.label()})")
        metrics_dir = run.metrics_dir(point)
        for old in metrics_dir.glob("*.jsonl"):
            old.unlink()
        faults = FaultInjector(run, exp, inv, point) if exp.workload.faults else None
        if faults:
            faults.start(samples_dir / "start.json")
        timeout = agent_timeout(exp)
        confs = sampler_confs(exp, inv, run.id, timeout + 60)
        work = [bench_hosts.HostWork(h, spec=specs[h.alias].to_dict() if h.alias in specs
                                  else None, sampler=confs.get(h.alias))
                for h in inv.hosts if h.alias in specs or h.alias in confs]
        prepare_s = time.monotonic() - t_phase

        def on_start(start_ns: int, margin_s: float, timings: dict[str, Any]) -> None:
            timings = {"phase_start_ns": phase_ns, "prepare_s": round(prepare_s, 3),
                       "influx_clear_s": clear.seconds, **timings,
                       "first_iteration_after_phase_s": round((start_ns - phase_ns) / 1e9, 3)}
            (samples_dir / "start.json").write_text(
                json.dumps({"start_ns": start_ns, "timings": timings}))
            log.info("bench@%s: the load starts %.3f s after the phase began (margin %.3f s)",
                     point, (start_ns - phase_ns) / 1e9, margin_s)

        try:
            bench_hosts.run_bench(
                work, python=clouds.agent_python, samples_dir=samples_dir,
                zip_path=build_agent_zip(run.dir / "tmp" / "femdc_agent.zip"),
                metrics_dir=metrics_dir, control_dir=control_dir(run.dir), timeout_s=timeout,
                on_start=on_start, before_go=clear.result, epoch=deploy_epoch(run),
                progress=lambda m: progress(f"bench {point}: {m}"))
        finally:
            if faults:
                faults.stop()
        n = store_samples(run, exp, target, point)
        m = store_metrics(run, exp, target, point)
        store_events(run, exp, target)
        if faults:
            faults.store(target)
        record_clocks(run, inv, f"bench@{point}")
        progress(f"{n} samples stored, {m} service and host samples")
    return n


def deploy_epoch(run: Run) -> str:
    """What changes whenever the run's services are deployed again (the deploy's marker
    and the clouds file, contents and times): the bench daemons keep a Keystone token
    and the endpoints between benches of one epoch only."""
    h = hashlib.sha256()
    for name in ("deploy.digest", "clouds.json"):
        f = run.dir / name
        with contextlib.suppress(OSError):
            h.update(f"{name}\0{f.stat().st_mtime_ns}\0".encode() + f.read_bytes())
    return h.hexdigest()[:16]


class _Background:
    """A call on a thread; `result()` waits for it and raises what it raised."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.seconds: float | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], None]) -> None:
        t0 = time.monotonic()
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - given to result()
            self._error = e
        self.seconds = round(time.monotonic() - t0, 3)

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _clear_point(run: Run, target: Any, point: str) -> None:
    """The point's earlier points out of InfluxDB before it is benched again, after
    what waits in the spool (replace_point)."""
    from femdc_bench.metrics.client import InfluxError, connect

    try:
        with connect(target) as client:
            replace_point(run, client, point)
    except InfluxError as e:
        raise RunError(f"InfluxDB {target.url} before the load at {point}: {e}") from e


def stop_bench(run: Run, inv: Inventory, point: str | None = None, *,
               daemon: bool = False) -> list[str]:
    """Stop what a bench left on the hosts (bench/hosts.py stop_hosts: load agents, samplers,
    `daemon`: the bench daemons too) and, for `point`, fetch what they recorded into
    the point's samples and metrics. One line per host that could not be reached."""
    try:
        return bench_hosts.stop_hosts(
            list(inv.hosts), zip_path=build_agent_zip(run.dir / "tmp" / "femdc_agent.zip"),
            control_dir=control_dir(run.dir),
            samples_dir=run.samples_dir(point) if point else None,
            metrics_dir=run.metrics_dir(point) if point else None, daemon=daemon)
    except OSError as e:
        return [f"bench processes on the hosts not stopped: {e}"]


def warm_bench(run: Run, inv: Inventory, clouds: Clouds) -> None:
    """The bench daemon started on every load host (end of deploy), so that the first
    bench does not wait for its imports. A failure is a warning: a bench starts it."""
    hosts = list(inv.with_role("load"))
    if not hosts:
        return
    try:
        done, errors = bench_hosts.warm(
            hosts, python=clouds.agent_python, control_dir=control_dir(run.dir),
            zip_path=build_agent_zip(run.dir / "tmp" / "femdc_agent.zip"))
    except OSError as e:
        done, errors = {}, [str(e)]
    log.info("bench daemons: %s", ", ".join(f"{a} {how}" for a, how in sorted(done.items())))
    for e in errors:
        log.warning("bench daemon not started (a bench will start it): %s", e)

