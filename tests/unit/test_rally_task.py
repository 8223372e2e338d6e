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
    assert w.failure_rate_max_pct == 0.0
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
    assert w.failure_rate_max_pct == 5.0
    with pytest.raises(TaskError, match=r"task.yaml: template variable\(s\) times given no value"):
        load(_write(tmp_path, text), {})


@pytest.mark.parametrize(("change", "message"), [
    ({"runner": {"rps": {"rps": 10, "times": 100}}},
     "subtasks[0].runner.rps: unsupported runner 'rps'"),
    ({"contexts": {"murano_packages": {}}},
     "subtasks[0].contexts.murano_packages: unsupported context"),
    ({"sla": {"outliers": {"max": 1}}}, "subtasks[0].sla.outliers: unsupported SLA"),
    ({"hooks": [{"action": {"sys_call": "true"}}]}, "subtasks[0].hooks: unsupported: hooks"),
    ({"scenario": {"MuranoEnvironments.list_environments": {}}},
     "subtasks[0].scenario.MuranoEnvironments.list_environments: unsupported scenario"),
    ({"scenario": {"KeystoneBasic.create_user": {"flavor": "m1.tiny"}}},
     "subtasks[0].scenario.KeystoneBasic.create_user.args: unknown arg 'flavor'"),
    ({"runner": {"constant": {"times": 0}}},
     "subtasks[0].runner.constant.times: expected a positive integer"),
    ({"runner": {"constant": {"times": 2, "timeout": 5}}},
     "subtasks[0].runner.constant.timeout: unsupported option of runner 'constant'"),
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
