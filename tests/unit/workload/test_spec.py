"""AgentSpec: JSON round trip and validation. No network."""

from __future__ import annotations

import json
import os
import stat

import pytest

from femdc_bench.model import RunnerSpec, ScenarioSpec, SlaSpec
from femdc_bench.workload.spec import AgentSpec, AuthSpec, JobSpec, SpecError

AUTH = AuthSpec(
    auth_url="http://127.0.0.1:5000/v3",
    username="admin",
    password="s3cret-pw",
    project_name="admin",
    region_name="RegionTwo",
)


def spec() -> AgentSpec:
    return AgentSpec(
        site="site1",
        host="site1-ctl",
        jobs=(
            JobSpec(
                scenario="keystone.authenticate_and_validate_token",
                runner=RunnerSpec(type="times", times=100, concurrency=4),
                target_site="site2",
                auth=AUTH,
                name_prefix="femdc-r1-",
                args={"use_admin": True},
                sla=SlaSpec(failure_rate_max_pct=0.0, p95_ms_max=250.0),
            ),
            JobSpec(
                scenario="keystone.list_users",
                runner=RunnerSpec(type="duration", duration_s=30.0, concurrency=2),
                target_site="site1",
                auth=AUTH,
                name_prefix="femdc-r1-",
                request_timeout_s=10.0,
            ),
        ),
    )


def test_round_trip() -> None:
    s = spec()
    assert AgentSpec.from_json(s.to_json()) == s
    assert AgentSpec.from_dict(json.loads(s.to_json())) == s


def test_minimal_job_gets_defaults() -> None:
    d = json.loads(spec().to_json())
    job = d["jobs"][1]
    for key in ("args", "sla", "request_timeout_s"):
        del job[key]
    for key in ("user_domain_name", "project_domain_name", "region_name", "interface", "verify"):
        del job["auth"][key]
    del d["version"]
    s = AgentSpec.from_dict(d)
    j = s.jobs[1]
    assert j.args == {} and j.sla == SlaSpec() and j.request_timeout_s == 60.0
    assert j.auth.user_domain_name == "Default" and j.auth.region_name is None
    assert j.auth.interface == "public" and j.auth.verify is True


def test_password_never_in_repr() -> None:
    assert "s3cret-pw" not in repr(spec())
    assert "s3cret-pw" in spec().to_json()  # but it is in the file


def test_write_is_0600(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "SPEC.json")
    spec().write(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert AgentSpec.read(path) == spec()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "$.extra: unknown key"),
        (lambda d: d.pop("site"), "$.site: required"),
        (lambda d: d.update(jobs=[]), "$.jobs: expected a non-empty list"),
        (lambda d: d.update(version=2), "$.version: unsupported"),
        (lambda d: d["jobs"][0]["auth"].update(pasword="x"), "$.jobs[0].auth.pasword: unknown"),
        (lambda d: d["jobs"][0]["auth"].pop("password"), "$.jobs[0].auth.password: required"),
        (lambda d: d["jobs"][0]["auth"].update(auth_url="ftp://x"), "auth.auth_url: expected"),
        (lambda d: d["jobs"][0]["runner"].update(type="ramp"), "$.jobs[0].runner.type: expected"),
        (lambda d: d["jobs"][0]["runner"].update(times=0), "$.jobs[0].runner.times: must be"),
        (lambda d: d["jobs"][0]["runner"].update(times=True), "runner.times: expected an integer"),
        (lambda d: d["jobs"][0]["runner"].update(concurrency=0), "runner.concurrency: must be"),
        (lambda d: d["jobs"][0]["runner"].update(duration_s=3), "runner.duration_s: only for"),
        (lambda d: d["jobs"][1]["runner"].pop("duration_s"), "jobs[1].runner.duration_s: required"),
        (lambda d: d["jobs"][1]["runner"].update(times=3), "jobs[1].runner.times: only for"),
        (lambda d: d["jobs"][0].update(args=[]), "$.jobs[0].args: expected an object"),
        (lambda d: d["jobs"][0]["sla"].update(p95_ms_max="x"), "sla.p95_ms_max: expected a number"),
        (lambda d: d["jobs"][0].update(name_prefix=""), "name_prefix: expected a non-empty"),
    ],
)
def test_invalid_specs_name_the_path(mutate: object, message: str) -> None:
    d = json.loads(spec().to_json())
    mutate(d)  # type: ignore[operator]
    with pytest.raises(SpecError) as e:
        AgentSpec.from_dict(d)
    assert message in str(e.value)
    assert "s3cret-pw" not in str(e.value)


