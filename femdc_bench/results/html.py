"""The run's report as one self-contained HTML page (results/<run>/report.html).

Everything is inline: styles, charts (SVG drawn here, results/svg.py) and one small
script of our own that marks the page as rendered; no network is needed to open it.
Tables are exact (over every iteration); charts are downsampled for drawing.

Sections: the run (experiment, sites/hosts/roles/regions, WAN targets against the
measured RTT matrix per point, versions, SLA verdicts); a site x target heat map of p50
and p95 per operation; for sweeps, latency against each swept parameter with a fitted
slope (ms of latency per ms of measured RTT, scipy.stats.linregress) and its fit
quality; a timeline per point (phases, WAN changes and faults over each site's latency
and error rate and the per-service CPU/RSS, RabbitMQ connections and database queries);
the faults' before/during/after table; then per workload and (site, target): Rally's
statistics table with the atomic actions nested, the load profile, duration per
iteration over time with failures marked, a histogram, the atomic-action breakdown and
the failures with their messages.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from femdc_bench.report.stats import StatsRow
from femdc_bench.results import svg
from femdc_bench.results.frames import RunFrames
from femdc_bench.results.svg import Mark, Series, Span

CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:0 24px 40px;color:#222;max-width:1400px}
h1{font-size:22px;margin:18px 0 4px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:13px;margin:10px 0 4px}
table{border-collapse:collapse;margin:6px 0 10px}td,th{border:1px solid #ddd;padding:2px 7px}
th{background:#f4f4f4;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.act td:first-child{padding-left:22px;color:#555}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:8px}svg.chart{background:#fff;border:1px solid #e4e4e4}
svg text{font:10px system-ui,sans-serif;fill:#333}svg .t{font-size:12px;font-weight:600}
svg .xl{text-anchor:middle}svg .yl{text-anchor:end}svg .lg{font-size:10px}
svg .area{fill:#fcfcfc;stroke:#ccc}svg .grid{stroke:#eee}svg .ax{stroke:#999}
.nodata{color:#888;font-style:italic;padding:6px}.muted{color:#777}
details pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:400px}
nav a{margin-right:12px}
.verdict{font-size:15px;padding:6px 10px;display:inline-block;border-radius:4px}
.verdict.ok{background:#dafbe1}.verdict.bad{background:#ffebe9}
"""

# The page's own script: marks that it ran and what it found (the Chromium check reads
# it); the charts need no script.
SCRIPT = """
(function(){
  var charts=document.querySelectorAll('svg.chart'), empty=0;
  for (var i=0;i<charts.length;i++){ if(!(+charts[i].getAttribute('data-n')>0)) empty++; }
  var m=document.createElement('div'); m.id='report-ready';
  m.setAttribute('data-charts', charts.length); m.setAttribute('data-empty', empty);
  m.style.display='none'; document.body.appendChild(m);
})();
"""


def _ms(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.1f}"


def _pct(v: float) -> str:
    return f"{v:.1f}"


def _utc(ns: int | float) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], num_from: int = 99,
           classes: Sequence[str] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{escape(str(h))}</th>" for h in head) + "</tr>"]
    for i, r in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(
            f'<td{" class=n" if j >= num_from else ""}>{c}</td>' for j, c in enumerate(r))
            + "</tr>")
    out.append("</table>")
    return "".join(out)


def _anchor(*parts: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else "_" for ch in p) for p in parts if p)


# ------------------------------------------------------------------- the run

