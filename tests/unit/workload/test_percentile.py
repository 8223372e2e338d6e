"""The one percentile (Rally's) and its users: SLA verdicts, report rows, WAN check."""

from __future__ import annotations

import math

import pytest

from femdc_bench.model import Sample, SlaSpec
from femdc_bench.report.stats import compute_stats
from femdc_bench.workload.percentile import percentile, percentile_sorted
from femdc_bench.workload.sla import evaluate, evaluate_counts

# Expected values worked out by hand with Rally's formula
# (rally.task.processing.utils.percentile, as MainStatsTable calls it):
#   k = (n - 1) * q, f = floor(k), c = ceil(k); x[k] if f == c else x[f]*(c-k) + x[c]*(k-f)
HAND = [
    # [1, 2, 3, 4], q=0.5: k=1.5 -> 2*0.5 + 3*0.5
    ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
    # [1..10], q=0.9: k=8.1 -> 9*0.9 + 10*0.1
    ([float(i) for i in range(1, 11)], 90, 9.1),
    # [1..20], q=0.95: k=18.05 -> 19*0.95 + 20*0.05 (nearest rank said 19)
    ([float(i) for i in range(1, 21)], 95, 19.05),
    # [1..100], q=0.95: k=94.05 -> 95*0.95 + 96*0.05 (nearest rank said 95)
    ([float(i) for i in range(1, 101)], 95, 95.05),
    # sorted [0.2, 0.3, 0.4, 0.5, 0.9], q=0.95: k=3.8 -> 0.5*0.2 + 0.9*0.8
    ([0.5, 0.2, 0.9, 0.3, 0.4], 95, 0.82),
    # five values, q=0.5: k=2 exactly -> x[2]
    ([10.0, 30.0, 20.0, 50.0, 40.0], 50, 30.0),
    # two values, q=0.95: k=0.95 -> 100*0.05 + 200*0.95
    ([100.0, 200.0], 95, 195.0),
    ([7.5], 0, 7.5),
    ([7.5], 95, 7.5),
    ([7.5], 100, 7.5),
    ([1.0, 2.0, 3.0], 0, 1.0),
    ([1.0, 2.0, 3.0], 100, 3.0),
]


@pytest.mark.parametrize(("values", "p", "expected"), HAND)
def test_rally_values_by_hand(values: list[float], p: float, expected: float) -> None:
    assert percentile(values, p) == pytest.approx(expected, abs=1e-12)
    assert percentile_sorted(sorted(values), p) == pytest.approx(expected, abs=1e-12)


def test_rally_order_of_operations() -> None:
    # Rally computes x[f]*(c-k) + x[c]*(k-f) with k = (n-1)*0.95: the same floats here.
    xs = [0.1 * i for i in range(1, 8)]
    k = (len(xs) - 1) * 0.95
    f, c = math.floor(k), math.ceil(k)
    assert percentile_sorted(xs, 95) == xs[f] * (c - k) + xs[c] * (k - f)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    for p in (-1.0, 100.5, math.nan):
        with pytest.raises(ValueError, match=r"within \[0, 100\]"):
            percentile([1.0], p)


def _sample(i: int, ms: float, status: str = "ok") -> Sample:
    return Sample("s1", "s2", "identity", "op", 1_700_000_000_000_000_000 + i * 10**9, ms,
                  status, "", "h", i)


def test_sla_verdict_report_and_agent_agree() -> None:
    durations = [float(i) for i in range(1, 21)]
    samples = [_sample(i, d) for i, d in enumerate(durations)] + [_sample(99, 1e6, "error")]
    verdict = evaluate(SlaSpec(p95_ms_max=19.0), samples)
    agent = evaluate_counts(SlaSpec(p95_ms_max=19.0), count=21, errors=1,
                            ok_durations_ms=durations)
    (row,) = compute_stats(samples)
    assert verdict.p95_ms == agent.p95_ms == row.p95_ms == pytest.approx(19.05)
    assert not verdict.passed and verdict.reasons[0].startswith("p95 19.")
    assert evaluate_counts(SlaSpec(p95_ms_max=1.0), count=1, errors=1,
                           ok_durations_ms=[]).p95_ms is None
