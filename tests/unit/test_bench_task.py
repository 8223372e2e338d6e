"""`bench --task`: the run's workload replaced by a Rally task, or nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from femdc_bench.cli import main
from femdc_bench.experiment import ExperimentError
from femdc_bench.rundir import Run

EXP = {
    "name": "t", "provider": {"type": "local"},
    "sites": [{"name": "s1", "hosts": [{"name": "h", "roles": ["database", "keystone",
                                                                "load"]}]},
              {"name": "s2", "hosts": [{"name": "h", "roles": ["load"]}]}],
    "deployment": {"method": "native", "keystone": {"centralized": "s1"}},
    "workload": {"scenarios": [{"name": "keystone.list_users",
                                "runner": {"type": "times", "times": 2}}],
                 "sla": {"failure_rate_max": "0%"}},
}
TASK = """{% set n = n or 3 %}
version: 2
subtasks:
- title: u
  scenario: {KeystoneBasic.create_user: {}}
  runner: {constant: {times: {{ n }}}}
"""


def _run(tmp_path: Path) -> Run:
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(EXP))
    return Run.create(f, tmp_path / "results", run_id="r1")


def test_use_task_replaces_the_workload_and_keeps_the_old(tmp_path: Path) -> None:
    r = _run(tmp_path)
    (tmp_path / "task.yaml").write_text(TASK)
    exp = r.use_task(tmp_path / "task.yaml", {"n": 5})
    (sc,) = exp.workload.scenarios
    assert sc.name == "KeystoneBasic.create_user" and sc.runner.times == 5
    assert sc.sources == ("s1", "s2")
    assert r.experiment().workload.scenarios == exp.workload.scenarios
    assert (r.dir / "tasks" / "task.yaml").read_text() == TASK  # the run stands on its own
    (old,) = r.dir.glob("experiment.*.yaml")
    assert yaml.safe_load(old.read_text())["workload"] == EXP["workload"]
    assert r.experiment().workload.sla.failure_rate_max_pct == 0.0  # kept
    # a second task: the first one's file goes with the experiment that named it
    (tmp_path / "t2.yaml").write_text(TASK)
    r.use_task(tmp_path / "t2.yaml", {})
    kept = [yaml.safe_load(p.read_text())["workload"].get("rally_task")
            for p in sorted(r.dir.glob("experiment.*.yaml"))]
    assert None in kept and any(k and (r.dir / k).read_text() == TASK for k in kept)


def test_a_bad_task_changes_nothing(tmp_path: Path) -> None:
    r = _run(tmp_path)
    before = (r.dir / "experiment.yaml").read_bytes()
    (tmp_path / "bad.yaml").write_text(TASK.replace("create_user", "create_userz"))
    with pytest.raises(ExperimentError) as e:
        r.use_task(tmp_path / "bad.yaml", {})
    assert "subtasks[0].scenario.KeystoneBasic.create_userz: unsupported scenario" in str(e.value)
    assert (r.dir / "experiment.yaml").read_bytes() == before
    assert not list(r.dir.glob("experiment.*.yaml"))


@pytest.mark.parametrize(("args", "message"), [
    (["--task-args", "[1, 2]"], "expected a mapping of task args"),
    (["--task-args", "{a: [}"], "not JSON or YAML"),
    (["--from", "s9"], "no site 's9'"),
])
def test_bench_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    _run(tmp_path)
    (tmp_path / "task.yaml").write_text(TASK)
    res = CliRunner().invoke(main, ["--results", str(tmp_path / "results"), "bench", "r1",
                                    "--task", str(tmp_path / "task.yaml"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output
