"""Every playbook passes `ansible-playbook --syntax-check` (a YAML slip in a task name
once failed every bench of a run at its first task)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from femdc_bench.ansible import COMMON_LIBRARY

PLAYBOOKS = Path(__file__).parents[2] / "playbooks"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def playbooks() -> list[str]:
    """Every */*.yml that is a list of plays (vars.yml files are not)."""
    return sorted(p.relative_to(PLAYBOOKS).as_posix() for p in PLAYBOOKS.glob("*/*.yml")
                  if isinstance(yaml.safe_load(p.read_text()), list))


def test_the_playbooks_are_found() -> None:
    assert {"common/collect.yml", "native/deploy.yml",
            "wan/apply.yml"} <= set(playbooks())


@pytest.mark.parametrize("playbook", playbooks())
def test_syntax(playbook: str) -> None:
    env = {**os.environ, "ANSIBLE_LIBRARY": str(COMMON_LIBRARY)}  # as ansible._env sets it
    p = subprocess.run([str(ANSIBLE_PLAYBOOK), "--syntax-check", "-i", "localhost,",
                        str(PLAYBOOKS / playbook)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
