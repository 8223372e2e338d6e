"""The runner: counts, concurrency, duration, errors, stop. No network."""

from __future__ import annotations

import threading
import time

import pytest

from femdc_bench.model import RunnerSpec, Sample
from femdc_bench.workload.registry import Registry
from femdc_bench.workload.runner import SampleTemplate, describe_error, run_load

TEMPLATE = SampleTemplate(site="s1", target_site="s2", service="test", operation="noop", host="h")

registry = Registry()


@registry.scenario("test.noop", service="test")
def noop(ctx: object) -> None:
    """Does nothing."""


class Collect:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.lock = threading.Lock()

    def __call__(self, s: Sample) -> None:
        with self.lock:
            self.samples.append(s)


class InFlight:
    """A scenario that sleeps and records how many iterations overlap."""

    def __init__(self, sleep_s: float) -> None:
        self.sleep_s = sleep_s
        self.lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.by_worker: dict[int, int] = {}

    def __call__(self, ctx: int) -> None:
        with self.lock:
            self.now += 1
            self.max = max(self.max, self.now)
            self.by_worker[ctx] = self.by_worker.get(ctx, 0) + 1
        time.sleep(self.sleep_s)
        with self.lock:
            self.now -= 1


def times(n: int, c: int) -> RunnerSpec:
    return RunnerSpec(type="times", times=n, concurrency=c)


def test_times_runs_exactly_n_iterations_over_c_workers() -> None:
    out = Collect()
    sc = InFlight(0.005)
    r = run_load(sc, list(range(4)), times(37, 4), template=TEMPLATE, emit=out)
    assert r.count == 37 and r.errors == 0
    assert sorted(s.iteration for s in out.samples) == list(range(37))
    assert sc.max == 4  # all workers ran at once
    assert sum(sc.by_worker.values()) == 37 and len(sc.by_worker) == 4
    assert not r.stopped
    s = out.samples[0]
    assert (s.site, s.target_site, s.service, s.operation, s.host, s.status) == (
        "s1",
        "s2",
        "test",
        "noop",
        "h",
        "ok",
    )
    assert s.duration_ms >= 5.0
    assert abs(s.t0_ns - time.time_ns()) < 60e9
    assert r.load_s > 0 and r.iterations_per_s > 0
    assert len(r.ok_durations_ms) == 37


def test_times_with_more_workers_than_iterations() -> None:
    out = Collect()
    r = run_load(
        registry.get("test.noop").run, [None] * 5, times(2, 5), template=TEMPLATE, emit=out
    )
    assert r.count == 2 and len(out.samples) == 2


def test_concurrency_must_match_contexts() -> None:
    with pytest.raises(ValueError):
        run_load(noop, [None], times(1, 2), template=TEMPLATE, emit=Collect())


def test_duration_every_worker_loops_until_deadline() -> None:
    out = Collect()
    sc = InFlight(0.01)
    spec = RunnerSpec(type="duration", duration_s=0.3, concurrency=3)
    r = run_load(sc, [0, 1, 2], spec, template=TEMPLATE, emit=out)
    assert 0.3 <= r.wall_s < 0.3 + 0.5
    assert sc.max == 3 and set(sc.by_worker) == {0, 1, 2}
    assert 3 * 5 <= r.count <= 3 * 31
    first = min(s.t0_ns for s in out.samples)
    # no iteration starts after the deadline (wall clock, allowing clock granularity)
    assert all(s.t0_ns - first <= 0.3e9 + 5e6 for s in out.samples)
    assert not r.stopped


class Conflict(Exception):
    http_status = 409


def test_failed_iterations_are_recorded_not_raised() -> None:
    out = Collect()
    counter = iter(range(1000))
    lock = threading.Lock()

    def flaky(ctx: object) -> None:
        with lock:
            n = next(counter)
        if n % 2:
            raise Conflict("name taken " + "x" * 1000)

    r = run_load(flaky, [None, None], times(10, 2), template=TEMPLATE, emit=out)
    assert r.count == 10 and r.errors == 5
    errs = [s for s in out.samples if s.status == "error"]
    assert len(errs) == 5
    for s in errs:
        assert s.error.startswith("Conflict (HTTP 409): name taken")
        assert len(s.error) <= 500
    assert all(s.error == "" for s in out.samples if s.status == "ok")
    assert len(r.ok_durations_ms) == 5


def test_describe_error() -> None:
    assert describe_error(ValueError("bad\nvalue")) == "ValueError: bad value"
    assert describe_error(KeyError("X-Subject-Token")) == "KeyError: 'X-Subject-Token'"

    class NotFound(Exception):
        http_status = 404

    # status already in the message (keystoneauth1 style): not repeated
    assert describe_error(NotFound("Not Found (HTTP 404)")) == "NotFound: Not Found (HTTP 404)"
    assert describe_error(NotFound()) == "NotFound (HTTP 404)"
    assert len(describe_error(RuntimeError("y" * 2000))) == 500


