"""The one runner: the only place in femdc-bench that times an operation.

`run_load` calls a scenario function over `concurrency` worker threads, each with its own
pre-built context (a keystoneauth1 Session per worker on hosts: keep-alive, no re-auth):

- ``times``: N iterations in total, handed out one by one to whichever worker is free;
- ``duration``: every worker loops until the deadline (iterations started before it finish);
- ``rps``: N iterations in total, iteration i started when it is due
  (`RunnerSpec.start_offset_s`: i / rps, or along the ramp), by whichever of the
  `concurrency` workers is free (Rally's max_concurrency): when all are busy the next
  iteration starts late. Each iteration's Sample carries ``fields["late_ms"]``, how late
  it started, so that a rate that was not held shows.

``timeout_s`` (Rally's runner timeout): an iteration that took longer is recorded as an
error ("Timeout: ..."). It is not interrupted: the request timeout of the job bounds it.

Each iteration is timed with ``time.perf_counter_ns`` (monotonic) and stamped with
``time.time_ns`` at its start. A failing iteration becomes a Sample with status "error"
and the error's text; it never stops the load.

Atomic actions: inside an iteration, a scenario times named sub-steps with
``with atomic("nova.boot_server"):`` (scenarios call it as ``ctx.atomic(...)``, the
context only forwards here). After each iteration the runner emits the iteration's
Sample (``action=""``) and then one Sample per atomic action entered, in the order they
started: same site, target, service, operation and iteration; the action's name, its own
start stamp and duration, status "error" (and the error's text) when an exception left
its block. An action never entered is not emitted. Actions may nest (each is its own
Sample). ``record(name=value)`` adds numbers to ``Sample.fields`` of the innermost open
action (or of the iteration outside any action); ``record_bytes(n)`` counts bytes moved
and, when the action closes, sets ``fields["bytes"]`` and ``fields["mb_per_s"]``
(10^6 bytes per second of the action's own duration: the scenario never times). Outside
`run_load` (setup, teardown) all three are no-ops. LoadResult counts iterations only.

Setting `stop` ends the load promptly: workers start no new iteration, in-flight ones
finish. Setting `force` as well makes `run_load` return without waiting for in-flight
iterations (their workers are daemon threads and are reported as abandoned).

Standard library and femdc_bench.model only.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from femdc_bench.model import API_FIELDS, API_TAGS, RunnerSpec, Sample

C = TypeVar("C")

ERROR_MAX_CHARS = 500
#: Names a scenario may give to Sample.fields: lowercase identifiers, not a column of
#: the `api` measurement (its tags and fields) nor one the runner sets itself.
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# Sample.fields may not shadow a tag or field of `api`, nor what the runner itself sets.
RESERVED_FIELDS = frozenset({"time", *API_TAGS, *API_FIELDS, "bytes", "mb_per_s", "late_ms"})
ACTION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")


@dataclass(frozen=True)
class SampleTemplate:
    """The fields every Sample of a job shares."""

    site: str
    target_site: str
    service: str
    operation: str
    host: str = ""
    workload: str = ""


@dataclass
class LoadResult:
    count: int = 0  # iterations recorded (ok + error); atomic actions are not iterations
    errors: int = 0
    wall_s: float = 0.0  # from starting the workers to the last one ending (monotonic)
    load_s: float = 0.0  # first iteration start to last iteration end, as Rally's load_duration
    stopped: bool = False  # the stop event ended the load early
    abandoned_workers: int = 0  # still in an iteration when `force` made us return
    worker_failures: list[str] = field(default_factory=list)  # e.g. the sample sink failed
    ok_durations_ms: list[float] = field(default_factory=list, repr=False)
    action_samples: int = 0  # atomic-action Samples emitted besides the iterations

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


# --------------------------------------------------------------------------- atomic actions


class _Action:
    """One atomic action of the running iteration."""

    __slots__ = ("name", "t0_ns", "start", "ms", "status", "error", "fields", "nbytes")

    def __init__(self, name: str, t0_ns: int, start: int) -> None:
        self.name = name
        self.t0_ns = t0_ns
        self.start = start
        self.ms = 0.0
        self.status = "ok"
        self.error = ""
        self.fields: dict[str, float] = {}
        self.nbytes: int | None = None


class _Iteration:
    """What the atomic-action calls of one iteration collect (one per worker thread)."""

    __slots__ = ("actions", "stack", "fields", "nbytes")

    def __init__(self) -> None:
        self.actions: list[_Action] = []  # in start order
        self.stack: list[_Action] = []  # the open ones, innermost last
        self.fields: dict[str, float] = {}  # the iteration's own fields
        self.nbytes: int | None = None


_current = threading.local()  # .it: the _Iteration running in this thread, or None


def _running() -> _Iteration | None:
    return getattr(_current, "it", None)


def _rate_fields(fields: dict[str, float], nbytes: int | None, ms: float) -> dict[str, float]:
    if nbytes is not None:
        fields["bytes"] = float(nbytes)
        if ms > 0:
            fields["mb_per_s"] = nbytes / 1e6 / (ms / 1e3)
    return fields


class AtomicAction:
    """``with AtomicAction(name):`` times its block as one atomic action (see `atomic`)."""

    __slots__ = ("name", "_it")

    def __init__(self, name: str) -> None:
        if not ACTION_NAME.fullmatch(name):
            raise ValueError(f"bad atomic action name {name!r}")
        self.name = name
        self._it: _Iteration | None = None

    def __enter__(self) -> AtomicAction:
        it = self._it = _running()
        if it is not None:
            rec = _Action(self.name, time.time_ns(), time.perf_counter_ns())
            it.actions.append(rec)
            it.stack.append(rec)
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        end = time.perf_counter_ns()
        it = self._it
        if it is None or not it.stack:
            return
        rec = it.stack.pop()
        rec.ms = (end - rec.start) / 1e6
        if exc is not None:
            rec.status, rec.error = "error", describe_error(exc)
        _rate_fields(rec.fields, rec.nbytes, rec.ms)


def atomic(name: str) -> AtomicAction:
    """Time the ``with`` block as the atomic action `name` of the running iteration."""
    return AtomicAction(name)


def record(**fields: float) -> None:
    """Add numbers to Sample.fields of the innermost open atomic action (or the iteration).

    Names: lowercase identifiers outside RESERVED_FIELDS; values: finite numbers.
    """
    for k, v in fields.items():
        if not FIELD_NAME.fullmatch(k) or k in RESERVED_FIELDS:
            raise ValueError(f"bad field name {k!r}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"field {k!r}: expected a finite number, got {v!r}")
    it = _running()
    if it is None:
        return
    target = it.stack[-1].fields if it.stack else it.fields
    for k, v in fields.items():
        target[k] = float(v)


def record_bytes(n: int) -> None:
    """Count `n` bytes moved by the innermost open atomic action (or the iteration)."""
    it = _running()
    if it is None:
        return
    if it.stack:
        rec = it.stack[-1]
        rec.nbytes = (rec.nbytes or 0) + int(n)
    else:
        it.nbytes = (it.nbytes or 0) + int(n)


# --------------------------------------------------------------------------- the load


@dataclass
class _WorkerStats:
    count: int = 0
    errors: int = 0
    first_t0_ns: int | None = None
    last_end_ns: int | None = None
    ok_durations_ms: list[float] = field(default_factory=list)
    failure: str = ""
    action_samples: int = 0


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
    the worker threads: it must be thread-safe): per iteration, the iteration's Sample
    then its atomic actions' Samples.
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
    elif runner.type == "rps":
        if runner.times is None or runner.times < 0:
            raise ValueError("runner 'rps' needs times >= 0")
        if (runner.rps is None) == (runner.rps_ramp is None):
            raise ValueError("runner 'rps' needs either rps or rps_ramp")
        if (runner.rps or 1) <= 0 or (runner.rps_ramp and runner.rps_ramp.start <= 0):
            raise ValueError("runner 'rps' needs a rate > 0")
        limit = runner.times
        duration_ns = None
    else:
        raise ValueError(f"unknown runner type {runner.type!r}")
    paced = runner.type == "rps"
    timeout_ns = int(runner.timeout_s * 1e9) if runner.timeout_s else None
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
    site, target, service, op, host, wl = (
        template.site,
        template.target_site,
        template.service,
        template.operation,
        template.host,
        template.workload,
    )

    def pace(i: int) -> float | None:
        """rps: wait until iteration i is due; how late it starts (ms), None if stopped."""
        due = started + int(runner.start_offset_s(i) * 1e9)
        while (left := due - perf()) > 0:
            if stop.wait(min(left / 1e9, poll_s)) or halt.is_set():
                return None
        return (perf() - due) / 1e6

    def work(ctx: C, st: _WorkerStats) -> None:
        nonlocal stopped_early
        begin = getattr(ctx, "begin_iteration", None)  # e.g. picks a context user
        try:
            while (i := claim()) is not None:
                late_ms = None
                if paced and (late_ms := pace(i)) is None:
                    stopped_early = True
                    break
                if begin is not None:
                    begin(i)
                it = _current.it = _Iteration()
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
                finally:
                    _current.it = None
                if timeout_ns is not None and status == "ok" and elapsed > timeout_ns:
                    status = "error"
                    error = (f"Timeout: the iteration took {elapsed / 1e9:.3f} s, more than "
                             f"the runner's timeout of {timeout_ns / 1e9:g} s")
                if late_ms is not None:
                    it.fields["late_ms"] = late_ms
                ms = elapsed / 1e6
                st.count += 1
                if status == "ok":
                    st.ok_durations_ms.append(ms)
                else:
                    st.errors += 1
                if st.first_t0_ns is None:
                    st.first_t0_ns = t0
                st.last_end_ns = t0 + elapsed
                fields = _rate_fields(it.fields, it.nbytes, ms)
                emit(Sample(site, target, service, op, t0, ms, status, error, host, i, "", fields,
                            wl))
                for a in it.actions:
                    if a in it.stack:  # still open: left by a generator, never closed
                        continue
                    emit(
                        Sample(
                            site,
                            target,
                            service,
                            op,
                            a.t0_ns,
                            a.ms,
                            a.status,
                            a.error,
                            host,
                            i,
                            a.name,
                            a.fields,
                            wl,
                        )
                    )
                    st.action_samples += 1
        except BaseException as e:  # the sink failed, or worse: end the whole load
            st.failure = describe_error(e)
            halt.set()

    stats = [_WorkerStats() for _ in contexts]
    threads = [
        threading.Thread(target=work, args=(ctx, st), name=f"worker-{n}", daemon=True)
        for n, (ctx, st) in enumerate(zip(contexts, stats, strict=True))
    ]
    started = perf() + (int(0.01e9) if paced else 0)  # rps: every worker up before 0
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
        result.action_samples += s.action_samples
        if s.failure:
            result.worker_failures.append(s.failure)
    if firsts and lasts:
        result.load_s = (max(lasts) - min(firsts)) / 1e9
    result.stopped = stopped_early or bool(result.worker_failures) or result.abandoned_workers > 0
    return result
