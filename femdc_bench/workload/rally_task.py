"""Rally task files (format v1 and v2, YAML or JSON, Jinja2-templated) mapped onto the
workload model: one `TaskWorkload` per Rally workload, in the task's order.

Nothing is silently ignored: a scenario, runner, context, SLA or hook we do not have, an
argument a scenario does not accept, or a template variable with neither a value nor a
default is a `TaskError` naming the file and the path in it, for example
`task.yaml: subtasks[0].workloads[1].contexts.murano_packages: unsupported context`.

Templating follows Rally's: the file is a Jinja2 template rendered with the task args; a
variable given no value is an error unless the template gives it a default (`{% set x =
x or 10 %}`, `x | default(10)` or `{% if x is defined %}`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from femdc_bench.model import OutliersSla, RpsRamp, RunnerSpec, SlaSpec
from femdc_bench.workload import task_contexts


class TaskError(Exception):
    """One line: `<file>: <path>: <what was expected>`."""

    def __init__(self, file: str | Path, path: str, message: str) -> None:
        self.file, self.path, self.message = str(file), path, message
        where = f"{self.file}: {path}: " if path else f"{self.file}: "
        super().__init__(where + message)


# Runner type -> the keys it accepts (all of Rally's keys for the runner: an accepted key
# we cannot honour is not listed, so it is reported instead of ignored).
# max_cpu_count (Rally's number of worker processes) is accepted and has no effect: an
# agent's workers are threads of one process, and its CPU cost is a fraction of Rally's.
RUNNERS: dict[str, frozenset[str]] = {
    "constant": frozenset({"times", "concurrency", "timeout", "max_cpu_count"}),
    "constant_for_duration": frozenset({"duration", "concurrency", "timeout"}),
    "rps": frozenset({"times", "rps", "timeout", "max_concurrency", "max_cpu_count"}),
    "serial": frozenset({"times"}),
}
# Contexts we create and those that only validate (Rally's cleanup contexts:
# our scenarios delete what they create).
CONTEXTS: frozenset[str] = frozenset(task_contexts.SUPPORTED)
NOOP_CONTEXTS: frozenset[str] = frozenset({"admin_cleanup", "cleanup"})
SLAS: frozenset[str] = frozenset({"failure_rate", "max_seconds_per_iteration",
                                  "max_avg_duration", "max_avg_duration_per_atomic",
                                  "outliers"})
_WORKLOAD_KEYS_V1 = frozenset({"args", "runner", "context", "sla", "hooks", "description"})
_WORKLOAD_KEYS_V2 = frozenset({"scenario", "runner", "contexts", "sla", "hooks",
                               "description"})
_SUBTASK_KEYS_V2 = _WORKLOAD_KEYS_V2 | {"title", "group", "tags", "workloads",
                                        "run_in_parallel"}


@dataclass(frozen=True)
class TaskWorkload:
    path: str  # where it is in the task file, e.g. "subtasks[0].workloads[1]"
    scenario: str
    args: dict[str, Any]
    runner: RunnerSpec
    contexts: dict[str, Any] = field(default_factory=dict)
    sla: SlaSpec | None = None  # None: the task gave no SLA
    title: str = ""


@dataclass(frozen=True)
class Task:
    file: str
    version: int
    title: str
    workloads: tuple[TaskWorkload, ...]


# ------------------------------------------------------------------------ templating

def _has_default(name: str, text: str) -> bool:
    n = re.escape(name)
    patterns = (
        rf"{{%-?\s*set\s+{n}\s*=\s*{n}\s+or\b",  # {% set x = x or 10 %}
        rf"\b{n}\s*\|\s*default\s*\(",  # x | default(10)
        rf"\b{n}\s+is\s+(not\s+)?defined\b",  # {% if x is defined %}
    )
    return any(re.search(p, text) for p in patterns)


def render(file: str | Path, text: str, args: dict[str, Any]) -> str:
    """The task file rendered with `args` as Rally renders it (includes relative to it,
    never above it). Sandboxed: a task file may come from anyone, and Jinja's sandbox
    refuses attribute access to Python internals (``''.__class__``...) and huge ranges."""
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(Path(file).parent)), keep_trailing_newline=True)
    try:
        ast = env.parse(text)
    except jinja2.TemplateSyntaxError as e:
        raise TaskError(file, f"line {e.lineno}", f"template syntax error: {e.message}") from e
    missing = sorted(v for v in jinja2.meta.find_undeclared_variables(ast)
                     if v not in args and not _has_default(v, text))
    if missing:
        raise TaskError(file, "", f"template variable(s) {', '.join(missing)} given no value "
                        "(--task-args / task_args) and no default in the template")
    try:
        return env.from_string(text).render(**args)
    except jinja2.TemplateError as e:
        raise TaskError(file, "", f"template error: {e}") from e


# ------------------------------------------------------------------------ parsing

RENDERED_MAX_CHARS = 4 * 1024 * 1024

def load(file: str | Path, args: dict[str, Any] | None = None) -> Task:
    """Read, render and map a task file; TaskError on anything we cannot run as asked."""
    from femdc_bench import safeyaml  # controller side: the hosts never load tasks

    try:
        text = safeyaml.read_text(file)
    except OSError as e:
        raise TaskError(file, "", f"cannot read the task file: {e.strerror}") from e
    except safeyaml.YamlError as e:
        raise TaskError(file, "", f"cannot read the task file: {e.message}") from e
    rendered = render(file, text, dict(args or {}))
    if len(rendered) > RENDERED_MAX_CHARS:
        raise TaskError(file, "", f"the rendered task is {len(rendered)} characters, more "
                        f"than the limit of {RENDERED_MAX_CHARS}")
    try:
        doc = safeyaml.load(rendered)  # JSON is YAML
    except safeyaml.YamlError as e:
        raise TaskError(file, e.where, f"not YAML or JSON after rendering: "
                        f"{e.message}") from e
    if not isinstance(doc, dict) or not doc:
        raise TaskError(file, "", "expected a Rally task: a mapping (format v1: scenario "
                        "name -> list of workloads; v2: version, subtasks)")
    if "version" in doc or "subtasks" in doc:
        return _v2(str(file), doc)
    return _v1(str(file), doc)


def _v1(file: str, doc: dict[str, Any]) -> Task:
    workloads = []
    for name, items in doc.items():
        base = str(name)
        if not isinstance(items, list) or not items:
            raise TaskError(file, base, "expected a list of workloads")
        for i, w in enumerate(items):
            p = f"{base}[{i}]"
            _mapping(file, p, w)
            _only(file, p, w, _WORKLOAD_KEYS_V1, "key of a v1 workload")
            workloads.append(_workload(
                file, p, str(name), w.get("args", {}), w.get("runner"), "runner",
                w.get("context", {}), "context", w.get("sla", {}), w.get("hooks"),
                v1_runner=True))
    return Task(file=file, version=1, title="", workloads=tuple(workloads))


def _v2(file: str, doc: dict[str, Any]) -> Task:
    if doc.get("version") != 2:
        raise TaskError(file, "version", f"expected 2, got {doc.get('version')!r}")
    _only(file, "", doc, frozenset({"version", "title", "description", "subtasks", "tags",
                                    "env"}), "top-level key of a v2 task")
    subtasks = doc.get("subtasks")
    if not isinstance(subtasks, list) or not subtasks:
        raise TaskError(file, "subtasks", "expected a non-empty list")
    workloads = []
    for i, st in enumerate(subtasks):
        sp = f"subtasks[{i}]"
        _mapping(file, sp, st)
        _only(file, sp, st, _SUBTASK_KEYS_V2, "key of a subtask")
        if st.get("run_in_parallel"):
            raise TaskError(file, f"{sp}.run_in_parallel", "unsupported: workloads of a "
                            "subtask run one after the other")
        if "workloads" in st:
            if "scenario" in st:
                raise TaskError(file, sp, "expected either 'scenario' or 'workloads', "
                                "not both")
            items = st["workloads"]
            if not isinstance(items, list) or not items:
                raise TaskError(file, f"{sp}.workloads", "expected a non-empty list")
            pairs = [(f"{sp}.workloads[{j}]", w) for j, w in enumerate(items)]
        else:
            pairs = [(sp, {k: st[k] for k in _WORKLOAD_KEYS_V2 if k in st})]
        for p, w in pairs:
            _mapping(file, p, w)
            _only(file, p, w, _WORKLOAD_KEYS_V2, "key of a workload")
            sc = w.get("scenario")
            if not isinstance(sc, dict) or len(sc) != 1:
                raise TaskError(file, f"{p}.scenario", "expected one scenario: "
                                "{<Scenario.name>: {args}}")
            (name, sargs), = sc.items()
            workloads.append(_workload(
                file, p, str(name), sargs or {}, w.get("runner"), "runner",
                w.get("contexts", {}), "contexts", w.get("sla", {}), w.get("hooks"),
                v1_runner=False, title=str(st.get("title", ""))))
    return Task(file=file, version=2, title=str(doc.get("title", "")),
                workloads=tuple(workloads))


def _mapping(file: str, path: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise TaskError(file, path, f"expected a mapping, got {type(value).__name__}")


def _only(file: str, path: str, doc: dict[str, Any], allowed: frozenset[str],
          what: str) -> None:
    for k in doc:
        if k not in allowed:
            p = f"{path}.{k}" if path else str(k)
            raise TaskError(file, p, f"unsupported {what} (accepted: "
                            f"{', '.join(sorted(allowed))})")


def _workload(file: str, path: str, name: str, args: Any, runner: Any, runner_key: str,
              contexts: Any, contexts_key: str, sla: Any, hooks: Any, *, v1_runner: bool,
              title: str = "") -> TaskWorkload:
    import femdc_bench.workload.scenarios  # noqa: F401  (registers the scenarios)
    from femdc_bench.workload.registry import REGISTRY

    sc_path = f"{path}.scenario.{name}" if not v1_runner else path
    if name not in REGISTRY or name[0].islower():  # Rally's names only
        raise TaskError(file, sc_path, f"unsupported scenario {name!r}")
    sc = REGISTRY.get(name)
    args_path = f"{sc_path}.args" if not v1_runner else f"{path}.args"
    _mapping(file, args_path, args)
    try:
        resolved = sc.resolve_args(args)
    except ValueError as e:
        raise TaskError(file, args_path, str(e).split(": ", 1)[-1]) from e
    if hooks:
        raise TaskError(file, f"{path}.hooks", "unsupported: hooks")
    spec = _runner(file, f"{path}.{runner_key}", runner, v1=v1_runner)
    _mapping(file, f"{path}.{contexts_key}", contexts)
    for ctx in contexts:
        if ctx not in CONTEXTS and ctx not in NOOP_CONTEXTS:
            raise TaskError(file, f"{path}.{contexts_key}.{ctx}", "unsupported context")
    try:
        made = task_contexts.validate({k: v for k, v in contexts.items()
                                       if k not in NOOP_CONTEXTS})
    except task_contexts.ContextError as e:
        raise TaskError(file, f"{path}.{contexts_key}.{e.path}", e.message) from e
    if sc.needs_users and "users" not in made:
        raise TaskError(file, f"{path}.{contexts_key}", f"{name} needs the users context")
    return TaskWorkload(
        path=path, scenario=name, args=resolved, runner=spec,
        contexts=made,
        sla=_sla(file, f"{path}.sla", sla), title=title)


def _sla(file: str, path: str, sla: Any) -> SlaSpec | None:
    """Rally's SLA section; an empty one is None."""
    _mapping(file, path, sla)
    if not sla:
        return None
    kw: dict[str, Any] = {}
    for key, value in sla.items():
        p = f"{path}.{key}"
        if key not in SLAS:
            raise TaskError(file, p, f"unsupported SLA (supported: {', '.join(sorted(SLAS))})")
        if key == "failure_rate":
            _mapping(file, p, value)
            _only(file, p, value, frozenset({"max", "min"}), "failure_rate key")
            for bound in ("max", "min"):
                if bound in value:
                    v = value[bound]
                    if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 100:
                        raise TaskError(file, f"{p}.{bound}",
                                        "expected a percentage between 0 and 100")
                    kw[f"failure_rate_{bound}_pct"] = float(v)
        elif key == "max_seconds_per_iteration":
            kw["max_seconds_per_iteration"] = _seconds(file, p, value)
        elif key == "max_avg_duration":
            kw["max_avg_duration_s"] = _seconds(file, p, value)
        elif key == "max_avg_duration_per_atomic":
            _mapping(file, p, value)
            if not value:
                raise TaskError(file, p, "expected at least one atomic action name")
            kw["max_avg_duration_per_atomic"] = tuple(
                (str(a), _number(file, f"{p}.{a}", v, minimum=0)) for a, v in value.items())
        else:  # outliers
            _mapping(file, p, value)
            _only(file, p, value, frozenset({"max", "min_iterations", "sigmas"}),
                  "outliers key")
            mx = value.get("max", 0)
            if not isinstance(mx, int) or isinstance(mx, bool) or mx < 0:
                raise TaskError(file, f"{p}.max", f"expected an integer >= 0, got {mx!r}")
            mi = value.get("min_iterations", 3)
            if not isinstance(mi, int) or isinstance(mi, bool) or mi < 3:
                raise TaskError(file, f"{p}.min_iterations",
                                f"expected an integer >= 3, got {mi!r}")
            sig = _seconds(file, f"{p}.sigmas", value.get("sigmas", 3.0), what="a number > 0")
            kw["outliers"] = OutliersSla(max=mx, min_iterations=mi, sigmas=sig)
    return SlaSpec(**kw)


