"""How honest `femdc-bench compare` and `trends` are, measured on real runs (issue 23,
items 2 and 3): prints the A/A and A/B counts and the trends verdict.

Run by hand, as root, under the machine-wide lock (it deploys):

    flock /tmp/femdc-heavy.lock .venv/bin/python tests/benchmarks/compare_honesty.py

Five short runs of one experiment (the default layout: one Keystone at `core`, load from
`core`, `edge1` and `edge2`), each a full `femdc-bench run` (up, deploy, bench, report,
destroy): runs 1-3 with 25 ms one-way delay between sites, runs 4-5 with 50 ms (25 ms
more). The load is a Rally task of two rps (open-loop) workloads with atomic actions,
run from every site against its own region (`to: local`), which in this layout is
`core`'s: the experiment has both kinds of cells, `core->core` never crosses the WAN,
`edge1->core` and `edge2->core` do.

- A/A: `compare run1 run2`: how many cells are called a change (expected: at most 5 %).
- A/B: `compare run1 run4`: how many WAN cells are called slower (expected: all) and how
  many site-local cells are called a change (expected: none).
- trends over the five runs: which cells get a change point at run 4, and whether
  `--fail-on regression` fails (expected: it does, run 4 being among the latest).

Runs already made (their state says done) are reused: `--results DIR` keeps them apart
from other results (default: results/ of the checkout, where `trends` looks).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "femdc_bench.cli"]
NAME = "compare-honesty"
DELAYS = ["25ms", "25ms", "25ms", "50ms", "50ms"]


TASK = {
    "version": 2, "title": NAME,
    "subtasks": [{"title": "keystone", "workloads": [
        {"scenario": {"KeystoneBasic.authenticate_user_and_validate_token": {}},
         "runner": {"rps": {"times": 90, "rps": 3, "max_concurrency": 6}}},
        {"scenario": {"KeystoneBasic.create_and_list_users": {}},
         "runner": {"rps": {"times": 60, "rps": 2, "max_concurrency": 6}}},
    ]}],
}


def experiment(delay: str) -> dict[str, Any]:
    """The default layout, `delay` one way between sites, and a Rally task of open-loop
    (rps) workloads from every site against its own region (`to: local`: the core's, the
    only one): the offered load does not depend on the WAN delay, so the Keystone the
    sites share is as busy in the 50 ms runs as in the 25 ms ones, and the site-local
    cells may honestly stay unchanged (with a closed loop, slower edges would send fewer
    requests and make `core->core` faster)."""
    doc = yaml.safe_load((ROOT / "topologies" / "default.yaml").read_text())
    doc["name"] = NAME
    doc["description"] = f"compare/trends honesty: {delay} one way between sites"
    doc["wan"] = {"emulator": "auto", "default": {"delay": delay}}
    doc["workload"] = {"rally_task": "task.yaml", "from": "all", "to": "local"}
    doc["metrics"] = {"influxdb": "local", "sampling": False}
    return doc


def run_done(results: Path, run_id: str) -> bool:
    state = results / run_id / "state.json"
    if not state.exists():
        return False
    doc = json.loads(state.read_text())
    phases = doc.get("phases", {})
    return any(k.split("@")[0] == "bench" and v.get("status") == "done"
               for k, v in phases.items())


def make_runs(results: Path, prefix: str, log: Path, delays: list[str]) -> list[str]:
    ids = []
    for i, delay in enumerate(delays, 1):
        run_id = f"{prefix}-{i}"
        ids.append(run_id)
        if run_done(results, run_id):
            print(f"{run_id}: reused ({delay})", flush=True)
            continue
        tmp = Path(tempfile.mkdtemp(prefix="femdc-honesty-"))
        exp_file = tmp / "experiment.yaml"
        exp_file.write_text(yaml.safe_dump(experiment(delay), sort_keys=False))
        (tmp / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
        t0 = time.monotonic()
        with log.open("a") as out:
            out.write(f"\n### run {run_id} ({delay})\n")
            out.flush()
            rc = subprocess.run([*CLI, "--results", str(results), "run", str(exp_file),
                                 "--run-id", run_id], stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT).returncode
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"{run_id}: {delay}, exit {rc}, {time.monotonic() - t0:.0f} s", flush=True)
        if not run_done(results, run_id):
            sys.exit(f"{run_id} did not bench: see {log}")
    return ids


def cli_json(results: Path, *args: str) -> tuple[int, dict[str, Any]]:
    p = subprocess.run([*CLI, "--results", str(results), *args, "--json"],
                       capture_output=True, text=True, cwd=ROOT)
    if p.returncode not in (0, 1):
        sys.exit(f"femdc-bench {' '.join(args)} exited {p.returncode}: {p.stderr[-2000:]}")
    return p.returncode, json.loads(p.stdout)


def crosses_wan(cell: dict[str, Any]) -> bool:
    return cell["site"] != cell["target_site"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--prefix", default=NAME)
    ap.add_argument("--runs-only", action="store_true", help="make the runs, compare nothing")
    ap.add_argument("--delays", default=",".join(DELAYS),
                    help="one-way delay of each run (default: %(default)s); A/A compares "
                         "the first two, A/B the first with the first of another delay, "
                         "trends needs 4 or more")
    args = ap.parse_args()
    delays = args.delays.split(",")
    args.results.mkdir(parents=True, exist_ok=True)
    log = args.results / f"{args.prefix}.log"
    ids = make_runs(args.results, args.prefix, log, delays)
    b = next(i for i, d in enumerate(delays) if d != delays[0])  # the first B run
    if args.runs_only:
        return

    t0 = time.monotonic()
    _, aa = cli_json(args.results, "compare", ids[0], ids[1])
    t_aa = time.monotonic() - t0
    decided = [c for c in aa["cells"] if c["verdict"] in ("faster", "slower", "no change")]
    flagged = [c for c in decided if c["verdict"] != "no change"]
    print(f"A/A ({ids[0]} vs {ids[1]}, {t_aa:.1f} s): {len(flagged)} of {len(decided)} "
          f"decided cells flagged ({100 * len(flagged) / max(1, len(decided)):.1f} %; "
          f"limit 5 %); {len(aa['cells']) - len(decided)} cells without a verdict")
    for c in flagged:
        print(f"  flagged: {c['label']}: {c['verdict']}, ratio {c['ratio']:.3f} "
              f"[{c['ci_low']:.3f}, {c['ci_high']:.3f}], q {c['q_value']:.2g}")

    _, ab = cli_json(args.results, "compare", ids[0], ids[b])
    wan = [c for c in ab["cells"] if crosses_wan(c)]
    local = [c for c in ab["cells"] if not crosses_wan(c)]
    wan_slower = [c for c in wan if c["verdict"] == "slower"]
    local_flagged = [c for c in local if c["verdict"] in ("faster", "slower")]
    print(f"A/B ({ids[0]} vs {ids[b]}, +25 ms one way): {len(wan_slower)} of {len(wan)} "
          f"WAN cells slower (expected all); {len(local_flagged)} of {len(local)} "
          f"site-local cells flagged (expected none)")
    for c in wan:
        if c["verdict"] != "slower":
            print(f"  WAN cell not slower: {c['label']}: {c['verdict']}")
    for c in local:
        ci = "" if c["ci_low"] is None else f" [{c['ci_low']:.3f}, {c['ci_high']:.3f}]"
        q = "" if c["q_value"] is None else f", q {c['q_value']:.2g}"
        ratio = "" if c["ratio"] is None else f", ratio {c['ratio']:.3f}"
        print(f"  local: {c['label']}: {c['verdict']}{ratio}{ci}{q}")

    honest = len(flagged) <= 0.05 * len(decided) and len(wan_slower) == len(wan) \
        and not local_flagged
    print("compare: " + ("honest" if honest else "NOT honest: see above"))

    # the step is at the first B run (4 of 5): new when the runs from it count as new
    if len(ids) < 4:
        print("trends: fewer than 4 runs, not measured here")
        return
    rc, tr = cli_json(args.results, "trends", *ids, "--recent", str(len(ids) - b),
                      "--fail-on", "regression")
    marked = [c for c in tr["cells"] if any(cp["run"] == ids[b] for cp in c["change_points"])]
    wan_cells = [c for c in tr["cells"] if c["site"] != c["target_site"]]
    print(f"trends over {len(ids)} runs: {len(marked)} of {len(tr['cells'])} cells have a "
          f"change point at {ids[b]} ({sum(c in marked for c in wan_cells)} of "
          f"{len(wan_cells)} WAN cells); --fail-on regression exit {rc} (expected 1)")
    for c in tr["cells"]:
        for cp in c["change_points"]:
            print(f"  {c['label']}: {cp['metric']} {cp['direction']} at {cp['run']} "
                  f"({cp['before']:.1f} -> {cp['after']:.1f}, p {cp['p_value']:.2g})")


if __name__ == "__main__":
    main()
