"""Presentation of StatsRows: a rich Table for the terminal, a JSON-able dict for --json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from femdc_bench.model import SlaSpec
from femdc_bench.report.stats import StatsRow

#: Version of the JSON document `stats_json` produces; bump it when keys change.
JSON_SCHEMA_VERSION = 1


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def stats_table(
    rows: Sequence[StatsRow],
    *,
    title: str | None = None,
    sla: SlaSpec | None = None,
) -> Table:
    """A table with one line per row; the point column only when some row has a point.

    With `sla`, values beyond its limits are shown in red.
    """
    show_point = any(r.point for r in rows)
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
    ):
        table.add_column(name, justify="right")
    for r in rows:
        err = f"{r.error_rate_pct:.1f}"
        p95 = _ms(r.p95_ms)
        if sla is not None:
            if sla.failure_rate_max_pct is not None and r.error_rate_pct > sla.failure_rate_max_pct:
                err = f"[red]{err}[/red]"
            if sla.p95_ms_max is not None and (r.p95_ms is None or r.p95_ms > sla.p95_ms_max):
                p95 = f"[red]{p95}[/red]"
        cells = [
            r.site,
            r.target_site,
            f"{r.service}.{r.operation}",
            str(r.count),
            str(r.errors),
            err,
            _ms(r.mean_ms),
            _ms(r.p50_ms),
            p95,
            _ms(r.p99_ms),
            _ms(r.max_ms),
            "-" if r.iterations_per_s is None else f"{r.iterations_per_s:.1f}",
        ]
        table.add_row(*([r.point] if show_point else []), *cells)
    return table


def stats_json(
    rows: Sequence[StatsRow],
    *,
    run: str | None = None,
    sla: SlaSpec | None = None,
    violations: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A JSON-serialisable document: {"schema", "run", "rows": [...], "sla": {...}}.

    Latencies are in ms, rates in %; None (JSON null) where a figure does not exist.
    """
    doc: dict[str, Any] = {
        "schema": JSON_SCHEMA_VERSION,
        "run": run,
        "rows": [r.to_dict() for r in rows],
    }
    if sla is not None or violations is not None:
        doc["sla"] = {
            "failure_rate_max_pct": None if sla is None else sla.failure_rate_max_pct,
            "p95_ms_max": None if sla is None else sla.p95_ms_max,
            "passed": not violations,
            "violations": list(violations or []),
        }
    return doc
