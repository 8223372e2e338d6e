"""Soak (issue 10, item 8): a long duration workload from three sites, and the memory of
the parts that live through it, at its start and at its end (prints figures).

Run by hand, as root, on a quiet machine (nothing else deploying or benchmarking):

    .venv/bin/python tests/benchmarks/soak.py --minutes 30

The default three-site experiment (centralized Keystone, 25 ms one way, the userspace
WAN emulator on this kernel) with one duration scenario per site at concurrency 2. Once
the load has started (samples/p0/start.json) and again just before it ends, the RSS
and PSS of: the CLI (`femdc-bench run`, with its InfluxDB writer), each load host's
workload agent (agent/agent.pid), each host's WAN delay daemon (wan/nfqdelay.pid), and
each host's sampler (run/femdc-sampler.pid); then the growth per process. The run is
destroyed at the end (`--keep` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "femdc_bench.cli"]


def experiment(minutes: float) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "topologies" / "default.yaml").read_text())
    doc["name"] = "soak"
    doc["workload"] = {
        "scenarios": [{"name": "keystone.authenticate_and_validate_token",
                       "runner": {"type": "duration", "duration": f"{int(minutes * 60)}s",
                                  "concurrency": 2},
                       "from": "all", "to": "all"}],
        "sla": {"failure_rate_max": "1%"}}
    return doc


def memory_kb(pid: int) -> dict[str, int]:
    """RSS and PSS of one process (kB), from /proc."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key.lower()] = int(rest.split()[0])
    except OSError:
        pass
    return out


def pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def snapshot(cli_pid: int, run_id: str) -> dict[str, dict[str, int]]:
    hosts = Path("/var/lib/femdc-bench/runs") / run_id
    procs = {"cli": cli_pid}
    for h in sorted(p for p in hosts.iterdir() if p.is_dir()):
        for name, rel in (("agent", "agent/agent.pid"), ("wan-daemon", "wan/nfqdelay.pid"),
                          ("sampler", "run/femdc-sampler.pid")):
            pid = pidfile(h / rel)
            if pid:
                procs[f"{h.name} {name}"] = pid
    return {name: memory_kb(pid) for name, pid in procs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    results = Path(tempfile.mkdtemp(prefix="femdc-soak-"))
    exp = results / "soak.yaml"
    exp.write_text(yaml.safe_dump(experiment(a.minutes), sort_keys=False))
    run_id = f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    log = (results / "run.log").open("w")
    proc = subprocess.Popen([*CLI, "run", str(exp), "--keep", "--run-id", run_id],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    start = results / run_id / "samples" / "p0" / "start.json"
    while not start.exists():
        if proc.poll() is not None:
            sys.exit(f"the run ended before its load started: see {results / 'run.log'}")
        time.sleep(1)
    start_ns = json.loads(start.read_text())["start_ns"]
    time.sleep(max(0.0, (start_ns - time.time_ns()) / 1e9) + 30)  # settled: 30 s in
    first = snapshot(proc.pid, run_id)
    time.sleep(max(0.0, a.minutes * 60 - 60))  # 30 s before the end
    last = snapshot(proc.pid, run_id)
    rc = proc.wait()
    print(f"soak: {a.minutes:g} min of load from 3 sites; run exited {rc} "
          f"({results / run_id})")
    print(f"{'process':32} {'RSS start':>10} {'RSS end':>10} {'PSS start':>10} "
          f"{'PSS end':>10} {'growth':>8}")
    for name, m0 in first.items():
        m1 = last.get(name, {})
        if not m0 or not m1:
            print(f"{name:32} (gone: {'start' if not m0 else 'end'})")
            continue
        print(f"{name:32} {m0['rss'] / 1024:>9.1f}M {m1['rss'] / 1024:>9.1f}M "
              f"{m0['pss'] / 1024:>9.1f}M {m1['pss'] / 1024:>9.1f}M "
              f"{100 * (m1['rss'] - m0['rss']) / m0['rss']:>7.1f}%")
    rep = json.loads((results / run_id / "report.json").read_text())
    n = sum(r["count"] for r in rep["rows"] if not r.get("action"))
    errors = sum(r["errors"] for r in rep["rows"] if not r.get("action"))
    print(f"iterations {n}, errors {errors}")
    if not a.keep:
        subprocess.run([*CLI, "destroy", run_id], env=env, cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    main()
