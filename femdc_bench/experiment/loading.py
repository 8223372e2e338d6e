"""Loading an experiment file: `load(path)` returns an `Experiment` (model.py) or raises
`ExperimentError`, whose message is one line: ``FILE: key.path: what was expected``.

The file is read by safeyaml, checked against the schema (schema.py), then built by the
rules below: sites and hosts (ranges expanded), the provider's checks (its module, by
providers.get), the deployment (the method's own checks, by deploy.get), the layout
(layout.py), the WAN sweep points, the workload, faults and metrics.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import fnmatch
import hashlib
import ipaddress
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from femdc_bench import deploy, providers
from femdc_bench.errors import ExperimentError, unknown
from femdc_bench.experiment import layout, schema
from femdc_bench.model import (
    KILLABLE_SERVICES,
    SERVICE_OF_TYPE,
    DeploymentSpec,
    Experiment,
    FaultSpec,
    GrafanaSpec,
    HostSpec,
    LinkSpec,
    MetricsSpec,
    ProviderSpec,
    RunnerSpec,
    ScenarioSpec,
    SiteSpec,
    SlaSpec,
    SweepPoint,
    WanOverride,
    WanSpec,
    WorkloadSpec,
)
from femdc_bench.units import MAX_HOSTS, duration_ms, expand_range, percent, rate_kbit


def load(path: str | Path, *, task_anywhere: bool = False, passed: Path | None = None
         ) -> Experiment:
    """Read and check an experiment file: safeyaml's limits (a regular file of at most
    1 MiB, no duplicate keys, no Python tags, no alias bombs, bounded nesting), then the
    schema and the rules below. `task_anywhere`: workload.rally_task may be outside the
    file's directory (`bench --task FILE`: a path the user gave on the command line).
    `passed`: see parse()."""
    from femdc_bench import safeyaml

    file = str(path)
    try:
        doc = safeyaml.load(safeyaml.read_text(path))
    except OSError as e:
        raise ExperimentError(file, "", f"cannot read: {e.strerror}") from None
    except safeyaml.YamlError as e:
        raise ExperimentError(file, e.where, e.message) from None
    return parse(doc, file, task_anywhere=task_anywhere, passed=passed)


def parse(doc: Any, file: str = "<experiment>", *, task_anywhere: bool = False,
          passed: Path | None = None) -> Experiment:
    """The document checked (schema, then the rules of _build) as an Experiment.

    `passed`: a file that keeps the schema_key() of the last document that passed the
    schema check (a run's own experiment, read again by every command): when it matches,
    the check's result is known and the check is skipped; the rules of _build always run.
    """
    if not isinstance(doc, dict):
        raise ExperimentError(file, "", "expected a mapping at the top level")
    key = schema_key(doc) if passed is not None else None
    if key is None or _read_key(passed) != key:
        import jsonschema

        names = tuple(sorted(scenario_table(passed)))
        checker = jsonschema.Draft202012Validator(schema.with_scenarios(names))
        errors = list(checker.iter_errors(doc))
        if errors:
            raise schema.error(file, schema.best(errors))
        if passed is not None and key is not None:
            _write_key(passed, key)
    return _build(doc, file, task_anywhere, lambda: scenario_table(passed))


def schema_key(doc: Any) -> str:
    """What the schema check's result depends on: the schema, the scenario names (the
    sources of the scenario modules, read, not imported) and the document, as their repr
    (which tells a string from a number, a date or a boolean: YAML's safe types)."""
    from femdc_bench.workload.registry import source_digest

    text = f"{schema.SCHEMA!r}\0{source_digest()}\0{doc!r}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


#: beside `passed`: the scenario registry's table and the digest of its sources
SCENARIO_TABLE = "scenarios.json"


def scenario_table(passed: Path | None = None) -> dict[str, str]:
    """The scenario registry's table (name -> service type). With `passed` (a run's),
    it is kept beside it with the digest of the scenario sources and read from there
    while they are unchanged: importing the scenarios costs ~0.3 s (keystoneauth1), and
    every command reads the run's experiment; Run.create keeps it first."""
    import json

    from femdc_bench.workload.registry import source_digest

    cache = passed.with_name(SCENARIO_TABLE) if passed is not None else None
    digest = source_digest()
    if cache is not None:
        try:
            data = json.loads(cache.read_text())
            if data["digest"] == digest:
                return {str(k): str(v) for k, v in data["table"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    from femdc_bench.workload import scenarios

    table = scenarios.table()
    if cache is not None:
        _write_key(cache, json.dumps({"digest": digest, "table": table}))
    return table


def _read_key(path: Path | None) -> str | None:
    try:
        return path.read_text().strip() if path is not None else None
    except (OSError, ValueError):
        return None


def _write_key(path: Path, key: str) -> None:
    """Written whole or not at all (another command may read it); a run directory that
    cannot be written is no error: the next command checks again."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(key + "\n")
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _expand_refs(file: str, path: str, value: Any, names: list[str]) -> tuple[str, ...]:
    """Site references: names, ranges (edge[1-3]) and shell patterns (edge*)."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]" if isinstance(value, list) else path
        matched: list[str] = []
        try:
            candidates = expand_range(item)
        except ValueError as e:
            raise ExperimentError(file, where, str(e)) from None
        for candidate in candidates:
            hits = fnmatch.filter(names, candidate)
            if not hits:
                hint = difflib.get_close_matches(candidate, names, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ExperimentError(
                    file, where, f"no site matches {candidate!r}{extra}; sites: "
                    + ", ".join(names))
            matched += hits
        out += [m for m in matched if m not in out]
    return tuple(out)


def _link(d: dict[str, Any] | None, base: LinkSpec | None = None) -> LinkSpec:
    base = base or LinkSpec()
    d = d or {}
    return LinkSpec(
        delay_ms=duration_ms(d["delay"]) if "delay" in d else base.delay_ms,
        rate_kbit=rate_kbit(d["rate"]) if "rate" in d else base.rate_kbit,
        loss_pct=percent(d["loss"]) if "loss" in d else base.loss_pct,
    )


def _build(doc: dict[str, Any], file: str, task_anywhere: bool,
           table: Callable[[], Mapping[str, str]]) -> Experiment:
    """The Experiment of a document that passed the schema; `table`: the scenario
    registry's (name -> service type), asked only when some service is not deployed."""
    # --- sites and hosts (ranges expand; aliases are "<site>-<host>")
    sites: list[SiteSpec] = []
    host_paths: dict[str, str] = {}  # alias -> "sites[i].hosts[j]", for error messages
    n_hosts = 0

    def expand(where: str, name: str) -> list[str]:
        try:
            return expand_range(name)
        except ValueError as e:
            raise ExperimentError(file, where, str(e)) from None

    for i, s in enumerate(doc["sites"]):
        for site_name in expand(f"sites[{i}].name", s["name"]):
            if any(x.name == site_name for x in sites):
                raise ExperimentError(file, f"sites[{i}].name",
                                      f"site {site_name!r} is defined twice")
            hosts: list[HostSpec] = []
            for j, h in enumerate(s["hosts"]):
                for host_name in expand(f"sites[{i}].hosts[{j}].name", h["name"]):
                    n_hosts += 1
                    if n_hosts > MAX_HOSTS:
                        raise ExperimentError(file, f"sites[{i}].hosts[{j}].name",
                                              f"more than {MAX_HOSTS} hosts in all")
                    alias = f"{site_name}-{host_name}"
                    if any(x.name == alias for x in hosts):
                        raise ExperimentError(file, f"sites[{i}].hosts[{j}].name",
                                              f"host {host_name!r} is defined twice")
                    roles = tuple(dict.fromkeys(h["roles"]))
                    if "computes" in h and "compute" not in roles:
                        raise ExperimentError(file, f"sites[{i}].hosts[{j}].computes",
                                              "allowed only on a host with role 'compute'")
                    computes = h.get("computes", 1) if "compute" in roles else 0
                    hosts.append(HostSpec(alias, roles, computes=computes))
                    host_paths[alias] = f"sites[{i}].hosts[{j}]"
            sites.append(SiteSpec(site_name, tuple(hosts)))
    names = [s.name for s in sites]
    aliases = [h.name for s in sites for h in s.hosts]
    dup = {a for a in aliases if aliases.count(a) > 1}
    if dup:
        raise ExperimentError(file, "sites", f"host aliases collide: {', '.join(sorted(dup))}")

    # --- provider
    p = doc.get("provider", {"type": "local"})
    provider = providers.get(p["type"]).check(file, p, sites)

    # --- deployment
    deployment = _deployment(file, doc["deployment"], names)
    layout.check(file, doc, sites, host_paths, deployment)
    regions = deployment.regions(names)

    # --- wan: one WanSpec per sweep point (the Cartesian product of the lists)
    w = doc.get("wan", {})
    points = _sweep_points(file, w, names, aliases)

    # --- workload
    wl = doc["workload"]
    load_sites = [s.name for s in sites if s.hosts_with("load")]
    scenarios = []
    if ("scenarios" in wl) == ("rally_task" in wl):
        raise ExperimentError(file, "workload", "expected either 'scenarios' or "
                              "'rally_task' (a Rally task file), not both or neither")
    for key in ("task_args", "from", "to"):
        if key in wl and "rally_task" not in wl:
            raise ExperimentError(file, f"workload.{key}",
                                  "only with workload.rally_task (scenarios have their own)")
    if "rally_task" in wl:
        sources, targets = _from_to(file, "workload", wl, load_sites, names, regions,
                                    deployment)
        scenarios = _task_scenarios(file, wl, sources, targets, deployment, task_anywhere,
                                    table)
    for i, sc in enumerate(wl.get("scenarios", [])):
        base = f"workload.scenarios[{i}]"
        _check_deployed(file, f"{base}.name", sc["name"], deployment, table)
        runner = _runner(file, f"{base}.runner", sc["runner"])
        sources, targets = _from_to(file, base, sc, load_sites, names, regions, deployment)
        scenarios.append(ScenarioSpec(name=sc["name"], runner=runner,
                                      args=dict(sc.get("args", {})), sources=sources,
                                      targets=targets))
    sla_doc = wl.get("sla", {})
    sla = SlaSpec(
        failure_rate_max_pct=percent(sla_doc["failure_rate_max"])
        if "failure_rate_max" in sla_doc else None,
        p95_ms_max=sla_doc.get("p95_ms_max"),
    )
    if sla.failure_rate_max_pct is not None and sla.failure_rate_max_pct > 100:
        raise ExperimentError(file, "workload.sla.failure_rate_max",
                              "expected a percentage between 0% and 100%")
    faults = [_fault(file, f"workload.faults[{i}]", f, sites, deployment)
              for i, f in enumerate(wl.get("faults", []))]

    # --- metrics
    md = doc.get("metrics", {})
    period_s = duration_ms(md.get("period", "5s")) / 1000
    if not 1.0 <= period_s <= 3600:
        raise ExperimentError(file, "metrics.period",
                              f"expected a period from 1s to 3600s, got {md['period']!r}")
    sampling = {"period_s": period_s, "sampling": bool(md.get("sampling", True))}
    m = md.get("influxdb", "local")
    if m == "local":
        metrics = MetricsSpec(**sampling)
    else:
        metrics = MetricsSpec(influxdb=m["url"], database=m.get("database", "femdc"),
                              bucket=m.get("bucket"), org=m.get("org"),
                              token_env=m.get("token_env"), username_env=m.get("username_env"),
                              password_env=m.get("password_env"), **sampling)
    if "grafana" in md:
        metrics = replace(metrics, grafana=_grafana(file, md["grafana"], metrics, provider,
                                                    aliases))

    return Experiment(
        name=doc["name"], path=file, sites=tuple(sites), provider=provider,
        deployment=deployment, wan=points[0].wan,
        workload=WorkloadSpec(scenarios=tuple(scenarios), sla=sla, faults=tuple(faults)),
        metrics=metrics, points=tuple(points), raw=doc)


#: an experiment's words for a broken runner rule (workload/runners.py), by rule
RUNNER_RULES = {"required": "missing required key (runner type {type!r})",
                "only": "not allowed with runner type {type!r}",
                "positive": "expected a duration above 0"}


def _runner(file: str, path: str, r: dict[str, Any]) -> RunnerSpec:
    """workload.scenarios[].runner (types and ranges checked by the schema) through the
    one set of runner rules; their errors name the experiment's keys."""
    from femdc_bench.workload.runners import RunnerError, runner

    try:
        return runner(r["type"], concurrency=r.get("concurrency", 1), times=r.get("times"),
                      duration_s=duration_ms(r["duration"]) / 1000 if "duration" in r
                      else None)
    except RunnerError as e:
        key = "duration" if e.key == "duration_s" else e.key
        raise ExperimentError(file, f"{path}.{key}", RUNNER_RULES.get(
            e.rule, e.message).format(type=r["type"])) from None


def _grafana(file: str, g: dict[str, Any], metrics: MetricsSpec, provider: ProviderSpec,
             aliases: list[str]) -> GrafanaSpec:
    if not providers.get(provider.type).docker_hosts:
        raise ExperimentError(file, "metrics.grafana", "expected a testbed provider (g5k, "
                              "vagrant, chameleon, static): Grafana runs in Docker on a "
                              "testbed host; for the local provider write the dashboards "
                              "with `femdc-bench grafana DIR` for a Grafana of your own")
    if g["host"] not in aliases:
        raise ExperimentError(file, "metrics.grafana.host", f"expected a host alias"
                              f"{unknown(g['host'], aliases)}; hosts: {', '.join(aliases)}")
    if metrics.influxdb == "local":
        raise ExperimentError(file, "metrics.grafana", "expected metrics.influxdb: {url: "
                              "...} that the Grafana host reaches: the run's local InfluxDB "
                              "listens on this machine's 127.0.0.1 only")
    return GrafanaSpec(host=g["host"], port=g.get("port", 3000),
                       image=g.get("image", GrafanaSpec.image),
                       influxdb_url=g.get("influxdb_url"))


_LINK_KEYS = ("delay", "rate", "loss")


def _sweep_points(file: str, w: dict[str, Any], names: list[str],
                  aliases: list[str]) -> list[SweepPoint]:
    dims: list[tuple[tuple[Any, ...], list[str]]] = []  # (path in w, values)
    for key in ("default", "intra_site"):
        for k in _LINK_KEYS:
            if isinstance(w.get(key, {}).get(k), list):
                dims.append(((key, k), w[key][k]))
    for i, o in enumerate(w.get("overrides", [])):
        for k in _LINK_KEYS:
            if isinstance(o.get(k), list):
                dims.append((("overrides", i, k), o[k]))
    points = []
    for n, combo in enumerate(itertools.product(*(values for _, values in dims))):
        concrete = copy.deepcopy(w)
        params = {}
        for (path, _), value in zip(dims, combo, strict=True):
            target = concrete
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
            params["wan." + ".".join(f"{p}" if isinstance(p, str) else f"[{p}]"
                                     for p in path).replace(".[", "[")] = value
        points.append(SweepPoint(id=f"p{n}", params=params,
                                 wan=_wan(file, concrete, names, aliases)))
    return points


def _wan(file: str, w: dict[str, Any], names: list[str], aliases: list[str]) -> WanSpec:
    for key in ("default", "intra_site"):
        if key in w and "loss" in w[key] and percent(w[key]["loss"]) > 100:
            raise ExperimentError(file, f"wan.{key}.loss",
                                  "expected a percentage between 0% and 100%")
    overrides = []
    for i, o in enumerate(w.get("overrides", [])):
        if "loss" in o and percent(o["loss"]) > 100:
            raise ExperimentError(file, f"wan.overrides[{i}].loss",
                                  "expected a percentage between 0% and 100%")
        overrides.append(WanOverride(
            src=_expand_refs(file, f"wan.overrides[{i}].src", o["src"], names),
            dst=_expand_refs(file, f"wan.overrides[{i}].dst", o["dst"], names),
            link=_link(o, _link(w.get("default"))),
            symmetric=o.get("symmetric", True),
        ))
    for i, x in enumerate(w.get("exclude", [])):
        if x in aliases:
            continue
        try:
            ipaddress.IPv4Network(x)
        except ValueError:
            raise ExperimentError(file, f"wan.exclude[{i}]",
                                  f"expected a host alias ({', '.join(aliases[:5])}"
                                  f"{', ...' if len(aliases) > 5 else ''}) or an IPv4 "
                                  f"network, got {x!r}") from None
    return WanSpec(
        emulator=w.get("emulator", "auto"),
        default=_link(w.get("default")),
        intra_site=_link(w["intra_site"]) if "intra_site" in w else None,
        overrides=tuple(overrides),
        exclude=tuple(w.get("exclude", [])),
        compensate_base=bool(w.get("compensate_base", False)),
    )


# The keys of each kind of fault besides `at` (required first, then optional).
_FAULT_KEYS = {"partition": (("duration",), ()), "kill": (("site",), ("restart_after",)),
               "degrade": (("duration",), ("delay", "rate", "loss"))}


def _fault(file: str, path: str, f: dict[str, Any], sites: list[SiteSpec],
           deployment: DeploymentSpec) -> FaultSpec:
    """One workload fault: exactly one of partition, kill, degrade, with its own keys."""
    kinds = [k for k in _FAULT_KEYS if k in f]
    if len(kinds) != 1:
        raise ExperimentError(file, path, "expected exactly one of partition, kill, degrade"
                              + (f", got {' and '.join(kinds)}" if kinds else ""))
    kind = kinds[0]
    required, optional = _FAULT_KEYS[kind]
    for key in f:
        if key not in (kind, "at", *required, *optional):
            raise ExperimentError(file, f"{path}.{key}", f"not a key of a {kind} fault; "
                                  f"expected {', '.join((kind, 'at', *required, *optional))}")
    for key in required:
        if key not in f:
            raise ExperimentError(file, path, f"a {kind} fault needs '{key}'")
    names = [s.name for s in sites]
    site_key = "site" if kind == "kill" else kind
    site = f[site_key]
    if site not in names:
        raise ExperimentError(file, f"{path}.{site_key}",
                              f"expected one of the sites ({', '.join(names)}), got {site!r}")
    at_s = duration_ms(f["at"]) / 1000
    link, link_keys = None, ()
    if kind == "kill":
        if not deploy.get(deployment.method).service_faults:
            raise ExperimentError(file, f"{path}.kill", "service faults need deployment.method "
                                  f"native (they restart the services it starts), not "
                                  f"{deployment.method}")
        service = f["kill"]
        roles = KILLABLE_SERVICES[service]
        hosts = [h for s in sites if s.name == site for h in s.hosts
                 if set(roles) & set(h.roles)]
        if not hosts or (roles == ("control",) and deployment.control is None):
            raise ExperimentError(file, f"{path}.kill", f"site {site!r} runs no {service} "
                                  f"(it runs on hosts with role {' or '.join(roles)})")
        after = f.get("restart_after")
        duration_s = duration_ms(after) / 1000 if after is not None else None
    else:
        service = None
        duration_s = duration_ms(f["duration"]) / 1000
        if kind == "degrade":
            if not {"delay", "rate", "loss"} & set(f):
                raise ExperimentError(file, path, "a degrade fault needs delay, rate or loss")
            link = LinkSpec(delay_ms=duration_ms(f.get("delay", "0ms")),
                            rate_kbit=rate_kbit(f["rate"]) if "rate" in f else None,
                            loss_pct=percent(f.get("loss", "0%")))
            link_keys = tuple(k for k, key in (("delay_ms", "delay"), ("rate_kbit", "rate"),
                                               ("loss_pct", "loss")) if key in f)
    if duration_s is not None and duration_s <= 0:
        raise ExperimentError(file, f"{path}.{'restart_after' if kind == 'kill' else 'duration'}",
                              "expected a duration above 0")
    return FaultSpec(kind=kind, site=site, at_s=at_s, duration_s=duration_s, service=service,
                     link=link, link_keys=link_keys)




def _deployment(file: str, d: dict[str, Any], names: list[str]) -> DeploymentSpec:
    def site(path: str, value: str) -> str:
        if value not in names:
            hint = difflib.get_close_matches(value, names, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ExperimentError(file, path, f"expected one of the sites ({', '.join(names)}), "
                                  f"got {value!r}{extra}")
        return value

    ks, ctl, db = d["keystone"], d.get("control"), d.get("database", "per_site")
    own = deploy.get(d["method"]).options(file, d, names)  # release, devstack, kolla
    return DeploymentSpec(
        method=d["method"],
        keystone="centralized" if isinstance(ks, dict) else "per_site",
        keystone_site=site("deployment.keystone.centralized", ks["centralized"])
        if isinstance(ks, dict) else None,
        database="central" if isinstance(db, dict) else db,
        database_site=site("deployment.database.central", db["central"])
        if isinstance(db, dict) else None,
        keystone_workers=d.get("keystone_workers", 2),
        control=None if ctl is None else "centralized" if isinstance(ctl, dict) else "per_site",
        control_site=site("deployment.control.centralized", ctl["centralized"])
        if isinstance(ctl, dict) else None,
        api_workers=d.get("api_workers", 1),
        tls=d.get("tls", False),
        release=d.get("release"),
        **own,
    )


def _from_to(file: str, base: str, sc: dict[str, Any], load_sites: list[str],
             names: list[str], regions: list[str], deployment: DeploymentSpec
             ) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """`from` and `to` of a scenario (or of a Rally task's workload): the sites that run
    the load, and those whose cloud is loaded (None: each source's own region)."""
    if "from" in sc and sc["from"] != "all":
        sources = _expand_refs(file, f"{base}.from", sc["from"], names)
    else:
        sources = tuple(load_sites)
    for src in sources:
        if src not in load_sites:
            raise ExperimentError(file, f"{base}.from",
                                  f"site {src!r} has no host with role 'load'")
    if not sources:
        raise ExperimentError(file, f"{base}.from", "no site has a host with role 'load'")
    to = sc.get("to", "local")
    targets: tuple[str, ...] | None
    if to == "local":
        targets = None
    elif to == "all":
        targets = tuple(regions)
    else:
        targets = _expand_refs(file, f"{base}.to", to, names)
        for t in targets:
            if t in regions:
                continue
            if deployment.control is None:
                why = (f"runs no Keystone (deployment.keystone is "
                       f"{deployment.keystone_text()})")
            else:
                why = (f"is not a region (deployment.control is "
                       f"{deployment.control_text()})")
            raise ExperimentError(file, f"{base}.to", f"site {t!r} {why}; targets: "
                                  f"{', '.join(regions)} or 'local'")
    return sources, targets


def _check_deployed(file: str, path: str, scenario: str, deployment: DeploymentSpec,
                    table: Callable[[], Mapping[str, str]]) -> None:
    """The service `scenario` loads is deployed (HttpRequests need none)."""
    if set(SERVICE_OF_TYPE.values()) <= set(deployment.services):
        return  # everything is: no need for the table
    service = SERVICE_OF_TYPE.get(table().get(scenario, ""))
    if service is not None and service not in deployment.services:
        raise ExperimentError(file, path, f"{scenario} needs {service}: set "
                              "deployment.control (per_site or {centralized: <site>})")


def _task_scenarios(file: str, wl: dict[str, Any], sources: tuple[str, ...],
                    targets: tuple[str, ...] | None, deployment: DeploymentSpec,
                    task_anywhere: bool, table: Callable[[], Mapping[str, str]]
                    ) -> list[ScenarioSpec]:
    """The workloads of `workload.rally_task`, in the task's order, each run from every
    site of `sources` (workload.from, default: every site with a load host) against its
    own region (or workload.to); each keeps its own SLA."""
    from femdc_bench.workload.rally_task import TaskError
    from femdc_bench.workload.rally_task import load as load_task

    path = Path(wl["rally_task"])
    if not path.is_absolute():
        path = Path(file).parent / path
    home = Path(file).parent.resolve()
    if not task_anywhere and not path.resolve().is_relative_to(home):
        raise ExperimentError(file, "workload.rally_task", f"{wl['rally_task']!r} is outside "
                              f"the experiment's directory {home}: give a path below it")
    try:
        task = load_task(path, wl.get("task_args", {}))
    except TaskError as e:
        raise ExperimentError(e.file, e.path, e.message) from None
    out = []
    for w in task.workloads:
        _check_deployed(task.file, w.path, w.scenario, deployment, table)
        out.append(ScenarioSpec(name=w.scenario, runner=w.runner, args=dict(w.args),
                                sources=sources, targets=targets,
                                workload=f"{path.name}:{w.path}", sla=w.sla,
                                contexts=dict(w.contexts)))
    return out


