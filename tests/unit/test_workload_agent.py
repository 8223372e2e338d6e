"""The agent's CLI on specs it must refuse, and its signal handling. No network."""

from __future__ import annotations

import json
import os
import signal

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
