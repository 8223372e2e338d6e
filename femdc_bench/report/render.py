"""Presentation of StatsRows: a rich Table for the terminal, a JSON-able dict for --json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from femdc_bench.model import SlaSpec
from femdc_bench.report.stats import StatsRow

#: Version of the JSON document `stats_json` produces; bump it when keys change.
#: 2: rows have "action" and "fields"; atomic-action rows are under "actions".
JSON_SCHEMA_VERSION = 2
MB_PER_S = "mb_per_s"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def stats_table(
    rows: Sequence[StatsRow],
    *,
    title: str | None = None,
    sla: SlaSpec | None = None,
) -> Table:
    """A table with one line per row; the point column only when some row has a point.

    Atomic-action rows are indented under their iteration row (operation column: the
    action's name), with "-" for it/s. A "MB/s" column (mean of the mb_per_s field)
    appears when some row has one. With `sla`, iteration values beyond its limits are
    shown in red (the SLA is about whole iterations).
    """
    show_point = any(r.point for r in rows)
    show_rate = any(MB_PER_S in r.fields for r in rows)
    table = Table(title=title, show_lines=False)
    if show_point:
        table.add_column("point")
    for name in ("site", "target", "operation"):
        table.add_column(name)
    for name in (
        "count",
        "errors",
        "err %",
        "mean ms",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "it/s",
        *(["MB/s"] if show_rate else []),
    ):
        table.add_column(name, justify="right")
    for r in rows:
        err = f"{r.error_rate_pct:.1f}"
        p95 = _ms(r.p95_ms)
        if sla is not None and r.is_iteration:
            if sla.failure_rate_max_pct is not None and r.error_rate_pct > sla.failure_rate_max_pct:
                err = f"[red]{err}[/red]"
            if sla.p95_ms_max is not None and (r.p95_ms is None or r.p95_ms > sla.p95_ms_max):
                p95 = f"[red]{p95}[/red]"
        rate = r.fields.get(MB_PER_S)
        cells = [
            r.site if r.is_iteration else "",
            r.target_site if r.is_iteration else "",
            r.operation_label if r.is_iteration else f"  [dim]└[/dim] {r.action}",
            str(r.count),
            str(r.errors),
            err,
            _ms(r.mean_ms),
            _ms(r.p50_ms),
            p95,
            _ms(r.p99_ms),
            _ms(r.max_ms),
            "-" if r.iterations_per_s is None else f"{r.iterations_per_s:.1f}",
            *([("-" if rate is None else f"{rate:.1f}")] if show_rate else []),
        ]
        point = [r.point if r.is_iteration else ""] if show_point else []
        table.add_row(*point, *cells)
    return table


def stats_json(
    rows: Sequence[StatsRow],
    *,
    run: str | None = None,
    sla: SlaSpec | None = None,
    violations: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A JSON-serialisable document: {"schema", "run", "rows": [...], "actions": [...],
    "sla": {...}}.

    "rows" are the whole iterations (what the SLA is checked on), "actions" the atomic
    actions' rows (same keys; "action" names the action). Latencies are in ms, rates in
    %; None (JSON null) where a figure does not exist.
    """
    doc: dict[str, Any] = {
        "schema": JSON_SCHEMA_VERSION,
        "run": run,
        "rows": [r.to_dict() for r in rows if r.is_iteration],
        "actions": [r.to_dict() for r in rows if not r.is_iteration],
    }
    if sla is not None or violations is not None:
        doc["sla"] = {
            "failure_rate_max_pct": None if sla is None else sla.failure_rate_max_pct,
            "p95_ms_max": None if sla is None else sla.p95_ms_max,
            "passed": not violations,
            "violations": list(violations or []),
        }
    return doc


def sweep_table(rows: Sequence[StatsRow], labels: dict[str, str],
                metric: str = "p50_ms") -> Table:
    """Latency versus the swept parameters: one line per (site, target, operation) and
    per atomic action under it, one column per point (its parameters as the header),
    `metric` in each cell."""
    points = [p for p in labels if any(r.point == p for r in rows)]
    table = Table(title=f"{metric.removesuffix('_ms')} latency (ms) per sweep point")
    for name in ("site", "target", "operation"):
        table.add_column(name)
    for p in points:
        table.add_column(f"{p}\n{labels[p]}", justify="right")
    cells: dict[tuple[str, str, str, str], dict[str, str]] = {}
    for r in rows:
        value = getattr(r, metric)
        cells.setdefault((r.site, r.target_site, r.operation_label, r.action), {})[r.point] = (
            _ms(value))
    # in the rows' order (compute_stats: an operation's line, then its actions as they ran)
    for key in cells:
        site, target, op, action = key
        head = (site, target, op) if not action else ("", "", f"  └ {action}")
        table.add_row(*head, *(cells[key].get(p, "-") for p in points))
    return table


def wan_table(pairs: Sequence[dict[str, Any]], title: str) -> Table:
    """A measured RTT matrix against its targets (pairs as in WanCheck.to_dict())."""
    table = Table(title=title)
    for name in ("from", "to"):
        table.add_column(name)
    for name in ("target RTT ms", "measured ms", "p95 ms", "error ms", "loss %", "ok"):
        table.add_column(name, justify="right")
    for p in pairs:
        expected = p["target_ms"] + (p.get("base_ms") or 0.0)
        measured = p.get("measured_ms")
        err = "-" if measured is None else f"{measured - expected:+.2f}"
        table.add_row(p["src_site"], p["dst_site"], f"{expected:.2f}", _ms2(measured),
                      _ms2(p.get("p95_ms")), err, f"{p['loss_pct']:.0f}",
                      "[green]yes[/]" if p["ok"] else "[red]no[/]")
    return table


def _ms2(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def events_table(events: Sequence[dict[str, Any]], title: str) -> Table:
    """The run's events in time order (phases, WAN changes, faults), with the time since
    the first one."""
    import datetime as dt

    table = Table(title=title)
    for name, justify in (("+s", "right"), ("UTC", "left"), ("kind", "left"),
                          ("phase", "left"), ("point", "left"), ("site", "left"),
                          ("event", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    t0 = int(events[0]["time"]) if events else 0
    for e in events:
        t = int(e["time"])
        table.add_row(f"{(t - t0) / 1e9:.1f}",
                      dt.datetime.fromtimestamp(t / 1e9, dt.UTC).strftime("%H:%M:%S.%f")[:-3],
                      str(e.get("kind") or ""), str(e.get("phase") or ""),
                      str(e.get("point") or ""), str(e.get("site") or ""),
                      str(e.get("text") or ""))
    return table


def faults_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    """report.faults.attribute: per fault, load site and target, iterations / errors / p50 before,
    during and after the fault, and when the site's iterations succeeded again."""
    t = Table(title=title)
    for col in ("point", "fault", "for", "site", "target"):
        t.add_column(col)
    for phase in ("before", "during", "after"):
        t.add_column(f"{phase}: n/err/p50 ms", justify="right")
    t.add_column("changing: n/err", justify="right")
    t.add_column("recovered s", justify="right")
    for r in rows:
        cells = []
        for phase in ("before", "during", "after"):
            p = r[phase]
            cells.append(f"{p['count']}/{p['errors']}/{_ms(p['p50_ms'])}" if p["count"] else "-")
        dur = "until the end" if r["duration_s"] is None else f"{r['duration_s']:.1f} s"
        rec = "-" if r["recovered_s"] is None else f"{r['recovered_s']:.1f}"
        ch = r.get("changing") or {"count": 0, "errors": 0}
        t.add_row(r["point"], r["fault"], dur, r["site"], r["target_site"], *cells,
                  f"{ch['count']}/{ch['errors']}", rec)
    return t


def print_report(out: Console, run_id: str, sla: SlaSpec, rep: Any) -> None:
    """The report's tables on `out` (report.assemble.Report): per point its RTT matrix
    and statistics, the sweep, the events, the faults, the SLA verdict."""
    for pid, label in rep.labels.items():
        rows = [row for row in rep.rows if row.point == pid]
        if not rows:
            continue
        name = pid if label == "-" else f"{pid} ({label})"
        if pid in rep.wan:
            out.print(wan_table(rep.wan[pid], f"{name}: RTT between sites"))
        out.print(stats_table(rows, title=f"{run_id} {name}, read back from InfluxDB", sla=sla))
    if len([p for p in rep.labels if any(row.point == p for row in rep.rows)]) > 1:
        out.print(sweep_table(rep.rows, rep.labels))
    if rep.events:
        out.print(events_table(rep.events, f"{run_id}: events, from InfluxDB"), highlight=False)
    if rep.faults:
        out.print(faults_table(rep.faults, f"{run_id}: before, during and after each fault"),
                  highlight=False)
    if not rep.violations:
        out.print("[green]SLA met[/]")
    for v in rep.violations:
        out.print(f"[red]SLA violated:[/] {v}", highlight=False)
