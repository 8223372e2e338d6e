"""A run's samples in Rally's task results layout (`rally task import` reads it).

The layout is the one Rally's own JSON exporter writes (format_version 1.2): ``{"info",
"tasks": [{..., "subtasks": [{..., "workloads": [...]}]}]}``. Mapping:

- one Rally task per sweep point (its title names the run and the point's parameters);
- one subtask per workload of the experiment (a Rally task's workload, or a scenario);
- one Rally workload per (source site, target) of it, so that nothing is averaged away:
  its description says "<scenario> from <site> to <target>", its iterations are the
  ones every load host of that site ran against that target;
- per iteration (`data`): ``duration`` and ``timestamp`` (s), ``error`` ([] or [type,
  message, ""]), ``atomic_actions`` with ``started_at``/``finished_at`` (nested actions
  are listed flat, in start order), ``idle_duration`` 0, empty ``output``;
- ``load_duration``: first iteration start to last iteration end; ``full_duration`` is
  the same (setup and cleanup are not timed);
- ``sla`` is the workload's SLA in Rally's terms, ``sla_results`` its verdicts
  (femdc_bench.workload.sla.rally_sla_results).

Pure: the caller reads the samples (from InfluxDB) and passes them in.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from femdc_bench.model import Experiment, RunnerSpec, Sample, ScenarioSpec, SlaSpec
from femdc_bench.workload.sla import rally_sla_results, split_iterations

FORMAT_VERSION = "1.2"
ISO = "%Y-%m-%dT%H:%M:%S"


def rally_runner(r: RunnerSpec) -> dict[str, Any]:
    """The runner in Rally's v2 terms: {type: options}."""
    extra = {"timeout": r.timeout_s} if r.timeout_s else {}
    if r.type == "duration":
        return {"constant_for_duration": {"duration": r.duration_s,
                                          "concurrency": r.concurrency, **extra}}
    if r.type == "rps":
        rate: Any = r.rps
        if r.rps_ramp is not None:
            rate = {"start": r.rps_ramp.start, "end": r.rps_ramp.end,
                    "step": r.rps_ramp.step, "duration": r.rps_ramp.step_s}
        return {"rps": {"times": r.times, "rps": rate, "max_concurrency": r.concurrency,
                        **extra}}
    return {"constant": {"times": r.times, "concurrency": r.concurrency, **extra}}


def rally_sla(sla: SlaSpec) -> dict[str, Any]:
    """The SLA in Rally's terms (only the criteria that are set; p95 is ours)."""
    out: dict[str, Any] = {}
    fr = {k: v for k, v in (("max", sla.failure_rate_max_pct),
                            ("min", sla.failure_rate_min_pct)) if v is not None}
    if fr:
        out["failure_rate"] = fr
    if sla.max_seconds_per_iteration is not None:
        out["max_seconds_per_iteration"] = sla.max_seconds_per_iteration
    if sla.max_avg_duration_s is not None:
        out["max_avg_duration"] = sla.max_avg_duration_s
    if sla.max_avg_duration_per_atomic:
        out["max_avg_duration_per_atomic"] = dict(sla.max_avg_duration_per_atomic)
    if sla.outliers is not None:
        o = sla.outliers
        out["outliers"] = {"max": o.max, "min_iterations": o.min_iterations,
                           "sigmas": o.sigmas}
    return out


def _error(text: str) -> list[str]:
    if not text:
        return ["Error", "", ""]
    etype, _, msg = text.partition(": ")
    return [etype.split(" (HTTP")[0] or "Error", msg or text, ""]


def _iteration(it: Sample, actions: Sequence[Sample]) -> dict[str, Any]:
    return {
        "timestamp": it.t0_ns / 1e9,
        "duration": it.duration_ms / 1e3,
        "idle_duration": 0.0,
        "error": [] if it.status == "ok" else _error(it.error),
        "output": {"additive": [], "complete": []},
        "atomic_actions": [
            {"name": a.action, "started_at": a.t0_ns / 1e9,
             "finished_at": a.t0_ns / 1e9 + a.duration_ms / 1e3, "children": [],
             **({"failed": True} if a.status != "ok" else {})}
            for a in sorted(actions, key=lambda a: a.t0_ns)],
    }


