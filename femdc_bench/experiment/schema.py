"""The experiment schema (JSON Schema, checked with `jsonschema`, so that every error
carries the path of the bad value) and the one-line message of its first error.

The schema is a literal but for three lists it takes from their one home: provider
types (providers/__init__.py), deployment methods (deploy/__init__.py) and scenario
names (the scenario registry, workload/registry.py). The scenarios are imported only
when their table is not cached (loading.scenario_table): importing them costs ~0.3 s
(keystoneauth1), and every command reads the run's experiment again.
"""

from __future__ import annotations

import copy
import difflib
import functools
from typing import TYPE_CHECKING, Any

from femdc_bench import deploy, providers
from femdc_bench.errors import ExperimentError
from femdc_bench.model import KILLABLE_SERVICES, ROLES
from femdc_bench.units import _DURATION, _NAME, _PERCENT, _RATE

if TYPE_CHECKING:
    import jsonschema  # ~50 ms to import: by the schema check, which a run may skip (parse)

PROVIDERS = providers.NAMES
METHODS = deploy.NAMES
SCENARIO_EXPECTED = "a scenario name (see README: Scenarios)"


def _s(type_: str, expected: str, **kw: Any) -> dict[str, Any]:
    return {"type": type_, "x-expected": expected, **kw}


DURATION = _s("string", "a duration like '25ms' (units: us, ms, s)", pattern=_DURATION)
RATE = _s("string", "a rate like '100mbit' (units: bit, kbit, mbit, gbit)", pattern=_RATE)
PERCENT = _s("string", "a percentage like '0.1%'", pattern=_PERCENT)
NAME_MAX = 32  # characters of a site or host name (or its range)
NAME = _s("string", "a lower-case name like 'edge1' or a range like 'edge[1-8]', at most "
          f"{NAME_MAX} characters", pattern=_NAME, maxLength=NAME_MAX)
IFNAME = _s("string", "a network interface name like 'eth0' (at most 15 characters)",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
SITE_REFS = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ],
    "x-expected": "a site name, a pattern like 'edge*', or a list of them",
}


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(required),
        "additionalProperties": False,
    }




def _sweepable(x: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [x, {"type": "array", "items": x, "minItems": 1}],
            "x-expected": x["x-expected"] + " (or a list of them: a sweep)"}


S_DURATION, S_RATE, S_PERCENT = _sweepable(DURATION), _sweepable(RATE), _sweepable(PERCENT)
LINK = _obj({"delay": S_DURATION, "rate": S_RATE, "loss": S_PERCENT})

# provider: one schema per type (`type` picks it), each with its own keys. Credentials
# never live in an experiment file: a key that looks like one is refused at any level.
_SECRET_KEY = r"(?i)(pass|secret|token|credential|api.?key|private)"
_NO_SECRET = {"not": {"pattern": _SECRET_KEY},
              "x-expected": "a key that is not a credential (credentials never go into an "
              "experiment file: Grid'5000 reads ~/.python-grid5000.yaml, Chameleon an "
              "OpenStack RC file or the OS_* environment, SSH the agent or a key path)"}


def _pobj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"propertyNames": _NO_SECRET, **_obj(props, required)}


FILE_PATH = _s("string", "a file path, absolute or from '~/' (the run keeps a copy of the "
               "experiment file elsewhere: a relative path would change meaning)",
               pattern=r"^(/|~/)")
WALLTIME = _s("string", "a walltime like '02:00:00' (HH:MM:SS)",
              pattern=r"^[0-9]{1,3}:[0-5][0-9]:[0-5][0-9]$")
