"""The workload agent's interpreter on load hosts, for deployment methods that bring
their own OpenStack (devstack, kolla).

The native method's agents run with its service venv (it has keystoneauth1). DevStack's
and Kolla's Pythons are theirs (Kolla's live in containers) and a load-only host has
none, so every load host gets a small venv from `playbooks/common/files/agent.lock`
(keystoneauth1 and requests at the native lock's versions), built once per lock.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from femdc_bench import ship
from femdc_bench.ansible import PLAYBOOKS, run_playbook
from femdc_bench.model import Inventory

LOCK = PLAYBOOKS / "common" / "files" / "agent.lock"


def venv_dir(lock: Path = LOCK) -> str:
    """`/var/cache/femdc-bench/venvs/agent-<sha256(lock)[:12]>`."""
    return ship.locked_venv("agent", lock)


def agent_vars(inv: Inventory, lock: Path = LOCK) -> dict[str, Any]:
    """Extra vars of playbooks/common/agent-venv.yml."""
    return {
        "femdc_agent_lock_file": str(lock),
        "femdc_agent_venv_dir": venv_dir(lock),
        "femdc_venv_on_controller": inv.shared_filesystem,
        "femdc_install_packages": inv.provider != "local",
    }


def ensure_agent_python(inv: Inventory, run_dir: Path, log: Path,
                        on_task: Callable[[str], None] | None = None) -> str:
    """Build (or find) the agent venv on every load host; its interpreter's path, the
    same on every host (`Clouds.agent_python`)."""
    run_playbook(PLAYBOOKS / "common" / "agent-venv.yml", inv, run_dir=run_dir, log=log,
                 extra_vars=agent_vars(inv), on_task=on_task)
    return f"{venv_dir()}/bin/python"
