"""Runs compared cell by cell, with statistical verdicts (`femdc-bench compare`).

Definitions (stable: a nightly job's verdicts are only comparable if these are):

* A **cell** is one (sweep-point parameters, site, target_site, service, operation,
  workload, action) of the runs' iterations (action "") and atomic actions. Runs are
  matched by the point's *parameter values* (``wan.default.delay_ms`` = 50), never by
  point ids; a run without a sweep has no parameter columns, which match as "".
* Latencies are those of the **successful** iterations (as the report's tables and
  Rally's); ``n`` counts them, ``count`` all iterations, ``errors`` the failed ones.
  p50 and p95 are the report's percentile (linear interpolation, pandas' default).
* **ratio** = median(run) / median(baseline) (the ratio of medians; > 1 is slower). Its
  95 % confidence interval is a percentile bootstrap of that ratio
  (``scipy.stats.bootstrap``, the two runs resampled independently, 1,000 resamples,
  seeded). A run's side larger than 2,000 values is first subsampled (seeded, without
  replacement) to 2,000 for the CI only: its cost is cells x resamples x n (a 1M-point
  run's cells of ~50,000 took 0.5 s each at 4,000 x 2,000), and the median's CI at
  n = 2,000 is already narrower than this machine's run-to-run noise; n, p50, p95 and
  the test use every value.
* **p_value**: two-sided Mann-Whitney U (``scipy.stats.mannwhitneyu``, exact for small
  samples, normal approximation otherwise); **q_value**: the p-values of every decided
  cell of every compared run corrected together by Benjamini-Hochberg
  (``scipy.stats.false_discovery_control``).
* **verdict**: ``slower`` when q < alpha (0.05) and ratio >= 1 + min_effect, ``faster``
  when q < alpha and ratio <= 1 - min_effect, else ``no change``. ``too few samples``
  when either side has fewer than MIN_N (10) successful iterations: the smallest p-value
  Mann-Whitney U can give is 0.008 at 5 + 5 values and 0.0002 at 8 + 8, which cannot
  survive Benjamini-Hochberg over tens of cells, and a bootstrap of a median over a
  handful of values has only a few distinct outcomes: such a cell is shown, never
  decided, and not counted in the correction. ``missing`` when a run has no iteration
  in the cell, ``no successful iteration`` when one side has none.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

KEY_COLUMNS = ("site", "target_site", "service", "operation", "workload", "action")
MIN_N = 10
ALPHA = 0.05
N_RESAMPLES = 1000
CI_MAX_N = 2000
SEED = 23
DECIDED = ("slower", "faster", "no change")


@dataclass
class RunData:
    """What compare needs of one run (a `RunFrames` gives it: `from_frames`)."""

    run: str
    samples: pd.DataFrame  # iterations and actions: params, KEY_COLUMNS, status, duration_ms
    params: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    wan: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def from_frames(cls, frames: Any) -> RunData:
        cols = [*frames.params, *KEY_COLUMNS, "status", "duration_ms"]
        parts = [f[cols] for f in (frames.iterations, frames.actions) if len(f)]
        samples = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
        return cls(run=frames.run, samples=samples, params=list(frames.params),
                   meta=frames.meta, wan=frames.wan)


# --------------------------------------------------------------------------- cells


def cell_label(cell: Mapping[str, Any], params: Sequence[str]) -> str:
    """"[delay_ms=50] edge1->core identity.authenticate keystone.issue_token"."""
    pv = [f"{p.removeprefix('wan.')}={cell[p]}" for p in params if cell.get(p) not in ("", None)]
    head = f"[{', '.join(pv)}] " if pv else ""
    op = str(cell["operation"])
    op = op if "." in op else f"{cell['service']}.{op}"
    tail = f" {cell['action']}" if cell.get("action") else ""
    wl = f" ({cell['workload']})" if cell.get("workload") else ""
    return f"{head}{cell['site']}->{cell['target_site']} {op}{tail}{wl}"


def _ratio_of_medians(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    mx = np.median(x, axis=axis)
    my = np.median(y, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return mx / my


def _ci(other: np.ndarray, base: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    from scipy.stats import bootstrap

    if len(other) > CI_MAX_N:
        other = rng.choice(other, CI_MAX_N, replace=False)
    if len(base) > CI_MAX_N:
        base = rng.choice(base, CI_MAX_N, replace=False)
    if np.ptp(other) == 0 and np.ptp(base) == 0:  # no spread: the ratio is exact
        r = float(_ratio_of_medians(other, base))
        return r, r
    res = bootstrap((other, base), _ratio_of_medians, n_resamples=N_RESAMPLES,
                    vectorized=True, paired=False, confidence_level=0.95,
                    method="percentile", rng=rng, batch=200)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


@dataclass
class Group:
    count: int  # all iterations of the group
    values: np.ndarray  # the successful ones' durations, sorted


def sample_groups(df: pd.DataFrame, keys: Sequence[str]) -> dict[tuple[Any, ...], Group]:
    """The rows of `df` (with ``ok`` and ``duration_ms``) grouped by `keys`: one sort of
    integer codes (each key column factorized once), then a slice per group."""
    if df.empty:
        return {}
    codes, uniques = [], []
    for k in keys:
        c, u = pd.factorize(df[k], sort=False)
        codes.append(c)
        uniques.append(u)
    flat = np.ravel_multi_index(codes, [max(1, len(u)) for u in uniques])
    ok = df["ok"].to_numpy(bool)
    dur = df["duration_ms"].to_numpy(float)
    group_ids, first, counts = np.unique(flat, return_index=True, return_counts=True)
    order = np.lexsort((dur[ok], flat[ok]))
    ok_flat = flat[ok][order]
    ok_dur = dur[ok][order]
    lo = np.searchsorted(ok_flat, group_ids, side="left")
    hi = np.searchsorted(ok_flat, group_ids, side="right")
    out = {}
    for i, f in enumerate(first):
        key = tuple(u[c[f]] for u, c in zip(uniques, codes, strict=True))
        out[key] = Group(count=int(counts[i]), values=ok_dur[lo[i]:hi[i]])
    return out


def compare_runs(runs: Sequence[RunData], *, baseline: str | None = None,
                 min_effect: float = 0.05, alpha: float = ALPHA, seed: int = SEED
                 ) -> dict[str, Any]:
    """Every cell of every run against the baseline (default: the first run), as a
    JSON-ready document: ``runs``, ``baseline``, ``settings``, ``cells`` (one per cell and
    compared run), ``summary``, ``header`` (what differs between the runs)."""
    from scipy.stats import false_discovery_control, mannwhitneyu

    ids = [r.run for r in runs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"a run is given twice: {', '.join(ids)}")
    if len(runs) < 2:
        raise ValueError("compare needs at least two runs")
    baseline = baseline or ids[0]
    if baseline not in ids:
        raise ValueError(f"--baseline {baseline} is not one of the runs: {', '.join(ids)}")
    if not 0 <= min_effect < 1:
        raise ValueError(f"min effect must be within [0 %, 100 %), got {min_effect:.0%}")
    params = list(dict.fromkeys(p for r in runs for p in r.params))
    keys = [*params, *KEY_COLUMNS]

    parts = []
    for r in runs:
        df = r.samples.copy()
        for p in params:
            df[p] = df[p].astype(str) if p in df else ""
        df["run"] = r.run
        parts.append(df[["run", *keys, "status", "duration_ms"]])
    df = pd.concat(parts, ignore_index=True)
    for k in KEY_COLUMNS:
        df[k] = df[k].fillna("").astype(str)
    df["ok"] = (df["status"] == "ok") & np.isfinite(df["duration_ms"].to_numpy(float))

    groups = sample_groups(df, [*keys, "run"])

    def side(cell: tuple[Any, ...], run: str) -> dict[str, Any]:
        g = groups.get((*cell, run))
        if g is None:
            return {"count": 0, "n": 0, "errors": 0, "error_rate_pct": None,
                    "p50_ms": None, "p95_ms": None}
        count, n = g.count, len(g.values)
        p50, p95 = (np.quantile(g.values, [0.5, 0.95]) if n else (None, None))
        return {"count": count, "n": n, "errors": count - n,
                "error_rate_pct": 100.0 * (count - n) / count,
                "p50_ms": _num(p50), "p95_ms": _num(p95)}

    rng = np.random.default_rng(seed)
    cell_keys = sorted({k[:-1] for k in groups}, key=lambda t: tuple(map(str, t)))
    out: list[dict[str, Any]] = []
    tested: list[int] = []
    for cell in cell_keys:
        ident = dict(zip(keys, cell, strict=True))
        base = side(cell, baseline)
        for other_id in ids:
            if other_id == baseline:
                continue
            oth = side(cell, other_id)
            row: dict[str, Any] = {
                **ident, "label": cell_label(ident, params), "run": other_id,
                "baseline_run": baseline, "baseline": base, "other": oth,
                "ratio": None, "ci_low": None, "ci_high": None, "p_value": None,
                "q_value": None, "verdict": "", "warning": ""}
            if base["count"] == 0 or oth["count"] == 0:
                row["verdict"] = "missing"
                row["warning"] = f"no iteration in {baseline if base['count'] == 0 else other_id}"
            elif base["n"] == 0 or oth["n"] == 0:
                row["verdict"] = "no successful iteration"
                row["warning"] = ("no successful iteration in "
                                  f"{baseline if base['n'] == 0 else other_id}")
            else:
                b = groups[(*cell, baseline)].values
                o = groups[(*cell, other_id)].values
                row["ratio"] = _num(_ratio_of_medians(o, b))
                if min(len(b), len(o)) < MIN_N:
                    row["verdict"] = "too few samples"
                    row["warning"] = (f"n = {len(b)} / {len(o)} < {MIN_N}: too few to "
                                      "decide (see `compare --help`)")
                else:
                    row["ci_low"], row["ci_high"] = _ci(o, b, rng)
                    row["p_value"] = float(mannwhitneyu(o, b, alternative="two-sided").pvalue)
                    tested.append(len(out))
            out.append(row)

    if tested:
        ps = np.array([out[i]["p_value"] for i in tested], dtype=float)
        qs = false_discovery_control(np.nan_to_num(ps, nan=1.0), method="bh")
        for i, q in zip(tested, qs, strict=True):
            c = out[i]
            c["q_value"] = float(q)
            ratio = c["ratio"]
            significant = q < alpha
            if significant and ratio is not None and ratio >= 1 + min_effect:
                c["verdict"] = "slower"
            elif significant and ratio is not None and ratio <= 1 - min_effect:
                c["verdict"] = "faster"
            else:
                c["verdict"] = "no change"

    summary: dict[str, int] = {}
    for c in out:
        summary[c["verdict"]] = summary.get(c["verdict"], 0) + 1
    return {
        "runs": ids, "baseline": baseline, "params": params,
        "settings": {"min_effect": min_effect, "alpha": alpha, "min_n": MIN_N,
                     "ratio": "median(run) / median(baseline), successful iterations",
                     "ci": f"95 % percentile bootstrap of the ratio, {N_RESAMPLES} "
                           f"resamples, seed {seed}, sides above {CI_MAX_N} values "
                           "subsampled for the CI",
                     "test": "two-sided Mann-Whitney U, Benjamini-Hochberg over "
                             f"{len(tested)} decided cells"},
        "cells": out, "summary": summary, "header": header(runs),
    }


def regressions(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cells called slower."""
    return [c for c in doc["cells"] if c["verdict"] == "slower"]


