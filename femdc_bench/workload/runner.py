"""The one runner: the only place in femdc-bench that times an operation.

`run_load` calls a scenario function over `concurrency` worker threads, each with its own
pre-built context (a keystoneauth1 Session per worker on hosts: keep-alive, no re-auth):

- ``times``: N iterations in total, handed out one by one to whichever worker is free;
- ``duration``: every worker loops until the deadline (iterations started before it finish).

Each iteration is timed with ``time.perf_counter_ns`` (monotonic) and stamped with
``time.time_ns`` at its start. A failing iteration becomes a Sample with status "error"
and the error's text; it never stops the load. Setting `stop` ends the load promptly:
workers start no new iteration, in-flight ones finish. Setting `force` as well makes
`run_load` return without waiting for in-flight iterations (their workers are daemon
threads and are reported as abandoned).

Standard library and femdc_bench.model only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from femdc_bench.model import RunnerSpec, Sample

C = TypeVar("C")

ERROR_MAX_CHARS = 500


@dataclass(frozen=True)
class SampleTemplate:
    """The fields every Sample of a job shares."""

    site: str
    target_site: str
    service: str
    operation: str
    host: str = ""


@dataclass
class LoadResult:
    count: int = 0  # iterations recorded (ok + error)
    errors: int = 0
    wall_s: float = 0.0  # from starting the workers to the last one ending (monotonic)
    load_s: float = 0.0  # first iteration start to last iteration end, as Rally's load_duration
    stopped: bool = False  # the stop event ended the load early
    abandoned_workers: int = 0  # still in an iteration when `force` made us return
    worker_failures: list[str] = field(default_factory=list)  # e.g. the sample sink failed
    ok_durations_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def iterations_per_s(self) -> float:
        return self.count / self.load_s if self.load_s > 0 else 0.0


def describe_error(exc: BaseException, limit: int = ERROR_MAX_CHARS) -> str:
    """'<ExceptionClass> (HTTP <status>): <message>', at most `limit` characters."""
    name = type(exc).__name__
    msg = " ".join(str(exc).split())  # one line
    status = getattr(exc, "http_status", None) or getattr(exc, "status_code", None)
    if isinstance(status, int) and status > 0 and f"HTTP {status}" not in msg:
        text = f"{name} (HTTP {status}): {msg}" if msg else f"{name} (HTTP {status})"
    else:
        text = f"{name}: {msg}" if msg else name
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


@dataclass
class _WorkerStats:
    count: int = 0
    errors: int = 0
    first_t0_ns: int | None = None
    last_end_ns: int | None = None
    ok_durations_ms: list[float] = field(default_factory=list)
    failure: str = ""


def run_load(
    fn: Callable[[C], Any],
    contexts: Sequence[C],
    runner: RunnerSpec,
    *,
    template: SampleTemplate,
    emit: Callable[[Sample], None],
    stop: threading.Event | None = None,
    force: threading.Event | None = None,
    poll_s: float = 0.1,
) -> LoadResult:
    """Run `fn(ctx)` per `runner` over one thread per context; return the counts.

    `len(contexts)` must equal `runner.concurrency`. `emit` receives every Sample (from
    the worker threads: it must be thread-safe).
    """
    if len(contexts) != runner.concurrency:
        raise ValueError(f"{len(contexts)} contexts for concurrency {runner.concurrency}")
    if runner.type == "times":
        if runner.times is None or runner.times < 0:
            raise ValueError("runner 'times' needs times >= 0")
        limit: int | None = runner.times
        duration_ns: int | None = None
    elif runner.type == "duration":
        if runner.duration_s is None or runner.duration_s <= 0:
            raise ValueError("runner 'duration' needs duration_s > 0")
        limit = None
        duration_ns = int(runner.duration_s * 1e9)
    else:
        raise ValueError(f"unknown runner type {runner.type!r}")
    stop = stop or threading.Event()
    force = force or threading.Event()
    halt = threading.Event()  # a worker failed outside the scenario: end the load

    lock = threading.Lock()
    next_index = 0
    deadline_ns = 0  # set just before the workers start

    stopped_early = False

    def claim() -> int | None:
        nonlocal next_index, stopped_early
        if halt.is_set():
            return None
        if stop.is_set():
            if (limit is None or next_index < limit) and (
                duration_ns is None or time.perf_counter_ns() < deadline_ns
            ):
                stopped_early = True
            return None
        if duration_ns is not None and time.perf_counter_ns() >= deadline_ns:
            return None
        with lock:
            if limit is not None and next_index >= limit:
                return None
            i = next_index
            next_index += 1
            return i

    perf = time.perf_counter_ns
    wall = time.time_ns
    site, target, service, op, host = (
        template.site,
        template.target_site,
        template.service,
        template.operation,
        template.host,
    )

    def work(ctx: C, st: _WorkerStats) -> None:
        try:
            while (i := claim()) is not None:
                t0 = wall()
                start = perf()
                try:
                    fn(ctx)
                except Exception as e:  # noqa: BLE001 - recorded, never raised
                    elapsed = perf() - start
                    status, error = "error", describe_error(e)
                else:
                    elapsed = perf() - start
                    status, error = "ok", ""
                ms = elapsed / 1e6
                st.count += 1
                if status == "ok":
                    st.ok_durations_ms.append(ms)
                else:
                    st.errors += 1
                if st.first_t0_ns is None:
                    st.first_t0_ns = t0
                st.last_end_ns = t0 + elapsed
                emit(Sample(site, target, service, op, t0, ms, status, error, host, i))
        except BaseException as e:  # the sink failed, or worse: end the whole load
            st.failure = describe_error(e)
            halt.set()

    stats = [_WorkerStats() for _ in contexts]
    threads = [
        threading.Thread(target=work, args=(ctx, st), name=f"worker-{n}", daemon=True)
        for n, (ctx, st) in enumerate(zip(contexts, stats, strict=True))
    ]
    started = perf()
    if duration_ns is not None:
        deadline_ns = started + duration_ns
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive() and not force.is_set():
            t.join(poll_s)  # short joins: signal handlers run in the main thread
    ended = perf()

    result = LoadResult(wall_s=(ended - started) / 1e9)
    result.abandoned_workers = sum(t.is_alive() for t in threads)
    firsts = [s.first_t0_ns for s in stats if s.first_t0_ns is not None]
    lasts = [s.last_end_ns for s in stats if s.last_end_ns is not None]
    for s in stats:
        result.count += s.count
        result.errors += s.errors
        result.ok_durations_ms.extend(s.ok_durations_ms)
        if s.failure:
            result.worker_failures.append(s.failure)
    if firsts and lasts:
        result.load_s = (max(lasts) - min(firsts)) / 1e9
    result.stopped = stopped_early or bool(result.worker_failures) or result.abandoned_workers > 0
    return result
