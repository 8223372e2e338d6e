"""The runner rules, in one place: which keys each runner type needs or refuses and the
ranges of their values. Experiment files (experiment/loading.py), Rally tasks
(rally_task.py) and agent specs (spec.py) read their own format, then build every
RunnerSpec with `runner()`; a broken rule is a RunnerError that each maps to its own
error type and key names (an experiment's `duration` is a spec's `duration_s`, a Rally
task's `constant.times`), so users see the messages of the file they wrote.

Standard library and model.py only (it runs on the hosts too).
"""

from __future__ import annotations

from femdc_bench.model import RpsRamp, RunnerSpec

RUNNER_TYPES = ("times", "duration", "rps")
RAMP_KEYS = ("start", "end", "step", "step_s")


class RunnerError(ValueError):
    """A runner rule broken. `key`: the RunnerSpec field ("times", "rps_ramp.end"; ""
    for the runner as a whole); `rule`: which rule ("choice", "required", "only",
    "minimum", "positive", "rps_or_ramp", "end_below_start"); str(): the spec's wording
    (`key: message`)."""

    def __init__(self, key: str, rule: str, message: str) -> None:
        self.key, self.rule, self.message = key, rule, message
        super().__init__(f"{key}: {message}" if key else message)


def runner(type: str, *, concurrency: int = 1, times: int | None = None,
           duration_s: float | None = None, rps: float | None = None,
           rps_ramp: RpsRamp | None = None, timeout_s: float | None = None) -> RunnerSpec:
    """A RunnerSpec whose values keep the rules: times and rps: `times` >= 1, no
    duration; duration: `duration_s` > 0, no times; rps: either `rps` > 0 or a ramp
    (every value > 0, end >= start), and only rps has them; concurrency >= 1; a timeout
    > 0. Raises RunnerError for the first rule broken, in that order."""
    if type not in RUNNER_TYPES:
        raise RunnerError("type", "choice", f"expected one of {', '.join(RUNNER_TYPES)}, "
                          f"got {type!r}")
    if concurrency < 1:
        raise RunnerError("concurrency", "minimum", "must be >= 1")
    if type in ("times", "rps"):
        if times is None:
            raise RunnerError("times", "required", f"required when type is {type!r}")
        if times < 1:
            raise RunnerError("times", "minimum", "must be >= 1")
        if duration_s is not None:
            raise RunnerError("duration_s", "only", "only for type 'duration'")
    else:
        if duration_s is None:
            raise RunnerError("duration_s", "required", "required when type is 'duration'")
        if duration_s <= 0:
            raise RunnerError("duration_s", "positive", "must be > 0")
        if times is not None:
            raise RunnerError("times", "only", "only for type 'times'")
    if type == "rps":
        if (rps is None) == (rps_ramp is None):
            raise RunnerError("", "rps_or_ramp", "type 'rps' needs either 'rps' or 'rps_ramp'")
        if rps is not None and rps <= 0:
            raise RunnerError("rps", "positive", "must be > 0")
        if rps_ramp is not None:
            for key in RAMP_KEYS:
                if getattr(rps_ramp, key) <= 0:
                    raise RunnerError(f"rps_ramp.{key}", "positive", "must be > 0")
            if rps_ramp.end < rps_ramp.start:
                raise RunnerError("rps_ramp.end", "end_below_start", "must be >= start")
    else:
        for key, value in (("rps", rps), ("rps_ramp", rps_ramp)):
            if value is not None:
                raise RunnerError(key, "only", "only for type 'rps'")
    if timeout_s is not None and timeout_s <= 0:
        raise RunnerError("timeout_s", "positive", "must be > 0")
    return RunnerSpec(type=type, concurrency=concurrency, times=times, duration_s=duration_s,
                      rps=rps, rps_ramp=rps_ramp, timeout_s=timeout_s)
