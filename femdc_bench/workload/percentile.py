"""The one percentile of femdc-bench: Rally's (SLA verdicts, reports, exports, WAN check).

Rally's MainStatsTable (``rally.task.processing.charts``) computes its median, 90%ile and
95%ile with ``rally.task.processing.utils.percentile`` over the sorted durations: linear
interpolation between the closest ranks, the "inclusive" definition (numpy's default
``linear``, Excel PERCENTILE.INC, ``statistics.quantiles(method="inclusive")``). For n
sorted values x[0..n-1] and a fraction q = p / 100:

    k = (n - 1) * q, f = floor(k), c = ceil(k)
    P = x[k]                               when f == c
    P = x[f] * (c - k) + x[c] * (k - f)    otherwise

computed in that order, so that our figures are Rally's to the last bit. p0 is the
minimum, p100 the maximum, one value is its own every percentile.

Standard library only: the workload agent imports it on the hosts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0 <= p <= 100) of `values` (any order), as Rally computes it."""
    return percentile_sorted(sorted(values), p)


def percentile_sorted(xs: Sequence[float], p: float) -> float:
    """`percentile` for values already sorted ascending (no copy)."""
    if not xs:
        raise ValueError("percentile of no values")
    if math.isnan(p) or not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], got {p}")
    k = (len(xs) - 1) * (p / 100.0)
    f = math.floor(k)
    c = math.ceil(k)
    if f == c:
        return float(xs[int(k)])
    return float(xs[f]) * (c - k) + float(xs[c]) * (k - f)
