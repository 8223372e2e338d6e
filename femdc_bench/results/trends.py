"""Cells over runs, with change points (`femdc-bench trends`).

* Cells are compare's (sweep-point parameters, site, target_site, service, operation,
  workload, action); per run: n (successful iterations), count, p50 and p95 over the
  successful ones (the report's percentile), error rate. Runs are ordered by their first
  iteration's time.
* Change points: each cell's p50, p95 and error-rate series (one value per run that has
  the cell) goes through Apache Otava's E-Divisive with means (``otava.analysis.
  compute_change_points``: candidates by E-Divisive, each kept when a two-sided Student
  t-test between the segments it separates gives p <= max_pvalue, 0.001 by default as
  Otava's, and the relative change of the means is at least min_effect, 5 %). A change
  point is marked at the first run after the change.
* A **regression** is a change point of p50 or p95 whose mean after is higher than
  before, at one of the latest `recent` runs (default 1: a nightly job fails the night a
  slowdown appears, not every night after it).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from femdc_bench.results.compare import KEY_COLUMNS, cell_label

MAX_PVALUE = 0.001
METRICS = ("p50_ms", "p95_ms", "error_rate_pct")
LATENCY = ("p50_ms", "p95_ms")


@dataclass
class TrendRun:
    """One run's samples (iterations and actions; params, KEY_COLUMNS, status,
    duration_ms, t0) for trends."""

    run: str
    samples: pd.DataFrame
    params: list[str] = field(default_factory=list)

    @classmethod
    def from_frames(cls, frames: Any) -> TrendRun:
        cols = [*frames.params, *KEY_COLUMNS, "status", "duration_ms", "t0"]
        parts = [f[cols] for f in (frames.iterations, frames.actions) if len(f)]
        samples = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
        return cls(run=frames.run, samples=samples, params=list(frames.params))


def runs_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[TrendRun]:
    """Raw `api` rows of several runs (InfluxDB's: tags, fields, ``time`` in ns) ->
    TrendRuns; the point-parameter tags are the string columns that are not api's."""
    from femdc_bench.metrics.names import API_COLUMNS

    df = pd.DataFrame.from_records(list(rows))
    if df.empty:
        return []
    for k in (*KEY_COLUMNS, "run", "status"):
        df[k] = df[k].fillna("").astype(str) if k in df else ""
    df["duration_ms"] = pd.to_numeric(df.get("duration_ms"), errors="coerce")
    df["t0"] = pd.to_datetime(df["time"].astype("int64"), unit="ns", utc=True)
    params = sorted(c for c in df.columns if c not in API_COLUMNS and c != "t0"
                    and df[c].map(lambda v: isinstance(v, str) or v is None).all())
    for p in params:
        df[p] = df[p].fillna("").astype(str)
    return [TrendRun(run=str(r), samples=g.reset_index(drop=True), params=params)
            for r, g in df.groupby("run", sort=False)]


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def cell_table(runs: Sequence[TrendRun]) -> tuple[pd.DataFrame, list[str], list[dict[str, Any]]]:
    """(per (cell, run) statistics, the parameter columns, the runs in time order with
    their time)."""
    params = list(dict.fromkeys(p for r in runs for p in r.params))
    keys = [*params, *KEY_COLUMNS]
    parts, order = [], []
    for r in runs:
        df = r.samples.copy()
        if df.empty:
            continue
        for p in params:
            df[p] = df[p].astype(str) if p in df else ""
        df["run"] = r.run
        parts.append(df[["run", *keys, "status", "duration_ms"]])
        t = pd.to_datetime(df["t0"], utc=True).min()
        order.append({"run": r.run, "time": t})
    order.sort(key=lambda x: (x["time"], x["run"]))
    if not parts:
        return pd.DataFrame(), params, order
    df = pd.concat(parts, ignore_index=True)
    for k in KEY_COLUMNS:
        df[k] = df[k].fillna("").astype(str)
    df["ok"] = (df["status"] == "ok") & np.isfinite(df["duration_ms"].to_numpy(float))
    gk = [*keys, "run"]
    stats = df.groupby(gk, sort=False, observed=True).agg(count=("ok", "size"),
                                                          n=("ok", "sum"))
    q = df[df["ok"]].groupby(gk, sort=False, observed=True)["duration_ms"].quantile(
        [0.5, 0.95]).unstack()
    stats = stats.join(q, how="left").rename(columns={0.5: "p50_ms", 0.95: "p95_ms"})
    for c in ("p50_ms", "p95_ms"):
        if c not in stats:
            stats[c] = np.nan
    stats["error_rate_pct"] = 100.0 * (stats["count"] - stats["n"]) / stats["count"]
    return stats.reset_index(), params, order


def change_points(values: Sequence[float], *, max_pvalue: float = MAX_PVALUE,
                  min_effect: float = 0.05) -> list[dict[str, Any]]:
    """Otava's change points of one series: [{"index" (first value after the change),
    "before", "after" (the segments' means), "change_pct", "p_value"}]."""
    from otava.analysis import compute_change_points

    xs = np.asarray(values, dtype=float)
    if len(xs) < 3 or not np.isfinite(xs).all():
        return []
    # a list, not the array: otava 0.8.0's window slicing only slices a non-array series
    found, _ = compute_change_points(xs.tolist(), max_pvalue=max_pvalue,
                                     min_magnitude=min_effect)
    out = []
    for cp in found:
        s = cp.stats
        before, after = float(s.mean_1), float(s.mean_2)
        out.append({"index": int(cp.index), "before": before, "after": after,
                    "change_pct": 100.0 * (after / before - 1) if before else None,
                    "p_value": float(s.pvalue)})
    return out


def trends(runs: Sequence[TrendRun], *, max_pvalue: float = MAX_PVALUE,
           min_effect: float = 0.05, recent: int = 1) -> dict[str, Any]:
    """Every cell's series over the runs, its change points and the new regressions."""
    if recent < 1:
        raise ValueError(f"recent must be at least 1, got {recent}")
    stats, params, order = cell_table(runs)
    ids = [o["run"] for o in order]
    position = {r: i for i, r in enumerate(ids)}
    keys = [*params, *KEY_COLUMNS]
    cells: list[dict[str, Any]] = []
    regressions: list[dict[str, Any]] = []
    if len(stats):
        stats["_pos"] = stats["run"].map(position)
        stats = stats.sort_values([*keys, "_pos"], kind="stable")
        for key, g in stats.groupby(keys, sort=True):
            ident = dict(zip(keys, key, strict=True))
            series = [{"run": r, "time": order[p]["time"].isoformat(), "n": int(n),
                       "count": int(c), "p50_ms": _num(p50), "p95_ms": _num(p95),
                       "error_rate_pct": _num(err)}
                      for r, p, n, c, p50, p95, err in zip(
                          g["run"], g["_pos"], g["n"], g["count"], g["p50_ms"],
                          g["p95_ms"], g["error_rate_pct"], strict=True)]
            cps = []
            for metric in METRICS:
                pts = [(s["run"], s[metric]) for s in series if s[metric] is not None]
                for cp in change_points([v for _, v in pts], max_pvalue=max_pvalue,
                                        min_effect=min_effect):
                    run_id = pts[cp["index"]][0]
                    direction = "slower" if cp["after"] > cp["before"] else "faster"
                    if metric == "error_rate_pct":
                        direction = "more errors" if cp["after"] > cp["before"] else \
                            "fewer errors"
                    cps.append({"metric": metric, "run": run_id, **cp,
                                "direction": direction,
                                "new": position[run_id] >= len(ids) - recent})
            cell = {**ident, "label": cell_label(ident, params), "series": series,
                    "change_points": cps}
            cells.append(cell)
            for cp in cps:
                if cp["metric"] in LATENCY and cp["direction"] == "slower" and cp["new"]:
                    regressions.append({"label": cell["label"], **cp})
    return {"runs": [{"run": o["run"], "time": o["time"].isoformat()} for o in order],
            "params": params, "cells": cells, "regressions": regressions,
            "settings": {"max_pvalue": max_pvalue, "min_effect": min_effect,
                         "recent": recent,
                         "method": "E-Divisive with means + Student t-test (apache-otava "
                                   "compute_change_points) on each cell's p50, p95 and "
                                   "error rate per run"}}


# --------------------------------------------------------------------------- rendering


def _ms(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def text_table(doc: Mapping[str, Any], last: int = 8) -> Any:
    """A rich table: each cell's p50 over the latest `last` runs (a change point's run
    marked), its latest p95 and error rate, and its change points."""
    from rich.markup import escape
    from rich.table import Table

    ids = [r["run"] for r in doc["runs"]][-last:]
    t = Table("cell", *(f"p50 {r}" for r in ids), "p95", "err %", "change points",
              title=f"{len(doc['runs'])} runs, {len(doc['cells'])} cells (p50 ms; * marks "
                    "a change point)")
    for c in doc["cells"]:
        by = {s["run"]: s for s in c["series"]}
        marked = {cp["run"] for cp in c["change_points"] if cp["metric"] == "p50_ms"}
        cols = [(_ms(by[r]["p50_ms"]) + ("*" if r in marked else "")) if r in by else ""
                for r in ids]
        latest = c["series"][-1]
        cps = "; ".join(
            f"{'[red]' if cp['direction'] == 'slower' else ''}{cp['metric'][:-3]} "
            f"{cp['direction']} at {escape(cp['run'])} ({cp['before']:.1f} -> {cp['after']:.1f}, "
            f"p {cp['p_value']:.1g}){'[/]' if cp['direction'] == 'slower' else ''}"
            for cp in c["change_points"])
        err = latest["error_rate_pct"]
        t.add_row(escape(c["label"]), *cols, _ms(latest["p95_ms"]),
                  "" if err is None else f"{err:.1f}", cps)
    return t


def _chart(c: Mapping[str, Any], n_runs: int, position: Mapping[str, int]) -> str:
    """An inline SVG: p50 (dark) and p95 (light) per run, change points as red lines."""
    w, h, pad = 320, 90, 4
    vals = [v for s in c["series"] for v in (s["p50_ms"], s["p95_ms"]) if v is not None]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    hi = hi if hi > lo else lo + 1.0

    def x(run: str) -> float:
        return pad + (w - 2 * pad) * (position[run] / max(1, n_runs - 1))

    def y(v: float) -> float:
        return h - pad - (h - 2 * pad) * (v - lo) / (hi - lo)

    parts = []
    for cp in c["change_points"]:
        if cp["metric"] in LATENCY:
            parts.append(f'<line x1="{x(cp["run"]):.1f}" y1="0" x2="{x(cp["run"]):.1f}" '
                         f'y2="{h}" stroke="#d00" stroke-dasharray="3,2"/>')
    for metric, color in (("p95_ms", "#9ab"), ("p50_ms", "#235")):
        pts = " ".join(f"{x(s['run']):.1f},{y(s[metric]):.1f}" for s in c["series"]
                       if s[metric] is not None)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                     'stroke-width="1.5"/>')
        parts += [f'<circle cx="{x(s["run"]):.1f}" cy="{y(s[metric]):.1f}" r="2" '
                  f'fill="{color}"/>' for s in c["series"] if s[metric] is not None]
    parts += [f'<text x="{w - pad}" y="10" font-size="9" text-anchor="end" fill="#555">'
              f'{hi:.1f} ms</text>',
              f'<text x="{w - pad}" y="{h - 1}" font-size="9" text-anchor="end" '
              f'fill="#555">{lo:.1f} ms</text>']
    return (f'<svg width="{w}" height="{h}" role="img"><title>{lo:.1f} to {hi:.1f} ms'
            f'</title>{"".join(parts)}</svg>')


def html_page(doc: Mapping[str, Any]) -> str:
    """One self-contained page: per cell a chart and its change points."""
    e = html.escape
    position = {r["run"]: i for i, r in enumerate(doc["runs"])}
    n = len(doc["runs"])
    s = doc["settings"]
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>trends</title>",
           "<style>body{font:14px/1.4 system-ui,sans-serif;margin:1.5em}table{border-"
           "collapse:collapse}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;"
           "vertical-align:top}.slower{color:#c00;font-weight:bold}.note{color:#555}</style>"
           "</head><body>",
           f"<h1>Trends over {n} runs</h1>",
           f"<p class='note'>{e(s['method'])}; p &lt;= {s['max_pvalue']:g}, change &gt;= "
           f"{100 * s['min_effect']:g} %; dark: p50, light: p95, red dashes: change points."
           f" Runs: {e(', '.join(r['run'] + ' (' + r['time'][:19] + ')' for r in doc['runs']))}"
           "</p>"]
    if doc["regressions"]:
        out.append("<p class='slower'>New regressions:</p><ul class='slower'>" + "".join(
            "<li>" + e(f"{r['label']}: {r['metric'][:-3]} {r['before']:.1f} -> "
                       f"{r['after']:.1f} ms at {r['run']}") + "</li>"
            for r in doc["regressions"]) + "</ul>")
    out.append("<table><tr><th>cell</th><th>p50 / p95 over runs</th><th>latest p50, p95, "
               "err %</th><th>change points</th></tr>")
    for c in doc["cells"]:
        last = c["series"][-1]
        cps = "<br>".join(
            f"<span class='{'slower' if cp['direction'] == 'slower' else ''}'>"
            f"{e(cp['metric'][:-3])} {e(cp['direction'])} at {e(cp['run'])}: "
            f"{cp['before']:.1f} -&gt; {cp['after']:.1f} (p {cp['p_value']:.1g})</span>"
            for cp in c["change_points"])
        err = last["error_rate_pct"]
        out.append(f"<tr><td>{e(c['label'])}</td><td>{_chart(c, n, position)}</td>"
                   f"<td>{_ms(last['p50_ms'])}, {_ms(last['p95_ms'])}, "
                   f"{'' if err is None else f'{err:.1f}'}</td><td>{cps}</td></tr>")
    out.append("</table></body></html>")
    return "\n".join(out)


