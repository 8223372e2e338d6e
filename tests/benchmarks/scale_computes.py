"""How many fake nova-compute services one local control plane registers and keeps up,
what one costs in memory, and the boot-and-delete rate it sustains (prints figures).

Run by hand, as root, on a quiet machine (nothing else deploying or benchmarking):

    .venv/bin/python tests/benchmarks/scale_computes.py --computes 50 100 200

For each N: a central-control deployment (Keystone + control plane on one host, one
compute host running N nova-compute services in one pool), then
- deploy time and whether all N reported `up` (the deploy waits for it, 180 s at most);
- after 60 s more, how many are still `up` (os-services), and the hypervisor count;
- PSS of the deployment per host, and of the compute pool per compute service;
- NovaServers.boot_and_delete_server at concurrency 1, 4 and 16 (iterations/s, p50/p95
  of nova.boot_server), read back from the run's report.
The deployment is destroyed after each N.
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
BIN = Path(sys.executable).parent


def femdc(results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=ROOT)


def experiment(n: int, concurrency: list[int]) -> dict[str, Any]:
    return {
        "name": f"scale-{n}",
        "provider": {"type": "local"},
        "sites": [
            {"name": "core", "hosts": [
                {"name": "ctl", "roles": ["database", "keystone", "control", "load"]}]},
            {"name": "edge", "hosts": [
                {"name": "cmp", "roles": ["compute"], "computes": n}]},
        ],
        "deployment": {"method": "native", "keystone": {"centralized": "core"},
                       "control": {"centralized": "core"}, "keystone_workers": 2},
        "workload": {"scenarios": [
            {"name": "NovaServers.boot_and_delete_server",
             "runner": {"type": "times", "times": max(8, 4 * c), "concurrency": c},
             "from": "core"} for c in concurrency]},
    }


def service_figures(run_dir: Path) -> dict[str, Any]:
    """From the samplers' records of the last bench (results/<run>/metrics/p0/): RabbitMQ
    connections and channels (max), nova-conductor and nova-scheduler CPU % of one core
    (mean over samples with a value, and max), the compute pool's processes and RSS."""
    recs = [json.loads(line) for f in sorted((run_dir / "metrics" / "p0").glob("*.jsonl"))
            for line in f.read_text().splitlines() if line.strip()]

    def fields(m: str, service: str | None = None) -> list[dict[str, Any]]:
        return [r["fields"] for r in recs if r["m"] == m
                and (service is None or r["tags"].get("service") == service)]

    out: dict[str, Any] = {"samples": len({r["t"] for r in recs})}
    mq = fields("mq")
    out["mq_connections_max"] = max((f.get("connections", 0) for f in mq), default=None)
    out["mq_channels_max"] = max((f.get("channels", 0) for f in mq), default=None)
    for svc in ("nova-conductor", "nova-scheduler", "rabbitmq", "nova-compute"):
        cpu = [f["cpu_pct"] for f in fields("proc", svc) if f.get("cpu_pct") is not None]
        out[f"{svc}_cpu_mean"] = round(sum(cpu) / len(cpu), 1) if cpu else None
        out[f"{svc}_cpu_max"] = round(max(cpu), 1) if cpu else None
    pool = fields("proc", "nova-compute")
    out["compute_procs"] = max((f["procs"] for f in pool), default=None)
    out["compute_rss_mb"] = max((f["rss_mb"] for f in pool), default=None)
    return out


