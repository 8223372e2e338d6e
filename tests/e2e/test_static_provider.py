"""The `static` provider end to end, over real SSH: hosts it did not create.

Two sites of hosts are made first with the local provider (network namespaces, each with
its own sshd, the run's SSH key in `<run>/ssh/id_ed25519`); a second experiment names
those hosts' addresses and that key under `provider: {type: static}` and is run with
`femdc-bench run` (native method, Keystone only, a small Keystone workload, no WAN
delay): `up` checks each host over SSH, the deploy, bench and report are the ones a
testbed's hosts get (shared_filesystem false: packages checked with dpkg, the venv
built by each host, services under femdc_supervisor=auto). Then `destroy` of the static
run stops its services and removes its work directories on the hosts, which stay up,
and finally the local hosts are destroyed.

The venv: a host that does not share the controller's filesystem builds the service
venv itself from PyPI, and these namespaces have no route to PyPI. They do share this
machine's filesystem, and the venv role skips a build when the venv cache
(`/var/cache/femdc-bench/venvs/openstack-<sha of the lock>`) already holds a complete
venv of the same lock. So the test first ensures that cache on the controller through
the native playbooks' own venv role, as the local provider's deploy does
(`playbooks/native/venv.yml` with femdc_venv_on_controller, on the local run's
inventory): 1-2 minutes the first time, seconds once built. Each static host then runs
the per-host venv path, finds the venv complete and uses it. What this does not show:
a host building the venv from PyPI itself (a testbed node does that). The WAN is left
off for the same reason: the userspace fallback this kernel needs would build its own
venv on each host.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from femdc_bench import ansible
from femdc_bench.deploy import native
from femdc_bench.rundir import Run
from tests.e2e.test_local_run import femdc, leftovers, processes_with, write_experiment

pytestmark = pytest.mark.e2e

HOST_ROOT = Path("/var/lib/femdc-bench/runs")


def experiment(name: str, provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "provider": provider,
        "sites": [
            {"name": "core", "hosts": [{"name": "ctl",
                                        "roles": ["database", "keystone", "load"]}]},
            {"name": "edge1", "hosts": [{"name": "node", "roles": ["load"]}]},
        ],
        "deployment": {"method": "native", "keystone": {"centralized": "core"},
                       "database": "per_site"},
        "workload": {
            "scenarios": [{"name": "keystone.authenticate_and_validate_token",
                           "runner": {"type": "times", "times": 20, "concurrency": 2}}],
            "sla": {"failure_rate_max": "0%"},
        },
        "metrics": {"influxdb": "local"},
    }


def ensure_venv(hosts_run: Path) -> float:
    """The service venv in the shared cache, built on the controller by the venv role
    (skipped when a complete venv of the lock is there). Seconds it took."""
    run = Run.open(str(hosts_run))
    t0 = time.monotonic()
    ansible.run_playbook(
        ansible.PLAYBOOKS / "native" / "venv.yml", run.inventory(), run_dir=run.dir,
        log=run.log("venv"),
        extra_vars={"femdc_venv_dir": native.venv_dir(), "femdc_lock_file": str(native.LOCK),
                    "femdc_venv_on_controller": True, "femdc_python": "/usr/bin/python3"})
    return time.monotonic() - t0


def test_static_provider_runs_on_ssh_hosts(tmp_path: Path, results: Path) -> None:
    t_start = time.monotonic()
    hosts_file = write_experiment(tmp_path / "hosts.yaml",
                                  experiment("e2e-hosts", {"type": "local"}))
    femdc(results, "up", str(hosts_file), "--run-id", "hosts", check=True)
    hosts_run = results / "hosts"
    try:
        venv_s = ensure_venv(hosts_run)
        inv = json.loads((hosts_run / "inventory.json").read_text())
        key = str(hosts_run / "ssh" / "id_ed25519")
        addresses = {h["alias"]: h["address"] for h in inv["hosts"]}
        static = {"type": "static", "hosts": {
            alias: {"address": addr, "user": "root", "port": 22, "key": key}
            for alias, addr in addresses.items()}}

        # A host that does not answer: up fails with one line naming it, nothing deployed.
        wrong = json.loads(json.dumps(static))
        wrong["hosts"]["edge1-node"]["port"] = 2
        bad_file = write_experiment(tmp_path / "wrong.yaml", experiment("e2e-wrong", wrong))
        proc = femdc(results, "up", str(bad_file), "--run-id", "wrong")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "hosts not reachable over SSH" in proc.stderr and "edge1-node" in proc.stderr
        assert "port 2: Connection refused" in proc.stderr  # and why
        assert "core-ctl" not in proc.stderr.split("hosts not reachable")[1]
        femdc(results, "destroy", "wrong", check=True)

        # The dry run names the hosts as they are.
        exp_file = write_experiment(tmp_path / "static.yaml", experiment("e2e-static", static))
        proc = femdc(results, "up", "--dry-run", str(exp_file), check=True)
        for alias, addr in addresses.items():
            assert alias in proc.stdout and f"root@{addr}:22" in proc.stdout

        t0 = time.monotonic()
        proc = femdc(results, "run", str(exp_file), "--keep", "--run-id", "static", check=True)
        run_s = time.monotonic() - t0
        run_dir = results / "static"
        assert "SLA met" in proc.stdout and "read back from InfluxDB" in proc.stdout
        state = json.loads((run_dir / "state.json").read_text())
        assert {k: v["status"] for k, v in state["phases"].items()} == {
            "up": "done", "deploy": "done", "emulate@p0": "done", "check@p0": "done",
            "bench@p0": "done", "report": "done", "backup": "done"}
        sinv = json.loads((run_dir / "inventory.json").read_text())
        assert sinv["provider"] == "static" and sinv["shared_filesystem"] is False
        assert {h["alias"]: h["address"] for h in sinv["hosts"]} == addresses
        report = json.loads((run_dir / "report.json").read_text())
        rows = {(r["site"], r["target_site"]): r for r in report["rows"]}
        assert set(rows) == {("core", "core"), ("edge1", "core")}
        for r in rows.values():
            assert r["count"] == 20 and r["errors"] == 0, r  # every site runs the scenario
            assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["max_ms"]
        # the per-host venv path ran (each host got the lock and checked its venv) and
        # found the venv built
        deploy_log = (run_dir / "logs" / "deploy.log").read_text()
        assert "venv | the lock (and self-test file) on the host" in deploy_log
        assert "venv | build once on the controller" not in deploy_log
        build = deploy_log.split("TASK [venv : venv | build]", 1)[1].split("TASK [", 1)[0]
        assert "ok: [core-ctl]" in build and "changed:" not in build, build
        workdirs = [HOST_ROOT / "static" / a for a in addresses]
        assert all(d.is_dir() for d in workdirs)
        assert processes_with(f"{HOST_ROOT}/static/")  # its services run on the hosts

        proc = femdc(results, "destroy", "static", check=True)
        assert "OpenStack services and their data on every host" in proc.stderr
        assert processes_with(f"{HOST_ROOT}/static/") == []
        assert not any(d.exists() for d in workdirs)
        assert not (HOST_ROOT / "static").exists()  # the run's directory above them
        assert (run_dir / "provider" / "state.destroyed.json").exists()
        # the hosts are not the static provider's: still there and answering over SSH
        assert (hosts_run / "provider" / "state.json").exists()
        again = femdc(results, "up", str(exp_file), "--run-id", "static-again", check=True)
        assert "core-ctl" in again.stdout
        femdc(results, "destroy", "static-again", check=True)
    finally:
        # a run kept on these hosts by a failure goes first: its destroy reaches them
        for kept in ("static", "static-again"):
            if (results / kept / "provider" / "state.json").exists():
                femdc(results, "destroy", kept)
        femdc(results, "destroy", "hosts")
    assert leftovers(hosts_run) == []
    print(f"\nvenv ensured in {venv_s:.0f}s; static run (up+deploy+bench+report+backup) "
          f"{run_s:.0f}s; whole test {time.monotonic() - t_start:.0f}s")