def test_stop_event_ends_a_duration_load_promptly() -> None:
    stop = threading.Event()
    out = Collect()
    spec = RunnerSpec(type="duration", duration_s=60, concurrency=2)
    threading.Timer(0.2, stop.set).start()
    t = time.monotonic()
    r = run_load(InFlight(0.01), [0, 1], spec, template=TEMPLATE, emit=out, stop=stop)
    assert time.monotonic() - t < 2
    assert r.stopped and r.count == len(out.samples) > 0
    assert r.abandoned_workers == 0


def test_stop_lets_in_flight_iterations_finish() -> None:
    stop = threading.Event()
    out = Collect()
    started = threading.Event()

    def slow(ctx: object) -> None:
        started.set()
        time.sleep(0.3)

    def stopper() -> None:
        started.wait(5)
        stop.set()

    threading.Thread(target=stopper).start()
    r = run_load(slow, [None], times(100, 1), template=TEMPLATE, emit=out, stop=stop)
    assert r.count == 1 and out.samples[0].status == "ok" and r.stopped


def test_force_returns_without_waiting_for_stuck_iterations() -> None:
    stop, force, release = threading.Event(), threading.Event(), threading.Event()

    def stuck(ctx: object) -> None:
        release.wait(30)

    def both() -> None:
        stop.set()
        force.set()

    threading.Timer(0.2, both).start()
    t = time.monotonic()
    r = run_load(
        stuck, [None, None], times(10, 2), template=TEMPLATE, emit=Collect(), stop=stop, force=force
    )
    release.set()
    assert time.monotonic() - t < 2
    assert r.abandoned_workers == 2 and r.stopped


def test_a_failing_sink_stops_the_load_and_is_reported() -> None:
    def broken(s: Sample) -> None:
        raise OSError(28, "No space left on device")

    r = run_load(noop, [None, None], times(1000, 2), template=TEMPLATE, emit=broken)
    assert r.worker_failures and "No space left" in r.worker_failures[0]
    assert r.stopped


def test_preset_stop_runs_nothing() -> None:
    stop = threading.Event()
    stop.set()
    r = run_load(noop, [None], times(5, 1), template=TEMPLATE, emit=Collect(), stop=stop)
    assert r.count == 0 and r.stopped


# --------------------------------------------------------------------------- rps


def test_rps_schedule_constant_and_ramp() -> None:
    from femdc_bench.model import RpsRamp

    r = RunnerSpec(type="rps", times=10, rps=4.0)
    assert [r.start_offset_s(i) for i in (0, 1, 4)] == [0.0, 0.25, 1.0]
    # 2/s for 5 s (10 iterations), then 4/s for 5 s (20), then 5/s (capped at end)
    ramp = RunnerSpec(type="rps", times=100, rps_ramp=RpsRamp(2, 5, 2, 5))
    assert ramp.start_offset_s(0) == 0.0
    assert ramp.start_offset_s(9) == pytest.approx(4.5)
    assert ramp.start_offset_s(10) == pytest.approx(5.0)
    assert ramp.start_offset_s(30) == pytest.approx(10.0)
    assert ramp.start_offset_s(35) == pytest.approx(11.0)


def test_rps_starts_no_iteration_before_it_is_due() -> None:
    out = Collect()
    runner = RunnerSpec(type="rps", times=20, rps=200.0, concurrency=4)
    res = run_load(lambda ctx: None, list(range(4)), runner, template=TEMPLATE, emit=out)
    assert res.count == 20 and res.errors == 0
    late = [s.fields["late_ms"] for s in out.samples]
    assert len(late) == 20 and min(late) >= 0  # never earlier than due
    # start minus lateness is the due time: iteration i is due i / 200 s after the first
    due = sorted(s.t0_ns / 1e6 - s.fields["late_ms"] for s in out.samples)
    assert all(abs(b - a - 5.0) < 0.5 for a, b in zip(due, due[1:], strict=False)), due


def test_rps_busy_workers_make_iterations_late() -> None:
    out = Collect()
    runner = RunnerSpec(type="rps", times=6, rps=100.0, concurrency=1)
    run_load(lambda ctx: time.sleep(0.05), [0], runner, template=TEMPLATE, emit=out)
    late = sorted(s.fields["late_ms"] for s in out.samples)
    assert late[-1] > 100  # one worker, 50 ms each, due every 10 ms: far behind


def test_rps_stop_ends_the_schedule() -> None:
    stop = threading.Event()
    out = Collect()
    runner = RunnerSpec(type="rps", times=1000, rps=20.0, concurrency=2)
    threading.Timer(0.3, stop.set).start()
    res = run_load(lambda ctx: None, [0, 1], runner, template=TEMPLATE, emit=out, stop=stop)
    assert res.stopped and 2 <= res.count < 20


def test_timeout_turns_a_slow_iteration_into_an_error() -> None:
    out = Collect()
    runner = RunnerSpec(type="times", times=2, concurrency=1, timeout_s=0.02)
    res = run_load(lambda ctx: time.sleep(0.05), [0], runner, template=TEMPLATE, emit=out)
    assert res.errors == 2
    assert all(s.error.startswith("Timeout: the iteration took") for s in out.samples)


def test_late_ms_is_reserved() -> None:
    from femdc_bench.workload.runner import record

    with pytest.raises(ValueError):
        record(late_ms=1.0)
