"""workload/runners.py: the one set of runner rules, and the three formats that build
their RunnerSpecs through it, each naming its own keys."""

from __future__ import annotations

from typing import Any

import pytest

from femdc_bench.experiment import ExperimentError, parse
from femdc_bench.model import RpsRamp, RunnerSpec
from femdc_bench.workload import rally_task
from femdc_bench.workload.runners import RunnerError, runner
from femdc_bench.workload.spec import SpecError, runner_from_dict
from tests.one_host import one_host_experiment


@pytest.mark.parametrize(("kw", "key", "rule"), [
    ({"type": "ramp"}, "type", "choice"),
    ({"type": "times", "times": 1, "concurrency": 0}, "concurrency", "minimum"),
    ({"type": "times"}, "times", "required"),
    ({"type": "rps", "times": 0, "rps": 1.0}, "times", "minimum"),
    ({"type": "times", "times": 1, "duration_s": 3.0}, "duration_s", "only"),
    ({"type": "duration"}, "duration_s", "required"),
    ({"type": "duration", "duration_s": 0.0}, "duration_s", "positive"),
    ({"type": "duration", "duration_s": 1.0, "times": 2}, "times", "only"),
    ({"type": "rps", "times": 2}, "", "rps_or_ramp"),
    ({"type": "rps", "times": 2, "rps": 0.0}, "rps", "positive"),
    ({"type": "rps", "times": 2, "rps_ramp": RpsRamp(1, 2, 0, 1)}, "rps_ramp.step", "positive"),
    ({"type": "rps", "times": 2, "rps_ramp": RpsRamp(3, 2, 1, 1)}, "rps_ramp.end",
     "end_below_start"),
    ({"type": "times", "times": 2, "rps": 1.0}, "rps", "only"),
    ({"type": "times", "times": 2, "timeout_s": 0.0}, "timeout_s", "positive"),
])
def test_each_rule(kw: dict[str, Any], key: str, rule: str) -> None:
    with pytest.raises(RunnerError) as e:
        runner(kw.pop("type"), **kw)
    assert (e.value.key, e.value.rule) == (key, rule)


def test_a_runner_that_keeps_the_rules() -> None:
    assert runner("times", times=3, concurrency=2) == RunnerSpec(type="times", times=3,
                                                                 concurrency=2)
    ramp = RpsRamp(1, 4, 1, 2)
    assert runner("rps", times=9, rps_ramp=ramp).rps_ramp == ramp


def test_the_spec_says_the_rule_in_its_words() -> None:
    with pytest.raises(SpecError, match=r"^\$\.runner\.duration_s: must be > 0$"):
        runner_from_dict({"type": "duration", "duration_s": 0}, "$.runner")


@pytest.mark.parametrize(("runner_doc", "path", "message"), [
    ({"type": "times"}, "runner.times", "missing required key (runner type 'times')"),
    ({"type": "duration", "duration": "1s", "times": 2}, "runner.times",
     "not allowed with runner type 'duration'"),
    ({"type": "duration", "duration": "0s"}, "runner.duration", "expected a duration above 0"),
])
def test_the_experiment_says_the_rule_in_its_words(runner_doc: dict[str, Any], path: str,
                                                   message: str) -> None:
    doc = one_host_experiment()
    doc["workload"]["scenarios"][0]["runner"] = runner_doc
    with pytest.raises(ExperimentError) as e:
        parse(doc, "x.yaml")
    assert str(e.value) == f"x.yaml: workload.scenarios[0].{path}: {message}"


def test_a_rally_task_says_the_rule_in_its_words() -> None:
    with pytest.raises(rally_task.TaskError) as e:
        rally_task._runner("t.yaml", "w.runner", {"rps": {
            "times": 5, "rps": {"start": 4, "end": 2, "step": 1}}}, v1=False)
    assert str(e.value) == ("t.yaml: w.runner.rps.rps.end: rps end value must not be less "
                            "than rps start value")
