"""The workload agent: runs one host's jobs and streams Samples to a JSONL file.

Runs on the hosts, inside the service venv (stdlib + keystoneauth1 + requests)::

    PYTHONPATH=<copy of femdc_bench's parent> <venv>/bin/python -m femdc_bench.workload.agent \\
        --spec SPEC.json --out SAMPLES.jsonl [--pidfile P] [--verbose]

SPEC.json is described in femdc_bench/workload/spec.py. Jobs run one after the other;
for each: authenticate the admin and resolve the endpoints of the scenario's services,
Rally's users/roles contexts if the job has them (task_contexts.py), scenario setup
(untimed), the load (timed per iteration and per atomic action by the
runner), teardown (untimed, always).

--start-file GO: once the first job is set up (or could not be), the agent writes
GO.ready and waits for GO to hold a start time (ns since the epoch), then sleeps until it:
the controller hands the same time to every load host, so that all sites start at once
and faults are timed from the real start of the load.

SIGTERM/SIGINT: no new iteration starts, in-flight iterations finish, teardown runs, the
JSONL file is flushed and closed, later jobs are skipped. A second signal stops waiting
for in-flight iterations (teardown still runs).

stdout: one JSON summary at the end: {"site", "host", "interrupted", "jobs": [{"index",
"scenario", "target_site", "count", "errors", "action_samples", "wall_s", "load_s",
"iterations_per_s", "stopped", "setup_error", "teardown_errors", ...}]}. `count` and
`errors` are iterations; atomic-action samples are only counted in `action_samples`.

Exit status: 0 when the load ran (failed iterations included: the SLA verdict is the
controller's); 2 bad spec or arguments; 3 a job could not run (authentication, catalog or
setup failed: the other jobs still ran); 4 samples could not be written. Errors are one
line on stderr; credentials are never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

from femdc_bench.workload import task_contexts
from femdc_bench.workload.registry import REGISTRY, Registry, Scenario
from femdc_bench.workload.runner import LoadResult, SampleTemplate, describe_error, run_load
from femdc_bench.workload.sink import JsonlSink
from femdc_bench.workload.sla import evaluate_counts
from femdc_bench.workload.spec import AgentSpec, JobSpec, SpecError

PROG = "femdc-bench-agent"
EXIT_OK, EXIT_SPEC, EXIT_SETUP, EXIT_SINK = 0, 2, 3, 4

log = logging.getLogger("femdc_bench.workload")


@dataclass
class JobSummary:
    index: int
    scenario: str
    target_site: str
    count: int = 0  # iterations
    errors: int = 0
    action_samples: int = 0  # atomic-action samples besides the iterations' own
    wall_s: float = 0.0
    load_s: float = 0.0
    iterations_per_s: float = 0.0
    stopped: bool = False
    skipped: bool = False
    setup_error: str = ""
    teardown_errors: list[str] = field(default_factory=list)
    worker_failures: list[str] = field(default_factory=list)
    abandoned_workers: int = 0
    sla_local: dict[str, Any] = field(default_factory=dict)  # this agent's share only


class Stopper:
    """SIGTERM/SIGINT handling: first signal -> stop, second -> force."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.force = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.force.set()
        self.stop.set()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self)
        signal.signal(signal.SIGINT, self)


class Barrier(Protocol):
    """The common start of all load hosts: `announce()` tells the controller this agent
    is at the barrier (or gave up); `arrive()` announces, then waits for the start."""

    def announce(self) -> None: ...

    def arrive(self) -> None: ...


class StartSignal:
    """The common start of all load hosts (see --start-file): `arrive()` once, idempotent."""

    POLL_S = 0.05

    def __init__(self, path: str | None, stop: threading.Event, timeout_s: float = 3600) -> None:
        self.path, self.stop, self.timeout_s = path, stop, timeout_s
        self.arrived = False
        self.late_s = 0.0

    def announce(self) -> None:
        """Tell the controller this agent is at the barrier (or gave up)."""
        if self.path is None or self.arrived:
            return
        self.arrived = True
        tmp = f"{self.path}.ready.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, f"{self.path}.ready")

    def arrive(self) -> None:
        if self.path is None or self.arrived:
            return
        self.announce()
        deadline = time.monotonic() + self.timeout_s
        start_ns = None
        while start_ns is None and not self.stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError), open(self.path, encoding="utf-8") as f:
                start_ns = int(f.read().strip())
            if start_ns is None:
                self.stop.wait(self.POLL_S)
        if start_ns is None:
            log.warning("no start signal in %s: starting now", self.path)
            return
        wait_s = (start_ns - time.time_ns()) / 1e9
        if wait_s > 0:
            self.stop.wait(wait_s)
        else:
            self.late_s = -wait_s
            log.warning("start signal came %.3f s late", self.late_s)


