"""`femdc-bench compare` of two runs of 1,000,000 `api` points each (issue 23, item 5:
"under 30 s").

    flock /tmp/femdc-heavy.lock .venv/bin/python tests/benchmarks/compare_1m.py \
        [--dir D] [--points 1000000] [--reuse] [--keep]

Makes two run directories under D (default: a scratch directory), each with its own
private influxd (metrics/server.py: loopback, the run's `influxdb/` directory) holding N
`api` points written through metrics/writer.py: three load sites against one target, four
operations, 1 % failures, two atomic actions for one operation's iterations, spread over
an hour. Run B's edge sites are 10 % slower than A's. Both influxds are stopped (finished
runs: `compare` starts and stops them), then `femdc-bench compare A B --json` runs in a
fresh process and is timed; the figures printed: the command's time, its cells and
verdicts, and, in this process, the split between reading (results.load) and the
statistics (results.compare).

--reuse: keep the data of an earlier --keep run in D (only the timing again).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from femdc_bench.metrics.client import InfluxTarget, connect  # noqa: E402
from femdc_bench.metrics.server import LocalInfluxd  # noqa: E402
from femdc_bench.metrics.writer import InfluxWriter  # noqa: E402
from femdc_bench.model import Sample  # noqa: E402
from femdc_bench.rundir import Run  # noqa: E402

RUNS = {"cmp-1m-a": 1.0, "cmp-1m-b": 1.1}  # run -> factor on the edge sites' latency
SITES = ("core", "edge1", "edge2")
OPS = ("authenticate_and_validate_token", "list_users", "create_and_delete_user",
       "create_and_list_projects")
ACTIONS = ("keystone.create_user", "keystone.delete_user")
SPAN_S = 3600
EXPERIMENT = {
    "name": "cmp-1m", "provider": {"type": "local"},
    "sites": [{"name": "core", "hosts": [{"name": "ctl",
                                          "roles": ["database", "keystone", "load"]}]},
              {"name": "edge[1-2]", "hosts": [{"name": "node", "roles": ["load"]}]}],
    "deployment": {"method": "native", "keystone": {"centralized": "core"}},
    "wan": {"default": {"delay": "25ms"}},
    "workload": {"scenarios": [{"name": f"keystone.{op}",
                                "runner": {"type": "times", "times": 10}} for op in OPS]},
    "metrics": {"influxdb": "local"},
}


def _alias(site: str) -> str:
    return f"{site}-ctl" if site == "core" else f"{site}-node"


def make(results: Path, run_id: str, factor: float, n_points: int, seed: int) -> Run:
    f = results.parent / f"{run_id}.yaml"
    f.write_text(yaml.safe_dump(EXPERIMENT))
    r = Run.create(f, results, run_id=run_id)
    rng = random.Random(seed)
    base = time.time_ns() - SPAN_S * 10**9
    url = LocalInfluxd(r.influx_dir()).start()
    t0 = time.monotonic()
    client = connect(InfluxTarget.from_spec(r.experiment().metrics, url))
    per_round = len(SITES) * (len(OPS) + len(ACTIONS))
    rounds = n_points // per_round
    step_ns = SPAN_S * 10**9 // rounds
    written = 0
    with InfluxWriter(client, batch_size=20_000, dedup_window=10_000) as w:
        for i in range(rounds):
            t = base + i * step_ns
            for si, site in enumerate(SITES):
                k = 1.0 if site == "core" else factor
                batch = []
                for oi, op in enumerate(OPS):
                    ts = t + si * 1000 + oi * 100
                    dur = k * (10 + (0 if site == "core" else 50) + rng.expovariate(0.2))
                    fail = rng.random() < 0.01
                    s = Sample(site=site, target_site="core", service="identity",
                               operation=op, t0_ns=ts, duration_ms=dur,
                               status="error" if fail else "ok",
                               error="InternalServerError: HTTP 500" if fail else "",
                               host=_alias(site), iteration=i)
                    batch.append(s)
                    if op == "create_and_delete_user":
                        batch += [Sample(site=site, target_site="core", service="identity",
                                         operation=op, t0_ns=ts + j, duration_ms=dur / 2,
                                         status=s.status, error=s.error, host=_alias(site),
                                         iteration=i, action=a)
                                  for j, a in enumerate(ACTIONS, start=1)]
                written += w.write_samples(batch, run=r.id, experiment="cmp-1m", point="p0")
    client.close()
    print(f"{run_id}: wrote {written} api points in {time.monotonic() - t0:.1f} s", flush=True)
    r.update_manifest(femdc_bench="bench")
    r.state.status = "done"
    r.save()
    LocalInfluxd(r.influx_dir()).stop()  # a finished run: compare starts it
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    d = a.dir or Path(tempfile.mkdtemp(prefix="femdc-compare-1m-"))
    results = d / "results"
    try:
        if not (a.reuse and all((results / r / "state.json").exists() for r in RUNS)):
            shutil.rmtree(results, ignore_errors=True)
            results.mkdir(parents=True)
            for seed, (run_id, factor) in enumerate(RUNS.items()):
                make(results, run_id, factor, a.points, seed)
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "femdc_bench.cli", "--results", str(results),
                            "compare", *RUNS, "--json"], capture_output=True, text=True,
                           cwd=REPO)
        took = time.monotonic() - t0
        if p.returncode != 0:
            print(p.stderr[-3000:])
            raise SystemExit(f"compare failed: exit {p.returncode}")
        doc = json.loads(p.stdout)
        n = {c["baseline"]["count"] + c["other"]["count"] for c in doc["cells"]}
        total = sum(c["baseline"]["count"] for c in doc["cells"])
        print(f"compare of 2 x {total} api points: {took:.1f} s (target < 30 s); "
              f"{len(doc['cells'])} cells ({min(n)}-{max(n)} points each), "
              f"verdicts {doc['summary']}", flush=True)

        # where the time goes, in this process
        from femdc_bench.results import load
        from femdc_bench.results.compare import RunData, compare_runs

        t0 = time.monotonic()
        data = [RunData.from_frames(load(Run(results / r))) for r in RUNS]
        t_load = time.monotonic() - t0
        t0 = time.monotonic()
        compare_runs(data)
        print(f"  split: results.load {t_load:.1f} s for both runs, "
              f"results.compare {time.monotonic() - t0:.1f} s", flush=True)
    finally:
        for r in RUNS:
            if (results / r).exists():
                LocalInfluxd(Run(results / r).influx_dir()).stop()
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