def _sites_picture(meta: Mapping[str, Any], exp: Mapping[str, Any]) -> str:
    """Sites as boxes with their hosts and roles, the region each site's users work in."""
    hosts = meta.get("hosts") or []
    clouds = {c.get("site"): c for c in meta.get("clouds") or []}
    sites: dict[str, list[dict[str, Any]]] = {}
    for h in hosts:
        sites.setdefault(str(h.get("site")), []).append(h)
    if not sites:
        for s in exp.get("sites") or []:
            sites[str(s.get("name"))] = [{"alias": h.get("name"), "roles": h.get("roles")}
                                         for h in s.get("hosts") or []]
    if not sites:
        return svg.empty("sites")
    w_box, gap = 220, 24
    n = len(sites)
    rows_max = max(len(v) for v in sites.values())
    height = 70 + rows_max * 34
    width = n * (w_box + gap) + gap
    out = [f'<svg class="chart" data-n="{sum(len(v) for v in sites.values())}" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg">']
    for i, (site, hs) in enumerate(sites.items()):
        x = gap + i * (w_box + gap)
        c = clouds.get(site, {})
        region = c.get("region") or ""
        ks = c.get("keystone_site") or ""
        color = svg.PALETTE[i % len(svg.PALETTE)]
        out.append(f'<rect x="{x}" y="8" width="{w_box}" height="{height - 16}" rx="8" '
                   f'fill="{color}" fill-opacity="0.08" stroke="{color}"/>')
        out.append(f'<text x="{x + 10}" y="28" class="t">{escape(site)}</text>')
        sub = " · ".join(p for p in (f"region {region}" if region else "",
                                     f"keystone at {ks}" if ks else "") if p)
        out.append(f'<text x="{x + 10}" y="44">{escape(sub)}</text>')
        for j, h in enumerate(hs):
            y = 56 + j * 34
            out.append(f'<rect x="{x + 10}" y="{y}" width="{w_box - 20}" height="28" rx="4" '
                       f'fill="#fff" stroke="#bbb"/>')
            out.append(f'<text x="{x + 16}" y="{y + 12}">{escape(str(h.get("alias")))} '
                       f'{escape(str(h.get("address") or ""))}</text>')
            out.append(f'<text x="{x + 16}" y="{y + 24}" class="muted">'
                       f'{escape(", ".join(h.get("roles") or []))}</text>')
    out.append("</svg>")
    return "".join(out)


def _wan_section(frames: RunFrames) -> str:
    w = frames.wan
    if w.empty:
        return '<p class="muted">No WAN check was recorded.</p>'
    out = []
    for point, g in w.groupby("point", sort=True):
        label = g["point_label"].iloc[0]
        sites = sorted(set(g.site) | set(g.target_site))
        cell = {(r.site, r.target_site): r for r in g.itertuples()}
        rows = []
        for a in sites:
            cells = []
            for b in sites:
                r = cell.get((a, b))
                if r is None:
                    cells.append("-" if a != b else "")
                    continue
                cls = "ok" if r.ok else "bad"
                cells.append(f'<span class="{cls}">{_ms2(r.rtt_ms)}</span> / '
                             f'{_ms2(r.target_ms)}<br><span class="muted">p95 '
                             f'{_ms2(r.rtt_p95_ms)}, loss {r.loss_pct:.0f} %</span>')
            rows.append([escape(a), *cells])
        out.append(f"<h4>{escape(point)} ({escape(label)}): measured / target RTT (ms), "
                   f"from row to column</h4>")
        out.append(_table(["from \\ to", *sites], rows, num_from=1))
    return "".join(out)


def _ms2(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.2f}"


def _versions(meta: Mapping[str, Any]) -> str:
    flat: list[tuple[str, str]] = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, Mapping):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, list):
            flat.append((prefix, ", ".join(map(str, v))))
        else:
            flat.append((prefix, str(v)))

    walk("", meta.get("manifest") or {})
    if not flat:
        return '<p class="muted">No manifest.</p>'
    # versions first; the measurements the manifest also keeps (clocks, memory, counts)
    # folded away
    more = ("clocks", "deployment", "metrics", "samples", "wan")
    main = [[escape(k), escape(v)] for k, v in flat if k.split(".")[0] not in more]
    rest = [[escape(k), escape(v)] for k, v in flat if k.split(".")[0] in more]
    out = _table(["key", "value"], main[:400])
    if rest:
        out += (f"<details><summary>more of the manifest ({len(rest)} entries: clocks, "
                f"deployment, counts)</summary>{_table(['key', 'value'], rest[:2000])}"
                "</details>")
    return out