def gather_runs(run_refs: Sequence[str], *, results: Path, experiment: str | None,
                since: str | None, influx: tuple[str | None, str, str | None, str | None],
                warn: Callable[[str], None]) -> list[TrendRun]:
    """The runs `trends` shows: the RUNs given, else the runs of `experiment` (default:
    the latest run's) under `results`, or in the InfluxDB `influx` = (url, database, org,
    token_env) that nightly runs write to; those started before `since` (ISO 8601, UTC
    unless given) left out. RunError for a bad --since or no run; ExportError (a
    failure) when no run has samples."""
    from femdc_bench.report.assemble import ExportError
    from femdc_bench.rundir import Run, RunError, list_runs

    t_since = None
    if since:
        try:
            t_since = pd.Timestamp(since)
        except ValueError:
            raise RunError(f"--since: expected an ISO 8601 date such as 2026-12-01, "
                           f"got {since!r}") from None
        t_since = t_since.tz_localize("UTC") if t_since.tzinfo is None else t_since
    url, database, org, token_env = influx
    runs: list[TrendRun] = []
    if url:
        from femdc_bench.metrics.client import InfluxTarget, connect, read_token
        from femdc_bench.metrics.names import API

        token = read_token(token_env, None)
        with connect(InfluxTarget(url=url, database=database, org=org, token=token),
                     create=False) as client:
            runs = runs_from_rows(client.rows(API, {"experiment": str(experiment)}))
    else:
        from femdc_bench.results import load

        if run_refs:
            chosen = [Run.open(ref, results) for ref in run_refs]
        else:
            every = list_runs(results)
            if not every:
                raise RunError(f"no runs in {results}")
            name = experiment or every[-1].state.experiment
            chosen = [r for r in every if r.state.experiment == name]
            if t_since is not None:  # a run starts after its directory is made
                chosen = [r for r in chosen if pd.Timestamp(
                    r.state.created, unit="s", tz="UTC") >= t_since - pd.Timedelta(days=1)]
        for r in chosen:
            frames = load(r)
            if frames.iterations.empty:
                warn(f"{r.id}: no samples, left out")
                continue
            runs.append(TrendRun.from_frames(frames))
    if t_since is not None:
        runs = [r for r in runs if len(r.samples)
                and pd.to_datetime(r.samples["t0"], utc=True).min() >= t_since]
    if not runs:
        raise ExportError("no run with samples to show")
    return runs
