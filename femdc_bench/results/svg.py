"""Small charts as inline SVG strings, drawn here (no library, no script): line and dot
series with time marks and shaded spans, histograms, and a few helpers (nice ticks,
downsampling that keeps each bucket's extremes).

Every chart is ``<svg class="chart" data-n="N">``: N is how many data points it draws,
so a page check can tell an empty chart from a drawn one."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31")
FAIL = "#d62728"


@dataclass
class Series:
    name: str
    x: np.ndarray
    y: np.ndarray
    kind: str = "line"  # line | dots | cross (failures) | step
    color: str | None = None


@dataclass
class Mark:
    x: float
    label: str
    color: str = "#555"


@dataclass
class Span:
    x0: float
    x1: float
    label: str
    color: str = "#d62728"


@dataclass
class Frame:
    """The plot area and the data ranges it maps."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: int
    height: int
    left: int = 58
    right: int = 12
    top: int = 26
    bottom: int = 34
    xticks: list[float] = field(default_factory=list)
    yticks: list[float] = field(default_factory=list)

    def px(self, x: np.ndarray | float) -> np.ndarray | float:
        w = self.width - self.left - self.right
        return self.left + (np.asarray(x, dtype=float) - self.x0) / (self.x1 - self.x0) * w

    def py(self, y: np.ndarray | float) -> np.ndarray | float:
        h = self.height - self.top - self.bottom
        return self.top + h - (np.asarray(y, dtype=float) - self.y0) / (self.y1 - self.y0) * h


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out = []
    v = start
    while v <= hi + step * 1e-9:
        out.append(round(v, 12))
        v += step
    return out


def _fmt(v: float, step: float = 0.0) -> str:
    """A tick label with as many decimals as the tick step needs."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6 and step >= 1e5:
        return f"{v / 1e6:g}M"
    if a >= 1e4 and step >= 1e3:
        return f"{v / 1e3:g}k"
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 2
    return f"{v:.{min(decimals, 6)}f}"


def downsample(x: np.ndarray, y: np.ndarray, n: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """At most about `n` points: the data split in n/2 buckets of consecutive points, each
    giving its minimum and maximum (spikes survive, flat runs shrink). For drawing only."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) <= n:
        return x, y
    buckets = max(n // 2, 1)
    edges = np.linspace(0, len(x), buckets + 1).astype(int)
    idx: list[int] = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        seg = y[a:b]
        if np.isfinite(seg).any():
            idx.extend(sorted({a + int(np.nanargmin(seg)), a + int(np.nanargmax(seg))}))
        else:
            idx.append(a)
    sel = np.asarray(idx, dtype=int)
    return x[sel], y[sel]


def _frame(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], width: int, height: int,
           xlim: tuple[float, float] | None, ymin0: bool) -> Frame:
    allx = np.concatenate([np.asarray(a, float) for a in xs]) if xs else np.array([0.0])
    ally = np.concatenate([np.asarray(a, float) for a in ys]) if ys else np.array([0.0])
    allx, ally = allx[np.isfinite(allx)], ally[np.isfinite(ally)]
    x0, x1 = xlim if xlim else ((float(allx.min()), float(allx.max())) if len(allx)
                                 else (0.0, 1.0))
    y0 = 0.0 if ymin0 or not len(ally) else float(ally.min())
    y1 = float(ally.max()) if len(ally) else 1.0
    if x1 <= x0:
        x1 = x0 + 1.0
    if y1 <= y0:
        y1 = y0 + 1.0
    y1 += (y1 - y0) * 0.05
    f = Frame(x0, x1, y0, y1, width, height)
    f.xticks = [t for t in nice_ticks(x0, x1, 6) if x0 <= t <= x1]
    f.yticks = [t for t in nice_ticks(y0, y1, 4) if y0 <= t <= y1]
    return f


def _axes(f: Frame, title: str, xlabel: str, ylabel: str) -> list[str]:
    out = [f'<text x="{f.left}" y="16" class="t">{escape(title)}</text>']
    bx, by = f.left, f.height - f.bottom
    out.append(f'<rect x="{f.left}" y="{f.top}" width="{f.width - f.left - f.right}" '
               f'height="{f.height - f.top - f.bottom}" class="area"/>')
    ystep = f.yticks[1] - f.yticks[0] if len(f.yticks) > 1 else 0.0
    xstep = f.xticks[1] - f.xticks[0] if len(f.xticks) > 1 else 0.0
    for t in f.yticks:
        y = float(f.py(t))
        out.append(f'<line x1="{bx}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'class="grid"/><text x="{bx - 4}" y="{y + 3:.1f}" class="yl">'
                   f'{_fmt(t, ystep)}</text>')
    for t in f.xticks:
        x = float(f.px(t))
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{by}" y2="{by + 4}" class="ax"/>'
                   f'<text x="{x:.1f}" y="{by + 14}" class="xl">{_fmt(t, xstep)}</text>')
    out.append(f'<text x="{(f.left + f.width - f.right) / 2:.0f}" y="{f.height - 4}" '
               f'class="xl">{escape(xlabel)}</text>')
    out.append(f'<text x="12" y="{(f.top + f.height - f.bottom) / 2:.0f}" class="yl" '
               f'transform="rotate(-90 12 {(f.top + f.height - f.bottom) / 2:.0f})" '
               f'style="text-anchor:middle">{escape(ylabel)}</text>')
    return out