# --------------------------------------------------------------------------- header


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping/list as {"a.b[0].c": leaf}."""
    out: dict[str, Any] = {}
    if isinstance(doc, Mapping):
        if not doc and prefix:
            out[prefix] = {}
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(doc, list):
        if not doc and prefix:
            out[prefix] = []
        for i, v in enumerate(doc):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = doc
    return out


def diff(docs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The key paths whose values differ between the runs' documents: [{"key", "values":
    {run: value or None}}]."""
    flat = {run: flatten(d) for run, d in docs.items()}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    rows = []
    for k in keys:
        vals = {run: f.get(k) for run, f in flat.items()}
        if len({repr(v) for v in vals.values()}) > 1:
            rows.append({"key": k, "values": vals})
    return rows


_LAYOUT = ("sites", "deployment", "provider")
_VERSIONS = ("femdc_bench", "method", "lock_sha256", "openstack", "packages", "wan_emulator",
             "influxdb.version", "provider")
_MACHINE = ("controller", "machine")


def _pick(flat: Mapping[str, Any], prefixes: Sequence[str], *, host_keys: bool | None
          ) -> dict[str, Any]:
    out = {}
    for k, v in flat.items():
        if k.startswith("hosts."):  # manifest hosts.<alias>.<software>
            if host_keys is None:
                continue
            if (k.rsplit(".", 1)[-1] == "kernel") == host_keys:
                out[k] = v
        elif any(k == p or k.startswith(p + ".") or k.startswith(p + "[") for p in prefixes):
            out[k] = v
    return out