def _sla_section(violations: Sequence[str], sla_results: Sequence[Mapping[str, Any]],
                 sla: Mapping[str, Any] | None) -> str:
    ok = not violations
    out = [f'<div class="verdict {"ok" if ok else "bad"}">SLA '
           f'{"met" if ok else "violated"}</div>']
    if sla:
        out.append(f'<p class="muted">Criteria: {escape(json.dumps(sla))}</p>')
    if violations:
        out.append("<ul>" + "".join(f"<li>{escape(v)}</li>" for v in violations[:200])
                   + "</ul>")
        if len(violations) > 200:
            out.append(f"<p>... and {len(violations) - 200} more</p>")
    if sla_results:
        out.append(_table(["point", "site", "target", "workload", "criterion", "success",
                           "detail"],
                          [[escape(str(r.get(k))) for k in ("point", "site", "target_site",
                                                            "workload", "criterion")]
                           + [f'<span class="{"ok" if r["success"] else "bad"}">'
                              f'{"yes" if r["success"] else "no"}</span>',
                              escape(str(r.get("detail")))] for r in sla_results]))
    return "".join(out)


# ------------------------------------------------------------------- heat map

def _heat_color(v: float, lo: float) -> str:
    """White for the table's fastest cell, full red for 10 times slower (log scale)."""
    if not np.isfinite(v) or lo <= 0:
        return "#fff"
    f = float(np.clip(np.log10(max(v, lo) / lo), 0.0, 1.0))
    r = int(255 - 40 * f)
    g = int(247 - 160 * f)
    b = int(236 - 200 * f)
    return f"rgb({r},{g},{b})"


def _heatmap(rows: Sequence[StatsRow]) -> str:
    it = [r for r in rows if r.is_iteration]
    if not it:
        return svg.empty("heat map")
    out = []
    for point in sorted({r.point for r in it}):
        for op in dict.fromkeys(r.operation_label for r in it if r.point == point):
            cells = {(r.site, r.target_site): r for r in it
                     if r.point == point and r.operation_label == op}
            sites = sorted({k[0] for k in cells})
            targets = sorted({k[1] for k in cells})
            vals = [r.p95_ms for r in cells.values() if r.p95_ms is not None]
            lo = min(vals) if vals else 0.0
            body = []
            for s in sites:
                tds = []
                for t in targets:
                    r = cells.get((s, t))
                    if r is None:
                        tds.append("<td></td>")
                        continue
                    v = r.p95_ms if r.p95_ms is not None else float("nan")
                    err = f'<br><span class="bad">{r.error_rate_pct:.1f} % err</span>' \
                        if r.errors else ""
                    tds.append(f'<td class=n style="background:{_heat_color(v, lo)}">'
                               f"{_ms(r.p50_ms)} / {_ms(r.p95_ms)}{err}</td>")
                body.append(f"<tr><th>{escape(s)}</th>{''.join(tds)}</tr>")
            head = "".join(f"<th>{escape(t)}</th>" for t in targets)
            out.append(f"<h4>{escape(point)}: {escape(op)}: p50 / p95 ms, load site (row) x "
                       f"target (column); colour: p95 against the fastest cell, red at 10 x"
                       f"</h4><table class=heat><tr><th>site \\ target</th>"
                       f"{head}</tr>{''.join(body)}</table>")
    return "".join(out)


# ------------------------------------------------------------------- sweep