def test_not_json() -> None:
    with pytest.raises(SpecError, match="not JSON"):
        AgentSpec.from_json("{")


def test_job_from_experiment_scenario() -> None:
    sc = ScenarioSpec(
        name="keystone.list_users",
        runner=RunnerSpec(type="times", times=5, concurrency=1),
        args={"a": 1},
        sources=("s1",),
    )
    j = JobSpec.from_scenario(sc, target_site="s2", auth=AUTH, name_prefix="femdc-x-")
    assert (j.scenario, j.runner, j.args, j.target_site) == (sc.name, sc.runner, {"a": 1}, "s2")


def test_share_runner_splits_concurrency_and_times_over_hosts() -> None:
    from femdc_bench.model import RunnerSpec
    from femdc_bench.workload.spec import share_runner

    times = RunnerSpec(type="times", concurrency=5, times=11)
    shares = share_runner(times, 2)
    assert [s.concurrency for s in shares if s] == [3, 2]
    assert sum(s.times or 0 for s in shares if s) == 11
    assert [s.times for s in shares if s] == [7, 4]
    # more hosts than concurrency: the extra hosts run nothing
    assert share_runner(RunnerSpec(type="times", concurrency=2, times=4), 3)[2] is None
    # fewer iterations than workers: a worker share never exceeds its iterations
    one = share_runner(RunnerSpec(type="times", concurrency=4, times=1), 2)
    assert [s and (s.concurrency, s.times) for s in one] == [(1, 1), None]
    dur = share_runner(RunnerSpec(type="duration", concurrency=3, duration_s=30.0), 2)
    assert [(s.concurrency, s.duration_s) for s in dur if s] == [(2, 30.0), (1, 30.0)]
    assert share_runner(times, 1) == [times]


def test_rps_runner_round_trip_and_share() -> None:
    from femdc_bench.model import RpsRamp
    from femdc_bench.workload.spec import runner_from_dict, runner_to_dict, share_runner

    ramp = RunnerSpec(type="rps", concurrency=8, times=100, rps_ramp=RpsRamp(2, 10, 2, 5),
                      timeout_s=3.0)
    const = RunnerSpec(type="rps", concurrency=5, times=9, rps=30.0)
    for r in (ramp, const):
        assert runner_from_dict(json.loads(json.dumps(runner_to_dict(r)))) == r
    a, b = share_runner(const, 2)
    assert a is not None and b is not None
    assert (a.times, a.concurrency, a.rps) == (5, 3, pytest.approx(30 * 5 / 9))
    assert (b.times, b.concurrency, b.rps) == (4, 2, pytest.approx(30 * 4 / 9))
    a, b = share_runner(ramp, 2)
    assert a is not None and a.rps_ramp == RpsRamp(1, 5, 1, 5) and a.times == 50


@pytest.mark.parametrize(("runner", "message"), [
    ({"type": "rps", "times": 5}, "$.runner: type 'rps' needs either 'rps' or 'rps_ramp'"),
    ({"type": "rps", "times": 5, "rps": 1, "rps_ramp": {"start": 1, "end": 2, "step": 1}},
     "needs either"),
    ({"type": "rps", "times": 5, "rps_ramp": {"start": 3, "end": 2, "step": 1}},
     "$.runner.rps_ramp.end: must be >= start"),
    ({"type": "times", "times": 5, "rps": 3}, "$.runner.rps: only for type 'rps'"),
    ({"type": "times", "times": 5, "timeout_s": 0}, "$.runner.timeout_s: must be > 0"),
])
def test_bad_rps_runners(runner: dict, message: str) -> None:
    from femdc_bench.workload.spec import runner_from_dict

    with pytest.raises(SpecError) as e:
        runner_from_dict(runner, "$.runner")
    assert message in str(e.value)


def test_request_timeout_never_outlives_the_iteration_timeout() -> None:
    sc = ScenarioSpec(name="keystone.list_users",
                      runner=RunnerSpec(type="times", times=1, timeout_s=5.0))
    auth = AuthSpec(auth_url="http://x:5000/v3", username="a", password="p", project_name="a")
    job = JobSpec.from_scenario(sc, target_site="s", auth=auth, name_prefix="p-")
    assert job.request_timeout_s == 5.0
