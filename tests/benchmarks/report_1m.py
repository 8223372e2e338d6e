"""`femdc-bench report --html` on a run of 1,000,000 `api` points (issue 23, item 5:
"under 30 s").

    python tests/benchmarks/report_1m.py [--dir D] [--points 1000000] [--reuse] [--keep]

Makes a run directory under D (default: a scratch directory) whose InfluxDB is a private
influxd (metrics/server.py: loopback, its own data directory, the run's `influxdb/`)
holding N `api` points written through metrics/writer.py: three load sites against one
target, four operations, 1 % failures, and two atomic actions for one operation's
iterations, spread over an hour; plus an hour of sampled server metrics. Then times
`femdc-bench report RUN --html` in a fresh process (influxd stopped first, as for a
finished run: the report starts and stops it) and prints the figures: write time,
report time, page size, and the loader's own split (InfluxDB read, frames).

--reuse: keep the data of an earlier --keep run in D (only the timing again).
Run it under the machine's heavy lock.
"""

from __future__ import annotations

import argparse
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

RUN_ID = "big-1m"
SITES = ("core", "edge1", "edge2")
OPS = ("authenticate_and_validate_token", "list_users", "create_and_delete_user",
       "create_and_list_projects")
ACTIONS = ("keystone.create_user", "keystone.delete_user")
SPAN_S = 3600

EXPERIMENT = {
    "name": "big", "provider": {"type": "local"},
    "sites": [{"name": "core", "hosts": [{"name": "ctl",
                                          "roles": ["database", "keystone", "load"]}]},
              {"name": "edge[1-2]", "hosts": [{"name": "node", "roles": ["load"]}]}],
    "deployment": {"method": "native", "keystone": {"centralized": "core"}},
    "wan": {"default": {"delay": "25ms"}},
    "workload": {"scenarios": [{"name": f"keystone.{op}",
                                "runner": {"type": "times", "times": 10}}
                               for op in OPS]},
    "metrics": {"influxdb": "local"},
}


def _alias(site: str) -> str:
    return f"{site}-ctl" if site == "core" else f"{site}-node"


def make(results: Path, n_points: int) -> Run:
    results.mkdir(parents=True, exist_ok=True)
    f = results.parent / "big.yaml"
    f.write_text(yaml.safe_dump(EXPERIMENT))
    r = Run.create(f, results, run_id=RUN_ID)
    rng = random.Random(1)
    base = time.time_ns() - SPAN_S * 10**9
    url = LocalInfluxd(r.influx_dir()).start()
    t0 = time.monotonic()
    client = connect(InfluxTarget.from_spec(r.experiment().metrics, url))
    # per iteration of create_and_delete_user: 1 + 2 points; of the others: 1
    per_round = len(SITES) * (len(OPS) + len(ACTIONS))
    rounds = n_points // per_round
    step_ns = SPAN_S * 10**9 // rounds
    written = 0
    with InfluxWriter(client, common_tags={"wan_default_delay": "25ms"},
                      batch_size=20_000, dedup_window=10_000) as w:
        for i in range(rounds):
            t = base + i * step_ns
            for si, site in enumerate(SITES):
                for oi, op in enumerate(OPS):
                    ts = t + si * 1000 + oi * 100
                    dur = 10 + (0 if site == "core" else 50) + rng.expovariate(0.2)
                    fail = rng.random() < 0.01
                    s = Sample(site=site, target_site="core", service="identity",
                               operation=op, t0_ns=ts, duration_ms=dur,
                               status="error" if fail else "ok",
                               error="InternalServerError: HTTP 500" if fail else "",
                               host=_alias(site), iteration=i)
                    batch = [s]
                    if op == "create_and_delete_user":
                        batch += [Sample(site=site, target_site="core", service="identity",
                                         operation=op, t0_ns=ts + k, duration_ms=dur / 2,
                                         status=s.status, error=s.error, host=_alias(site),
                                         iteration=i, action=a)
                                  for k, a in enumerate(ACTIONS, start=1)]
                    written += w.write_samples(batch, run=r.id, experiment="big", point="p0")
        for k in range(SPAN_S):  # one sample a second on the core host
            ts = base + k * 10**9
            tags = {"run": r.id, "experiment": "big", "point": "p0", "host": "core-ctl",
                    "site": "core"}
            w.write("proc", {**tags, "service": "keystone"},
                    {"cpu_pct": 30 + rng.random() * 20, "rss_mb": 190.0}, ts)
            w.write("db", {**tags, "service": "mariadb"}, {"queries_per_s": 400.0}, ts)
            w.write("mq", {**tags, "service": "rabbitmq"}, {"connections": 3}, ts)
            w.write("host", tags, {"cpu_pct": 60.0}, ts)
    client.close()
    print(f"wrote {written} api points (+{4 * SPAN_S} server samples) in "
          f"{time.monotonic() - t0:.1f} s")
    (r.dir / "manifest.json").exists() or r.update_manifest(femdc_bench="bench")
    r.state.status = "done"
    r.save()
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    d = a.dir or Path(tempfile.mkdtemp(prefix="femdc-report-1m-"))
    results = d / "results"
    try:
        if a.reuse and (results / RUN_ID / "state.json").exists():
            r = Run(results / RUN_ID)
        else:
            shutil.rmtree(results, ignore_errors=True)
            r = make(results, a.points)
        LocalInfluxd(r.influx_dir()).stop()  # a finished run: the report starts it
        out = d / "report.html"
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "femdc_bench.cli", "--results", str(results),
                            "report", r.id, "--html", "--out", str(out)],
                           capture_output=True, text=True, cwd=REPO)
        took = time.monotonic() - t0
        if p.returncode not in (0, 1):  # 1: the SLA (failures are in the data)
            print(p.stdout[-3000:], p.stderr[-3000:])
            raise SystemExit(f"report failed: exit {p.returncode}")
        timing = [line for line in p.stderr.splitlines() + p.stdout.splitlines()
                  if "timing" in line]
        print(f"report --html: {took:.1f} s (target < 30 s), "
              f"page {out.stat().st_size / 1e6:.2f} MB")
        for line in timing:
            print(" ", line.strip())
    finally:
        LocalInfluxd(results / RUN_ID / "influxdb").stop()
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
        else:
            print(f"kept {d}")


if __name__ == "__main__":
    main()
