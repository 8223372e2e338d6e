"""results.svg: downsampling keeps the extremes, charts count what they draw."""

from __future__ import annotations

import re

import numpy as np

from femdc_bench.results import svg


def test_downsample_keeps_each_buckets_extremes() -> None:
    x = np.arange(100_000, dtype=float)
    y = np.zeros_like(x)
    y[12_345], y[77_777] = 500.0, -3.0
    dx, dy = svg.downsample(x, y, 400)
    assert len(dx) <= 400
    assert dy.max() == 500.0 and dy.min() == -3.0
    assert 12_345.0 in dx and 77_777.0 in dx
    small = np.arange(10.0)
    assert svg.downsample(small, small, 400)[0].tolist() == small.tolist()


def test_chart_counts_drawn_points_and_marks_failures() -> None:
    x = np.arange(5000.0)
    out = svg.chart([svg.Series("ok", x, x * 2, "dots"),
                     svg.Series("failed", x[:3], x[:3], "cross")],
                    title="t", xlabel="s", ylabel="ms", max_points=500,
                    marks=[svg.Mark(10.0, "wan applied")], spans=[svg.Span(1, 2, "kill")])
    n = int(re.search(r'data-n="(\d+)"', out).group(1))  # type: ignore[union-attr]
    assert 3 < n <= 503
    assert svg.FAIL in out and "wan applied" in out and "kill" in out


def test_histogram_counts_every_value() -> None:
    """Bins up to the 99.5th percentile: the counts drawn and the ones beyond add up."""
    v = np.concatenate([np.linspace(1.0, 100.0, 998), np.full(2, 1e6)])
    out = svg.histogram(v, title="h", xlabel="ms")
    drawn = int(re.search(r'data-n="(\d+)"', out).group(1))  # type: ignore[union-attr]
    beyond = int(re.search(r"\((\d+) beyond", out).group(1))  # type: ignore[union-attr]
    assert drawn + beyond == 1000 and beyond >= 2
    assert svg.histogram(np.array([]), title="h", xlabel="ms").startswith('<div class="nodata"')


def test_nice_ticks() -> None:
    assert svg.nice_ticks(0, 100, 5) == [0, 20, 40, 60, 80, 100]
    assert svg.nice_ticks(0, 1, 4) == [0, 0.25, 0.5, 0.75, 1.0]
