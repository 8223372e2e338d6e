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


@pytest.mark.parametrize("on_controller", [False, True], ids=["host-builds", "controller"])
def test_uv_builds_a_cold_venv(tmp_path: Path, on_controller: bool) -> None:
    """The same tasks with a venv directory of this test's own (cold: never built, the
    shared cache untouched): uv, copied to the host or the controller's, installs the
    lock, and says so in each package's INSTALLER."""
    import hashlib

    from femdc_bench.ansible import PLAYBOOKS, run_playbook

    lock = tmp_path / "agent.lock"
    lock.write_bytes(agent.LOCK.read_bytes())
    venv = tmp_path / "venvs" / f"agent-{hashlib.sha256(lock.read_bytes()).hexdigest()[:12]}"
    host = Host("s1-load", "127.0.0.1", "s1", ("load",), workdir=str(tmp_path / "host"),
                extra={"ansible_connection": "local"})
    inv = Inventory(provider="local", hosts=(host,), shared_filesystem=on_controller)
    log = tmp_path / "logs" / "agent.log"
    run_playbook(PLAYBOOKS / "common" / "agent-venv.yml", inv, run_dir=tmp_path, log=log,
                 extra_vars={**agent.agent_vars(inv, lock), "femdc_agent_venv_dir": str(venv)})
    site = next(venv.glob("lib/python3*/site-packages"))
    (installer,) = {p.read_text().strip()
                    for p in site.glob("keystoneauth1-*.dist-info/INSTALLER")}
    assert installer == "uv"
    assert (Path(host.workdir) / "agent" / "uv").exists() is not on_controller
    out = subprocess.run([f"{venv}/bin/python", "-c", "import keystoneauth1, requests"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
