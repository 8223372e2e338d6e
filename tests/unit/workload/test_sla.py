"""Rally's SLAs over samples, and the Rally task results layout of a run's samples."""

from __future__ import annotations

from pathlib import Path

import yaml

from femdc_bench.experiment import load as load_experiment
from femdc_bench.model import OutliersSla, Sample, SlaSpec
from femdc_bench.report.rally_export import rally_json
from femdc_bench.workload.sla import rally_sla_results

T0 = 1_700_000_000_000_000_000


def it(i: int, ms: float, status: str = "ok", site: str = "s1", host: str = "h1",
       workload: str = "w", error: str = "") -> Sample:
    return Sample(site, site, "identity", "KeystoneBasic.create_delete_user",
                  T0 + i * 1_000_000_000, ms, status, error, host, i, "", {}, workload)


def act(i: int, name: str, ms: float, host: str = "h1", site: str = "s1") -> Sample:
    return Sample(site, site, "identity", "KeystoneBasic.create_delete_user",
                  T0 + i * 1_000_000_000 + 1000, ms, "ok", "", host, i, name, {}, "w")


def by_criterion(sla: SlaSpec, samples: list[Sample]) -> dict[str, tuple[bool, str]]:
    return {r.criterion: (r.success, r.detail) for r in rally_sla_results(sla, samples)}


def test_failure_rate_iteration_time_and_average() -> None:
    samples = [it(0, 100), it(1, 300), it(2, 2600, "error", error="X: y")]
    res = by_criterion(SlaSpec(failure_rate_max_pct=50, max_seconds_per_iteration=2.5,
                               max_avg_duration_s=0.25), samples)
    assert res["failure_rate"] == (True, "Failure rate criteria 0.00% <= 33.33% <= 50.00% - "
                                         "Passed")
    # the failed iteration counts for the longest one, not for the average (Rally's rules)
    assert res["max_seconds_per_iteration"] == (
        False, "Maximum seconds per iteration 2.60s <= 2.50s - Failed")
    assert res["max_avg_duration"] == (True, "Average duration of one iteration 0.20s <= "
                                             "0.25s - Passed")
    assert by_criterion(SlaSpec(failure_rate_min_pct=50), samples)["failure_rate"][0] is False


def test_average_per_atomic_action() -> None:
    samples = [it(0, 100), act(0, "keystone.create_user", 60), act(0, "keystone.delete_user", 30),
               it(1, 200), act(1, "keystone.create_user", 140),
               it(2, 900, "error"), act(2, "keystone.create_user", 900)]  # failed: not counted
    sla = SlaSpec(max_avg_duration_per_atomic=(("keystone.create_user", 0.09),
                                               ("keystone.delete_user", 0.05)))
    ok, detail = by_criterion(sla, samples)["max_avg_duration_per_atomic"]
    assert not ok
    assert "Action: 'keystone.create_user'. 0.10s <= 0.09s" in detail
    assert "Action: 'keystone.delete_user'. 0.03s <= 0.05s" in detail


def test_outliers_are_counted_against_the_iterations_before_them() -> None:
    durations = [100, 102, 98, 101, 99, 100, 500, 101, 99, 600]
    samples = [it(i, d) for i, d in enumerate(durations)]
    res = by_criterion(SlaSpec(outliers=OutliersSla(max=1, min_iterations=3, sigmas=3)),
                       samples)
    assert res["outliers"] == (False, "Maximum number of outliers 2 <= 1 - Failed")
    few = by_criterion(SlaSpec(outliers=OutliersSla(max=0, min_iterations=10, sigmas=3)),
                       samples)
    assert few["outliers"][0] is False  # the 10th (600 ms) is one
    assert by_criterion(SlaSpec(outliers=OutliersSla(max=2)), samples)["outliers"][0]


def test_no_iteration_fails_the_failure_rate() -> None:
    assert by_criterion(SlaSpec(failure_rate_max_pct=0), [])["failure_rate"][0] is False


TASK = """---
version: 2
title: t
subtasks:
- title: users
  scenario: {KeystoneBasic.create_delete_user: {}}
  runner: {constant: {times: 4, concurrency: 2}}
  sla: {failure_rate: {max: 0}, max_avg_duration: 1}
"""


def test_export_layout(tmp_path: Path) -> None:
    (tmp_path / "task.yaml").write_text(TASK)
    exp_doc = {
        "name": "x", "provider": {"type": "local"},
        "sites": [{"name": "s1", "hosts": [{"name": "h1", "roles": ["database", "keystone",
                                                                      "load"]}]},
                  {"name": "s2", "hosts": [{"name": "h1", "roles": ["database", "keystone",
                                                                      "load"]}]}],
        "deployment": {"method": "native", "keystone": "per_site"},
        "workload": {"rally_task": "task.yaml"}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp_doc))
    exp = load_experiment(tmp_path / "exp.yaml")
    wl = exp.workload.scenarios[0].workload
    s1 = [it(0, 100, workload=wl), act(0, "keystone.create_user", 60),
          it(1, 120, workload=wl), it(2, 90, "error", workload=wl,
                                        error="HttpError (HTTP 409): Conflict occurred")]
    s1[1] = Sample(**{**s1[1].__dict__, "workload": wl})
    s2 = [it(0, 300, site="s2", host="h1", workload=wl)]
    doc = rally_json("r1", exp, {"p0": s1 + s2}, version="0.1", now=1.7e9)
    assert doc["info"]["format_version"] == "1.2"
    (task,) = doc["tasks"]
    (sub,) = task["subtasks"]
    assert sub["title"] == wl
    w1, w2 = sub["workloads"]
    assert w1["description"] == "KeystoneBasic.create_delete_user from s1 to s1"
    assert w2["description"] == "KeystoneBasic.create_delete_user from s2 to s2"
    assert w1["runner"] == {"constant": {"times": 4, "concurrency": 2}}
    assert list(w1["scenario"]) == ["KeystoneBasic.create_delete_user"]  # args resolved
    assert (w1["total_iteration_count"], w1["failed_iteration_count"]) == (3, 1)
    assert [d["duration"] for d in w1["data"]] == [0.1, 0.12, 0.09]
    assert w1["data"][0]["atomic_actions"] == [{
        "name": "keystone.create_user", "started_at": (T0 + 1000) / 1e9,
        "finished_at": (T0 + 1000) / 1e9 + 0.06, "children": []}]
    assert w1["data"][2]["error"] == ["HttpError", "Conflict occurred", ""]
    assert abs(w1["load_duration"] - 2.09) < 1e-6
    assert w1["sla"] == {"failure_rate": {"max": 0.0}, "max_avg_duration": 1.0}
    assert [r["criterion"] for r in w1["sla_results"]["sla"]] == ["failure_rate",
                                                                 "max_avg_duration"]
    assert w1["pass_sla"] is False and w2["pass_sla"] is True and task["pass_sla"] is False
    assert [w1["position"], w2["position"]] == [0, 1]
    # every key Rally's importer requires of a workload, and an iteration's types
    for key in ("pass_sla", "sla_results", "sla", "statistics", "contexts", "data",
                "runner", "scenario", "full_duration", "load_duration",
                "total_iteration_count", "failed_iteration_count", "position",
                "description", "hooks", "start_time"):
        assert key in w1
    d = w1["data"][0]
    assert all(isinstance(d[k], t) for k, t in (("duration", float), ("timestamp", float),
                                               ("idle_duration", float), ("output", dict),
                                               ("atomic_actions", list), ("error", list)))
