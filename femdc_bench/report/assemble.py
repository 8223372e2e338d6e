"""The run's report: its points read back from InfluxDB, statistics per (point, site,
target, operation), SLA verdicts, WAN matrices, events and fault windows, written to
results/<run>/report.json; and the Rally export."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from femdc_bench import __version__
from femdc_bench.metrics.store import read_events, store_events
from femdc_bench.metrics.target import metrics_target
from femdc_bench.model import Experiment, Sample
from femdc_bench.rundir import Run


class ExportError(RuntimeError):
    """Nothing to export (a failure of the run, not bad input)."""


@dataclass
class Report:
    rows: list[Any]  # report.stats.StatsRow
    doc: dict[str, Any]  # the JSON document (also results/<run>/report.json)
    violations: list[str]
    labels: dict[str, str] = field(default_factory=dict)  # point -> its parameters
    wan: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # point -> RTT pairs
    events: list[dict[str, Any]] = field(default_factory=list)  # in time order
    faults: list[dict[str, Any]] = field(default_factory=list)  # report.faults.attribute


def read_back(run: Run, exp: Experiment, *, events: bool = False
              ) -> tuple[dict[str, list[Sample]], list[Any], list[dict[str, Any]]]:
    """The run's samples by point, its `wan` rows and (`events`: after storing the run's
    events.jsonl) its events in time order, from its InfluxDB (a local one of a
    destroyed run is started for this and stopped again)."""
    from femdc_bench.metrics.client import connect
    from femdc_bench.metrics.names import WAN
    from femdc_bench.metrics.reader import InfluxReader
    from femdc_bench.metrics.server import LocalInfluxd

    target, started = metrics_target(run, exp)
    try:
        if events:
            store_events(run, exp, target)
        client = connect(target, create=False)
        try:
            return (InfluxReader(client).api_samples_by_point(run.id),
                    list(client.rows(WAN, {"run": run.id})),
                    read_events(client, run.id) if events else [])
        finally:
            client.close()
    finally:
        if started:  # a destroyed run: leave its InfluxDB as we found it
            LocalInfluxd(run.influx_dir()).stop()


def export_rally(run: Run, out: Path) -> dict[str, int]:
    """Write the run's results in Rally's task results layout (report/rally_export.py);
    returns counts (tasks, workloads, iterations)."""
    import json

    from femdc_bench.report.rally_export import rally_json

    exp = run.experiment()
    by_point, _, _ = read_back(run, exp)
    if not any(by_point.values()):
        raise ExportError(f"no samples in InfluxDB for run {run.id}: nothing to export")
    doc = rally_json(run.id, exp, by_point, version=__version__)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)
    wls = [w for t in doc["tasks"] for st in t["subtasks"] for w in st["workloads"]]
    return {"tasks": len(doc["tasks"]), "workloads": len(wls),
            "iterations": sum(w["total_iteration_count"] for w in wls)}


def report(run: Run) -> Report:
    """Read the run's points back from InfluxDB; stats per (site, target, operation)."""
    from femdc_bench.report import faults as faults_report
    from femdc_bench.report.render import stats_json
    from femdc_bench.report.stats import (
        check_sla_spec,
        compute_stats_by_point,
        rally_sla_results,
        rally_sla_violations,
    )

    exp = run.experiment()
    with run.phase("report"):
        by_point, wan_rows, events = read_back(run, exp, events=True)
        rows = compute_stats_by_point(by_point)
        own = {sc.workload: sc.sla for sc in exp.workload.scenarios if sc.workload and sc.sla}
        sla_results = rally_sla_results(by_point, own)
        violations = check_sla_spec(rows, exp.workload.sla, own)
        violations += rally_sla_violations(sla_results)
        if not rows:
            violations = ["no samples in InfluxDB for this run"]
        doc = stats_json(rows, run=run.id, sla=exp.workload.sla, violations=violations)
        doc["sla_results"] = sla_results
        labels = {p.id: p.label() for p in exp.points}
        wan: dict[str, list[dict[str, Any]]] = {}
        for r in sorted(wan_rows, key=lambda r: (r["point"], r["site"], r["target_site"])):
            wan.setdefault(r["point"], []).append({
                "src_site": r["site"], "dst_site": r["target_site"],
                "target_ms": r.get("target_ms"), "measured_ms": r.get("rtt_ms"),
                "p95_ms": r.get("rtt_p95_ms"), "loss_pct": r.get("loss_pct"),
                "ok": bool(r.get("ok"))})
        doc["points"] = {p.id: {"params": p.params, "label": labels[p.id]} for p in exp.points}
        doc["wan"] = wan
        doc["events"] = events
        doc["faults"] = fault_rows = faults_report.attribute(
            by_point, faults_report.windows(events))
        run.write_json("report.json", doc)
        run.state.sla_ok = not violations
        run.state.sla_violations = violations
    run.save()
    return Report(rows=rows, doc=doc, violations=violations, labels=labels, wan=wan,
                  events=events, faults=fault_rows)

