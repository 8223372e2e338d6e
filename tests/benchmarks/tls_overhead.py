"""What TLS between sites costs (issue 10, item 5): p50 per operation, TLS against plain,
on the same layout, with WAN delay (prints figures).

Run by hand, as root, on a quiet machine (nothing else deploying or benchmarking):

    .venv/bin/python tests/benchmarks/tls_overhead.py [--rounds 2] [--delay 25ms]

Two deployments of one experiment that differ only in `deployment.tls`: the central
control layout (Keystone, Placement, Glance, Nova, Neutron, RabbitMQ and MariaDB at
`core`; fake computes at `edge1` and `edge2`), the WAN delay between sites. Both are kept
up side by side and benched in alternation (plain, tls, plain, tls, ...) so that a drift
of the machine does not land on one side. Each bench runs, from every site against the
core region: Keystone authenticate-and-validate, Nova boot-and-delete (with a port),
Neutron create-and-delete-networks, Glance create-and-delete-image. The table gives per
site and operation the p50 of each side over all rounds' iterations (each bench's own
report, read back from InfluxDB) and TLS minus plain. Both runs are destroyed at the end
(`--keep` keeps them).

The session reuse of each client matters: the load agents keep one keystoneauth session
(one TLS connection per server and thread, reused) per job, as openstacksdk does, so the
figure is TLS's steady-state cost (record crypto, plus a handshake per new connection of
the services among themselves) rather than one full handshake per call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # tests.e2e (the layout), when run as a script
CLI = [sys.executable, "-m", "femdc_bench.cli"]


def experiment(name: str, tls: bool, delay: str, keystone_times: int,
               boot_times: int) -> dict[str, Any]:
    """The e2e central-control layout (tests/e2e/test_layouts.py), with `tls`, `delay`
    and this benchmark's workload."""
    from tests.e2e.test_layouts import central_control

    doc = central_control()
    doc["name"] = name
    doc["deployment"]["tls"] = tls
    doc["wan"] = {"default": {"delay": delay}}
    doc["workload"]["scenarios"] = [
        {"name": "KeystoneBasic.authenticate_user_and_validate_token",
         "runner": {"type": "times", "times": keystone_times, "concurrency": 2}},
        {"name": "NovaServers.boot_and_delete_server",
         "runner": {"type": "times", "times": boot_times, "concurrency": 2}},
        {"name": "NeutronNetworks.create_and_delete_networks",
         "runner": {"type": "times", "times": boot_times, "concurrency": 2}},
        {"name": "GlanceImages.create_and_delete_image",
         "runner": {"type": "times", "times": boot_times, "concurrency": 1},
         "args": {"image_size_mb": 1}},
    ]
    doc["metrics"] = {"influxdb": "local"}
    return doc


def cli(env: dict[str, str], *args: str, log: Path) -> None:
    with log.open("a") as f:
        f.write(f"\n### femdc-bench {' '.join(args)}\n")
        f.flush()
        rc = subprocess.run([*CLI, *args], stdout=f, stderr=subprocess.STDOUT, env=env,
                            cwd=ROOT).returncode
    if rc != 0:
        sys.exit(f"femdc-bench {' '.join(args)} exited {rc}: see {log}")


def durations(run_dir: Path) -> dict[tuple[str, str], list[float]]:
    """(site, operation or atomic action) -> iteration durations (ms) of the last bench,
    from the samples the agents recorded (the same ones InfluxDB holds)."""
    out: dict[tuple[str, str], list[float]] = {}
    for f in sorted((run_dir / "samples" / "p0").glob("*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                s = json.loads(line)
            except ValueError:
                continue
            if s.get("status") != "ok":
                continue
            key = s.get("action") or s["operation"]
            out.setdefault((s["site"], key), []).append(float(s["duration_ms"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--delay", default="25ms", help="one-way WAN delay between sites")
    ap.add_argument("--keystone-times", type=int, default=100)
    ap.add_argument("--boot-times", type=int, default=6)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    results = Path(tempfile.mkdtemp(prefix="femdc-tls-"))
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    log = results / "bench.log"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = {"plain": f"tls-off-{stamp}", "tls": f"tls-on-{stamp}"}
    acc: dict[str, dict[tuple[str, str], list[float]]] = {"plain": {}, "tls": {}}
    try:
        for side, run_id in runs.items():
            exp = results / f"{side}.yaml"
            exp.write_text(yaml.safe_dump(experiment(run_id, side == "tls", a.delay,
                                                     a.keystone_times, a.boot_times),
                                          sort_keys=False))
            t0 = time.monotonic()
            cli(env, "up", str(exp), "--run-id", run_id, log=log)
            cli(env, "deploy", run_id, log=log)
            print(f"{side}: up and deployed in {time.monotonic() - t0:.0f} s", flush=True)
        for r in range(a.rounds):
            for side, run_id in runs.items():
                t0 = time.monotonic()
                cli(env, "bench", run_id, log=log)
                for k, v in durations(results / run_id).items():
                    acc[side].setdefault(k, []).extend(v)
                print(f"round {r + 1} {side}: bench {time.monotonic() - t0:.0f} s",
                      flush=True)
    finally:
        if not a.keep:
            for run_id in runs.values():
                subprocess.run([*CLI, "destroy", run_id], env=env, cwd=ROOT,
                               capture_output=True)
    print(f"\nTLS vs plain, central control, {a.delay} one way between sites, "
          f"{a.rounds} alternating rounds (results: {results})")
    print(f"{'site':6} {'operation / action':48} {'n':>5} {'plain p50':>10} "
          f"{'tls p50':>10} {'tls-plain':>10} {'ratio':>6}")
    for key in sorted(set(acc["plain"]) & set(acc["tls"])):
        p, t = acc["plain"][key], acc["tls"][key]
        mp, mt = statistics.median(p), statistics.median(t)
        print(f"{key[0]:6} {key[1]:48} {min(len(p), len(t)):>5} {mp:>9.1f}ms "
              f"{mt:>9.1f}ms {mt - mp:>+9.1f}ms {mt / mp:>6.2f}")


if __name__ == "__main__":
    main()
