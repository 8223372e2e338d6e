"""Rally's Dummy scenarios: sleeps and failures, to try runners, SLAs and contexts.

================================== ======================================================
name                               one iteration (atomic actions)
================================== ======================================================
Dummy.dummy                        foo, with bar nested in it: sleeps ``sleep`` s (0);
                                   any other args are accepted and ignored, as Rally's
                                   ``**kwargs``. No OpenStack: nothing authenticates.
Dummy.openstack                    the same, but the job authenticates (Rally's OpenStack
                                   clone of Dummy.dummy: its contexts run)
Dummy.failure                      sleeps ``sleep`` (0.1 s), then fails when the iteration
                                   (from 1, as Rally) is in [``from_iteration``,
                                   ``to_iteration``] and divisible by ``each`` (1)
Dummy.dummy_exception              sleeps ``sleep`` (1 s), then fails with ``message`` (or
                                   ``size_of_message`` "M"s)
Dummy.dummy_exception_probability  fails with probability ``exception_probability`` (0.5)
Dummy.dummy_random_action          ``actions_num`` (5) actions action_<i>, each sleeping a
                                   uniform time in [``sleep_min``, ``sleep_max``]
Dummy.dummy_timed_atomic_actions   ``number_of_actions`` (5) actions action_<i> sleeping
                                   i x ``sleep_factor`` s
Dummy.dummy_random_fail_in_atomic  dummy_fail_test (with dummy_fail_inner_test in it),
                                   twice; each of the four may fail with probability
                                   ``exception_probability`` / 4 (1: the first fails)
================================== ======================================================

A stop (Ctrl-C, a fault's end of load) lets a sleeping iteration finish its sleep.
"""

from __future__ import annotations

import random
import time
from typing import Any

from femdc_bench.workload.context import WorkerContext
from femdc_bench.workload.registry import scenario

SERVICE = "dummy"


class DummyScenarioException(RuntimeError):
    """Rally's: "Dummy scenario expected exception: '<message>'"."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Dummy scenario expected exception: '{message}'")


def _number(args: dict[str, Any], key: str, lo: float | None = 0.0,
            hi: float | None = None, integer: bool = False) -> None:
    v = args[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or (integer and
                                                                 not isinstance(v, int)):
        raise ValueError(f"arg {key!r}: expected {'an integer' if integer else 'a number'}, "
                         f"got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f">= {lo:g}" if hi is None else f"in [{lo:g}, {hi:g}]"
        raise ValueError(f"arg {key!r}: expected a number {rng}, got {v!r}")


def _check(*numbers: str, ints: tuple[str, ...] = (), probability: str = "") -> Any:
    def check(args: dict[str, Any]) -> None:
        for k in numbers:
            _number(args, k)
        for k in ints:
            _number(args, k, integer=True)
        if probability:
            _number(args, probability, 0.0, 1.0)
    return check


def _sleep_foo_bar(ctx: WorkerContext) -> None:
    with ctx.atomic("foo"), ctx.atomic("bar"):
        time.sleep(float(ctx.args["sleep"]))


@scenario("Dummy.dummy", service=SERVICE, qualified=True, openstack=False, any_args=True,
          args={"sleep": 0.0}, check=_check("sleep"))
def dummy(ctx: WorkerContext) -> None:
    """Sleep `sleep` seconds in atomic action bar, nested in foo."""
    _sleep_foo_bar(ctx)


@scenario("Dummy.openstack", service="identity", qualified=True, any_args=True,
          args={"sleep": 0.0}, check=_check("sleep"))
def dummy_openstack(ctx: WorkerContext) -> None:
    """Dummy.dummy on an authenticated job (its Rally contexts run)."""
    _sleep_foo_bar(ctx)


@scenario("Dummy.failure", service=SERVICE, qualified=True, openstack=False,
          args={"sleep": 0.1, "from_iteration": 0, "to_iteration": 0, "each": 1},
          check=_check("sleep", ints=("from_iteration", "to_iteration", "each")))
def failure(ctx: WorkerContext) -> None:
    """Fail the iterations in [from_iteration, to_iteration] divisible by `each`."""
    a = ctx.args
    time.sleep(float(a["sleep"]))
    n = ctx.iteration
    if a["from_iteration"] <= n <= a["to_iteration"] and a["each"] and not n % a["each"]:
        raise DummyScenarioException("Expected failure")


def _check_exception(args: dict[str, Any]) -> None:
    _number(args, "sleep")
    _number(args, "size_of_message", 1, integer=True)
    if not isinstance(args["message"], str):
        raise ValueError(f"arg 'message': expected a string, got {args['message']!r}")


@scenario("Dummy.dummy_exception", service=SERVICE, qualified=True, openstack=False,
          args={"size_of_message": 1, "sleep": 1.0, "message": ""}, check=_check_exception)
def dummy_exception(ctx: WorkerContext) -> None:
    """Sleep, then fail."""
    a = ctx.args
    time.sleep(float(a["sleep"]))
    raise DummyScenarioException(a["message"] or "M" * a["size_of_message"])


@scenario("Dummy.dummy_exception_probability", service=SERVICE, qualified=True,
          openstack=False, args={"exception_probability": 0.5},
          check=_check(probability="exception_probability"))
def dummy_exception_probability(ctx: WorkerContext) -> None:
    """Fail with probability `exception_probability`."""
    p = ctx.args["exception_probability"]
    if random.random() < p:
        raise DummyScenarioException(f"Dummy Scenario Exception: Probability: {p}")


def _check_random_action(args: dict[str, Any]) -> None:
    _check("sleep_min", "sleep_max", ints=("actions_num",))(args)
    if args["sleep_max"] < args["sleep_min"]:
        raise ValueError("arg 'sleep_max': expected >= sleep_min")


@scenario("Dummy.dummy_random_action", service=SERVICE, qualified=True, openstack=False,
          args={"actions_num": 5, "sleep_min": 0.0, "sleep_max": 0.0},
          check=_check_random_action)
def dummy_random_action(ctx: WorkerContext) -> None:
    """`actions_num` atomic actions, each sleeping a random time."""
    a = ctx.args
    for i in range(a["actions_num"]):
        duration = random.uniform(a["sleep_min"], a["sleep_max"])
        with ctx.atomic(f"action_{i}"):
            time.sleep(duration)


@scenario("Dummy.dummy_timed_atomic_actions", service=SERVICE, qualified=True,
          openstack=False, args={"number_of_actions": 5, "sleep_factor": 1.0},
          check=_check("sleep_factor", ints=("number_of_actions",)))
def dummy_timed_atomic_actions(ctx: WorkerContext) -> None:
    """Atomic actions action_<i> sleeping i x sleep_factor seconds."""
    for i in range(ctx.args["number_of_actions"]):
        with ctx.atomic(f"action_{i}"):
            time.sleep(i * float(ctx.args["sleep_factor"]))


@scenario("Dummy.dummy_random_fail_in_atomic", service=SERVICE, qualified=True,
          openstack=False, args={"exception_probability": 0.5},
          check=_check(probability="exception_probability"))
def dummy_random_fail_in_atomic(ctx: WorkerContext) -> None:
    """Four places that may fail, in nested atomic actions (Rally's roulette)."""
    p = ctx.args["exception_probability"]
    if p != 1:
        p = p / 4.0

    def roulette() -> None:
        if random.random() < p:
            raise KeyError("Dummy test exception")

    for _ in range(2):
        with ctx.atomic("dummy_fail_test"):
            roulette()
            with ctx.atomic("dummy_fail_inner_test"):
                roulette()