def run_job(
    index: int,
    job: JobSpec,
    sc: Scenario,
    spec: AgentSpec,
    sink: JsonlSink,
    stopper: Stopper,
    start: Barrier | None = None,
    auth_cache: Any = None,
) -> JobSummary:
    from femdc_bench.workload.context import JobContext  # keystoneauth1: hosts only

    summary = JobSummary(index=index, scenario=job.scenario, target_site=job.target_site)
    jc: JobContext | None = None
    try:
        try:
            jc = JobContext(job)
            jc.args = sc.resolve_args(job.args)
            if sc.openstack or job.contexts:
                jc.open(sc.services, cache=auth_cache)
            jc.users = task_contexts.setup(jc, job.contexts)  # Rally's users/roles
            if sc.setup is not None:
                sc.setup(jc)
            workers = [jc.worker(n) for n in range(job.runner.concurrency)]
        except Exception as e:  # noqa: BLE001 - one line, job marked as not run
            summary.setup_error = _one_line(e)
            return summary
        if start is not None:
            start.arrive()
        if stopper.stop.is_set():
            summary.skipped = True
            return summary
        log.info("job %d %s -> %s: load starts", index, job.scenario, job.target_site)
        result = run_load(
            sc.run,
            workers,
            job.runner,
            template=SampleTemplate(
                site=spec.site,
                target_site=job.target_site,
                service=sc.service,
                operation=sc.operation,
                host=spec.host,
                workload=job.workload,
            ),
            emit=sink.emit,
            stop=stopper.stop,
            force=stopper.force,
        )
        sink.flush()
        _fill(summary, result, job)
        log.info(
            "job %d: %d iterations, %d errors, %.1f s",
            index,
            result.count,
            result.errors,
            result.wall_s,
        )
        return summary
    finally:
        if jc is not None:
            if sc.teardown is not None and jc.identity is not None:
                try:
                    errs = sc.teardown(jc)
                    if isinstance(errs, list):
                        summary.teardown_errors.extend(str(x) for x in errs)
                except Exception as e:  # noqa: BLE001
                    summary.teardown_errors.append(describe_error(e))
            if jc.identity is not None:  # what contexts made (and anything left): gone
                try:
                    summary.teardown_errors.extend(jc.delete_tracked())
                except Exception as e:  # noqa: BLE001
                    summary.teardown_errors.append(describe_error(e))
            jc.close()


def _fill(summary: JobSummary, r: LoadResult, job: JobSpec) -> None:
    summary.count = r.count
    summary.errors = r.errors
    summary.action_samples = r.action_samples
    summary.wall_s = round(r.wall_s, 6)
    summary.load_s = round(r.load_s, 6)
    summary.iterations_per_s = round(r.iterations_per_s, 3)
    summary.stopped = r.stopped
    summary.worker_failures = r.worker_failures
    summary.abandoned_workers = r.abandoned_workers
    v = evaluate_counts(job.sla, count=r.count, errors=r.errors, ok_durations_ms=r.ok_durations_ms)
    summary.sla_local = {
        "passed": v.passed,
        "failure_rate_pct": round(v.failure_rate_pct, 3),
        "p95_ms": None if v.p95_ms is None else round(v.p95_ms, 3),
        "reasons": list(v.reasons),
    }


def _one_line(e: BaseException) -> str:
    from femdc_bench.workload.context import SetupError

    if isinstance(e, SetupError):
        return " ".join(str(e).split())[:500]
    return describe_error(e)