def rate(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def openstack(run_dir: Path, *args: str) -> Any:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(run_dir / "clouds.yaml")}
    out = subprocess.run([str(BIN / "openstack"), "--os-cloud", "core", *args, "-f", "json"],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--computes", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    a = ap.parse_args()
    results = Path(tempfile.mkdtemp(prefix="femdc-scale-"))
    rows = []
    for n in a.computes:
        run_id = f"scale-{n}"
        exp = results / f"{run_id}.yaml"
        exp.write_text(yaml.safe_dump(experiment(n, a.concurrency), sort_keys=False))
        run_dir = results / run_id
        try:
            femdc(results, "up", str(exp), "--run-id", run_id)
            t0 = time.monotonic()
            dep = femdc(results, "deploy", run_id)
            deploy_s = time.monotonic() - t0
            if dep.returncode != 0:
                print(f"N={n}: deploy failed after {deploy_s:.0f}s: "
                      f"{(dep.stdout + dep.stderr)[-400:]}")
                rows.append({"computes": n, "deploy_s": deploy_s, "ok": False})
                continue
            time.sleep(60)
            services = openstack(run_dir, "compute", "service", "list", "--service",
                                 "nova-compute")
            up = sum(s["State"] == "up" for s in services)
            hypervisors = len(openstack(run_dir, "hypervisor", "list"))
            mem = {p.stem: json.loads(p.read_text())
                   for p in (run_dir / "versions").glob("*.memory")}
            pool = mem.get("edge-cmp", {}).get("by_name", {}).get("python", {})
            boots = []
            for c in a.concurrency:
                # one bench per concurrency (the report groups by operation)
                doc = experiment(n, [c])
                (run_dir / "experiment.yaml").write_text(json.dumps(doc))
                t0 = time.monotonic()
                bench = femdc(results, "bench", run_id)
                bench_s = time.monotonic() - t0
                rep = json.loads(femdc(results, "report", run_id, "--json").stdout or "{}")
                it = [r for r in rep.get("rows", []) if not r.get("action")]
                act = [r for r in rep.get("actions", []) + rep.get("rows", [])
                       if r.get("action") == "nova.boot_server"]
                boots.append({
                    "concurrency": c, "bench_rc": bench.returncode, "bench_s": round(bench_s),
                    "iterations": it[0]["count"] if it else 0,
                    "errors": it[0]["errors"] if it else None,
                    "boot_and_delete_per_s": it[0].get("iterations_per_s") if it else None,
                    "boot_p50_ms": round(act[0]["p50_ms"]) if act else None,
                    "boot_p95_ms": round(act[0]["p95_ms"]) if act else None,
                    "services": service_figures(run_dir)})
                print(json.dumps(boots[-1]), flush=True)
            rows.append({
                "computes": n, "deploy_s": round(deploy_s), "up_after_60s": up,
                "hypervisors": hypervisors,
                "pss_mb": {h: m.get("pss_mb") for h, m in mem.items()},
                "pss_mb_per_compute": round(pool.get("pss_mb", 0) / n, 1) if n else None,
                "boot": boots,
            })
            print(json.dumps(rows[-1]), flush=True)
        finally:
            femdc(results, "destroy", run_id)
    print("\ncomputes | deploy s | up after 60 s | PSS MB per compute | "
          "concurrency: boot+delete/s, boot p50/p95 ms, errors")
    for r in rows:
        boots = "; ".join(f"c{b['concurrency']}: {rate(b['boot_and_delete_per_s'])}/s, "
                          f"{b['boot_p50_ms']}/{b['boot_p95_ms']} ms, {b['errors']} err"
                          for b in r.get("boot", []))
        print(f"{r['computes']:8} | {r.get('deploy_s', '-'):8} | {r.get('up_after_60s', '-'):13} "
              f"| {r.get('pss_mb_per_compute', '-'):18} | {boots}")
    print("\nper-service figures (samplers, every 5 s during each bench):")
    print("computes | conc | RabbitMQ conns/channels max | nova-conductor CPU % mean/max | "
          "nova-scheduler CPU % mean/max | rabbitmq CPU % mean/max | pool procs, RSS MB")
    for r in rows:
        for b in r.get("boot", []):
            f = b.get("services", {})
            print(f"{r['computes']:8} | {b['concurrency']:4} | "
                  f"{f.get('mq_connections_max')}/{f.get('mq_channels_max')} | "
                  f"{f.get('nova-conductor_cpu_mean')}/{f.get('nova-conductor_cpu_max')} | "
                  f"{f.get('nova-scheduler_cpu_mean')}/{f.get('nova-scheduler_cpu_max')} | "
                  f"{f.get('rabbitmq_cpu_mean')}/{f.get('rabbitmq_cpu_max')} | "
                  f"{f.get('compute_procs')}, {f.get('compute_rss_mb')}")


if __name__ == "__main__":
    main()
