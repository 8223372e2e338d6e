"""Rally task files mapped onto the workload model: formats, templating, strict errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from femdc_bench.model import RunnerSpec
from femdc_bench.workload.rally_task import TaskError, load

V2_SUBTASK_SCENARIO = """---
version: 2
title: Keystone authenticate
description: one workload given at the subtask level, as rally-openstack's samples do
subtasks:
- title: Authenticate user and validate token
  scenario:
    KeystoneBasic.authenticate_user_and_validate_token: {}
  runner:
    constant:
      times: 20
      concurrency: 5
  sla:
    failure_rate:
      max: 0
"""


def _write(tmp_path: Path, text: str, name: str = "task.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_v2_subtask_with_one_scenario(tmp_path: Path) -> None:
    task = load(_write(tmp_path, V2_SUBTASK_SCENARIO))
    assert task.version == 2 and task.title == "Keystone authenticate"
    (w,) = task.workloads
    assert w.path == "subtasks[0]"
    assert w.scenario == "KeystoneBasic.authenticate_user_and_validate_token"
    assert w.runner == RunnerSpec(type="times", concurrency=5, times=20)
    assert w.sla is not None and w.sla.failure_rate_max_pct == 0.0
    assert w.title == "Authenticate user and validate token"


def test_v2_workloads_json_and_duration_runner(tmp_path: Path) -> None:
    doc = {"version": 2, "title": "t", "subtasks": [{"title": "s", "workloads": [
        {"scenario": {"KeystoneBasic.create_user": {}},
         "runner": {"serial": {"times": 3}}},
        {"scenario": {"KeystoneBasic.authenticate_user_and_validate_token": {}},
         "runner": {"constant_for_duration": {"duration": 30, "concurrency": 4}},
         "contexts": {"cleanup": {}}},
    ]}]}
    task = load(_write(tmp_path, json.dumps(doc), "task.json"))
    a, b = task.workloads
    assert (a.path, a.runner) == ("subtasks[0].workloads[0]",
                                  RunnerSpec(type="times", concurrency=1, times=3))
    assert b.runner == RunnerSpec(type="duration", concurrency=4, duration_s=30.0)
    assert b.contexts == {}  # cleanup validates, creates nothing


def test_v1_with_template_args_and_defaults(tmp_path: Path) -> None:
    text = """{% set concurrency = concurrency or 2 %}
---
  KeystoneBasic.create_delete_user:
    -
      args: {}
      runner:
        type: "constant"
        times: {{ times }}
        concurrency: {{ concurrency }}
      sla:
        failure_rate: {max: {{ max_failure | default(5) }}}
"""
    task = load(_write(tmp_path, text), {"times": 7})
    (w,) = task.workloads
    assert task.version == 1 and w.path == "KeystoneBasic.create_delete_user[0]"
    assert w.runner == RunnerSpec(type="times", concurrency=2, times=7)
    assert w.sla is not None and w.sla.failure_rate_max_pct == 5.0
    with pytest.raises(TaskError, match=r"task.yaml: template variable\(s\) times given no value"):
        load(_write(tmp_path, text), {})


@pytest.mark.parametrize(("change", "message"), [
    ({"runner": {"constant_for_iterations": {"times": 100}}},
     "subtasks[0].runner.constant_for_iterations: unsupported runner "
     "'constant_for_iterations'"),
    ({"contexts": {"murano_packages": {}}},
     "subtasks[0].contexts.murano_packages: unsupported context"),
    ({"sla": {"performance_degradation": {"max_degradation": 5}}},
     "subtasks[0].sla.performance_degradation: unsupported SLA"),
    ({"hooks": [{"action": {"sys_call": "true"}}]}, "subtasks[0].hooks: unsupported: hooks"),
    ({"scenario": {"MuranoEnvironments.list_environments": {}}},
     "subtasks[0].scenario.MuranoEnvironments.list_environments: unsupported scenario"),
    ({"scenario": {"KeystoneBasic.create_user": {"flavor": "m1.tiny"}}},
     "subtasks[0].scenario.KeystoneBasic.create_user.args: unknown arg 'flavor'"),
    ({"runner": {"constant": {"times": 0}}},
     "subtasks[0].runner.constant.times: expected a positive integer"),
    ({"runner": {"constant": {"times": 2, "rps": 5}}},
     "subtasks[0].runner.constant.rps: unsupported option of runner 'constant'"),
    ({"sla": {"failure_rate": {"max": 120}}},
     "subtasks[0].sla.failure_rate.max: expected a percentage"),
])
def test_anything_unsupported_names_its_path(tmp_path: Path, change: dict, message: str) -> None:
    doc = {"version": 2, "subtasks": [{
        "title": "s", "scenario": {"KeystoneBasic.create_user": {}},
        "runner": {"constant": {"times": 2}}, **change}]}
    with pytest.raises(TaskError) as e:
        load(_write(tmp_path, json.dumps(doc)))
    assert str(e.value).startswith(f"{tmp_path / 'task.yaml'}: {message}"), str(e.value)
    assert "\n" not in str(e.value)


def test_our_own_scenario_names_are_not_rally_names(tmp_path: Path) -> None:
    doc = {"keystone.list_users": [{"runner": {"type": "constant", "times": 1}}]}
    with pytest.raises(TaskError, match=r"keystone.list_users\[0\]: unsupported scenario"):
        load(_write(tmp_path, json.dumps(doc)))


def test_not_a_task(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="expected a Rally task"):
        load(_write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(TaskError, match="version: expected 2"):
        load(_write(tmp_path, "version: 3\nsubtasks: []\n"))
    with pytest.raises(TaskError, match="cannot read the task file"):
        load(tmp_path / "missing.yaml")


RPS_TASK = """---
version: 2
title: rps
subtasks:
- title: constant rate
  scenario:
    KeystoneBasic.create_and_list_users: {}
  runner:
    rps:
      times: 50
      rps: 10
      timeout: 30
      max_cpu_count: 4