def _positive_int(file: str, path: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TaskError(file, path, f"expected a positive integer, got {value!r}")
    return value


def _runner(file: str, path: str, runner: Any, *, v1: bool) -> RunnerSpec:
    """Rally's runner (its keys and types checked here) as a RunnerSpec, built by the
    one set of runner rules (workload/runners.py), whose errors name Rally's keys."""
    if runner is None:  # Rally's default: serial, once
        return _rules(file, path, {}, "times", concurrency=1, times=1)
    _mapping(file, path, runner)
    if v1:
        conf = dict(runner)
        rtype = conf.pop("type", None)
        if rtype is None:
            raise TaskError(file, f"{path}.type", "missing required key")
        tpath = f"{path}.type"
    else:
        if len(runner) != 1:
            raise TaskError(file, path, "expected one runner: {<type>: {options}}")
        (rtype, conf), = runner.items()
        conf = dict(conf or {})
        tpath = f"{path}.{rtype}"
    if rtype not in RUNNERS:
        raise TaskError(file, tpath, f"unsupported runner {rtype!r} (supported: "
                        f"{', '.join(sorted(RUNNERS))})")
    opath = path if v1 else tpath
    _only(file, opath, conf, RUNNERS[rtype], f"option of runner {rtype!r}")
    if "max_cpu_count" in conf:
        _positive_int(file, f"{opath}.max_cpu_count", conf["max_cpu_count"])
    timeout = None
    if "timeout" in conf:
        timeout = _seconds(file, f"{opath}.timeout", conf["timeout"])
    if rtype == "constant_for_duration":
        concurrency = _positive_int(file, f"{opath}.concurrency", conf.get("concurrency", 1))
        if "duration" not in conf:
            raise TaskError(file, f"{opath}.duration", "missing required key")
        d = _seconds(file, f"{opath}.duration", conf["duration"])
        return _rules(file, opath, {"duration_s": "duration", "timeout_s": "timeout"},
                      "duration", concurrency=concurrency, duration_s=d, timeout_s=timeout)
    if rtype == "rps":
        for key in ("times", "rps"):
            if key not in conf:
                raise TaskError(file, f"{opath}.{key}", "missing required key")
        times = _positive_int(file, f"{opath}.times", conf["times"])
        rate, ramp = conf["rps"], None
        if isinstance(rate, dict):
            rp = f"{opath}.rps"
            _only(file, rp, rate, frozenset({"start", "end", "step", "duration"}),
                  "key of an rps ramp")
            vals = {}
            for key in ("start", "end", "step", "duration"):
                if key not in rate and key != "duration":
                    raise TaskError(file, f"{rp}.{key}", "missing required key")
                vals[key] = _number(file, f"{rp}.{key}", rate.get(key, 1), minimum=1)
            ramp = RpsRamp(vals["start"], vals["end"], vals["step"], vals["duration"])
            peak = vals["end"]
            rate = None
        else:
            rate = _seconds(file, f"{opath}.rps", rate, what="a rate > 0")
            peak = rate
        # Rally's default max_concurrency is `times` (a thread per iteration); ours is
        # what the peak rate needs for iterations of up to 2 s, at most `times`
        conc = conf.get("max_concurrency")
        if conc is None:
            conc = min(times, max(8, math.ceil(2 * peak)))
        conc = _positive_int(file, f"{opath}.max_concurrency", conc)
        return _rules(file, opath, {"rps_ramp": "rps", "timeout_s": "timeout"}, "rps",
                      concurrency=min(conc, times), times=times, rps=rate, rps_ramp=ramp,
                      timeout_s=timeout)
    concurrency = _positive_int(file, f"{opath}.concurrency", conf.get("concurrency", 1))
    times = _positive_int(file, f"{opath}.times", conf.get("times", 1))
    return _rules(file, opath, {"timeout_s": "timeout"}, "times", concurrency=concurrency,
                  times=times, timeout_s=timeout)


#: Rally's words for a broken runner rule (workload/runners.py) its keys cannot catch
RALLY_RULES = {"end_below_start": "rps end value must not be less than rps start value"}


def _rules(file: str, opath: str, keys: dict[str, str], type_: str, **values: Any
           ) -> RunnerSpec:
    """runners.runner(type_, **values); a broken rule as a TaskError at Rally's key
    (`keys`: RunnerSpec field -> Rally's key; "rps_ramp.end" -> "rps.end")."""
    from femdc_bench.workload.runners import RunnerError, runner

    try:
        return runner(type_, **values)
    except RunnerError as e:
        field, _, sub = e.key.partition(".")
        key = ".".join(x for x in (keys.get(field, field), sub) if x)
        raise TaskError(file, f"{opath}.{key}" if key else opath,
                        RALLY_RULES.get(e.rule, e.message)) from None


def _number(file: str, path: str, value: Any, *, minimum: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum:
        raise TaskError(file, path, f"expected a number >= {minimum:g}, got {value!r}")
    return float(value)


def _seconds(file: str, path: str, value: Any, what: str = "seconds > 0") -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise TaskError(file, path, f"expected {what}, got {value!r}")
    return float(value)
