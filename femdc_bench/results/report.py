"""`report --html` and the report.html that `run` and `bench` write: the run's frames
(results.load), their statistics (results.stats) and SLA verdicts, one page."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from femdc_bench.report.stats import StatsRow
from femdc_bench.results.frames import RunFrames, load

log = logging.getLogger("femdc_bench")
REPORT_HTML = "report.html"


@dataclass
class HtmlReport:
    path: Path
    frames: RunFrames
    rows: list[StatsRow]
    violations: list[str]
    sla_results: list[dict[str, Any]]
    faults: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds


def sla(run: Any, frames: RunFrames, rows: Sequence[StatsRow]
        ) -> tuple[list[str], list[dict[str, Any]]]:
    """The SLA verdicts of the text report (report.stats.check_sla_spec and the Rally
    workloads' own criteria) over the frames: (violations, Rally SLA results)."""
    from femdc_bench.model import Sample
    from femdc_bench.report.stats import check_sla_spec, rally_sla_results, rally_sla_violations

    exp = run.experiment()
    own = {sc.workload: sc.sla for sc in exp.workload.scenarios if sc.workload and sc.sla}
    results: list[dict[str, Any]] = []
    if own:  # Samples only for the Rally workloads that have their own SLA
        by_point: dict[str, list[Sample]] = {}
        for df in (frames.iterations, frames.actions):
            for r in df[df.workload.isin(list(own))].itertuples():
                by_point.setdefault(r.point, []).append(Sample(
                    site=r.site, target_site=r.target_site, service=r.service,
                    operation=r.operation, t0_ns=r.t0.value, duration_ms=r.duration_ms,
                    status=r.status, error=r.error, host=r.host, iteration=r.iteration,
                    action=r.action, workload=r.workload))
        results = rally_sla_results(by_point, own)
    violations = check_sla_spec(rows, exp.workload.sla, own) + rally_sla_violations(results)
    if not rows:
        violations = ["no samples for this run"]
    return violations, results


def write_html_report(run: Any, out: Path | None = None, *,
                      violations: Sequence[str] | None = None,
                      sla_results: Sequence[Mapping[str, Any]] | None = None,
                      faults: Sequence[Mapping[str, Any]] | None = None,
                      source: str = "auto") -> HtmlReport:
    """Read `run` (results.load), compute its statistics and write its HTML report to
    `out` (default results/<run>/report.html). The SLA verdicts and fault rows of a
    text report just made (run.Report) may be passed in; they are computed otherwise."""
    from femdc_bench.results import html
    from femdc_bench.results.stats import stats_rows

    timings: dict[str, float] = {}
    t = time.monotonic()
    frames = load(run, source=source)
    timings["load"] = time.monotonic() - t
    t = time.monotonic()
    rows = stats_rows(frames)
    timings["stats"] = time.monotonic() - t
    t = time.monotonic()
    if violations is None:
        v, res = sla(run, frames, rows)
    else:
        v, res = list(violations), [dict(r) for r in sla_results or []]
    fr = list(faults) if faults is not None else html.fault_rows(frames)
    timings["sla+faults"] = time.monotonic() - t
    t = time.monotonic()
    page = html.render(frames, rows, violations=v, sla_results=res, faults=fr)
    path = html.write(Path(out) if out else run.dir / REPORT_HTML, page)
    timings["render+write"] = time.monotonic() - t
    log.info("report.html: %s", ", ".join(f"{k} {s:.2f} s" for k, s in timings.items()))
    return HtmlReport(path=path, frames=frames, rows=rows, violations=v,
                      sla_results=[dict(r) for r in res], faults=[dict(r) for r in fr],
                      timings=timings)


def after_report(run: Any, rep: Any) -> Path | None:
    """The hook at the end of `run` and `bench`'s report step: results/<run>/report.html
    from the report just made (`rep`: run.Report); None (and a warning) when it could
    not be written: the run's outcome does not depend on the page."""
    try:
        return write_html_report(run, violations=rep.violations,
                                 sla_results=rep.doc.get("sla_results") or [],
                                 faults=rep.faults).path
    except Exception as e:  # noqa: BLE001 - the page is an extra; the run is done
        log.warning("report.html not written: %s: %s", type(e).__name__, e)
        return None


def report_with_html(run: Any, out: Path | None = None) -> tuple[Any, HtmlReport]:
    """`report --html`: the text report (run.Report, report.json, the SLA verdict in
    state.json, as `run.report` makes them) and the page, from ONE read of the run
    (results.load; statistics with pandas): a run of a million iterations is read once,
    column-wise, instead of once as Samples and once as frames."""
    from femdc_bench.metrics.server import LocalInfluxd
    from femdc_bench.metrics.store import store_events
    from femdc_bench.metrics.target import metrics_target
    from femdc_bench.report.assemble import Report
    from femdc_bench.report.render import stats_json

    exp = run.experiment()
    started = False
    with run.phase("report"):
        try:
            try:  # the run's events.jsonl into InfluxDB first, as run.read_back does
                target, started = metrics_target(run, exp)
                store_events(run, exp, target)
            except Exception as e:  # noqa: BLE001 - InfluxDB away: load reads the files
                log.warning("events not stored in InfluxDB (%s)", e)
            page = write_html_report(run, out)
        finally:
            if started:
                LocalInfluxd(run.influx_dir()).stop()
        frames, rows, violations = page.frames, page.rows, page.violations
        doc = stats_json(rows, run=run.id, sla=exp.workload.sla, violations=violations)
        doc["sla_results"] = page.sla_results
        labels = {p.id: p.label() for p in exp.points}
        wan: dict[str, list[dict[str, Any]]] = {}
        for w in frames.wan.itertuples():
            wan.setdefault(w.point, []).append({
                "src_site": w.site, "dst_site": w.target_site, "target_ms": _num(w.target_ms),
                "measured_ms": _num(w.rtt_ms), "p95_ms": _num(w.rtt_p95_ms),
                "loss_pct": _num(w.loss_pct), "ok": bool(w.ok)})
        events = [{"time": e.time.value, "kind": e.kind, "phase": e.phase,
                   "point": e.point or None, "site": e.site or None, "fault": e.fault or None,
                   "step_s": _num(e.step_s), "text": e.text}
                  for e in frames.events.itertuples()]
        doc["points"] = {p.id: {"params": p.params, "label": labels[p.id]} for p in exp.points}
        doc["wan"], doc["events"], doc["faults"] = wan, events, page.faults
        run.write_json("report.json", doc)
        run.state.sla_ok = not violations
        run.state.sla_violations = violations
    run.save()
    rep = Report(rows=rows, doc=doc, violations=violations, labels=labels, wan=wan,
                 events=events, faults=page.faults)
    return rep, page


def _num(v: Any) -> float | None:
    return None if v is None or v != v else float(v)