def _sweep(frames: RunFrames, rows: Sequence[StatsRow]) -> str:
    from scipy.stats import linregress

    it = frames.iterations
    points = it["point"].unique()
    if len(points) < 2 or not frames.params:
        return ""
    ok = it[it.status == "ok"]
    rtt = {(r.point, r.site, r.target_site): r.rtt_ms for r in frames.wan.itertuples()}
    out = ["<h2 id=sweep>Latency against the swept WAN parameters</h2>"]
    numeric = [p for p in frames.params if pd.api.types.is_numeric_dtype(it[p])]
    fits = []
    for (op, site, target), g in ok.groupby(["operation", "site", "target_site"], sort=True):
        x = g["point"].map(lambda p, s=site, t=target: rtt.get((p, s, t), np.nan)
                           if s != t else 0.0).to_numpy(float)
        y = g["duration_ms"].to_numpy(float)
        m = np.isfinite(x) & np.isfinite(y)
        if m.sum() >= 3 and np.ptp(x[m]) > 0:
            lr = linregress(x[m], y[m])
            fits.append([escape(op), escape(site), escape(target), int(m.sum()),
                         f"{lr.slope:.3f}", f"{lr.stderr:.3f}", f"{lr.intercept:.1f}",
                         f"{lr.rvalue ** 2:.3f}", f"{lr.pvalue:.2g}"])
        else:
            fits.append([escape(op), escape(site), escape(target), int(m.sum()), "-", "-",
                         "-", "-", "no RTT change"])
    out.append("<p>Per operation, load site and target: a least-squares line of each "
               "successful iteration's latency against the measured RTT between its site "
               "and target at its point (0 for a site loading itself); slope in ms of "
               "latency per ms of RTT, with its standard error, and R² (1: the RTT "
               "explains all the spread).</p>")
    out.append(_table(["operation", "site", "target", "n", "slope ms/ms", "± stderr",
                       "intercept ms", "R²", "p"], fits, num_from=3))
    its = pd.DataFrame([r.to_dict() for r in rows if r.is_iteration])
    for p in numeric:
        value = it.groupby("point")[p].first().to_dict()
        for op, og in its.groupby("operation", sort=False):
            series = []
            for i, ((site, target), g) in enumerate(og.groupby(["site", "target_site"])):
                xs = g["point"].map(value).to_numpy(float)
                color = svg.PALETTE[i % len(svg.PALETTE)]
                series.append(Series(f"{site}->{target} p50", xs, g["p50_ms"].to_numpy(float),
                                     "line", color))
                series.append(Series(f"{site}->{target} p95", xs, g["p95_ms"].to_numpy(float),
                                     "dots", color))
            out.append(svg.chart(series, title=f"{op}: p50 (line), p95 (dots)",
                                 xlabel=p, ylabel="ms", width=660, height=260))
    return "".join(out)


# ------------------------------------------------------------------- timeline

def _events_marks(ev: pd.DataFrame, t0: int) -> tuple[list[Mark], list[Span]]:
    marks, spans = [], []
    open_: dict[str, tuple[float, str]] = {}
    for e in ev.itertuples():
        x = (e.time.value - t0) / 1e9
        if e.kind in ("partition", "kill", "degrade"):
            key = e.fault or f"{e.kind}@{e.site}"
            if e.phase == "start":
                open_[key] = (x, e.text)
            elif e.phase == "end" and key in open_:
                x0, _ = open_.pop(key)
                spans.append(Span(x0, x, key))
            continue
        color = "#2ca02c" if e.kind == "wan" else "#555"
        marks.append(Mark(x, f"{e.kind} {e.phase} {e.text}".strip(), color))
    for key, (x0, _) in open_.items():
        spans.append(Span(x0, float("inf"), f"{key} (no end)"))
    return marks, spans


