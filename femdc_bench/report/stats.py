"""Pure statistics over workload Samples, and the report-side SLA check.

Definitions (stable: results of different runs are only comparable if these are):

* Groups: one row per (point, site, target_site, service, operation, action, workload). `point`
  is the sweep point id ("" when the samples are not split by point). `action` is ""
  for the whole iterations, else an atomic action's name (e.g. "nova.boot_server"): its
  row describes that step of the iterations, and is never counted as iterations.
  Rows come sorted by (site, target_site, service, operation); each iteration row is
  followed by its atomic-action rows, in the order the actions first started.
* count: all iterations of the group; errors: those whose status is not "ok";
  error_rate_pct = 100 * errors / count.
* Latency figures (mean, min, max, p50, p95, p99) are over the **successful**
  iterations only (as Rally does): a fast failure must not make a service look fast.
  They are None when no iteration of the group succeeded.
* Percentile: Rally's, as its MainStatsTable computes it (linear interpolation between the
  closest ranks, the "inclusive" definition): `femdc_bench.workload.percentile`, the one
  definition of the SLA verdicts, reports, exports and the WAN check.
* iterations_per_s = count / span, span = max(t0 + duration) - min(t0) over all the
  group's iterations (wall clock start to last end). None when the span is 0, and for
  atomic-action rows.
* fields: the mean of each extra field (Sample.fields, e.g. mb_per_s) over the group's
  successful samples that have it.
* The SLA is checked on whole iterations only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from femdc_bench.model import Sample, SlaSpec
from femdc_bench.workload.percentile import percentile_sorted

OK = "ok"


@dataclass(frozen=True)
class StatsRow:
    point: str
    site: str
    target_site: str
    service: str
    operation: str
    count: int
    errors: int
    error_rate_pct: float
    mean_ms: float | None
    min_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    iterations_per_s: float | None
    action: str = ""  # "" for whole iterations, else the atomic action's name
    fields: dict[str, float] = field(default_factory=dict)  # mean of each extra field
    workload: str = ""  # a Rally task's workload ("" outside Rally tasks)

    @property
    def key(self) -> tuple[str, str, str, str, str, str, str]:
        return (
            self.point,
            self.site,
            self.target_site,
            self.service,
            self.operation,
            self.action,
            self.workload,
        )

    @property
    def is_iteration(self) -> bool:
        return not self.action

    @property
    def operation_label(self) -> str:
        """"identity.authenticate" or, for a name that has its family already (Rally's
        "NovaServers.boot_server"), the name alone."""
        return self.operation if "." in self.operation else f"{self.service}.{self.operation}"

    @property
    def label(self) -> str:
        where = f"{self.site}->{self.target_site}"
        head = f"[{self.point}] " if self.point else ""
        tail = f" {self.action}" if self.action else ""
        wl = f" ({self.workload})" if self.workload else ""
        return f"{head}{where} {self.operation_label}{tail}{wl}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# site, target_site, service, operation, action, workload
GroupKey = tuple[str, str, str, str, str, str]


def _row(point: str, key: GroupKey, samples: list[Sample]) -> StatsRow:
    site, target_site, service, operation, action, workload = key
    count = len(samples)
    errors = sum(1 for s in samples if s.status != OK)
    ok = sorted(s.duration_ms for s in samples if s.status == OK and math.isfinite(s.duration_ms))
    start = min(s.t0_ns for s in samples)
    end = max(
        s.t0_ns + (s.duration_ms * 1e6 if math.isfinite(s.duration_ms) else 0.0) for s in samples
    )
    span_s = (end - start) / 1e9
    sums: dict[str, list[float]] = {}
    for s in samples:
        if s.status == OK:
            for k, v in (s.fields or {}).items():
                if math.isfinite(v):
                    sums.setdefault(k, []).append(float(v))
    return StatsRow(
        point=point,
        site=site,
        target_site=target_site,
        service=service,
        operation=operation,
        count=count,
        errors=errors,
        error_rate_pct=100.0 * errors / count,
        mean_ms=math.fsum(ok) / len(ok) if ok else None,
        min_ms=ok[0] if ok else None,
        p50_ms=percentile_sorted(ok, 50) if ok else None,
        p95_ms=percentile_sorted(ok, 95) if ok else None,
        p99_ms=percentile_sorted(ok, 99) if ok else None,
        max_ms=ok[-1] if ok else None,
        iterations_per_s=count / span_s if span_s > 0 and not action else None,
        action=action,
        fields={k: math.fsum(v) / len(v) for k, v in sorted(sums.items())},
        workload=workload,
    )


def compute_stats(samples: Iterable[Sample], point: str = "") -> list[StatsRow]:
    """One row per (site, target_site, service, operation, action): see the module doc."""
    groups: dict[GroupKey, list[Sample]] = {}
    first: dict[GroupKey, int] = {}  # earliest start of each group
    for s in samples:
        key = (s.site, s.target_site, s.service, s.operation, s.action or "", s.workload or "")
        groups.setdefault(key, []).append(s)
        if key not in first or s.t0_ns < first[key]:
            first[key] = s.t0_ns

    # Rally workloads in the order they ran, each one's iteration row before its actions.
    wl_first: dict[tuple[str, str, str], int] = {}
    for key, t in first.items():
        k = (key[0], key[1], key[5])
        wl_first[k] = min(t, wl_first.get(k, t))

    def order(key: GroupKey) -> tuple[object, ...]:
        wl = (wl_first[(key[0], key[1], key[5])], key[5]) if key[5] else (0, "")
        return (*key[:2], *wl, *key[2:4], bool(key[4]), first[key] if key[4] else 0, key[4])

    return [_row(point, key, groups[key]) for key in sorted(groups, key=order)]


def compute_stats_by_point(by_point: Mapping[str, Iterable[Sample]]) -> list[StatsRow]:
    """`compute_stats` for each sweep point (e.g. InfluxReader.api_samples_by_point())."""
    rows: list[StatsRow] = []
    for point in sorted(by_point):
        rows.extend(compute_stats(by_point[point], point))
    return rows


def iteration_rows(rows: Iterable[StatsRow]) -> list[StatsRow]:
    """The whole-iteration rows (the SLA's, and the report's main table)."""
    return [r for r in rows if r.is_iteration]


def action_rows(rows: Iterable[StatsRow]) -> list[StatsRow]:
    """The atomic-action rows."""
    return [r for r in rows if not r.is_iteration]


def check_sla(
    rows: Sequence[StatsRow],
    failure_rate_max_pct: float | None = None,
    p95_ms_max: float | None = None,
    failure_rate_min_pct: float | None = None,
) -> list[str]:
    """Violations of the SLA, one message per (row, criterion); [] means it holds.

    A limit that is None is not checked. A group with no successful iteration violates
    a p95 limit (there is nothing to measure). No rows at all violates any set limit:
    a run that recorded nothing must not pass. Atomic-action rows are ignored: the SLA
    is about whole iterations.
    """
    if failure_rate_max_pct is None and p95_ms_max is None and failure_rate_min_pct is None:
        return []
    rows = iteration_rows(rows)
    if not rows:
        return ["no iteration was recorded"]
    out: list[str] = []
    for r in rows:
        if failure_rate_max_pct is not None and r.error_rate_pct > failure_rate_max_pct:
            out.append(
                f"{r.label}: failure rate {r.error_rate_pct:.2f} % > {failure_rate_max_pct:g} % "
                f"({r.errors}/{r.count})"
            )
        if failure_rate_min_pct is not None and r.error_rate_pct < failure_rate_min_pct:
            out.append(
                f"{r.label}: failure rate {r.error_rate_pct:.2f} % < {failure_rate_min_pct:g} % "
                f"({r.errors}/{r.count})"
            )
        if p95_ms_max is not None:
            if r.p95_ms is None:
                out.append(f"{r.label}: no successful iteration, p95 limit {p95_ms_max:g} ms")
            elif r.p95_ms > p95_ms_max:
                out.append(f"{r.label}: p95 {r.p95_ms:.1f} ms > {p95_ms_max:g} ms")
    return out


def check_sla_spec(rows: Sequence[StatsRow], sla: SlaSpec,
                   per_workload: Mapping[str, SlaSpec] | None = None) -> list[str]:
    """`check_sla` with the experiment's SlaSpec; the rows of a Rally workload that has
    its own SLA (`per_workload`) are checked against that one instead."""
    own = dict(per_workload or {})
    if not own:
        return check_sla(rows, sla.failure_rate_max_pct, sla.p95_ms_max,
                         sla.failure_rate_min_pct)
    groups: dict[str, list[StatsRow]] = {}
    for r in rows:
        groups.setdefault(r.workload if r.workload in own else "", []).append(r)
    out: list[str] = []
    if groups.get(""):  # the rows no workload SLA covers
        out += check_sla(groups[""], sla.failure_rate_max_pct, sla.p95_ms_max,
                         sla.failure_rate_min_pct)
    for wl, spec in own.items():
        if wl in groups:
            out += check_sla(groups[wl], spec.failure_rate_max_pct, spec.p95_ms_max,
                             spec.failure_rate_min_pct)
        elif any(v is not None for v in (spec.failure_rate_max_pct, spec.p95_ms_max,
                                          spec.failure_rate_min_pct)):
            out.append(f"workload {wl}: no iteration was recorded")
    return out


def workload_groups(by_point: Mapping[str, Iterable[Sample]], workloads: Iterable[str]
                    ) -> dict[tuple[str, str, str, str], list[Sample]]:
    """(point, site, target_site, workload) -> its samples, for the named workloads: one
    Rally workload per source site and target, as the Rally export writes them."""
    wanted = set(workloads)
    out: dict[tuple[str, str, str, str], list[Sample]] = {}
    for point, samples in by_point.items():
        for s in samples:
            if s.workload in wanted:
                out.setdefault((point, s.site, s.target_site, s.workload), []).append(s)
    return out


def rally_sla_results(by_point: Mapping[str, Iterable[Sample]],
                      per_workload: Mapping[str, SlaSpec]) -> list[dict[str, Any]]:
    """Every Rally workload's SLA criteria, one row per (point, site, target, workload,
    criterion), with Rally's wording (femdc_bench.workload.sla.rally_sla_results)."""
    from femdc_bench.workload.sla import rally_sla_results as evaluate

    rows = []
    groups = workload_groups(by_point, per_workload)
    for (point, site, target, wl), samples in sorted(groups.items()):
        for r in evaluate(per_workload[wl], samples):
            rows.append({"point": point, "site": site, "target_site": target, "workload": wl,
                         "criterion": r.criterion, "success": r.success, "detail": r.detail})
    return rows


def rally_sla_violations(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """The failed per-sample criteria of `rally_sla_results` as violation lines
    (failure_rate is left to `check_sla`, which reports it per row)."""
    out = []
    for r in results:
        if r["success"] or r["criterion"] == "failure_rate":
            continue
        detail = "; ".join(line for line in r["detail"].splitlines()
                           if not line.startswith(("Status:", "Average duration of one "
                                                   "iteration for atomic")))
        out.append(f"{r['point']} {r['site']}->{r['target_site']} {r['workload']}: "
                   f"{r['criterion']}: {detail.replace(' - Failed', '')}")
    return out
