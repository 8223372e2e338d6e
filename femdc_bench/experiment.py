"""The experiment file: strict JSON Schema, unit parsing, range expansion.

`load(path)` returns an `Experiment` (model.py) or raises `ExperimentError`, whose
message is one line: ``FILE: key.path: what was expected``.
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
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from femdc_bench.model import (
    DEVSTACK_MANAGED_VARS,
    DEVSTACK_REPO,
    KILLABLE_SERVICES,
    KOLLA_CONTROLLED_GLOBALS,
    KOLLA_VERSIONS,
    SERVICE_OF_TYPE,
    ChameleonSpec,
    DeploymentSpec,
    DevstackSpec,
    Experiment,
    FaultSpec,
    G5kSpec,
    GrafanaSpec,
    HostSpec,
    KollaSpec,
    LinkSpec,
    MetricsSpec,
    ProviderSpec,
    RunnerSpec,
    ScenarioSpec,
    SiteSpec,
    SlaSpec,
    SshHostSpec,
    SweepPoint,
    VagrantSpec,
    WanOverride,
    WanSpec,
    WorkloadSpec,
)

if TYPE_CHECKING:
    import jsonschema  # ~50 ms to import: by the schema check, which a run may skip (parse)

# Host roles. "control" is the rest of a site's control plane (Placement, Glance, Nova
# api/conductor/scheduler, Neutron server + OVN, RabbitMQ); "compute" runs nova-compute.
ROLES = ("database", "keystone", "load", "control", "compute")

# The one table of scenario names users may write: name -> service type (Sample.service,
# a key of model.SERVICE_OF_TYPE). The scenarios themselves are registered in
# femdc_bench.workload.scenarios; a unit test keeps the two in step.
SCENARIO_SERVICE: dict[str, str] = {
    # identity
    "keystone.authenticate": "identity",
    "keystone.authenticate_and_validate_token": "identity",
    "keystone.create_and_delete_user": "identity",
    "keystone.create_and_list_projects": "identity",
    "keystone.list_users": "identity",
    "keystone.get_version": "identity",
    "KeystoneBasic.authenticate_user_and_validate_token": "identity",
    "KeystoneBasic.create_delete_user": "identity",
    "KeystoneBasic.create_and_list_tenants": "identity",
    "KeystoneBasic.create_and_list_users": "identity",
    "KeystoneBasic.create_user": "identity",
    **{f"KeystoneBasic.{n}": "identity" for n in (
        "create_tenant", "create_tenant_with_users", "create_update_and_delete_tenant",
        "create_and_update_user", "create_user_update_password",
        "create_user_set_enabled_and_delete", "create_and_delete_role",
        "create_and_get_role", "create_and_list_roles", "add_and_remove_user_role",
        "create_add_and_list_user_roles", "get_entities", "create_and_delete_service",
        "create_and_list_services")},
    "Authenticate.keystone": "identity",
    "Dummy.openstack": "identity",  # Rally's Dummy.dummy on an authenticated job
    # compute
    "NovaServers.boot_and_delete_server": "compute",
    "NovaServers.boot_and_list_server": "compute",
    "NovaServers.boot_server": "compute",
    "NovaFlavors.list_flavors": "compute",
    "NovaFlavors.create_and_delete_flavor": "compute",
    "Authenticate.validate_nova": "compute",
    # image
    "GlanceImages.create_and_delete_image": "image",
    "GlanceImages.create_and_list_image": "image",
    "GlanceImages.create_and_download_image": "image",
    "GlanceImages.list_images": "image",
    "GlanceImages.create_and_get_image": "image",
    "GlanceImages.create_and_update_image": "image",
    "GlanceImages.create_and_deactivate_image": "image",
    "Authenticate.validate_glance": "image",
    # network
    "NeutronNetworks.create_and_list_networks": "network",
    "NeutronNetworks.create_and_delete_networks": "network",
    "NeutronNetworks.create_and_list_ports": "network",
    "Authenticate.validate_neutron": "network",
    # placement
    "Placement.create_and_delete_resource_provider": "placement",
    "Placement.set_inventory_and_allocate": "placement",
    # plain HTTP (Rally's HttpRequests): no OpenStack service needed
    "HttpRequests.check_request": "http",
    "HttpRequests.check_random_request": "http",
    # Rally's Dummy scenarios: sleeps and failures, no service at all
    **{f"Dummy.{n}": "dummy" for n in (
        "dummy", "failure", "dummy_exception", "dummy_exception_probability",
        "dummy_random_action", "dummy_timed_atomic_actions", "dummy_random_fail_in_atomic")},
}
SCENARIOS = tuple(SCENARIO_SERVICE)


class ExperimentError(Exception):
    """A bad experiment file. str() is the one-line message users see."""

    def __init__(self, file: str, path: str, message: str) -> None:
        self.file, self.path, self.message = file, path, message
        where = f"{file}: {path}: " if path else f"{file}: "
        super().__init__(where + message)


# --------------------------------------------------------------------------- units

_DURATION = r"^[0-9]+(\.[0-9]+)?(us|ms|s)$"
_RATE = r"^[0-9]+(\.[0-9]+)?([kmgKMG]?bit)$"
_PERCENT = r"^[0-9]+(\.[0-9]+)?%$"
_NAME = r"^[a-z][a-z0-9-]*(\[[0-9]+-[0-9]+\][a-z0-9-]*)?$"

_DUR_FACTOR_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_RATE_FACTOR_KBIT = {"bit": 0.001, "kbit": 1.0, "mbit": 1000.0, "gbit": 1_000_000.0}


def duration_ms(text: str) -> float:
    m = re.match(r"^([0-9]+(?:\.[0-9]+)?)(us|ms|s)$", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * _DUR_FACTOR_MS[m.group(2)]


def rate_kbit(text: str) -> float:
    m = re.match(r"^([0-9]+(?:\.[0-9]+)?)([kmg]?bit)$", text.lower())
    if not m:
        raise ValueError(f"not a rate: {text!r}")
    return float(m.group(1)) * _RATE_FACTOR_KBIT[m.group(2)]


def percent(text: str) -> float:
    return float(text.rstrip("%"))


#: at most this many names from one range (`edge[1-1000]`), and hosts in an experiment
MAX_RANGE = 1000
MAX_HOSTS = 2000


def expand_range(name: str) -> list[str]:
    """``edge[1-3]`` -> edge1, edge2, edge3; ``n[01-10]`` keeps the zero padding.

    ValueError for a range of more than MAX_RANGE names or an empty one."""
    m = re.match(r"^(.*)\[([0-9]+)-([0-9]+)\](.*)$", name)
    if not m:
        return [name]
    prefix, lo, hi, suffix = m.groups()
    n = int(hi) - int(lo) + 1
    if n > MAX_RANGE:
        raise ValueError(f"range {name!r} names {n} items; at most {MAX_RANGE}")
    if n < 1:
        raise ValueError(f"range {name!r} is empty (its end is before its start)")
    width = len(lo) if lo.startswith("0") else 0
    return [f"{prefix}{i:0{width}d}{suffix}" for i in range(int(lo), int(hi) + 1)]


# --------------------------------------------------------------------------- schema


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
PROVIDERS = ("local", "static", "g5k", "vagrant", "chameleon")
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
                "method": {"enum": ["native", "devstack", "kolla"],
                           "x-expected": "one of native, devstack, kolla"},
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
                            "name": {"enum": list(SCENARIOS),
                                     "x-expected": "a scenario name (see README: Scenarios)"},
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


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _schema_error(file: str, err: jsonschema.ValidationError) -> ExperimentError:
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


def _best(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    # Report the error nearest to the top of the file, shallowest context first.
    def key(e: jsonschema.ValidationError) -> tuple[Any, ...]:
        return tuple(str(p) for p in e.absolute_path)

    return sorted(errors, key=key)[0]


# --------------------------------------------------------------------------- loading


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

        errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))
        if errors:
            raise _schema_error(file, _best(errors))
        if passed is not None and key is not None:
            _write_key(passed, key)
    return _build(doc, file, task_anywhere)


def schema_key(doc: Any) -> str:
    """What the schema check's result depends on: the schema and the document, as their
    repr (which tells a string from a number, a date or a boolean: YAML's safe types)."""
    text = f"{SCHEMA!r}\0{doc!r}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


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


def _build(doc: dict[str, Any], file: str, task_anywhere: bool = False) -> Experiment:
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
    provider = _provider(file, doc.get("provider", {"type": "local"}), sites)

    # --- deployment
    deployment = _deployment(file, doc["deployment"], names)
    _check_layout(file, doc, sites, host_paths, deployment)
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
        scenarios = _task_scenarios(file, wl, sources, targets, deployment, task_anywhere)
    for i, sc in enumerate(wl.get("scenarios", [])):
        base = f"workload.scenarios[{i}]"
        _check_deployed(file, f"{base}.name", sc["name"], deployment)
        r = sc["runner"]
        if r["type"] == "times" and "times" not in r:
            raise ExperimentError(file, f"{base}.runner.times",
                                  "missing required key (runner type 'times')")
        if r["type"] == "duration" and "duration" not in r:
            raise ExperimentError(file, f"{base}.runner.duration",
                                  "missing required key (runner type 'duration')")
        other = "duration" if r["type"] == "times" else "times"
        if other in r:
            raise ExperimentError(file, f"{base}.runner.{other}",
                                  f"not allowed with runner type {r['type']!r}")
        runner = RunnerSpec(
            type=r["type"], concurrency=r.get("concurrency", 1), times=r.get("times"),
            duration_s=duration_ms(r["duration"]) / 1000 if "duration" in r else None)
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


def _grafana(file: str, g: dict[str, Any], metrics: MetricsSpec, provider: ProviderSpec,
             aliases: list[str]) -> GrafanaSpec:
    if provider.type == "local":
        raise ExperimentError(file, "metrics.grafana", "expected a testbed provider (g5k, "
                              "vagrant, chameleon, static): Grafana runs in Docker on a "
                              "testbed host; for the local provider write the dashboards "
                              "with `femdc-bench grafana DIR` for a Grafana of your own")
    if g["host"] not in aliases:
        raise ExperimentError(file, "metrics.grafana.host", f"expected a host alias"
                              f"{_unknown(g['host'], aliases)}; hosts: {', '.join(aliases)}")
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
        if deployment.method != "native":
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


def _provider(file: str, p: dict[str, Any], sites: list[SiteSpec]) -> ProviderSpec:
    """provider.*: the checks the schema cannot make (hosts and sites of the experiment,
    addresses, dates). EnOSlib's own configuration classes check the rest offline
    (providers/testbeds.py, `up --dry-run`)."""
    names = [s.name for s in sites]
    hosts = [h for s in sites for h in s.hosts]
    aliases = [h.name for h in hosts]
    kind = p["type"]
    if kind == "local":
        if "subnet" in p:
            try:
                net = ipaddress.IPv4Network(p["subnet"])
            except ValueError:
                raise ExperimentError(file, "provider.subnet",
                                      f"expected an IPv4 network like '10.231.0.0/24', "
                                      f"got {p['subnet']!r}") from None
            if net.num_addresses - 3 < len(aliases):
                raise ExperimentError(file, "provider.subnet",
                                      f"{net} has room for {net.num_addresses - 3} hosts, "
                                      f"the experiment has {len(aliases)}")
        return ProviderSpec(type="local", subnet=p.get("subnet"))
    if kind == "static":
        return ProviderSpec(type="static", hosts=_static_hosts(file, p["hosts"], aliases))
    if kind == "g5k":
        return ProviderSpec(type="g5k", g5k=_g5k(file, p, names))
    flavours = _flavours(file, p.get("flavours", {"default": "medium"}), aliases)
    if kind == "vagrant":
        cidr = p.get("cidr", "192.168.42.0/24")
        try:
            net = ipaddress.IPv4Network(cidr)
        except ValueError:
            raise ExperimentError(file, "provider.cidr", "expected an IPv4 network like "
                                  f"'192.168.42.0/24', got {cidr!r}") from None
        # EnOSlib's Vagrant provider gives VMs the addresses of the network but its
        # first and last ten.
        if net.num_addresses - 20 < len(aliases):
            raise ExperimentError(file, "provider.cidr",
                                  f"{net} has room for {max(0, net.num_addresses - 20)} VMs "
                                  f"(EnOSlib leaves out its first and last 10 addresses), "
                                  f"the experiment has {len(aliases)}")
        return ProviderSpec(type="vagrant", vagrant=VagrantSpec(
            backend=p.get("backend", "libvirt"), box=p.get("box", "generic/debian12"),
            flavours=flavours, cidr=str(net)))
    # chameleon
    if p["kind"] == "kvm":
        for key in ("lease_name", "walltime"):
            if key in p:
                raise ExperimentError(file, f"provider.{key}", "only with kind 'baremetal' "
                                      "(KVM instances are not leased)")
    return ProviderSpec(type="chameleon", chameleon=ChameleonSpec(
        kind=p["kind"], image=p["image"], key_name=p["key_name"], flavours=flavours,
        rc_file=p.get("rc_file"), user=p.get("user", "cc"),
        lease_name=p.get("lease_name", "femdc-bench"), walltime=p.get("walltime", "02:00:00")))


def _unknown(value: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(value, known, n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _static_hosts(file: str, d: dict[str, Any], aliases: list[str]) -> tuple[SshHostSpec, ...]:
    for alias in d:
        if alias not in aliases:
            raise ExperimentError(
                file, f"provider.hosts.{alias}", f"not a host of the experiment"
                f"{_unknown(alias, aliases)}; hosts: {', '.join(aliases)}")
    missing = [a for a in aliases if a not in d]
    if missing:
        raise ExperimentError(
            file, "provider.hosts", f"no entry for {', '.join(missing)}: every host of the "
            "experiment needs its address (keys are aliases '<site>-<host>')")
    out, seen = [], {}
    for alias in aliases:  # in the experiment's order
        h = d[alias]
        where = f"provider.hosts.{alias}"
        try:
            address = str(ipaddress.ip_address(h["address"]))
        except ValueError:
            raise ExperimentError(
                file, f"{where}.address", "expected an IP address (services bind to it and "
                f"the WAN rules match it), got {h['address']!r}") from None
        if address in seen:
            raise ExperimentError(file, f"{where}.address", f"{address} is also "
                                  f"{seen[address]}'s: every host needs its own address")
        seen[address] = alias
        key = h.get("key")
        if key is not None and ("\n" in key or "PRIVATE KEY" in key):
            raise ExperimentError(file, f"{where}.key", "expected the path of a private key "
                                  "file, not the key itself")
        out.append(SshHostSpec(alias=alias, address=address, user=h.get("user", "root"),
                               port=h.get("port", 22), key=key,
                               device=h.get("device", "eth0")))
    return tuple(out)


def _g5k(file: str, p: dict[str, Any], names: list[str]) -> G5kSpec:
    import datetime

    if "reservation" in p:
        try:
            datetime.datetime.strptime(p["reservation"], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise ExperimentError(file, "provider.reservation", "expected a real date like "
                                  f"'2026-12-24 19:00:00', got {p['reservation']!r}") from None
    placement: dict[str, tuple[str, str]] = {}
    for pattern, where in p["clusters"].items():
        g5k_site, cluster = (where.split("/") if isinstance(where, str)
                             else (where["site"], where["cluster"]))
        try:
            matched = [n for c in expand_range(pattern) for n in fnmatch.filter(names, c)]
        except ValueError as e:
            raise ExperimentError(file, f"provider.clusters.{pattern}", str(e)) from None
        if not matched:
            raise ExperimentError(file, f"provider.clusters.{pattern}", "matches no site"
                                  f"{_unknown(pattern, names)}; sites: {', '.join(names)}")
        for n in matched:
            placement.setdefault(n, (g5k_site, cluster))  # the first key that names it
    missing = [n for n in names if n not in placement]
    if missing:
        raise ExperimentError(file, "provider.clusters", f"no cluster for site(s) "
                              f"{', '.join(missing)} (keys are site names or patterns "
                              "like 'edge*')")
    return G5kSpec(job_name=p.get("job_name", "femdc-bench"), walltime=p["walltime"],
                   placement=tuple((n, *placement[n]) for n in names),
                   queue=p.get("queue", "default"), reservation=p.get("reservation"),
                   env_name=p.get("env_name"))


def _flavours(file: str, d: dict[str, Any], aliases: list[str]) -> tuple[tuple[str, str], ...]:
    known = ["default", *ROLES, *aliases]
    for key in d:
        if key not in known:
            raise ExperimentError(
                file, f"provider.flavours.{key}", f"expected 'default', a role ("
                f"{', '.join(ROLES)}) or a host alias{_unknown(key, known)}")
    return tuple(d.items())


def _deployment(file: str, d: dict[str, Any], names: list[str]) -> DeploymentSpec:
    def site(path: str, value: str) -> str:
        if value not in names:
            hint = difflib.get_close_matches(value, names, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ExperimentError(file, path, f"expected one of the sites ({', '.join(names)}), "
                                  f"got {value!r}{extra}")
        return value

    ks, ctl, db = d["keystone"], d.get("control"), d.get("database", "per_site")
    method, release = d["method"], d.get("release")
    if method == "native" and release is not None:
        raise ExperimentError(file, "deployment.release", "not used by method native (its "
                              "versions come from playbooks/native/files/openstack.lock)")
    if d.get("tls") and method != "native":
        raise ExperimentError(file, "deployment.tls", f"supported by method native only, got "
                              f"{method!r} (DevStack's tls-proxy and Kolla's "
                              f"kolla_enable_tls_* are not wired yet)")
    if "devstack" in d and method != "devstack":
        raise ExperimentError(file, "deployment.devstack",
                              f"only with deployment.method devstack, got {method!r}")
    if method != "kolla" and "kolla" in d:
        raise ExperimentError(file, "deployment.kolla", "only with method 'kolla'")
    kolla = None
    if method == "kolla":
        kolla = _kolla(file, d, names)
    devstack = None
    if method == "devstack":
        if "release" not in d:
            raise ExperimentError(file, "deployment.release", "missing required key: method "
                                  "devstack deploys one OpenStack release, e.g. '2025.1'")
        if "keystone_workers" in d:
            raise ExperimentError(file, "deployment.keystone_workers", "not used by method "
                                  "devstack: DevStack runs every API, Keystone's too, with "
                                  "API_WORKERS processes (deployment.api_workers)")
        ds = d.get("devstack", {})
        extra = ds.get("extra_localrc", {})
        for var, value in extra.items():
            where = f"deployment.devstack.extra_localrc.{var}"
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", var):
                raise ExperimentError(file, where, "expected a variable name of upper-case "
                                      "letters, digits and '_' (like GIT_BASE)")
            if var in DEVSTACK_MANAGED_VARS:
                raise ExperimentError(file, where, "set by femdc-bench from the layout, the "
                                      "hosts and the run's secrets; not settable here")
            if any(c in value for c in "\n\r\0"):
                raise ExperimentError(file, where, "expected a value on one line")
        devstack = DevstackSpec(ref=ds.get("ref", f"stable/{d['release']}"),
                                repo=ds.get("repo", DEVSTACK_REPO),
                                stack_user=ds.get("stack_user", "stack"),
                                extra_localrc=dict(extra))
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
        release=release,
        devstack=devstack,
        kolla=kolla,
    )


def _kolla(file: str, d: dict[str, Any], names: list[str]) -> KollaSpec:
    """`deployment.release` and `deployment.kolla` of method kolla."""
    release = d.get("release")
    if release is None:
        raise ExperimentError(file, "deployment.release", "missing required key (method "
                              "'kolla' deploys a release, e.g. "
                              f"{list(KOLLA_VERSIONS)[-1]!r})")
    if release not in KOLLA_VERSIONS:
        raise ExperimentError(file, "deployment.release", "expected a release kolla-ansible "
                              f"is pinned for ({', '.join(KOLLA_VERSIONS)}), got {release!r}")
    if "kolla" not in d:
        raise ExperimentError(file, "deployment.kolla", "missing required key (method "
                              "'kolla' needs at least network_interface)")
    k = d["kolla"]
    default = KOLLA_VERSIONS[release]
    version = k.get("version", default)
    if version.split(".")[0] != default.split(".")[0]:
        raise ExperimentError(file, "deployment.kolla.version", f"kolla-ansible {version} "
                              f"does not deploy {release}: expected {default.split('.')[0]}.x "
                              f"(default {default})")
    vips: dict[str, str] = {}
    for site, address in k.get("internal_vip", {}).items():
        where = f"deployment.kolla.internal_vip.{site}"
        if site not in names:
            raise ExperimentError(file, where, f"expected one of the sites ({', '.join(names)})"
                                  f", got {site!r}")
        try:
            vips[site] = str(ipaddress.ip_address(address))
        except ValueError:
            raise ExperimentError(file, where, f"expected an IP address, got {address!r}"
                                  ) from None
        if list(vips.values()).count(vips[site]) > 1:
            raise ExperimentError(file, where, f"{address} is the VIP of another region too")
    for key in k.get("globals", {}):
        if key in KOLLA_CONTROLLED_GLOBALS or str(key).startswith("ansible_"):
            raise ExperimentError(file, f"deployment.kolla.globals.{key}", "set by femdc-bench "
                                  "from the experiment (layout, regions, interfaces, "
                                  "deployment.kolla); remove it here")
    return KollaSpec(version=version, network_interface=k["network_interface"],
                     neutron_external_interface=k.get("neutron_external_interface"),
                     internal_vip=vips, registry=k.get("registry"),
                     base_distro=k.get("base_distro", "debian"),
                     horizon=bool(k.get("horizon", False)), globals=dict(k.get("globals", {})))


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
                       f"{_ks_text(deployment)})")
            else:
                why = (f"is not a region (deployment.control is "
                       f"{_ctl_text(deployment)})")
            raise ExperimentError(file, f"{base}.to", f"site {t!r} {why}; targets: "
                                  f"{', '.join(regions)} or 'local'")
    return sources, targets


def _check_deployed(file: str, path: str, scenario: str, deployment: DeploymentSpec) -> None:
    """The service `scenario` loads is deployed (HttpRequests need none)."""
    service = SERVICE_OF_TYPE.get(SCENARIO_SERVICE[scenario])
    if service is not None and service not in deployment.services:
        raise ExperimentError(file, path, f"{scenario} needs {service}: set "
                              "deployment.control (per_site or {centralized: <site>})")


def _task_scenarios(file: str, wl: dict[str, Any], sources: tuple[str, ...],
                    targets: tuple[str, ...] | None, deployment: DeploymentSpec,
                    task_anywhere: bool = False) -> list[ScenarioSpec]:
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
        _check_deployed(task.file, w.path, w.scenario, deployment)
        out.append(ScenarioSpec(name=w.scenario, runner=w.runner, args=dict(w.args),
                                sources=sources, targets=targets,
                                workload=f"{path.name}:{w.path}", sla=w.sla,
                                contexts=dict(w.contexts)))
    return out


def _check_layout(file: str, doc: dict[str, Any], sites: list[SiteSpec],
                  host_paths: dict[str, str], dep: DeploymentSpec) -> None:
    """Which hosts each site needs for where deployment puts Keystone, the control plane
    and the database; the first mismatch is raised."""
    names = [s.name for s in sites]
    index = {n: i for i, s in enumerate(doc["sites"]) for n in expand_range(s["name"])}
    ks_sites, ctl_sites = set(dep.keystone_sites(names)), set(dep.control_sites(names))
    if dep.method == "devstack":
        _check_devstack_deployment(file, dep)
    if dep.method == "kolla":
        _kolla_layout(file, dep)
    if dep.control == "centralized" and (dep.keystone != "centralized"
                                         or dep.keystone_site != dep.control_site):
        raise ExperimentError(
            file, "deployment.control", f"{_ctl_text(dep)} needs deployment.keystone "
            f"{{centralized: {dep.control_site}}} (the control plane and its Keystone share a "
            f"site), got deployment.keystone {_ks_text(dep)}")
    for s in sites:
        where = f"sites[{index[s.name]}].hosts"

        def count(role: str, s: SiteSpec = s) -> int:
            return len(s.hosts_with(role))

        # Keystone
        if s.name in ks_sites:
            if count("keystone") != 1:
                raise ExperimentError(
                    file, where, f"site {s.name!r} runs a Keystone "
                    f"(deployment.keystone is {_ks_text(dep)}): expected exactly one "
                    f"host with role 'keystone', found {count('keystone')}")
        elif count("keystone"):
            raise ExperimentError(
                file, where, f"site {s.name!r} has a 'keystone' host but deployment.keystone "
                f"is {_ks_text(dep)}")
        # the rest of the control plane, and computes
        if dep.control is None:
            for h in s.hosts:
                for role in ("control", "compute"):
                    if role in h.roles:
                        raise ExperimentError(
                            file, f"{host_paths[h.name]}.roles",
                            f"role {role!r} needs deployment.control (per_site or "
                            "{centralized: <site>}); without it only Keystone is deployed")
        elif s.name in ctl_sites:
            if count("control") != 1:
                raise ExperimentError(
                    file, where, f"site {s.name!r} runs a control plane "
                    f"(deployment.control is {_ctl_text(dep)}): expected exactly one host "
                    f"with role 'control', found {count('control')}")
        elif count("control"):
            raise ExperimentError(
                file, where, f"site {s.name!r} has a 'control' host but deployment.control "
                f"is {_ctl_text(dep)}")
        # the database
        n_db = count("database")
        runs = " and ".join(x for x, on in (("a Keystone", s.name in ks_sites),
                                            ("a control plane", s.name in ctl_sites)) if on)
        if dep.database == "central":
            if s.name == dep.database_site:
                if n_db != 1:
                    raise ExperimentError(
                        file, where, f"site {s.name!r} holds the central database "
                        f"(deployment.database is {_db_text(dep)}): expected exactly one host "
                        f"with role 'database', found {n_db}")
            elif n_db:
                raise ExperimentError(
                    file, where, f"role 'database' is not used at site {s.name!r}: "
                    f"deployment.database is {_db_text(dep)}")
        elif runs:
            if n_db != 1:
                kind = "a per-site database" if dep.database == "per_site" else \
                    "a Galera database (each site uses its own node)"
                raise ExperimentError(
                    file, where, f"site {s.name!r} runs {runs} with {kind}: expected exactly "
                    f"one host with role 'database', found {n_db}")
        elif n_db and dep.database == "per_site":
            raise ExperimentError(
                file, where, f"role 'database' is not used at site {s.name!r}: it runs no "
                "Keystone and no control plane (deployment.database is per_site)")
    if dep.control and not any(s.hosts_with("compute") for s in sites):
        raise ExperimentError(
            file, "sites", f"deployment.control is {_ctl_text(dep)} but no host has role "
            "'compute': Nova would have no compute node")
    if dep.control:
        served = {dep.region_for(s.name) for s in sites if s.hosts_with("compute")}
        for region in dep.control_sites([s.name for s in sites]):
            if region not in served:
                raise ExperimentError(
                    file, f"sites[{index[region]}].hosts",
                    f"region {region!r} has no host with role 'compute' (deployment.control "
                    f"is {_ctl_text(dep)}): its Nova would have no compute node")
    if dep.database == "galera":
        n_db = sum(len(s.hosts_with("database")) for s in sites)
        if n_db < 2:
            raise ExperimentError(
                file, "deployment.database", "galera needs at least 2 hosts with role "
                f"'database' (a 1-node cluster is not a cluster), found {n_db}")
    if dep.method == "devstack":
        _check_devstack_hosts(file, sites, index)
    if dep.method == "kolla":
        _kolla_hosts(file, sites, index, dep)


DEVSTACK_LAYOUTS = ("DevStack supports central control (keystone and control {centralized: "
                    "<site>}) and region per site (keystone {centralized: <site>}, control "
                    "per_site), database per_site")


def _check_devstack_deployment(file: str, dep: DeploymentSpec) -> None:
    """What deployment.method devstack can deploy: the regions share one Keystone
    (KEYSTONE_SERVICE_HOST), each runs its own control plane and MySQL."""
    if dep.keystone != "centralized":
        raise ExperimentError(file, "deployment.keystone", "per_site is not supported by "
                              f"deployment.method devstack; {DEVSTACK_LAYOUTS}")
    if dep.control is None:
        raise ExperimentError(file, "deployment.control", "missing: a Keystone-only layout "
                              f"is not supported by deployment.method devstack; "
                              f"{DEVSTACK_LAYOUTS}")
    if dep.database == "galera" or (dep.database == "central" and not (
            dep.control == "centralized" and dep.database_site == dep.control_site)):
        raise ExperimentError(file, "deployment.database", f"{_db_text(dep)} is not supported "
                              "by deployment.method devstack (MySQL runs on each region's "
                              f"controller host); {DEVSTACK_LAYOUTS}")


def _check_devstack_hosts(file: str, sites: list[SiteSpec], index: dict[str, int]) -> None:
    """DevStack runs a region's Keystone, MySQL, RabbitMQ and APIs on one controller
    host (its SERVICE_HOST)."""
    for s in sites:
        controllers = s.hosts_with("control")
        if not controllers:
            continue
        ctl = controllers[0]
        for role in ("keystone", "database"):
            other = next((h for h in s.hosts_with(role) if h is not ctl), None)
            if other is not None:
                raise ExperimentError(
                    file, f"sites[{index[s.name]}].hosts", f"deployment.method devstack runs "
                    f"a region's Keystone, MySQL and control plane on one host: role {role!r} "
                    f"must be on {ctl.name!r} (the site's 'control' host), not on "
                    f"{other.name!r}")


KOLLA_LAYOUTS = ("method 'kolla' deploys two layouts: central control (keystone and control "
                 "{centralized: X}) or one region per site with a shared Keystone (keystone "
                 "{centralized: X}, control per_site), both with database per_site")


def _kolla_layout(file: str, dep: DeploymentSpec) -> None:
    if dep.keystone != "centralized":
        raise ExperimentError(file, "deployment.keystone",
                              f"{KOLLA_LAYOUTS}; got keystone {_ks_text(dep)}")
    if dep.control is None:
        raise ExperimentError(file, "deployment.control",
                              f"{KOLLA_LAYOUTS}; got no control (Keystone only)")
    if dep.database != "per_site":
        raise ExperimentError(file, "deployment.database",
                              f"{KOLLA_LAYOUTS}; got database {_db_text(dep)}")


def _kolla_hosts(file: str, sites: list[SiteSpec], index: dict[str, int],
                 dep: DeploymentSpec) -> None:
    """Kolla runs a region's database, its Keystone and the rest of its control plane on
    the hosts of its `control` group: here, the region's one control host."""
    assert dep.kolla is not None
    regions = dep.control_sites([s.name for s in sites])
    for s in sites:
        if s.name not in regions:
            continue
        ctl = s.hosts_with("control")[0]
        need = ("database", "keystone", "control") if s.name == dep.keystone_site else (
            "database", "control")
        for role in need:
            others = [h.name for h in s.hosts_with(role) if h is not ctl]
            if others:
                raise ExperimentError(
                    file, f"sites[{index[s.name]}].hosts", "method 'kolla' runs a region's "
                    f"{', '.join(need[:-1])} and control plane on one host (kolla's control "
                    f"group): give {ctl.name!r} the roles {', '.join(need)}; {others[0]!r} "
                    f"has role {role!r}")
    for site in dep.kolla.internal_vip:
        if site not in regions:
            raise ExperimentError(
                file, f"deployment.kolla.internal_vip.{site}", f"site {site!r} is not a "
                f"region (regions: {', '.join(regions)})")
    if len(regions) > 200:
        raise ExperimentError(file, "sites", f"method 'kolla' deploys at most 200 regions "
                              f"(keepalived router ids), got {len(regions)}")


def _ks_text(d: DeploymentSpec) -> str:
    return f"{{centralized: {d.keystone_site}}}" if d.keystone == "centralized" else "per_site"


def _ctl_text(d: DeploymentSpec) -> str:
    return f"{{centralized: {d.control_site}}}" if d.control == "centralized" else str(d.control)


def _db_text(d: DeploymentSpec) -> str:
    return f"{{central: {d.database_site}}}" if d.database == "central" else d.database

