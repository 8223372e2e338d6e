"""Time from `femdc-bench bench` to the first iteration on a kept run (issue 7, item 8:
"< 1 s after deploy").

    python tests/benchmarks/bench_start.py (--run RUN | --deploy [EXPERIMENT]) [--results DIR]
        [--repeat 3] [--main-cli CLI] [--main-repeat 1] [--keep]

For each `bench RUN` it prints
  (a) CLI process launch -> first iteration (the earliest sample's t0_ns);
  (b) bench phase start (its `bench@<point>` start event) -> first iteration;
and where (a) goes: the CLI before its first phase (interpreter start, imports, the run
and experiment loaded), emulate (nothing to apply) and the WAN check reuse up to the
bench phase; and where (b) goes, from the timings the bench writes to
samples/<point>/start.json: prepare (specs, paths), sessions open (the slowest host's
hello), all hosts ready (sampler started, bench daemon reused or started, the agent's
first job set up: Keystone authentication), waiting for the InfluxDB clear of the point
(done beside the setup), and the start margin; `via`: how the sessions went (direct to
the bench daemons, or ssh). The import of femdc_bench.cli and
femdc_bench.run in a fresh interpreter is measured alone (`imports`).

--main-cli: `bench` with another checkout's CLI on the same run (e.g. /work/main's,
the ansible path), for comparison; its start.json has no timings: only (a) and (b).
--deploy: `run EXPERIMENT --keep` first (default topologies/default.yaml), destroyed at
the end unless --keep. Runs under the machine's heavy lock when one is used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "femdc_bench.cli"]


def femdc(cli: list[str], results: Path, *args: str, timeout: float = 3600
          ) -> tuple[subprocess.CompletedProcess[str], int]:
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    t = time.time_ns()
    p = subprocess.run([*cli, *args], capture_output=True, text=True, env=env, cwd=REPO,
                       timeout=timeout)
    return p, t


def events_after(run_dir: Path, t_ns: int) -> list[dict[str, Any]]:
    out = []
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("t", 0) >= t_ns:
            out.append(e)
    return out


def first_t0(run_dir: Path, point: str) -> int:
    return min(json.loads(ln)["t0_ns"] for f in (run_dir / "samples" / point).glob("*.jsonl")
               for ln in f.read_text().splitlines() if ln.strip())


def phase_start(evs: list[dict[str, Any]], phase: str, point: str) -> int | None:
    return next((e["t"] for e in evs if e.get("kind") == "phase" and e.get("phase") == phase
                 and e.get("point") == point and e.get("text") == "start"), None)


def import_s() -> float:
    p = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); "
                        "import femdc_bench.cli, femdc_bench.run; "
                        "print(time.perf_counter() - t)"],
                       capture_output=True, text=True, cwd=REPO, check=True)
    return float(p.stdout)


def one(cli: list[str], results: Path, run_id: str, point: str) -> dict[str, Any]:
    run_dir = results / run_id
    p, launch = femdc(cli, results, "bench", run_id, "--point", point)
    if p.returncode != 0:
        raise SystemExit(f"bench exited {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    evs = events_after(run_dir, launch)
    t_first = first_t0(run_dir, point)
    t_bench = phase_start(evs, "bench", point)
    t_emulate = phase_start(evs, "emulate", point)
    assert t_bench is not None and t_emulate is not None, evs[:5]
    start = json.loads((run_dir / "samples" / point / "start.json").read_text())
    row: dict[str, Any] = {
        "a_launch_to_first_s": round((t_first - launch) / 1e9, 3),
        "b_phase_to_first_s": round((t_first - t_bench) / 1e9, 3),
        "cli_before_phases_s": round((t_emulate - launch) / 1e9, 3),
        "emulate_and_check_reuse_s": round((t_bench - t_emulate) / 1e9, 3),
        "start_to_first_s": round((t_first - start["start_ns"]) / 1e9, 3),
    }
    t = start.get("timings")
    if t:
        daemons = sorted({str(h.get("daemon")) for h in t["hosts"].values() if h.get("daemon")})
        row.update({
            "prepare_s": t["prepare_s"], "influx_clear_s": t["influx_clear_s"],
            "sessions_s": t["sessions_s"], "ready_s": t["ready_s"],
            "before_go_s": t["before_go_s"], "margin_s": t["margin_s"],
            "daemon": "/".join(daemons),
            "via": "/".join(sorted({str(h.get("via")) for h in t["hosts"].values()})),
            "slowest_setup_s": max((h.get("setup_s") or 0) for h in t["hosts"].values()),
            "max_rtt_ms": max((h.get("rtt_ms") or 0) for h in t["hosts"].values())})
    return row


def show(label: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{label}")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    for k in keys:
        vals = [r.get(k) for r in rows]
        num = [v for v in vals if isinstance(v, int | float)]
        med = f"  median {statistics.median(num):.3f}" if len(num) == len(vals) and num else ""
        print(f"  {k:28s} " + "  ".join(str(v) for v in vals) + med)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", help="a kept run (its id under --results)")
    g.add_argument("--deploy", nargs="?", const=str(REPO / "topologies" / "default.yaml"),
                   metavar="EXPERIMENT", help="run EXPERIMENT --keep first")
    ap.add_argument("--results", type=Path, default=REPO / "results")
    ap.add_argument("--point", default="p0")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--main-cli", help="another femdc-bench CLI to compare (same run)")
    ap.add_argument("--main-repeat", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep a run made by --deploy")
    a = ap.parse_args()
    run_id = a.run
    if a.deploy:
        run_id = f"bench-start-{time.strftime('%Y%m%d-%H%M%S')}"
        print(f"deploying {a.deploy} as {run_id} (run --keep)...", flush=True)
        p, _ = femdc(CLI, a.results, "run", a.deploy, "--keep", "--run-id", run_id)
        if p.returncode not in (0, 1):
            raise SystemExit(f"run exited {p.returncode}:\n{p.stderr[-3000:]}")
    try:
        imports = [round(import_s(), 3) for _ in range(3)]
        print(f"imports of femdc_bench.cli + femdc_bench.run, fresh interpreter: {imports} s")
        rows = [one(CLI, a.results, run_id, a.point) for _ in range(a.repeat)]
        show(f"this tree ({REPO}), {a.repeat} benches of {run_id}", rows)
        if a.main_cli:
            main_rows = [one([a.main_cli], a.results, run_id, a.point)
                         for _ in range(a.main_repeat)]
            show(f"{a.main_cli}, {a.main_repeat} bench(es) of {run_id}", main_rows)
            # the next bench of this tree restarts nothing: show it after main's too
            rows2 = [one(CLI, a.results, run_id, a.point)]
            show("this tree again, after it", rows2)
        print("\ntarget (issue 7): first iteration < 1 s after `bench` starts")
    finally:
        if a.deploy and not a.keep:
            femdc(CLI, a.results, "destroy", run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
