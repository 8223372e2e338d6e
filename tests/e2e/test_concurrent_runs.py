"""Two runs at once on one machine (issue 10, item 3): two `femdc-bench run` of the same
experiment started together, each with its own run directory, subnet, namespaces, sshds,
Keystone, MariaDB, InfluxDB, WAN emulation (run-named iptables chains, queues and qdiscs
in its own namespaces) and load; both finish with every iteration stored, each in its
own InfluxDB, and each `destroy` removes only its own run. The shared venv builds wait on
one lock (tests/unit/test_locked_venv_module.py: a build here would cost minutes)."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_local_run import (
    CLI,
    influx_counts,
    keystone_two_sites,
    leftovers,
    why,
    write_experiment,
)

pytestmark = pytest.mark.e2e


def test_two_runs_at_once_do_not_collide(tmp_path: Path, results: Path) -> None:
    exp = write_experiment(tmp_path / "twin.yaml", keystone_two_sites(
        "e2e-twin", {"type": "times", "times": 30, "concurrency": 2}, "20ms"))
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    t0 = time.monotonic()
    procs = [subprocess.Popen([*CLI, "run", str(exp), "--keep"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=1800) for p in procs]
    elapsed = time.monotonic() - t0
    runs = sorted(d for d in results.iterdir() if d.name.startswith("e2e-twin-"))
    try:
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, why(subprocess.CompletedProcess(p.args, p.returncode,
                                                                      out, err))
            assert "SLA met" in out
        # Started in the same second, they still have a directory each.
        assert len(runs) == 2, [r.name for r in runs]
        states = [json.loads((r / "provider" / "state.json").read_text()) for r in runs]
        nets = [ipaddress.IPv4Network(s["subnet"]) for s in states]
        assert not nets[0].overlaps(nets[1]), nets
        assert states[0]["bridge"] != states[1]["bridge"]
        urls = [json.loads((r / "state.json").read_text())["metrics_url"] for r in runs]
        assert urls[0] != urls[1]
        for run, url in zip(runs, urls, strict=True):
            counts = influx_counts(url, run.name)
            assert counts == {(s, "core", "authenticate_and_validate_token"): 30
                              for s in ("core", "edge")}, (run.name, counts)
            other = runs[1] if run == runs[0] else runs[0]
            assert influx_counts(url, other.name) == {}  # each its own InfluxDB
            check = json.loads((run / "wan" / "p0" / "check.json").read_text())
            assert check["ok"], check
        print(f"\ntwo runs at once: {elapsed:.0f} s for both "
              f"(subnets {nets[0]} and {nets[1]})")
        # destroy of one leaves the other whole.
        first = subprocess.run([*CLI, "destroy", runs[0].name], env=env, text=True,
                               capture_output=True, timeout=600)
        assert first.returncode == 0, first.stderr
        assert leftovers(runs[0]) == []
        assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True
                              ).stdout.count(f"femdc-{states[1]['short']}-") == 2
    finally:
        for run in runs:
            if (run / "provider" / "state.json").exists():
                subprocess.run([*CLI, "destroy", run.name], env=env, capture_output=True,
                               timeout=600)
        for run in runs:
            if (run / "provider" / "state.destroyed.json").exists():
                assert leftovers(run) == []
