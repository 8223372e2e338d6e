"""How well the rps runner holds its rate against a real local Keystone.

    python tests/benchmarks/rps_accuracy.py --venv SERVICE_VENV [--rps 100] [--seconds 10]
        [--scenario keystone.get_version] [--max-concurrency 16]

Starts a LocalKeystone (see local_keystone.py), then runs our agent with an rps runner
(`rps` iterations per second for `seconds`, and a ramp from rps/4 to rps in 4 steps) and
prints, per run: the asked rate, the achieved rate (iterations - 1) / (last start - first
start) and its ratio to the asked one, how late iterations started (p50/p99/max of the
runner's `late_ms`), errors, and the mean iteration time. Target (issue 7): achieved rate
within 5 % of 100 rps.

The default scenario is Keystone's cheapest request (GET /v3) so that the server keeps
up and the runner is what is measured. Measured here (2 cores, 2 uwsgi processes):
get_version 100.02 rps for 100 asked (late p50 0.19 ms, p99 2.65 ms), ramp 25..100 72.71
for 72.71; list_users saturates Keystone at ~82/s (mean 190 ms, iterations start up to
2.2 s late with 16 in flight), while at 60 rps it holds 60.00 (late p99 3.7 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(REPO)]
from local_keystone import LocalKeystone  # noqa: E402

from femdc_bench.model import RpsRamp, RunnerSpec  # noqa: E402


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))] if v else float("nan")


def run_agent(venv: Path, ks: LocalKeystone, work: Path, scenario: str, runner: dict,
              tag: str) -> list[dict]:
    spec = work / f"spec-{tag}.json"
    fd = os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"version": 1, "site": "local", "host": "local", "jobs": [{
            "scenario": scenario, "runner": runner, "target_site": "local",
            "auth": {"auth_url": ks.auth_url, "username": "admin",
                     "password": ks.admin_password, "project_name": "admin",
                     "region_name": ks.region},
            "name_prefix": "femdc-rps-"}]}, f)
    out = work / f"samples-{tag}.jsonl"
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "femdc_bench.workload.agent",
                           "--spec", str(spec), "--out", str(out)],
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"agent failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return [json.loads(line) for line in out.read_text().splitlines() if line]


def summarize(name: str, asked: float, rows: list[dict]) -> dict:
    its = sorted((r for r in rows if not r.get("action")), key=lambda r: r["t0_ns"])
    span = (its[-1]["t0_ns"] - its[0]["t0_ns"]) / 1e9
    achieved = (len(its) - 1) / span if span > 0 else float("nan")
    late = [r["fields"]["late_ms"] for r in its]
    ok = [r["duration_ms"] for r in its if r["status"] == "ok"]
    return {"run": name, "asked_rps": asked, "achieved_rps": round(achieved, 2),
            "ratio": round(achieved / asked, 4), "iterations": len(its),
            "errors": len(its) - len(ok), "late_p50_ms": round(pct(late, 50), 2),
            "late_p99_ms": round(pct(late, 99), 2), "late_max_ms": round(max(late), 2),
            "mean_ms": round(sum(ok) / len(ok), 2) if ok else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", default=os.environ.get("FEMDC_SERVICE_VENV"),
                    help="service venv with keystone and uwsgi (or $FEMDC_SERVICE_VENV)")
    ap.add_argument("--rps", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--scenario", default="keystone.get_version")
    ap.add_argument("--max-concurrency", type=int, default=16)
    a = ap.parse_args()
    if not a.venv or not (Path(a.venv) / "bin" / "keystone-manage").exists():
        ap.error("--venv must name a venv with keystone and uwsgi installed")
    venv = Path(a.venv)
    work = Path(tempfile.mkdtemp(prefix="femdc-rps-"))
    results = []
    with LocalKeystone(venv=a.venv) as ks:
        print(f"keystone at {ks.auth_url}", flush=True)
        run_agent(venv, ks, work, a.scenario, {"type": "times", "times": 20}, "warm")
        times = int(a.rps * a.seconds)
        const = {"type": "rps", "times": times, "rps": a.rps,
                 "concurrency": a.max_concurrency}
        results.append(summarize("constant", a.rps,
                                 run_agent(venv, ks, work, a.scenario, const, "const")))
        step_s = a.seconds / 4
        start = a.rps / 4
        ramp = {"type": "rps", "times": times, "concurrency": a.max_concurrency,
                "rps_ramp": {"start": start, "end": a.rps, "step": start, "step_s": step_s}}
        rows = run_agent(venv, ks, work, a.scenario, ramp, "ramp")
        # the asked mean rate of a staircase start, 2*start, ... over the iterations run
        n = len([r for r in rows if not r.get("action")])
        r = RunnerSpec(type="rps", times=n, rps_ramp=RpsRamp(start, a.rps, start, step_s))
        results.append(summarize("ramp", (n - 1) / r.start_offset_s(n - 1), rows))
    cols = list(results[0])
    print(" | ".join(cols))
    for res in results:
        print(" | ".join(str(res[c]) for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