def _buckets(t: np.ndarray, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = float(t.min()), float(t.max())
    edges = np.linspace(lo, hi + 1e-9, n + 1)
    return edges, np.clip(np.searchsorted(edges, t, side="right") - 1, 0, n - 1)


def _timeline(frames: RunFrames, point: str) -> str:
    it = frames.iterations[frames.iterations.point == point]
    if it.empty:
        return ""
    ev = frames.events[frames.events.point == point] if not frames.events.empty else \
        frames.events
    srv = frames.servers[frames.servers.point == point] if not frames.servers.empty else \
        frames.servers
    t0 = int(it["t0"].min().value)
    t = (it["t0"].astype("int64").to_numpy() - t0) / 1e9
    t_end = float(t.max()) if len(t) else 1.0
    if not srv.empty:  # the servers were sampled around the load: show that too
        srv_ns = srv["time"].astype("int64").to_numpy()
        t0 = min(t0, int(srv_ns.min()))
        t = (it["t0"].astype("int64").to_numpy() - t0) / 1e9
        t_end = max(float(t.max()), float(srv_ns.max() - t0) / 1e9)
    marks, spans = _events_marks(ev, t0)
    spans = [Span(s.x0, min(s.x1, t_end), s.label, s.color) for s in spans]
    xlim = (0.0, max(t_end, 1e-3))
    out = [f'<p class="muted">x: seconds since {_utc(t0)} (the point\'s first iteration or '
           "server sample); dashed: phases and WAN changes; shaded: faults.</p>",
           '<div class="charts">']
    n_b = 120
    edges, b = _buckets(t, n_b)
    mid = (edges[:-1] + edges[1:]) / 2
    lat, err = [], []
    for i, site in enumerate(sorted(it.site.unique())):
        m = (it.site == site).to_numpy()
        ok = m & (it.status == "ok").to_numpy()
        d = pd.DataFrame({"b": b[ok], "d": it["duration_ms"].to_numpy()[ok]})
        p50 = d.groupby("b")["d"].median()
        color = svg.PALETTE[i % len(svg.PALETTE)]
        lat.append(Series(f"{site}", mid[p50.index.to_numpy()], p50.to_numpy(), "line",
                          color))
        tot = np.bincount(b[m], minlength=n_b)
        bad = np.bincount(b[m & ~(it.status == "ok").to_numpy()], minlength=n_b)
        has = tot > 0
        err.append(Series(site, mid[has], 100.0 * bad[has] / tot[has], "line", color))
    kw = {"marks": marks, "spans": spans, "xlim": xlim, "width": 660, "height": 210}
    out.append(svg.chart(lat, title="latency per load site (p50 per time slice, ms)",
                         xlabel="s", ylabel="ms", **kw))
    out.append(svg.chart(err, title="error rate per load site (% per time slice)",
                         xlabel="s", ylabel="%", **kw))
    panels = (("proc", "cpu_pct", "CPU % per service", "%"),
              ("proc", "rss_mb", "RSS MB per service", "MB"),
              ("mq", "connections", "RabbitMQ connections", "connections"),
              ("db", "queries_per_s", "database queries/s", "queries/s"))
    for meas, fld, title, unit in panels:
        d = srv[(srv.measurement == meas) & (srv.field == fld)] if not srv.empty else srv
        if d.empty:
            out.append(svg.empty(title))
            continue
        series = []
        for i, ((host, service), g) in enumerate(d.groupby(["host", "service"], sort=True)):
            series.append(Series(f"{service}@{host}" if service else host,
                                 (g["time"].astype("int64").to_numpy() - t0) / 1e9,
                                 g["value"].to_numpy(), "line",
                                 svg.PALETTE[i % len(svg.PALETTE)]))
        out.append(svg.chart(series, title=title, xlabel="s", ylabel=unit, **kw))
    out.append("</div>")
    return "".join(out)


# ------------------------------------------------------------------- per workload

def _rally_table(rows: Sequence[StatsRow], p90: Mapping[str, float | None]) -> str:
    head = ["action", "min", "median", "90%ile", "95%ile", "max", "avg", "success", "count"]
    body, classes = [], []
    for r in rows:
        name = (f"<b>total</b> ({escape(r.operation_label)})" if r.is_iteration
                else escape(r.action))
        body.append([name, _ms(r.min_ms), _ms(r.p50_ms), _ms(p90.get(r.action)),
                     _ms(r.p95_ms), _ms(r.max_ms), _ms(r.mean_ms),
                     f"{100 - r.error_rate_pct:.1f} %", r.count])
        classes.append("" if r.is_iteration else "act")
    return _table(head, body, num_from=1, classes=classes)


def _load_profile(start: np.ndarray, end: np.ndarray, n: int = 200) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Rally's load profile: iterations in flight, averaged over each of n equal time
    slices (exact: the busy time of all iterations within the slice / its length)."""
    lo, hi = float(start.min()), float(end.max())
    if hi <= lo:
        hi = lo + 1e-3
    edges = np.linspace(lo, hi, n + 1)
    s, e = np.sort(start), np.sort(end)
    cs, ce = np.concatenate([[0.0], np.cumsum(s)]), np.concatenate([[0.0], np.cumsum(e)])

    def busy(t: np.ndarray) -> np.ndarray:  # sum over iterations of their time before t
        i, j = np.searchsorted(s, t, side="right"), np.searchsorted(e, t, side="right")
        return (i * t - cs[i]) - (j * t - ce[j])

    b = busy(edges)
    return (edges[:-1] + edges[1:]) / 2, np.diff(b) / np.diff(edges)


def _group_section(g: pd.DataFrame, acts: pd.DataFrame, rows: Sequence[StatsRow],
                   title: str) -> str:
    t0 = int(g["t0"].min().value)
    start = (g["t0"].astype("int64").to_numpy() - t0) / 1e9
    dur = g["duration_ms"].to_numpy(float)
    end = start + np.where(np.isfinite(dur), dur, 0.0) / 1e3
    ok = (g["status"] == "ok").to_numpy()
    # Rally's 90th percentile (StatsRow has p50/p95/p99): the same linear definition
    p90: dict[str, float | None] = {"": float(np.percentile(dur[ok], 90)) if ok.any() else None}
    if not acts.empty:
        aok = acts[acts.status == "ok"]
        for name, q in aok.groupby("action", sort=False)["duration_ms"].quantile(0.9).items():
            p90[str(name)] = float(q)
    out = [f"<h3 id='{_anchor(title)}'>{escape(title)}</h3>",
           '<p class="muted">Latency over the successful iterations; success and count over '
           f"all. x: seconds since {_utc(t0)}.</p>", _rally_table(rows, p90),
           '<div class="charts">']
    gx, gy = _load_profile(start, end)
    out.append(svg.chart([Series("iterations in flight", gx, gy, "line")],
                         title="load profile: iterations in flight (mean per slice)",
                         xlabel="s",
                         ylabel="iterations", width=440))
    series = [Series("ok", start[ok], dur[ok], "dots")]
    if (~ok).any():
        fy = np.where(np.isfinite(dur[~ok]), dur[~ok], 0.0)
        series.append(Series(f"failed ({int((~ok).sum())})", start[~ok], fy, "cross"))
    out.append(svg.chart(series, title="duration per iteration (failures: red x)",
                         xlabel="s", ylabel="ms", width=440))
    out.append(svg.histogram(dur[ok], title="duration histogram (ok)", xlabel="ms"))
    if not acts.empty:
        series = []
        for i, (name, a) in enumerate(acts.groupby("action", sort=False)):
            at = (a["t0"].astype("int64").to_numpy() - t0) / 1e9
            series.append(Series(str(name), at, a["duration_ms"].to_numpy(float), "line",
                                 svg.PALETTE[i % len(svg.PALETTE)]))
        out.append(svg.chart(series, title="atomic actions: duration per iteration",
                             xlabel="s", ylabel="ms", width=440))
        means = [(r.action, r.mean_ms or 0.0) for r in rows if not r.is_iteration]
        total = sum(v for _, v in means) or 1.0
        bar = "".join(
            f'<div style="display:inline-block;height:16px;width:{max(v / total * 420, 1):.0f}'
            f'px;background:{svg.PALETTE[i % len(svg.PALETTE)]}" title="{escape(a)}: '
            f'{v:.1f} ms"></div>' for i, (a, v) in enumerate(means))
        legend = ", ".join(f"{escape(a)} {v:.1f} ms ({100 * v / total:.0f} %)"
                           for a, v in means)
        out.append(f'<div><h4>atomic-action breakdown (mean ms)</h4>{bar}<br>'
                   f'<span class="muted">{legend}</span></div>')
    out.append("</div>")
    failed = g[~ok]
    if len(failed):
        by = failed.groupby("error", sort=False).agg(
            n=("iteration", "size"), first=("t0", "min"), last=("t0", "max"),
            hosts=("host", lambda s: ", ".join(sorted(set(s)))))
        by = by.sort_values("n", ascending=False)
        out.append(f"<h4>failures: {len(failed)} of {len(g)}</h4>")
        out.append(_table(["error", "count", "first", "last", "hosts"],
                          [[escape(str(e) or "(no message)"), int(r.n),
                            _utc(r.first.value), _utc(r.last.value), escape(r.hosts)]
                           for e, r in by.iterrows()], num_from=1))
    return "".join(out)


def _workloads(frames: RunFrames, rows: Sequence[StatsRow]) -> str:
    it, acts = frames.iterations, frames.actions
    idx = {r.key: r for r in rows}
    out, toc = [], []
    keys = ["point", "workload", "operation", "site", "target_site", "service"]
    groups = it.groupby(keys, sort=False)
    agroups = dict(iter(acts.groupby(keys, sort=False))) if not acts.empty else {}
    for key in sorted(groups.groups, key=lambda k: tuple(map(str, k))):
        point, workload, op, site, target, service = key
        g = groups.get_group(key).sort_values("t0", kind="stable")
        a = agroups.get(key, acts.iloc[0:0])
        head = idx.get((point, site, target, service, op, "", workload))
        group_rows = [head] if head else []
        group_rows += [r for r in rows if not r.is_iteration and r.point == point
                       and r.site == site and r.target_site == target and r.operation == op
                       and r.workload == workload and r.service == service]
        label = head.operation_label if head else op
        name = f"{point}: {workload + ' / ' if workload else ''}{label}: {site} -> {target}"
        toc.append(f"<a href='#{_anchor(name)}'>{escape(name)}</a>")
        out.append(_group_section(g, a, group_rows, name))
    return ("<p>" + "<br>".join(toc) + "</p>" + "".join(out)) if out else ""


# ------------------------------------------------------------------- page

def _faults(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    body = []
    for r in rows:
        cells = []
        for ph in ("before", "during", "after"):
            p = r[ph]
            cells.append(f"{p['count']} / {p['errors']} / {_ms(p['p50_ms'])}"
                         if p["count"] else "-")
        dur = "until the end" if r["duration_s"] is None else f"{r['duration_s']:.1f} s"
        rec = "-" if r["recovered_s"] is None else f"{r['recovered_s']:.1f}"
        body.append([escape(r["point"]), escape(r["fault"]), dur, escape(r["site"]),
                     escape(r["target_site"]), *cells, rec])
    return ("<h2 id=faults>Faults: before, during and after</h2>"
            "<p>Per fault, load site and target: iterations / errors / p50 ms by each "
            "iteration's start; recovered: seconds after the fault ended until the site's "
            "iterations succeeded again.</p>"
            + _table(["point", "fault", "for", "site", "target", "before", "during", "after",
                      "recovered s"], body, num_from=5))


def fault_rows(frames: RunFrames) -> list[dict[str, Any]]:
    """report.faults.attribute over the frames (Samples built only when a fault exists)."""
    from femdc_bench.model import Sample
    from femdc_bench.report import faults

    ev = frames.events
    if ev.empty or not ev["kind"].isin(faults.FAULT_KINDS).any():
        return []
    evs = [{"time": e.time.value, "kind": e.kind, "phase": e.phase, "point": e.point,
            "site": e.site, "fault": e.fault or None, "step_s": e.step_s
            if np.isfinite(e.step_s) else None} for e in ev.itertuples()]
    wins = faults.windows(evs)
    by_point: dict[str, list[Sample]] = {}
    it = frames.iterations
    for r in it[it.point.isin({w.point for w in wins})].itertuples():
        by_point.setdefault(r.point, []).append(Sample(
            site=r.site, target_site=r.target_site, service=r.service,
            operation=r.operation, t0_ns=r.t0.value, duration_ms=r.duration_ms,
            status=r.status, error=r.error, host=r.host, iteration=r.iteration))
    return faults.attribute(by_point, wins)


def render(frames: RunFrames, rows: Sequence[StatsRow], *, violations: Sequence[str] = (),
           sla_results: Sequence[Mapping[str, Any]] = (),
           faults: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The page for `frames`; `rows` are its StatsRows (results.stats.stats_rows or the
    text report's), `violations` the SLA's, `faults` report.faults.attribute's rows
    (computed from the frames when None)."""
    import yaml

    meta = frames.meta
    exp = meta.get("experiment") or {}
    name = meta.get("experiment_name") or exp.get("name", "")
    state = meta.get("state") or {}
    points = meta.get("points") or {}
    if faults is None:
        faults = fault_rows(frames)
    it = frames.iterations
    nav = ["<a href='#run'>run</a>", "<a href='#heat'>heat map</a>"]
    if len(points) > 1:
        nav.append("<a href='#sweep'>sweep</a>")
    nav += ["<a href='#timeline'>timelines</a>"]
    if faults:
        nav.append("<a href='#faults'>faults</a>")
    nav.append("<a href='#workloads'>workloads</a>")
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>femdc-bench {escape(frames.run)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(frames.run)}</h1><p>experiment <b>{escape(str(name))}</b>"
        f"{': ' + escape(str(exp.get('description'))) if exp.get('description') else ''}"
        f"; status {escape(str(state.get('status', '?')))}; {len(it)} iterations, "
        f"{len(frames.actions)} atomic actions, {len(points)} point(s); read from "
        f"{escape(frames.source)}; generated {_utc(time.time_ns())}.</p>",
        f"<nav>{''.join(nav)}</nav>",
        "<h2 id=run>The run</h2>",
        _sla_section(violations, sla_results, (exp.get("workload") or {}).get("sla")),
        "<h3>Sites, hosts, roles and regions</h3>", _sites_picture(meta, exp),
        "<h3>WAN: measured RTT against the targets, per point</h3>", _wan_section(frames),
        "<h3>Points</h3>",
        _table(["point", "parameters"], [[escape(p), escape(v.get("label", ""))]
                                         for p, v in points.items()]),
        "<h3>Versions</h3>", _versions(meta),
        "<details><summary>experiment file</summary><pre>"
        f"{escape(yaml.safe_dump(exp, sort_keys=False))}</pre></details>",
        "<h2 id=heat>Heat map: p50 / p95 per operation</h2>", _heatmap(rows),
        _sweep(frames, rows),
        "<h2 id=timeline>Timeline per point</h2>",
    ]
    for p in sorted(it["point"].unique()):
        label = (points.get(p) or {}).get("label", "")
        parts.append(f"<h3>{escape(p)} ({escape(label)})</h3>")
        parts.append(_timeline(frames, p))
    parts.append(_faults(faults))
    parts.append("<h2 id=workloads>Per workload, site and target</h2>")
    parts.append(_workloads(frames, rows))
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "".join(parts)


def write(path: Path, page: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