def header(runs: Sequence[RunData]) -> dict[str, Any]:
    """What differs between the runs: experiment keys, layout, WAN targets and measured
    RTTs, versions (manifest), machine."""
    exps = {r.run: dict(r.meta.get("experiment") or {}) for r in runs}
    man = {r.run: flatten(r.meta.get("manifest") or {}) for r in runs}
    other = {run: {k: v for k, v in e.items() if k not in (*_LAYOUT, "wan")}
             for run, e in exps.items()}
    layout = {run: {k: e.get(k) for k in _LAYOUT} for run, e in exps.items()}
    wan_doc = {run: {"wan": e.get("wan")} for run, e in exps.items()}
    versions = {run: _pick(f, _VERSIONS, host_keys=False) for run, f in man.items()}
    machine = {run: _pick(f, _MACHINE, host_keys=True) for run, f in man.items()}
    rtt: list[dict[str, Any]] = []
    frames = [r.wan for r in runs if r.wan is not None and len(r.wan)]
    if frames:
        params = list(dict.fromkeys(p for r in runs for p in r.params))
        w = pd.concat(frames, ignore_index=True)
        for p in params:
            w[p] = w[p].astype(str) if p in w else ""
        for key, g in w.groupby([*params, "site", "target_site"], sort=True):
            key = key if isinstance(key, tuple) else (key,)
            ident = dict(zip([*params, "site", "target_site"], key, strict=True))
            by_run = {r: {"target_ms": _num(x["target_ms"].iloc[0]),
                          "rtt_ms": _num(x["rtt_ms"].iloc[0])}
                      for r, x in g.groupby("run")}
            rtt.append({**ident, "runs": by_run})
    return {
        "experiment": diff(other), "layout": diff(layout), "wan_targets": diff(wan_doc),
        "rtt": rtt, "versions": diff(versions), "machine": diff(machine),
    }


