"""Errors and latency before, during and after each workload fault, per load site: what
"a crashed site does not impact the others" is, as numbers.

Pure: the fault windows come from the run's `event` points (a fault's start and end,
stamped when the fault was in place or undone), the samples from its `api` points."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from femdc_bench.model import Sample
from femdc_bench.workload.percentile import percentile_sorted

FAULT_KINDS = ("partition", "kill", "degrade")
PHASES = ("before", "during", "after")


@dataclass(frozen=True)
class FaultWindow:
    """A fault from the moment its start step began to the moment its end step was done;
    it was surely in place from `in_ns` (its start step done) to `out_ns` (its end step
    began). Iterations that started in between (the fault coming or going) are neither
    before, during nor after: they are counted apart (`changing`)."""

    point: str
    label: str  # "keystone@site3", "partition@edge2", "degrade@site1"
    kind: str
    site: str
    start_ns: int
    end_ns: int | None  # None: no end recorded (the load or the run was interrupted)
    in_ns: int | None = None  # None: as start_ns
    out_ns: int | None = None  # None: as end_ns

    @property
    def in_at(self) -> int:
        return self.start_ns if self.in_ns is None else self.in_ns

    @property
    def out_at(self) -> int | None:
        return self.end_ns if self.out_ns is None else self.out_ns


def windows(events: Iterable[Mapping[str, Any]]) -> list[FaultWindow]:
    """Each fault's start paired with its end, in time order."""
    open_: dict[tuple[str, str], Mapping[str, Any]] = {}
    out: list[FaultWindow] = []
    for e in sorted(events, key=lambda e: int(e.get("time") or 0)):
        if e.get("kind") not in FAULT_KINDS:
            continue
        key = (str(e.get("point")), str(e.get("fault") or f"{e['kind']}@{e.get('site')}"))
        if e.get("phase") == "start":
            open_[key] = e
        elif e.get("phase") == "end" and key in open_:
            s = open_.pop(key)
            out.append(FaultWindow(key[0], key[1], str(s["kind"]), str(s.get("site")),
                                   int(s["time"]), _done(e), in_ns=_done(s),
                                   out_ns=int(e["time"])))
    out += [FaultWindow(k[0], k[1], str(s["kind"]), str(s.get("site")), int(s["time"]), None,
                        in_ns=_done(s)) for k, s in open_.items()]
    return sorted(out, key=lambda w: (w.start_ns, w.label))


def _done(e: Mapping[str, Any]) -> int:
    """When an event's step was done: its time (the step's beginning) + `step_s`."""
    return int(e["time"]) + int(float(e.get("step_s") or 0) * 1e9)


def _phase(t0_ns: int, w: FaultWindow) -> str:
    if t0_ns < w.start_ns:
        return "before"
    out = w.out_at
    if w.in_at <= t0_ns and (out is None or t0_ns < out):
        return "during"
    if w.end_ns is not None and t0_ns >= w.end_ns:
        return "after"
    return "changing"


def attribute(by_point: Mapping[str, Sequence[Sample]], wins: Sequence[FaultWindow]
              ) -> list[dict[str, Any]]:
    """Per fault window, load site and target (the cloud it loaded): iterations, errors,
    error %, p50/p95 of the ok ones, before / during / after the window (by each
    iteration's start), and how long after the fault ended the site's iterations
    succeeded again (`recovered_s`: the start of its first success after its last
    error; None when it had no error during the fault or never succeeded again)."""
    out = []
    for w in wins:
        samples = [s for s in by_point.get(w.point, ()) if not s.action]
        for site, target in sorted({(s.site, s.target_site) for s in samples}):
            phases: dict[str, list[Sample]] = {p: [] for p in (*PHASES, "changing")}
            for s in samples:
                if s.site == site and s.target_site == target:
                    phases[_phase(s.t0_ns, w)].append(s)
            row: dict[str, Any] = {"point": w.point, "fault": w.label, "kind": w.kind,
                                   "fault_site": w.site, "site": site, "target_site": target,
                                   "duration_s": None if w.end_ns is None
                                   else round((w.end_ns - w.start_ns) / 1e9, 3)}
            row["changing"] = {"count": len(phases["changing"]),
                               "errors": sum(s.status != "ok" for s in phases["changing"])}
            for p in PHASES:
                group = phases[p]
                ok = sorted(s.duration_ms for s in group if s.status == "ok")
                errors = len(group) - len(ok)
                row[p] = {"count": len(group), "errors": errors,
                          "error_pct": round(100 * errors / len(group), 2) if group else None,
                          "p50_ms": percentile_sorted(ok, 50) if ok else None,
                          "p95_ms": percentile_sorted(ok, 95) if ok else None}
            row["recovered_s"] = None
            if row["during"]["errors"] and w.end_ns is not None:
                # the first success after the last error once the fault was undone
                last_error = max((s.t0_ns for s in phases["after"] if s.status != "ok"),
                                 default=w.end_ns - 1)
                later = [s.t0_ns for s in phases["after"]
                         if s.status == "ok" and s.t0_ns > last_error]
                if later:
                    row["recovered_s"] = round((min(later) - w.end_ns) / 1e9, 3)
            out.append(row)
    return out