# Mappings keyed by host alias or site keep no credential check on their keys (a site may
# be called 'compass'): an unknown key there is an error of its own.
FLAVOURS = {
    "type": "object",
    "additionalProperties": _s("string", "a flavour name"),
    "required": ["default"],
    "x-expected": "a mapping of role, host alias or 'default' to a flavour name",
}
SLUG = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def _provider_type(name: str, props: dict[str, Any],
                   required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": _pobj({"type": {"const": name}, **props}, ("type", *required))}


PROVIDER: dict[str, Any] = {
    "type": "object",
    "properties": {"type": {"enum": list(PROVIDERS),
                            "x-expected": "one of " + ", ".join(PROVIDERS)}},
    "required": ["type"],
    "allOf": [
        _provider_type("local", {
            "subnet": _s("string", "an IPv4 network like '10.231.0.0/24'")}),
        _provider_type("static", {
            "hosts": {
                "type": "object",
                "minProperties": 1,
                "x-expected": "a mapping of host alias ('<site>-<host>') to "
                              "{address, user, port, key}",
                "additionalProperties": _pobj({
                    "address": _s("string", "an IP address"),
                    "user": _s("string", "a user name like 'root'",
                               pattern=r"^[a-z_][a-z0-9_.-]*$"),
                    "port": _s("integer", "a port from 1 to 65535", minimum=1,
                               maximum=65535),
                    "key": FILE_PATH,
                    "device": _s("string", "a network interface like 'eth0'",
                                 pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$"),
                }, ("address",)),
            }}, ("hosts",)),
        _provider_type("g5k", {
            "job_name": _s("string", "a job name of letters, digits, '_', '.' and '-'",
                           pattern=SLUG, maxLength=100),
            "walltime": WALLTIME,
            "reservation": _s("string", "a start date like '2026-12-24 19:00:00'",
                              pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2} "
                                      r"[0-9]{2}:[0-9]{2}:[0-9]{2}$"),
            "env_name": _s("string", "a kadeploy environment like 'debian12-min'",
                           pattern=SLUG),
            "queue": {"enum": ["default", "production", "besteffort"],
                      "x-expected": "one of default, production, besteffort"},
            "clusters": {
                "type": "object",
                "minProperties": 1,
                "x-expected": "a mapping of site (or pattern like 'edge*') to "
                              "'<g5k site>/<cluster>' or {site, cluster}",
                # a string or a mapping, each checked on its own (an anyOf would report
                # the whole value, credentials included)
                "additionalProperties": {
                    "if": {"type": "string"},
                    "then": _s("string", "'<g5k site>/<cluster>' like 'rennes/paravance' "
                               "or {site: rennes, cluster: paravance}",
                               pattern=r"^[a-z]+/[a-z][a-z0-9-]*$"),
                    "else": _pobj({"site": _s("string", "a Grid'5000 site like 'rennes'",
                                              pattern=r"^[a-z]+$"),
                                   "cluster": _s("string", "a cluster like 'paravance'",
                                                 pattern=r"^[a-z][a-z0-9-]*$")},
                                  ("site", "cluster")),
                },
            }}, ("walltime", "clusters")),
        _provider_type("vagrant", {
            "backend": {"enum": ["libvirt", "virtualbox"],
                        "x-expected": "'libvirt' or 'virtualbox'"},
            "box": _s("string", "a Vagrant box like 'generic/debian12'",
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$"),
            "flavours": FLAVOURS,
            "cidr": _s("string", "an IPv4 network like '192.168.42.0/24'"),
        }),
        _provider_type("chameleon", {
            "kind": {"enum": ["kvm", "baremetal"], "x-expected": "'kvm' or 'baremetal'"},
            "image": _s("string", "an image name like 'CC-Ubuntu22.04'"),
            "key_name": _s("string", "the name of a key pair of your Chameleon project"),
            "flavours": FLAVOURS,
            "rc_file": FILE_PATH,
            "user": _s("string", "a user name like 'cc'", pattern=r"^[a-z_][a-z0-9_.-]*$"),
            "lease_name": _s("string", "a lease name of letters, digits, '_', '.' and '-'",
                             pattern=SLUG, maxLength=100),
            "walltime": WALLTIME,
        }, ("kind", "image", "key_name", "flavours")),
    ],
}

SCHEMA: dict[str, Any] = _obj(
    {
        "name": NAME | {"x-expected": "a lower-case name like 'keystone-3sites', at most "
                                      f"{NAME_MAX} characters",
                        "pattern": r"^[a-z][a-z0-9-]*$"},
        "description": {"type": "string"},
        "provider": PROVIDER,
        "sites": {
            "type": "array",
            "minItems": 1,
            "items": _obj(
                {
                    "name": NAME,
                    "hosts": {
                        "type": "array",
                        "minItems": 1,
                        "items": _obj(
                            {
                                "name": NAME,
                                "roles": {
                                    "type": "array",
                                    "items": {"enum": list(ROLES),
                                              "x-expected": "one of " + ", ".join(ROLES)},
                                },
                                "computes": _s("integer", "an integer from 1 to 1000",
                                               minimum=1, maximum=1000),
                            },
                            ("name", "roles"),
                        ),
                    },
                },
                ("name", "hosts"),
            ),
        },
        "deployment": _obj(
            {
                "method": {"enum": list(METHODS),
                           "x-expected": "one of " + ", ".join(METHODS)},
                "kolla": _obj(
                    {
                        "version": _s("string", "a kolla-ansible version like '20.6.0'",
                                      pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$"),
                        "network_interface": IFNAME,
                        "neutron_external_interface": IFNAME,
                        "internal_vip": {"type": "object", "additionalProperties": _s(
                            "string", "an IP address"),
                            "x-expected": "a mapping <region site>: <IP address>"},
                        "registry": _s("string", "a registry like 'quay.io' or "
                                       "'registry.local:4000'",
                                       pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?$"),
                        "base_distro": {"enum": ["debian", "ubuntu", "rocky"],
                                        "x-expected": "one of debian, ubuntu, rocky"},
                        "horizon": {"type": "boolean"},
                        "globals": {"type": "object", "x-expected": "a mapping of globals.yml "
                                    "keys to values"},
                    },
                    ("network_interface",),
                ),
                "keystone": {
                    "anyOf": [
                        {"const": "per_site"},
                        _obj({"centralized": {"type": "string"}}, ("centralized",)),
                    ],
                    "x-expected": "'per_site' or {centralized: <site>}",
                },
                "control": {
                    "anyOf": [
                        {"const": "per_site"},
                        _obj({"centralized": {"type": "string"}}, ("centralized",)),
                    ],
                    "x-expected": "'per_site' or {centralized: <site>}",
                },
                "database": {
                    "anyOf": [
                        {"enum": ["per_site", "galera"]},
                        _obj({"central": {"type": "string"}}, ("central",)),
                    ],
                    "x-expected": "'per_site', 'galera' or {central: <site>}",
                },
                "keystone_workers": {"type": "integer", "minimum": 1, "maximum": 64},
                "api_workers": _s("integer", "an integer from 1 to 16", minimum=1, maximum=16),
                "tls": {"type": "boolean"},
                "release": _s("string", "an OpenStack release like '2025.1'",
                              pattern=r"^20[0-9]{2}\.[12]\Z"),
                "devstack": _obj({
                    "ref": _s("string", "a git branch, tag or commit like 'stable/2025.1'",
                              pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*\Z", maxLength=200),
                    "repo": _s("string", "a git URL (https://, ssh://, git://, file://, "
                               "user@host:path) or an absolute path",
                               pattern=r"^((https?|ssh|git|file)://[^\s]+|/[^\s]*"
                               r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+)\Z", maxLength=500),
                    "stack_user": _s("string", "a user name like 'stack'",
                                     pattern=r"^[a-z_][a-z0-9_-]*\Z", maxLength=32),
                    "extra_localrc": {"type": "object",
                                      "additionalProperties": {"type": "string"},
                                      "x-expected": "a mapping of VARIABLE: value"},
                }),
            },
            ("method", "keystone"),
        ),
        "wan": _obj(
            {
                "emulator": {"enum": ["auto", "netem", "userspace"],
                             "x-expected": "one of auto, netem, userspace"},
                "default": LINK,
                "intra_site": LINK,
                "overrides": {
                    "type": "array",
                    "items": {
                        **_obj({"src": SITE_REFS, "dst": SITE_REFS,
                                "symmetric": {"type": "boolean"},
                                "delay": S_DURATION, "rate": S_RATE, "loss": S_PERCENT},
                               ("src", "dst")),
                    },
                },
                "exclude": {
                    "type": "array",
                    "items": _s("string", "a host alias or an IPv4 network"),
                },
                "compensate_base": {"type": "boolean"},
            }
        ),
        "workload": _obj(
            {
                "scenarios": {
                    "type": "array",
                    "minItems": 1,
                    "items": _obj(
                        {
                            # full(): the registry's names as an enum
                            "name": {"type": "string", "x-expected": SCENARIO_EXPECTED},
                            "args": {"type": "object"},
                            "runner": _obj(
                                {
                                    "type": {"enum": ["times", "duration"],
                                             "x-expected": "'times' or 'duration'"},
                                    "times": {"type": "integer", "minimum": 1},
                                    "duration": DURATION,
                                    "concurrency": {"type": "integer", "minimum": 1,
                                                    "maximum": 256},
                                },
                                ("type",),
                            ),
                            "from": SITE_REFS,
                            "to": SITE_REFS | {
                                "x-expected": "'local', a site name, a pattern or a list"},
                        },
                        ("name", "runner"),
                    ),
                },
                "rally_task": _s("string", "the path of a Rally task file (v1 or v2, "
                                 "YAML or JSON), relative to this file"),
                "task_args": {"type": "object"},
                "from": SITE_REFS,
                "to": SITE_REFS | {"x-expected": "'local', a site name, a pattern or a list"},
                "faults": {
                    "type": "array",
                    "items": _obj({"partition": _s("string", "the site to cut off"),
                                   "kill": {"enum": list(KILLABLE_SERVICES),
                                            "x-expected": "one of "
                                            + ", ".join(KILLABLE_SERVICES)},
                                   "degrade": _s("string", "the site whose links degrade"),
                                   "site": _s("string", "the site whose service is killed"),
                                   "at": DURATION, "duration": DURATION,
                                   "restart_after": DURATION,
                                   "delay": DURATION, "rate": RATE, "loss": PERCENT},
                                  ("at",)),
                },
                "sla": _obj(
                    {
                        "failure_rate_max": PERCENT,
                        "p95_ms_max": {"type": "number", "exclusiveMinimum": 0},
                    }
                ),
            },
            (),
        ),
        "metrics": _obj(
            {
                "influxdb": {
                    "anyOf": [
                        {"const": "local"},
                        _obj(
                            {
                                "url": _s("string", "an http(s) URL",
                                          pattern=r"^https?://[^\s]+$"),
                                "database": {"type": "string"},
                                "bucket": {"type": "string"},
                                "org": {"type": "string"},
                                "token_env": {"type": "string"},
                                "username_env": {"type": "string"},
                                "password_env": {"type": "string"},
                            },
                            ("url",),
                        ),
                    ],
                    "x-expected": "'local' or {url: ..., database: ...}",
                },
                "period": DURATION,
                "sampling": {"type": "boolean"},
                "grafana": _obj(
                    {
                        "host": _s("string", "a host alias ('<site>-<host>')"),
                        "port": _s("integer", "a port from 1 to 65535", minimum=1,
                                   maximum=65535),
                        "image": _s("string", "a Docker image like "
                                    "'grafana/grafana-oss:11.6.0'",
                                    pattern=r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?"
                                            r"(@sha256:[0-9a-f]{64})?$"),
                        "influxdb_url": _s("string", "an http(s) URL",
                                           pattern=r"^https?://[^\s]+$"),
                    },
                    ("host",),
                ),
            }
        ),
    },
    ("name", "sites", "deployment", "workload"),
)


@functools.cache
def with_scenarios(names: tuple[str, ...]) -> dict[str, Any]:
    """SCHEMA with `names` as the enum of workload.scenarios[].name."""
    out = copy.deepcopy(SCHEMA)
    items = out["properties"]["workload"]["properties"]["scenarios"]["items"]
    items["properties"]["name"] = {"enum": list(names), "x-expected": SCENARIO_EXPECTED}
    return out


def full() -> dict[str, Any]:
    """The schema with the registry's scenario names (importing the scenarios)."""
    from femdc_bench.workload import scenarios

    return with_scenarios(tuple(sorted(scenarios.table())))


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def error(file: str, err: jsonschema.ValidationError) -> ExperimentError:
    path = list(err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        key = extra[0]
        hint = difflib.get_close_matches(key, allowed, n=1)
        msg = f"unknown key {key!r}"
        msg += f" (did you mean {hint[0]!r}?)" if hint else ""
        return ExperimentError(file, _path(path + [key]),
                               msg + "; expected one of: " + ", ".join(allowed))
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance][0]
        return ExperimentError(file, _path(path + [missing]), "missing required key")
    expected = err.schema.get("x-expected")
    if expected is None:
        if err.validator == "type":
            expected = {"object": "a mapping", "array": "a list", "string": "a string",
                        "integer": "an integer", "number": "a number",
                        "boolean": "true or false"}.get(str(err.validator_value),
                                                        str(err.validator_value))
        elif err.validator in ("minimum", "maximum", "exclusiveMinimum", "minItems"):
            expected = err.message
            return ExperimentError(file, _path(path), expected)
        else:
            expected = err.message
    hint = _hint(err.instance, err.validator_value) if err.validator == "enum" else ""
    return ExperimentError(file, _path(path),
                           f"expected {expected}, got {_describe(err.instance)}{hint}")


def _hint(value: Any, choices: list[Any]) -> str:
    """" (did you mean 'x'?)" for a near miss (case-insensitive), else ""."""
    if not isinstance(value, str):
        return ""
    lower = {c.lower(): c for c in choices if isinstance(c, str)}
    hit = difflib.get_close_matches(value.lower(), list(lower), n=1)
    return f" (did you mean {lower[hit[0]]!r}?)" if hit else ""


def best(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    # Report the error nearest to the top of the file, shallowest context first.
    def key(e: jsonschema.ValidationError) -> tuple[Any, ...]:
        return tuple(str(p) for p in e.absolute_path)

    return sorted(errors, key=key)[0]