- title: ramp
  scenario:
    KeystoneBasic.create_and_list_users: {}
  runner:
    rps:
      times: 100
      rps: {start: 2, end: 10, step: 2, duration: 5}
      max_concurrency: 3
"""


def test_rps_runner_constant_and_ramp(tmp_path: Path) -> None:
    a, b = load(_write(tmp_path, RPS_TASK)).workloads
    assert a.runner.type == "rps" and a.runner.rps == 10.0 and a.runner.times == 50
    assert a.runner.timeout_s == 30.0
    assert a.runner.concurrency == 20  # enough for 2 s iterations at the peak rate
    assert b.runner.rps is None and b.runner.rps_ramp is not None
    assert (b.runner.rps_ramp.start, b.runner.rps_ramp.end, b.runner.rps_ramp.step,
            b.runner.rps_ramp.step_s) == (2, 10, 2, 5)
    assert b.runner.concurrency == 3


@pytest.mark.parametrize(("runner", "path", "msg"), [
    ({"rps": {"times": 5}}, "subtasks[0].runner.rps.rps", "missing required key"),
    ({"rps": {"times": 5, "rps": 0}}, "subtasks[0].runner.rps.rps", "a rate > 0"),
    ({"rps": {"times": 5, "rps": {"start": 5, "end": 2, "step": 1}}},
     "subtasks[0].runner.rps.rps.end", "must not be less than"),
    ({"rps": {"times": 5, "rps": {"start": 1, "step": 1}}},
     "subtasks[0].runner.rps.rps.end", "missing required key"),
    ({"constant": {"times": 5, "timeout": -1}}, "subtasks[0].runner.constant.timeout",
     "seconds > 0"),
    ({"serial": {"times": 5, "timeout": 1}}, "subtasks[0].runner.serial.timeout",
     "unsupported option"),
])
def test_bad_runner_options(tmp_path: Path, runner: dict, path: str, msg: str) -> None:
    _fails_at(tmp_path, {"runner": runner}, path, msg)


def _fails_at(tmp_path: Path, workload: dict, path: str, msg: str) -> None:
    """A one-workload v2 task (KeystoneBasic.create_user + `workload`) fails to load,
    naming `path` with `msg`."""
    doc = {"version": 2, "subtasks": [{"scenario": {"KeystoneBasic.create_user": {}},
                                       **workload}]}
    with pytest.raises(TaskError) as e:
        load(_write(tmp_path, json.dumps(doc), "task.json"))
    assert e.value.path == path and msg in e.value.message, str(e.value)


def test_every_rally_sla(tmp_path: Path) -> None:
    doc = {"version": 2, "subtasks": [{
        "scenario": {"KeystoneBasic.create_delete_user": {}},
        "runner": {"constant": {"times": 10, "concurrency": 2}},
        "sla": {"failure_rate": {"max": 1, "min": 0},
                "max_seconds_per_iteration": 2.5, "max_avg_duration": 1,
                "max_avg_duration_per_atomic": {"keystone.create_user": 0.5},
                "outliers": {"max": 1, "min_iterations": 5, "sigmas": 4}}}]}
    (w,) = load(_write(tmp_path, json.dumps(doc), "task.json")).workloads
    sla = w.sla
    assert sla is not None
    assert (sla.failure_rate_max_pct, sla.failure_rate_min_pct) == (1.0, 0.0)
    assert sla.max_seconds_per_iteration == 2.5 and sla.max_avg_duration_s == 1.0
    assert sla.max_avg_duration_per_atomic == (("keystone.create_user", 0.5),)
    assert sla.outliers is not None and (sla.outliers.max, sla.outliers.min_iterations,
                                         sla.outliers.sigmas) == (1, 5, 4.0)


@pytest.mark.parametrize(("sla", "path", "msg"), [
    ({"performance_degradation": {"max_degradation": 50}},
     "subtasks[0].sla.performance_degradation", "unsupported SLA"),
    ({"outliers": {"min_iterations": 2}}, "subtasks[0].sla.outliers.min_iterations",
     ">= 3"),
    ({"outliers": {"max": 1, "foo": 1}}, "subtasks[0].sla.outliers.foo", "unsupported"),
    ({"max_avg_duration_per_atomic": {}}, "subtasks[0].sla.max_avg_duration_per_atomic",
     "at least one"),
    ({"max_seconds_per_iteration": "fast"}, "subtasks[0].sla.max_seconds_per_iteration",
     "seconds > 0"),
])
def test_bad_slas(tmp_path: Path, sla: dict, path: str, msg: str) -> None:
    _fails_at(tmp_path, {"sla": sla}, path, msg)
