"""The agent venv of devstack/kolla deployments: named by its lock, built by the shared
locked-venv tasks (which also build the WAN daemon's venv)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from femdc_bench import ship
from femdc_bench.deploy import agent
from femdc_bench.model import Host, Inventory


def _inv(provider: str, shared: bool) -> Inventory:
    return Inventory(provider=provider, shared_filesystem=shared,
                     hosts=(Host("s1-n", "10.0.0.2", "s1", ("load",)),))


def test_venv_is_named_by_the_lock() -> None:
    d = agent.venv_dir()
    assert re.fullmatch(r"/var/cache/femdc-bench/venvs/agent-[0-9a-f]{12}", d)
    assert d.endswith(ship.lock_sha256(agent.LOCK)[:12])


def test_lock_pins_keystoneauth1_as_the_native_lock_does() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = [x for x in path.read_text().splitlines() if "==" in x]
        return {x.split("==")[0].lower(): x.split("==")[1] for x in lines}

    mine = pins(agent.LOCK)
    native = pins(agent.PLAYBOOKS / "native" / "files" / "openstack.lock")
    assert {"keystoneauth1", "requests"} <= set(mine)
    assert {k: native[k] for k in mine} == mine


def test_vars_follow_the_inventory() -> None:
    local = agent.agent_vars(_inv("local", True))
    assert local["femdc_venv_on_controller"] is True
    assert local["femdc_install_packages"] is False
    testbed = agent.agent_vars(_inv("static", False))
    assert testbed["femdc_venv_on_controller"] is False
    assert testbed["femdc_install_packages"] is True
    assert testbed["femdc_agent_venv_dir"] == agent.venv_dir()


def test_playbook_builds_on_load_hosts_with_the_shared_tasks() -> None:
    plays = yaml.safe_load((agent.PLAYBOOKS / "common" / "agent-venv.yml").read_text())
    assert plays[0]["hosts"] == "load"
    task = plays[0]["tasks"][-1]
    assert task["ansible.builtin.import_tasks"] == "tasks/locked-venv.yml"
    assert "femdc agent venv ok" in " ".join(task["vars"]["lv_selftest_argv"])
    wan = yaml.safe_load((agent.PLAYBOOKS / "wan" / "tasks" / "venv.yml").read_text())
    assert wan[0]["ansible.builtin.import_tasks"].endswith("common/tasks/locked-venv.yml")