def _error(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description="Run workload jobs, write Samples.")
    p.add_argument("--spec", required=True, help="SPEC.json (see femdc_bench/workload/spec.py)")
    p.add_argument("--out", required=True, help="SAMPLES.jsonl to write (truncated)")
    p.add_argument("--pidfile", help="write the agent's PID here (removed at exit)")
    p.add_argument("--start-file", help="wait for a common start time in this file "
                   "(GO.ready is written when ready)")
    p.add_argument("--verbose", "-v", action="store_true", help="log progress on stderr")
    return p.parse_args(argv)


def load_spec(path: str, registry: Registry) -> AgentSpec:
    return check_spec(AgentSpec.read(path), registry)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    import femdc_bench.workload.scenarios  # noqa: F401  (registers the scenarios)

    stopper = Stopper()
    stopper.install()
    start = StartSignal(args.start_file, stopper.stop)
    try:
        spec = load_spec(args.spec, REGISTRY)
    except SpecError as e:
        _error(f"bad spec {args.spec}: {e}")
        with contextlib.suppress(OSError):
            start.announce()
        return EXIT_SPEC
    if args.pidfile:
        with open(args.pidfile, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    try:
        code, summary = run_spec(spec, args.out, stopper, start)
        if summary is not None:
            print(json.dumps(summary, sort_keys=True), flush=True)
        return code
    finally:
        with contextlib.suppress(OSError):
            start.announce()  # never leave the other hosts waiting for this one
        if args.pidfile:
            with contextlib.suppress(OSError):
                os.unlink(args.pidfile)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # keystoneauth1 logs request bodies (passwords) at DEBUG: never let it
    logging.getLogger("keystoneauth").setLevel(logging.WARNING)


def check_spec(spec: AgentSpec, registry: Registry) -> AgentSpec:
    """Every job names a known scenario with arguments it accepts (SpecError if not)."""
    for i, job in enumerate(spec.jobs):
        if job.scenario not in registry:
            known = ", ".join(registry.names())
            raise SpecError(
                f"$.jobs[{i}].scenario: unknown scenario {job.scenario!r} (known: {known})"
            )
        try:
            registry.get(job.scenario).resolve_args(job.args)
        except ValueError as e:
            raise SpecError(f"$.jobs[{i}].args: {e}") from None
    return spec


def run_spec(spec: AgentSpec, out_path: str, stopper: Stopper, start: Barrier | None,
             error: Callable[[str], None] | None = None, auth_cache: Any = None
             ) -> tuple[int, dict[str, Any] | None]:
    """Run a checked spec's jobs, samples to `out_path`: (exit status, summary). `start`
    is the common start (anything with arrive()/announce(): StartSignal, or the bench
    session's barrier in host_session.py); `error` gets each one-line error (default: stderr);
    `auth_cache`: the bench daemon's tokens and endpoints (JobContext.open).
    The summary is None when the samples file could not be opened."""
    error = error or _error
    try:
        sink = JsonlSink(out_path)
    except OSError as e:
        error(f"cannot write {out_path}: {e.strerror}")
        return EXIT_SINK, None
    summaries: list[JobSummary] = []
    try:
        with sink:
            for i, job in enumerate(spec.jobs):
                sc = REGISTRY.get(job.scenario)
                if stopper.stop.is_set():
                    summaries.append(JobSummary(i, job.scenario, job.target_site, skipped=True))
                    continue
                summaries.append(run_job(i, job, sc, spec, sink, stopper, start, auth_cache))
                if summaries[-1].worker_failures:
                    break  # the samples cannot be written: stop here
    except OSError as e:
        error(f"cannot write {out_path}: {e.strerror}")
        return EXIT_SINK, None
    out = {
        "site": spec.site,
        "host": spec.host,
        "interrupted": stopper.stop.is_set(),
        "samples": sink.written,
        "jobs": [vars(s) for s in summaries],
    }
    code = EXIT_OK
    for s in summaries:
        if s.setup_error:
            error(f"job {s.index} ({s.scenario} -> {s.target_site}): {s.setup_error}")
            code = EXIT_SETUP
    for s in summaries:
        if s.worker_failures:
            error(f"job {s.index}: {s.worker_failures[0]}")
            code = EXIT_SINK
    return code, out


if __name__ == "__main__":
    sys.exit(main())