def _iso(seconds: float) -> str:
    return time.strftime(ISO, time.gmtime(seconds))


def _matches(sc: ScenarioSpec, s: Sample, operation: str) -> bool:
    if sc.workload:
        return s.workload == sc.workload
    return not s.workload and s.operation == operation


def rally_json(run_id: str, exp: Experiment, by_point: Mapping[str, Sequence[Sample]],
               *, version: str, now: float | None = None) -> dict[str, Any]:
    """Rally's task results document for the run's samples (see the module doc)."""
    import femdc_bench.workload.scenarios  # noqa: F401  (registers the scenarios)
    from femdc_bench.workload.registry import REGISTRY

    now = time.time() if now is None else now
    labels = {p.id: p.label() for p in exp.points}
    tasks = []
    for point in sorted(by_point):
        samples = by_point[point]
        subtasks = []
        position = 0
        task_ok = True
        for n, sc in enumerate(exp.workload.scenarios):
            operation = REGISTRY.get(sc.name).operation if sc.name in REGISTRY else sc.name
            sla = sc.sla or exp.workload.sla
            groups: dict[tuple[str, str], list[Sample]] = {}
            for s in samples:
                if _matches(sc, s, operation):
                    groups.setdefault((s.site, s.target_site), []).append(s)
            workloads = []
            for (site, target), group in sorted(groups.items()):
                its, acts = split_iterations(group)
                data = [_iteration(it, acts.get((it.host, it.iteration), ())) for it in its]
                starts = [d["timestamp"] for d in data]
                ends = [d["timestamp"] + d["duration"] for d in data]
                load = (max(ends) - min(starts)) if data else 0.0
                results = [{"criterion": r.criterion, "success": r.success,
                            "detail": r.detail} for r in rally_sla_results(sla, group)]
                ok = all(r["success"] for r in results)
                task_ok &= ok
                durations = [d["duration"] for d in data]
                key = f"{run_id}/{point}/{n}/{site}/{target}"
                workloads.append({
                    "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"femdc-bench:{key}")),
                    "description": f"{sc.name} from {site} to {target}",
                    "runner": rally_runner(sc.runner),
                    "hooks": [],
                    "scenario": {sc.name: dict(sc.args)},
                    "min_duration": min(durations) if durations else None,
                    "max_duration": max(durations) if durations else None,
                    "start_time": min(starts) if starts else None,
                    "load_duration": load,
                    "full_duration": load,
                    "statistics": {},
                    "data": data,
                    "failed_iteration_count": sum(1 for d in data if d["error"]),
                    "total_iteration_count": len(data),
                    "created_at": _iso(min(starts) if starts else now),
                    "updated_at": _iso(max(ends) if ends else now),
                    "contexts": {},
                    "contexts_results": [],
                    "position": position,
                    "pass_sla": ok,
                    "sla_results": {"sla": results},
                    "sla": rally_sla(sla),
                })
                position += 1
            if workloads:
                subtasks.append({
                    "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                           f"femdc-bench:{run_id}/{point}/{n}")),
                    "title": sc.workload or sc.name,
                    "description": "",
                    "status": "finished",
                    "created_at": workloads[0]["created_at"],
                    "updated_at": workloads[-1]["updated_at"],
                    "sla": {},
                    "workloads": workloads,
                })
        tasks.append({
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"femdc-bench:{run_id}/{point}")),
            "title": f"femdc-bench run {run_id} point {point} ({labels.get(point, '')})",
            "description": f"experiment {exp.name}",
            "status": "finished",
            "tags": [],
            "env_uuid": "n/a",
            "env_name": "n/a",
            "created_at": subtasks[0]["created_at"] if subtasks else _iso(now),
            "updated_at": subtasks[-1]["updated_at"] if subtasks else _iso(now),
            "pass_sla": task_ok,
            "subtasks": subtasks,
        })
    return {"info": {"rally_version": f"femdc-bench {version}", "generated_at": _iso(now),
                     "format_version": FORMAT_VERSION},
            "tasks": tasks}
