"""A finished run made of files, no deployment: three sites (core holds Keystone, two
edges load it), a WAN sweep of two points, iterations with two atomic actions each and
a few failures, sampled server metrics, WAN checks, phase events and a partition fault
in the second point. `synthetic_run` writes the run directory; `store_in_influx` puts it
in the run's own local InfluxDB as the pipeline's store steps do.

Counts (for assertions): POINTS x SITES x N_ITER iterations, 2 actions per iteration.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml

from femdc_bench.model import Sample
from femdc_bench.rundir import Run
from femdc_bench.workload.sink import JsonlSink

SITES = ("core", "edge1", "edge2")
POINTS = {"p0": 0.0, "p1": 25.0}  # one-way delay (ms) between sites
N_ITER = 60
ACTIONS = ("keystone.issue_token", "keystone.validate_token")
BASE_NS = 1_765_000_000_000_000_000
FAULT = ("p1", "edge2", 2.0, 3.0)  # point, site, from / to (s after the point's start)

EXPERIMENT: dict[str, Any] = {
    "name": "synthetic",
    "provider": {"type": "local"},
    "sites": [{"name": "core", "hosts": [{"name": "ctl",
                                          "roles": ["database", "keystone", "load"]}]},
              {"name": "edge[1-2]", "hosts": [{"name": "node", "roles": ["load"]}]}],
    "deployment": {"method": "native", "keystone": {"centralized": "core"},
                   "database": "per_site"},
    "wan": {"default": {"delay": ["0ms", "25ms"]}},
    "workload": {"scenarios": [{"name": "keystone.authenticate_and_validate_token",
                                "runner": {"type": "times", "times": N_ITER},
                                "from": "all", "to": "all"}],
                 "sla": {"failure_rate_max": "5%"}},
    "metrics": {"influxdb": "local"},
}


def _alias(site: str) -> str:
    return f"{site}-ctl" if site == "core" else f"{site}-node"


def _event(r: Run, t: int, kind: str, phase: str, text: str, **more: Any) -> None:
    """An events.jsonl line as Run.event writes it, at a synthetic time."""
    with (r.dir / "events.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"t": t, "kind": kind, "phase": phase, "text": text, **more})
                + "\n")


def point_start(point: str) -> int:
    return BASE_NS + list(POINTS).index(point) * 100 * 10**9


def synthetic_run(results: Path, run_id: str = "synthetic-1", n_iter: int = N_ITER) -> Run:
    results.mkdir(parents=True, exist_ok=True)
    f = results.parent / f"{run_id}.yaml"
    f.write_text(yaml.safe_dump(EXPERIMENT))
    r = Run.create(f, results, run_id=run_id)
    rng = random.Random(7)
    r.write_json("inventory.json", {
        "provider": "local", "shared_filesystem": True,
        "hosts": [{"alias": _alias(s), "address": f"10.9.0.{i + 1}", "site": s,
                   "roles": ["database", "keystone", "load"] if s == "core" else ["load"]}
                  for i, s in enumerate(SITES)]})
    r.write_json("clouds.json", {"clouds": [
        {"site": s, "auth_url": "http://10.9.0.1:5000/v3", "region": "core",
         "keystone_site": "core"} for s in SITES]})
    r.update_manifest(femdc_bench="0.1.0", packages={"keystone": "30.0.0"},
                      machine={"cpus": 2, "kernel": "6.1"})
    for point, delay in POINTS.items():
        t_start = point_start(point)
        _event(r, t_start - 10**9, "phase", "bench", "start", point=point)
        for si, site in enumerate(SITES):
            rtt = 0.0 if site == "core" else 2 * delay
            with JsonlSink(str(r.samples_dir(point) / f"{_alias(site)}.jsonl")) as sink:
                t = t_start + si * 10**6
                for i in range(n_iter):
                    dur = 8.0 + 2 * rtt + rng.uniform(0, 3)
                    fail = (point, site) == FAULT[:2] and FAULT[2] <= (t - t_start) / 1e9 < \
                        FAULT[3]
                    fail = fail or (i == 5 and site == "edge1")
                    status = "error" if fail else "ok"
                    err = ('ConnectFailure: Unable to establish connection to "core", '
                           "giving up") if fail else ""
                    sink.emit(Sample(site=site, target_site="core", service="identity",
                                     operation="authenticate_and_validate_token", t0_ns=t,
                                     duration_ms=dur, status=status, error=err,
                                     host=_alias(site), iteration=i))
                    t_a = t
                    for a, share in zip(ACTIONS, (0.6, 0.4), strict=True):
                        sink.emit(Sample(site=site, target_site="core", service="identity",
                                         operation="authenticate_and_validate_token",
                                         t0_ns=t_a, duration_ms=dur * share, status=status,
                                         error=err, host=_alias(site), iteration=i,
                                         action=a))
                        t_a += int(dur * share * 1e6)
                    t += int(dur * 1e6) + 50 * 10**6
        with open(r.metrics_dir(point) / "core-ctl.jsonl", "w") as out:
            for k in range(10):
                ts = t_start + k * 10**9
                for rec in (
                    {"m": "proc", "tags": {"host": "core-ctl", "site": "core",
                                           "service": "keystone"},
                     # an integer field some samples lack (as the sampler's `requests`)
                     "fields": {"cpu_pct": 20.0 + k, "rss_mb": 95.0 + k / 10,
                                "requests_per_s": 40.0,
                                **({"requests": 10 * k} if k % 2 else {})}},
                    {"m": "db", "tags": {"host": "core-ctl", "site": "core",
                                         "service": "mariadb"},
                     "fields": {"queries_per_s": 300.0 + 5 * k, "connections": 12}},
                    {"m": "mq", "tags": {"host": "core-ctl", "site": "core",
                                         "service": "rabbitmq"},
                     "fields": {"connections": 4, "channels": 4}},
                    {"m": "host", "tags": {"host": "core-ctl", "site": "core"},
                     "fields": {"cpu_pct": 50.0, "mem_used_mb": 2000.0}},
                    {"m": "tcp", "tags": {"host": "core-ctl", "site": "core",
                                          "service": "keystone", "peer_site": "edge1"},
                     "fields": {"established": 2}},
                ):
                    out.write(json.dumps({**rec, "t": ts}) + "\n")
        pairs = [{"src_site": a, "dst_site": b, "src_host": _alias(a), "dst_host": _alias(b),
                  "target_ms": 2 * delay, "measured_ms": 2 * delay + 0.4 + rng.random(),
                  "p95_ms": 2 * delay + 1.5, "loss_pct": 0.0, "base_ms": None,
                  "tolerance_ms": 2.0, "ok": True}
                 for a in SITES for b in SITES if a != b]
        r.write_json(f"wan/{point}/check.json", {"point": point, "probes": 10,
                                                 "compensated": False, "ok": True,
                                                 "pairs": pairs})
        if point == FAULT[0]:
            label = f"partition@{FAULT[1]}"
            r.write_json(f"wan/{point}/events.json", [
                [t_start + int(FAULT[2] * 1e9), "partition", FAULT[1], "start", label, 0.2],
                [t_start + int(FAULT[3] * 1e9), "partition", FAULT[1], "end", label, 0.2]])
        _event(r, t_start + 8 * 10**9, "phase", "bench", "done", point=point, seconds=8.0)
    return r


def store_in_influx(r: Run) -> None:
    """The run's files into its local InfluxDB, through the pipeline's store steps (the
    fault events as FaultInjector.store writes them). Leaves the influxd running."""
    from femdc_bench.metrics import store
    from femdc_bench.metrics.names import EVENT
    from femdc_bench.metrics.target import metrics_target
    from femdc_bench.wan.check import PairCheck, WanCheck
    from femdc_bench.wan.state import store_wan

    exp = r.experiment()
    target, _ = metrics_target(r, exp)
    for point in POINTS:
        store.store_samples(r, exp, target, point)
        store.store_metrics(r, exp, target, point)
        chk = json.loads((r.dir / "wan" / point / "check.json").read_text())
        store_wan(r, exp, target, point, WanCheck(
            point, chk["probes"], chk["compensated"],
            tuple(PairCheck(**p) for p in chk["pairs"])))
        ev = r.dir / "wan" / point / "events.json"
        if ev.exists():
            with store.spooling_writer(r, target) as (_, w):
                for ts, kind, site, phase, label, step_s in json.loads(ev.read_text()):
                    w.write(EVENT, {"run": r.id, "experiment": exp.name, "point": point,
                                    "kind": kind, "site": site, "phase": phase,
                                    "fault": label},
                            {"active": int(phase == "start"), "step_s": float(step_s),
                             "text": f"{label}: {phase} ({step_s:.1f} s to take effect)"}, ts)
    store.store_events(r, exp, target)
    r.save()
