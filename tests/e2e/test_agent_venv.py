"""The agent venv of the devstack and kolla methods, built for real by ansible-playbook
through the shared locked-venv tasks (pip from PyPI), on a host that does not share the
controller's filesystem (the testbed path: the lock is copied, the host builds), then
found and left alone by a second run. The host is this machine over ansible's local
connection: no testbed here, and the tasks are the same."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from femdc_bench.deploy import agent
from femdc_bench.model import Host, Inventory

pytestmark = pytest.mark.e2e


def test_agent_venv_builds_once_and_imports_keystoneauth1(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root (writes /var/cache/femdc-bench)")
    host = Host("s1-load", "127.0.0.1", "s1", ("load",), workdir=str(tmp_path / "host"),
                extra={"ansible_connection": "local"})
    inv = Inventory(provider="local", hosts=(host,), shared_filesystem=False)
    log = tmp_path / "logs" / "agent.log"
    python = agent.ensure_agent_python(inv, tmp_path, log)
    assert python == f"{agent.venv_dir()}/bin/python"
    out = subprocess.run([python, "-c", "import keystoneauth1; print(keystoneauth1.__version__)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "5.18.1"
    # The testbed path copied the lock to the host's work directory.
    assert (Path(host.workdir) / "agent" / "agent.lock").read_bytes() == agent.LOCK.read_bytes()
    marker = Path(agent.venv_dir()) / ".femdc-lock.sha256"
    before = marker.stat().st_mtime_ns
    agent.ensure_agent_python(inv, tmp_path, log)  # found: not rebuilt
    assert marker.stat().st_mtime_ns == before
    assert "agent venv | build" in log.read_text()
