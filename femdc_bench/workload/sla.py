"""SLA verdict over a set of iterations (the controller evaluates it over all agents).

Only whole iterations count (``Sample.action == ""``): atomic-action samples are parts of
an iteration, not iterations.

- failure rate: errors / all iterations, in percent;
- p95: 95th percentile of the durations of the *successful* iterations (as Rally does),
  nearest-rank method (the smallest value with at least 95 % of values <= it).

Standard library and femdc_bench.model only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from femdc_bench.model import Sample, SlaSpec


@dataclass(frozen=True)
class SlaVerdict:
    passed: bool
    count: int
    errors: int
    failure_rate_pct: float
    p95_ms: float | None  # None when no iteration succeeded
    reasons: tuple[str, ...] = ()  # one per failed criterion


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def evaluate_counts(
    sla: SlaSpec, *, count: int, errors: int, ok_durations_ms: Sequence[float]
) -> SlaVerdict:
    rate = 100.0 * errors / count if count else 0.0
    p95 = percentile(ok_durations_ms, 95)
    reasons: list[str] = []
    if count == 0:
        reasons.append("no iteration ran")
    if sla.failure_rate_max_pct is not None and rate > sla.failure_rate_max_pct:
        reasons.append(f"failure rate {rate:.2f} % > {sla.failure_rate_max_pct:g} %")
    if sla.failure_rate_min_pct is not None and count and rate < sla.failure_rate_min_pct:
        reasons.append(f"failure rate {rate:.2f} % < {sla.failure_rate_min_pct:g} %")
    if sla.p95_ms_max is not None:
        if p95 is None:
            reasons.append("p95: no successful iteration")
        elif p95 > sla.p95_ms_max:
            reasons.append(f"p95 {p95:.1f} ms > {sla.p95_ms_max:g} ms")
    return SlaVerdict(not reasons, count, errors, rate, p95, tuple(reasons))


def evaluate(sla: SlaSpec, samples: Iterable[Sample]) -> SlaVerdict:
    count = errors = 0
    ok: list[float] = []
    for s in samples:
        if s.action:
            continue  # an atomic action, part of an iteration already counted
        count += 1
        if s.status == "ok":
            ok.append(s.duration_ms)
        else:
            errors += 1
    return evaluate_counts(sla, count=count, errors=errors, ok_durations_ms=ok)