def _legend(names: Sequence[tuple[str, str]], f: Frame) -> list[str]:
    """One line under the title, left to right; names that do not fit are left out
    (each series keeps its name as a tooltip)."""
    out, x, y = [], float(f.left), 22
    for name, color in names:
        w = 14 + 5.6 * len(name)
        if x + w > f.width - f.right:
            out.append(f'<text x="{x:.0f}" y="{y + 9}" class="lg">...</text>')
            break
        out.append(f'<rect x="{x:.0f}" y="{y}" width="9" height="9" fill="{color}"/>'
                   f'<text x="{x + 12:.0f}" y="{y + 9}" class="lg">{escape(name)}</text>')
        x += w + 8
    return out


def chart(series: Sequence[Series], *, title: str, xlabel: str, ylabel: str,
          width: int = 660, height: int = 220, marks: Sequence[Mark] = (),
          spans: Sequence[Span] = (), xlim: tuple[float, float] | None = None,
          ymin0: bool = True, max_points: int = 800) -> str:
    """Lines, dots or crosses over a shared x axis; marks are vertical lines (an event),
    spans shaded bands (a fault). Each series is downsampled to `max_points` for drawing."""
    drawn: list[tuple[Series, np.ndarray, np.ndarray]] = []
    for s in series:
        x, y = np.asarray(s.x, float), np.asarray(s.y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        if xlim is not None:
            ok &= (x >= xlim[0]) & (x <= xlim[1])
        x, y = x[ok], y[ok]
        if s.kind in ("line", "step") and len(x):
            order = np.argsort(x, kind="stable")
            x, y = x[order], y[order]
        x, y = downsample(x, y, max_points)
        drawn.append((s, x, y))
    f = _frame([d[1] for d in drawn], [d[2] for d in drawn], width, height, xlim, ymin0)
    with_legend = sum(1 for d in drawn if len(d[1])) > 1
    if with_legend:  # a second line for the legend, under the title
        f.top += 14
        f.yticks = [t for t in nice_ticks(f.y0, f.y1, 4) if f.y0 <= t <= f.y1]
    n = sum(len(d[1]) for d in drawn)
    out = [f'<svg class="chart" data-n="{n}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    out += _axes(f, title, xlabel, ylabel)
    top, bot = f.top, f.height - f.bottom
    for sp in spans:
        a = float(np.clip(f.px(sp.x0), f.left, f.width - f.right))
        b = float(np.clip(f.px(sp.x1), f.left, f.width - f.right))
        out.append(f'<rect x="{a:.1f}" y="{top}" width="{max(b - a, 1):.1f}" '
                   f'height="{bot - top}" fill="{sp.color}" opacity="0.12">'
                   f'<title>{escape(sp.label)}</title></rect>')
    for m in marks:
        if f.x0 <= m.x <= f.x1:
            x = float(f.px(m.x))
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bot}" '
                       f'stroke="{m.color}" stroke-dasharray="3,3"><title>'
                       f'{escape(m.label)}</title></line>')
    legend = []
    for i, (s, x, y) in enumerate(drawn):
        color = s.color or (FAIL if s.kind == "cross" else PALETTE[i % len(PALETTE)])
        if not len(x):
            continue
        px, py = f.px(x), f.py(y)
        if s.kind in ("line", "step"):
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                       f'stroke-width="1.3"><title>{escape(s.name)}</title></polyline>')
        elif s.kind == "dots":
            out.append(f'<g fill="{color}"><title>{escape(s.name)}</title>' + "".join(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="1.6"/>'
                for a, b in zip(px, py, strict=True)) + "</g>")
        else:  # cross: failures
            out.append(f'<g stroke="{color}" stroke-width="1.2"><title>{escape(s.name)}'
                       f'</title>' + "".join(
                           f'<path d="M{a - 3:.1f},{b - 3:.1f}l6,6m0,-6l-6,6"/>'
                           for a, b in zip(px, py, strict=True)) + "</g>")
        legend.append((s.name, color))
    if with_legend:
        out += _legend(legend, f)
    out.append("</svg>")
    return "".join(out)


def histogram(values: np.ndarray, *, title: str, xlabel: str, bins: int = 40,
              width: int = 440, height: int = 220) -> str:
    """Counts of `values` in `bins` equal bins from the minimum to the 99.5th
    percentile; the values beyond are counted in the title (exact counts)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return empty(title, width, height)
    hi = float(np.percentile(v, 99.5)) if len(v) > 200 else float(v.max())
    lo = float(v.min())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    beyond = int((v > hi).sum())
    if beyond:
        title += f" ({beyond} beyond {hi:.1f})"
    f = _frame([edges], [counts.astype(float)], width, height, (lo, hi), True)
    out = [f'<svg class="chart" data-n="{int(counts.sum())}" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg">']
    out += _axes(f, title, xlabel, "iterations")
    for c, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        if c:
            x0, x1 = float(f.px(a)), float(f.px(b))
            y = float(f.py(c))
            out.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 0.5, 0.5):.1f}" '
                       f'height="{f.height - f.bottom - y:.1f}" fill="{PALETTE[0]}">'
                       f'<title>{a:.1f}-{b:.1f} ms: {c}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def empty(title: str, width: int = 440, height: int = 60) -> str:
    """No data: a note, not a chart (so an empty chart never passes for a drawn one)."""
    return f'<div class="nodata">{escape(title)}: no data</div>'
