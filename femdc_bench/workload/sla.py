"""SLA verdict over a set of iterations (the controller evaluates it over all agents).

Only whole iterations count (``Sample.action == ""``): atomic-action samples are parts of
an iteration, not iterations.

- failure rate: errors / all iterations, in percent;
- p95: 95th percentile of the durations of the *successful* iterations, Rally's
  percentile (linear interpolation, `femdc_bench.workload.percentile`), the one the
  report and the exports use.

Standard library and femdc_bench.model only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from femdc_bench.model import Sample, SlaSpec
from femdc_bench.workload.percentile import percentile


@dataclass(frozen=True)
class SlaVerdict:
    passed: bool
    count: int
    errors: int
    failure_rate_pct: float
    p95_ms: float | None  # None when no iteration succeeded
    reasons: tuple[str, ...] = ()  # one per failed criterion


def evaluate_counts(
    sla: SlaSpec, *, count: int, errors: int, ok_durations_ms: Sequence[float]
) -> SlaVerdict:
    rate = 100.0 * errors / count if count else 0.0
    p95 = percentile(ok_durations_ms, 95) if ok_durations_ms else None
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


# --------------------------------------------------------------------------- Rally's SLAs


@dataclass(frozen=True)
class SlaResult:
    """One criterion over one Rally workload, as Rally reports it (`sla_results.sla`)."""

    criterion: str
    success: bool
    detail: str


def split_iterations(
    samples: Iterable[Sample],
) -> tuple[list[Sample], dict[tuple[str, int], list[Sample]]]:
    """The iterations in start order, and each one's atomic actions by (host, iteration)."""
    its: list[Sample] = []
    actions: dict[tuple[str, int], list[Sample]] = {}
    for s in samples:
        if s.action:
            actions.setdefault((s.host, s.iteration), []).append(s)
        else:
            its.append(s)
    its.sort(key=lambda s: (s.t0_ns, s.host, s.iteration))
    return its, actions


def rally_sla_results(sla: SlaSpec, samples: Iterable[Sample]) -> list[SlaResult]:
    """Every criterion of `sla` that is set, over the samples of one workload (one site
    against one target), with Rally's semantics and wording:

    - failure_rate: errors / iterations within [min, max] percent;
    - max_seconds_per_iteration: the longest iteration (failed ones included);
    - max_avg_duration: mean duration of the successful iterations;
    - max_avg_duration_per_atomic: per named atomic action, its mean over the successful
      iterations (an action never recorded averages 0, as in Rally);
    - outliers: in start order, a successful iteration counts as an outlier when at
      least `min_iterations` have succeeded and it is slower than mean + sigmas * std
      (sample standard deviation) of the successful ones before it.
    p95_ms_max is ours (see `evaluate`), not reported here.
    """
    its, actions = split_iterations(samples)
    ok = [s for s in its if s.status == "ok"]
    out: list[SlaResult] = []
    if sla.failure_rate_max_pct is not None or sla.failure_rate_min_pct is not None:
        lo = sla.failure_rate_min_pct or 0.0
        hi = 100.0 if sla.failure_rate_max_pct is None else sla.failure_rate_max_pct
        rate = 100.0 * (len(its) - len(ok)) / len(its) if its else 0.0
        success = bool(its) and lo <= rate <= hi
        out.append(SlaResult("failure_rate", success,
                             f"Failure rate criteria {lo:.2f}% <= {rate:.2f}% <= {hi:.2f}% - "
                             f"{_status(success)}"))
    if sla.max_seconds_per_iteration is not None:
        longest = max((s.duration_ms / 1e3 for s in its), default=0.0)
        success = longest <= sla.max_seconds_per_iteration
        out.append(SlaResult("max_seconds_per_iteration", success,
                             f"Maximum seconds per iteration {longest:.2f}s <= "
                             f"{sla.max_seconds_per_iteration:.2f}s - {_status(success)}"))
    if sla.max_avg_duration_s is not None:
        avg = sum(s.duration_ms for s in ok) / len(ok) / 1e3 if ok else 0.0
        success = avg <= sla.max_avg_duration_s
        out.append(SlaResult("max_avg_duration", success,
                             f"Average duration of one iteration {avg:.2f}s <= "
                             f"{sla.max_avg_duration_s:.2f}s - {_status(success)}"))
    if sla.max_avg_duration_per_atomic:
        sums: dict[str, list[float]] = {}
        for s in ok:
            for a in actions.get((s.host, s.iteration), ()):
                sums.setdefault(a.action, []).append(a.duration_ms / 1e3)
        avgs = {name: (sum(v) / len(v) if (v := sums.get(name)) else 0.0)
                for name, _ in sla.max_avg_duration_per_atomic}
        success = all(avgs[name] <= limit for name, limit in sla.max_avg_duration_per_atomic)
        lines = [f"Action: '{name}'. {avgs[name]:.2f}s <= {limit:.2f}s"
                 for name, limit in sla.max_avg_duration_per_atomic]
        out.append(SlaResult("max_avg_duration_per_atomic", success, "\n".join(
            ["Average duration of one iteration for atomic actions:", *lines,
             f"Status: {_status(success)}"])))
    if sla.outliers is not None:
        o = sla.outliers
        outliers = 0
        mean = m2 = 0.0
        threshold: float | None = None
        for n, s in enumerate(ok, start=1):
            d = s.duration_ms / 1e3
            if n >= o.min_iterations and threshold is not None and d > threshold:
                outliers += 1
            delta = d - mean  # Welford
            mean += delta / n
            m2 += delta * (d - mean)
            if n >= 2:
                threshold = mean + o.sigmas * math.sqrt(m2 / (n - 1))
        success = outliers <= o.max
        out.append(SlaResult("outliers", success, f"Maximum number of outliers {outliers} <= "
                             f"{o.max} - {_status(success)}"))
    return out


def _status(success: bool) -> str:
    return "Passed" if success else "Failed"