# --------------------------------------------------------------------------- rendering


def _ms(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def _ratio_text(c: Mapping[str, Any]) -> str:
    if c["ratio"] is None:
        return ""
    if c["ci_low"] is None:
        return f"{c['ratio']:.3f}"
    return f"{c['ratio']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}]"


def _q_text(c: Mapping[str, Any]) -> str:
    return "" if c["q_value"] is None else f"{c['q_value']:.2g}"


def _val(v: Any) -> str:
    return "(absent)" if v is None else str(v)


_STYLE = {"slower": "red", "faster": "green", "no change": "", "too few samples": "yellow",
          "missing": "yellow", "no successful iteration": "yellow"}


def text_tables(doc: Mapping[str, Any]) -> list[Any]:
    """rich renderables: the header's differences, then one table per compared run."""
    from rich.markup import escape
    from rich.table import Table

    runs, base = doc["runs"], doc["baseline"]
    out: list[Any] = []
    h = doc["header"]
    t = Table("what", "key", *runs, title="What differs between the runs")
    for section in ("experiment", "layout", "wan_targets", "versions", "machine"):
        for row in h[section]:
            t.add_row(section, escape(row["key"]),
                      *(escape(_val(row["values"].get(r))) for r in runs))
    if not t.row_count:
        t.add_row("(nothing)", "experiment, layout, WAN targets, versions and machine are "
                  "the same", *("" for _ in runs))
    out.append(t)
    if h["rtt"]:
        t = Table("pair", *(f"{r} target / measured RTT ms" for r in runs),
                  title="WAN: target and measured RTT")
        for row in h["rtt"]:
            pv = [f"{k}={row[k]}" for k in doc["params"] if row.get(k) not in ("", None)]
            name = (f"[{', '.join(pv)}] " if pv else "") + f"{row['site']}->{row['target_site']}"
            t.add_row(escape(name), *(f"{_ms(row['runs'][r]['target_ms'])} / "
                              f"{_ms(row['runs'][r]['rtt_ms'])}" if r in row["runs"] else ""
                              for r in runs))
        out.append(t)
    for other in runs:
        if other == base:
            continue
        t = Table("cell", "n", "p50 ms", "p95 ms", "n", "p50 ms", "p95 ms",
                  "ratio [95 % CI]", "q", "verdict",
                  title=f"{other} against {base} (ratio of medians, {other} / {base})")
        for c in doc["cells"]:
            if c["run"] != other:
                continue
            b, o = c["baseline"], c["other"]
            style = _STYLE.get(c["verdict"], "")
            verdict = f"[{style}]{c['verdict']}[/]" if style else c["verdict"]
            t.add_row(escape(c["label"]), str(b["n"]), _ms(b["p50_ms"]), _ms(b["p95_ms"]),
                      str(o["n"]), _ms(o["p50_ms"]), _ms(o["p95_ms"]), _ratio_text(c),
                      _q_text(c), verdict)
        out.append(t)
    return out


def summary_lines(doc: Mapping[str, Any]) -> list[str]:
    s = doc["settings"]
    counts = ", ".join(f"{n} {v}" for v, n in sorted(doc["summary"].items()))
    lines = [f"cells: {counts or 'none'}",
             f"verdict: q < {s['alpha']:g} and ratio beyond +-{100 * s['min_effect']:g} %; "
             f"cells with n < {s['min_n']} are not decided",
             f"ratio: {s['ratio']}; CI: {s['ci']}; test: {s['test']}"]
    return lines


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#f2f2f2}td.l{text-align:left}caption{font-weight:bold;
text-align:left;padding:4px 0}.slower{background:#fdd}.faster{background:#dfd}
.warn{background:#ffd}.note{color:#555}
"""


def _forest(c: Mapping[str, Any], lo: float, hi: float) -> str:
    """A small inline SVG: the ratio and its CI on a [lo, hi] axis, 1 marked."""
    if c["ratio"] is None:
        return ""
    w, h = 160, 14

    def x(v: float) -> float:
        return max(0.0, min(w, (v - lo) / (hi - lo) * w))

    parts = [f'<line x1="{x(1):.1f}" y1="0" x2="{x(1):.1f}" y2="{h}" stroke="#999"/>']
    if c["ci_low"] is not None:
        parts.append(f'<line x1="{x(c["ci_low"]):.1f}" y1="7" x2="{x(c["ci_high"]):.1f}" '
                     'y2="7" stroke="#333" stroke-width="2"/>')
    color = {"slower": "#c00", "faster": "#080"}.get(c["verdict"], "#333")
    parts.append(f'<circle cx="{x(c["ratio"]):.1f}" cy="7" r="3.5" fill="{color}"/>')
    return f'<svg width="{w}" height="{h}" role="img">{"".join(parts)}</svg>'


def html_page(doc: Mapping[str, Any]) -> str:
    """One self-contained page (inline CSS and SVG, no script, nothing fetched)."""
    e = html.escape
    runs, base = doc["runs"], doc["baseline"]
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
           f"<title>compare {e(' '.join(runs))}</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(' vs '.join(runs))}</h1>",
           f"<p class='note'>baseline: {e(base)}. " + "<br>".join(
               e(x) for x in summary_lines(doc)) + "</p>"]
    h = doc["header"]
    out.append("<table><caption>What differs between the runs</caption><tr><th>what</th>"
               "<th>key</th>" + "".join(f"<th>{e(r)}</th>" for r in runs) + "</tr>")
    n = 0
    for section in ("experiment", "layout", "wan_targets", "versions", "machine"):
        for row in h[section]:
            n += 1
            out.append(f"<tr><td class='l'>{e(section)}</td><td class='l'>{e(row['key'])}"
                       "</td>" + "".join(f"<td class='l'>{e(_val(row['values'].get(r)))}</td>"
                                         for r in runs) + "</tr>")
    if not n:
        out.append(f"<tr><td class='l' colspan='{2 + len(runs)}'>nothing: experiment, layout,"
                   " WAN targets, versions and machine are the same</td></tr>")
    out.append("</table>")
    if h["rtt"]:
        out.append("<table><caption>WAN: target / measured RTT (ms)</caption><tr><th>pair"
                   "</th>" + "".join(f"<th>{e(r)}</th>" for r in runs) + "</tr>")
        for row in h["rtt"]:
            pv = [f"{k}={row[k]}" for k in doc["params"] if row.get(k) not in ("", None)]
            name = (f"[{', '.join(pv)}] " if pv else "") + f"{row['site']}->{row['target_site']}"
            cells = "".join(
                f"<td>{_ms(row['runs'][r]['target_ms'])} / {_ms(row['runs'][r]['rtt_ms'])}</td>"
                if r in row["runs"] else "<td></td>" for r in runs)
            out.append(f"<tr><td class='l'>{e(name)}</td>{cells}</tr>")
        out.append("</table>")
    ratios = [v for c in doc["cells"] for v in (c["ratio"], c["ci_low"], c["ci_high"])
              if v is not None and math.isfinite(v)]
    lo = min([0.8, *ratios]) if ratios else 0.8
    hi = max([1.25, *ratios]) if ratios else 1.25
    lo, hi = max(lo, 0.0), min(hi, 10.0)
    for other in runs:
        if other == base:
            continue
        out.append(f"<table><caption>{e(other)} against {e(base)} (ratio of medians; axis "
                   f"{lo:.2f} to {hi:.2f}, grey line at 1)</caption><tr><th>cell</th>"
                   f"<th>n {e(base)}</th><th>p50</th><th>p95</th><th>n {e(other)}</th>"
                   "<th>p50</th><th>p95</th><th>ratio [95 % CI]</th><th></th><th>q</th>"
                   "<th>verdict</th><th>note</th></tr>")
        for c in doc["cells"]:
            if c["run"] != other:
                continue
            b, o = c["baseline"], c["other"]
            cls = {"slower": "slower", "faster": "faster", "no change": ""}.get(
                c["verdict"], "warn")
            out.append(
                f"<tr class='{cls}'><td class='l'>{e(c['label'])}</td><td>{b['n']}</td>"
                f"<td>{_ms(b['p50_ms'])}</td><td>{_ms(b['p95_ms'])}</td><td>{o['n']}</td>"
                f"<td>{_ms(o['p50_ms'])}</td><td>{_ms(o['p95_ms'])}</td>"
                f"<td>{e(_ratio_text(c))}</td><td>{_forest(c, lo, hi)}</td>"
                f"<td>{_q_text(c)}</td><td class='l'>{e(c['verdict'])}</td>"
                f"<td class='l'>{e(c['warning'])}</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def load_runs(run_refs: Sequence[str], *, results: Path, baseline: str | None,
              source: str = "auto") -> tuple[list[RunData], str | None]:
    """The runs `compare` reads (results.load, from `source`) and the baseline's id.
    RunError (bad input) for an unknown run or a baseline not among them; ExportError
    (a failure) for a run without samples."""
    from femdc_bench.report.assemble import ExportError
    from femdc_bench.results import load
    from femdc_bench.rundir import Run, RunError

    runs = [Run.open(ref, results) for ref in run_refs]
    base = Run.open(baseline, results).id if baseline else None
    if base is not None and base not in [r.id for r in runs]:
        raise RunError(f"--baseline {baseline}: not one of the compared runs")
    data = []
    for r in runs:
        frames = load(r, source=source)
        if frames.iterations.empty:
            raise ExportError(f"no samples for run {r.id}: nothing to compare")
        data.append(RunData.from_frames(frames))
    return data, base
