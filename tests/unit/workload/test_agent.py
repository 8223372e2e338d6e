"""The agent's CLI on specs it must refuse, and its signal handling. No network."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from femdc_bench.workload import agent


def write(tmp_path: object, data: object) -> str:
    path = os.path.join(str(tmp_path), "SPEC.json")
    with open(path, "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))
    return path


def job(**over: object) -> dict[str, object]:
    j: dict[str, object] = {
        "scenario": "keystone.list_users",
        "runner": {"type": "times", "times": 1},
        "target_site": "s1",
        "auth": {
            "auth_url": "http://127.0.0.1:9/v3",
            "username": "admin",
            "password": "hunter2-secret",
            "project_name": "admin",
        },
        "name_prefix": "femdc-t-",
    }
    j.update(over)
    return j


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{", "not JSON"),
        ({"site": "s1", "host": "h", "jobs": [job(scenario="keystone.nope")]}, "unknown scenario"),
        ({"site": "s1", "host": "h", "jobs": [job(args={"bogus": 1})]}, "unknown arg 'bogus'"),
        ({"site": "s1", "host": "h", "jobs": [job(runner={"type": "times"})]}, "times: required"),
    ],
)
def test_bad_spec_exits_2_with_one_line(
    tmp_path: object, capsys: pytest.CaptureFixture[str], spec: object, message: str
) -> None:
    path = write(tmp_path, spec)
    out = os.path.join(str(tmp_path), "out.jsonl")
    assert agent.main(["--spec", path, "--out", out]) == agent.EXIT_SPEC
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "hunter2" not in err
    assert not os.path.exists(out)


def test_missing_spec_file(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    missing = os.path.join(str(tmp_path), "nope.json")
    assert agent.main(["--spec", missing, "--out", os.devnull]) == agent.EXIT_SPEC
    assert "cannot read" in capsys.readouterr().err


def test_stopper_first_signal_stops_second_forces() -> None:
    s = agent.Stopper()
    s(signal.SIGTERM, None)
    assert s.stop.is_set() and not s.force.is_set()
    s(signal.SIGINT, None)
    assert s.force.is_set()


def test_agent_imports_only_what_hosts_have() -> None:
    """spec/runner/sink/sla/registry/agent must not need openstacksdk, click or rich."""
    import sys

    for mod in ("openstack", "click", "rich"):
        assert mod not in sys.modules or not sys.modules[mod].__name__.startswith("femdc")
    src = os.path.dirname(agent.__file__)
    for root, _dirs, files in os.walk(src):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(root, name)) as f:
                    text = f.read()
                for banned in ("import openstack", "from openstack", "import click", "import rich"):
                    assert banned not in text, f"{name}: {banned}"


# --------------------------------------------------------------------------- whole agent, faked


class FakeJobContext:
    """Stands in for context.JobContext: no keystoneauth1, no network."""

    events: list[str] = []
    kill_at: int | None = None  # send SIGTERM to ourselves at this iteration
    calls = 0

    def __init__(self, job: object) -> None:
        self.job = job
        self.args: dict[str, object] = dict(job.args)  # type: ignore[attr-defined]
        self.identity: object | None = None

    def open(self, services: object = ("identity",), cache: object = None) -> None:
        from femdc_bench.workload.context import SetupError

        if self.job.auth.password == "bad":  # type: ignore[attr-defined]
            raise SetupError("cannot authenticate at http://127.0.0.1:9/v3: Unauthorized")
        self.identity = object()

    def worker(self, n: int) -> int:
        return n

    def close(self) -> None:
        FakeJobContext.events.append("close")


@pytest.fixture
def fake_scenario(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from femdc_bench.workload import context
    from femdc_bench.workload.registry import REGISTRY

    FakeJobContext.events = []
    FakeJobContext.calls = 0
    FakeJobContext.kill_at = None
    monkeypatch.setattr(context, "JobContext", FakeJobContext)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    name = "test.agent_fake"

    def teardown(jc: FakeJobContext) -> list[str]:
        FakeJobContext.events.append("teardown")
        return []

    def run(ctx: int) -> None:
        time.sleep(0.002)  # let every worker get iterations
        FakeJobContext.calls += 1
        if FakeJobContext.calls == FakeJobContext.kill_at:
            os.kill(os.getpid(), signal.SIGTERM)  # the agent's handler is installed by now
        if ctx == 0:
            raise RuntimeError("worker zero always fails")

    REGISTRY.scenario(name, service="test", teardown=teardown)(run)
    yield name
    REGISTRY._scenarios.pop(name)
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_agent_runs_jobs_writes_samples_and_summary(
    tmp_path: object, capsys: pytest.CaptureFixture[str], fake_scenario: str
) -> None:
    good = job(scenario=fake_scenario, runner={"type": "times", "times": 20, "concurrency": 3})
    bad = job(scenario=fake_scenario)
    bad["auth"] = dict(bad["auth"], password="bad")  # type: ignore[arg-type]
    path = write(tmp_path, {"site": "s1", "host": "h1", "jobs": [good, bad]})
    out = os.path.join(str(tmp_path), "SAMPLES.jsonl")
    pid = os.path.join(str(tmp_path), "agent.pid")
    assert agent.main(["--spec", path, "--out", out, "--pidfile", pid]) == agent.EXIT_SETUP
    std = capsys.readouterr()
    summary = json.loads(std.out)
    j0, j1 = summary["jobs"]
    assert (j0["count"], j1["count"], summary["samples"]) == (20, 0, 20)
    assert 0 < j0["errors"] < 20  # worker 0's iterations
    assert "Unauthorized" in j1["setup_error"] and not summary["interrupted"]
    assert std.err.count("\n") == 1 and "job 1" in std.err and "hunter2" not in std.err
    assert FakeJobContext.events == ["teardown", "close", "close"]  # no teardown unopened
    with open(out) as f:
        rows = [json.loads(line) for line in f]
    assert sorted(r["iteration"] for r in rows) == list(range(20))
    assert {(r["site"], r["host"], r["operation"], r["service"]) for r in rows} == {
        ("s1", "h1", "agent_fake", "test")
    }
    errs = [r for r in rows if r["status"] == "error"]
    assert errs and errs[0]["error"] == "RuntimeError: worker zero always fails"
    assert not os.path.exists(pid)


def test_agent_stopped_by_signal_skips_later_jobs(
    tmp_path: object, capsys: pytest.CaptureFixture[str], fake_scenario: str
) -> None:
    FakeJobContext.kill_at = 5
    long = job(scenario=fake_scenario, runner={"type": "duration", "duration_s": 30})
    path = write(tmp_path, {"site": "s1", "host": "h1", "jobs": [long, long]})
    out = os.path.join(str(tmp_path), "SAMPLES.jsonl")
    t = time.monotonic()
    code = agent.main(["--spec", path, "--out", out])
    assert time.monotonic() - t < 10
    assert code == agent.EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    j0, j1 = summary["jobs"]
    assert summary["interrupted"] and j0["stopped"] and j0["count"] > 0 and j1["skipped"]
    assert "teardown" in FakeJobContext.events


def test_agent_waits_for_the_common_start(
    tmp_path: object, capsys: pytest.CaptureFixture[str], fake_scenario: str
) -> None:
    """--start-file: GO.ready once set up, no iteration before the time written in GO."""
    import threading

    path = write(tmp_path, {"site": "s1", "host": "h1", "jobs": [
        job(scenario=fake_scenario, runner={"type": "times", "times": 3, "concurrency": 1})]})
    out = os.path.join(str(tmp_path), "SAMPLES.jsonl")
    go = os.path.join(str(tmp_path), "go")
    start_ns: list[int] = []

    def controller() -> None:
        deadline = time.monotonic() + 10
        while not os.path.exists(go + ".ready") and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the agent must still be waiting, not running
        start_ns.append(time.time_ns() + 200_000_000)
        with open(go, "w") as f:
            f.write(str(start_ns[0]))

    t = threading.Thread(target=controller)
    t.start()
    assert agent.main(["--spec", path, "--out", out, "--start-file", go]) == agent.EXIT_OK
    t.join()
    with open(out) as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 3
    assert min(r["t0_ns"] for r in rows) >= start_ns[0]


def test_agent_with_a_bad_spec_still_releases_the_others(tmp_path: object) -> None:
    path = write(tmp_path, "{")
    go = os.path.join(str(tmp_path), "go")
    assert agent.main(["--spec", path, "--out", os.devnull, "--start-file", go]) == \
        agent.EXIT_SPEC
    assert os.path.exists(go + ".ready")
