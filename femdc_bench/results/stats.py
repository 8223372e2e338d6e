"""The report's statistics (report/stats.py: its definitions, its StatsRow) computed over
a run's DataFrames with pandas, column-wise: what the HTML report and a report of a
million points use instead of one Python object per sample.

Same rows, same order, same figures as `report.stats.compute_stats_by_point` (a unit
test holds them equal): counts over all iterations, latencies over the successful
ones, percentiles by linear interpolation (pandas' default quantile, Rally's)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from femdc_bench.report.stats import OK, StatsRow
from femdc_bench.results.frames import ITERATION_COLUMNS, RunFrames

KEY = ["point", "site", "target_site", "service", "operation", "action", "workload"]


def extra_fields(df: pd.DataFrame, params: list[str]) -> list[str]:
    """The extra numeric fields of an iterations/actions frame (e.g. mb_per_s)."""
    return [c for c in df.columns if c not in ITERATION_COLUMNS and c not in params]


def group_stats(df: pd.DataFrame, params: list[str] | None = None) -> pd.DataFrame:
    """One row per KEY group of `df` (iterations and/or actions): count, errors,
    error_rate_pct, mean/min/p50/p95/p99/max_ms over the ok ones, first (ns), span_s,
    and the mean of each extra field over the ok ones."""
    extra = extra_fields(df, params or [])
    t0 = df["t0"].astype("int64")
    dur = df["duration_ms"]
    end = t0 + (dur.where(np.isfinite(dur), 0.0) * 1e6)
    base = pd.DataFrame({k: df[k] for k in KEY})
    base["err"] = (df["status"] != OK).astype("int64")
    base["t0"], base["end"] = t0, end
    g = base.groupby(KEY, sort=False, observed=True)
    out = pd.DataFrame({"count": g.size(), "errors": g["err"].sum(), "first": g["t0"].min(),
                        "span_s": (g["end"].max() - g["t0"].min()) / 1e9})
    okm = (df["status"] == OK) & np.isfinite(dur)
    ok = pd.DataFrame({k: df.loc[okm, k] for k in KEY})
    ok["d"] = dur[okm]
    go = ok.groupby(KEY, sort=False, observed=True)["d"]
    lat = pd.DataFrame({"mean_ms": go.mean(), "min_ms": go.min(), "max_ms": go.max()})
    q = go.quantile([0.5, 0.95, 0.99]).unstack()
    lat["p50_ms"], lat["p95_ms"], lat["p99_ms"] = q[0.5], q[0.95], q[0.99]
    out = out.join(lat)
    for c in extra:
        v = df.loc[okm, c]
        keep = np.isfinite(v)
        sub = pd.DataFrame({k: df.loc[okm, k][keep] for k in KEY})
        sub[c] = v[keep]
        out[f"field:{c}"] = sub.groupby(KEY, sort=False, observed=True)[c].mean()
    out["error_rate_pct"] = 100.0 * out["errors"] / out["count"]
    return out.reset_index()


def _none(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _order(key: tuple[str, ...], first: dict[Any, int],
           wl_first: dict[tuple[str, str, str], int]) -> tuple[object, ...]:
    """compute_stats's order: a Rally workload's rows where it first ran, each iteration
    row before its atomic actions, those in the order they first started."""
    wl = (wl_first[(key[0], key[1], key[5])], key[5]) if key[5] else (0, "")
    return (*key[:2], *wl, *key[2:4], bool(key[4]), first[key] if key[4] else 0, key[4])


def stats_rows(frames: RunFrames) -> list[StatsRow]:
    """`report.stats.compute_stats_by_point` over the frames: the same StatsRows in the
    same order."""
    both = pd.concat([frames.iterations, frames.actions], ignore_index=True)
    if both.empty:
        return []
    gs = group_stats(both, frames.params)
    fields = [c for c in gs.columns if c.startswith("field:")]
    recs = gs.to_dict("records")
    rows: list[StatsRow] = []
    for point in sorted({r["point"] for r in recs}):
        mine = [r for r in recs if r["point"] == point]
        first = {tuple(r[k] for k in KEY[1:]): int(r["first"]) for r in mine}
        wl_first: dict[tuple[str, str, str], int] = {}
        for key, t in first.items():
            k = (key[0], key[1], key[5])
            wl_first[k] = min(t, wl_first.get(k, t))

        by_key = {tuple(r[k] for k in KEY[1:]): r for r in mine}
        for key in sorted(by_key, key=lambda k, f=first, w=wl_first: _order(k, f, w)):
            r = by_key[key]
            site, target, service, operation, action, workload = key
            span = float(r["span_s"])
            rows.append(StatsRow(
                point=point, site=site, target_site=target, service=service,
                operation=operation, count=int(r["count"]), errors=int(r["errors"]),
                error_rate_pct=float(r["error_rate_pct"]), mean_ms=_none(r["mean_ms"]),
                min_ms=_none(r["min_ms"]), p50_ms=_none(r["p50_ms"]),
                p95_ms=_none(r["p95_ms"]), p99_ms=_none(r["p99_ms"]),
                max_ms=_none(r["max_ms"]),
                iterations_per_s=int(r["count"]) / span if span > 0 and not action else None,
                action=action, workload=workload,
                fields={f.removeprefix("field:"): float(r[f]) for f in sorted(fields)
                        if _none(r[f]) is not None}))
    return rows
