"""Small helpers shared by the scenario modules (no timing here: the runner times)."""

from __future__ import annotations

import random
import re
from typing import Any

from keystoneauth1 import adapter as ks_adapter

from femdc_bench.workload.context import Ctx, JobContext, SetupError
from femdc_bench.workload.services import RepeatedBytes  # noqa: F401  (the scenarios' name)

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
WAIT_ARGS: dict[str, Any] = {"poll_interval": 0.5, "timeout": 120.0}


class ScenarioFailed(RuntimeError):
    """The cloud answered, but not what the scenario checks (e.g. a created item not listed)."""


def teardown_tracked(job: JobContext) -> list[str]:
    """Delete every resource the job tracked; return the failures."""
    return job.delete_tracked()


def is_uuid(value: str) -> bool:
    return bool(UUID.fullmatch(value))


def random_cidr(prefix: int = 24) -> str:
    """A random 10.x.y.0/24 (or 10.x.0.0/16): overlapping CIDRs are fine in Neutron."""
    if prefix == 16:
        return f"10.{random.randrange(256)}.0.0/16"
    return f"10.{random.randrange(256)}.{random.randrange(256)}.0/24"


def wait_args(args: dict[str, Any]) -> tuple[float, float]:
    """(poll_interval, timeout) from the scenario args, checked."""
    poll, timeout = float(args["poll_interval"]), float(args["timeout"])
    if poll <= 0 or timeout <= 0:
        raise ValueError("poll_interval and timeout must be > 0")
    return poll, timeout


def pages(
    api: ks_adapter.Adapter,
    path: str,
    key: str,
    params: dict[str, Any] | None = None,
    *,
    strip_prefix: str = "",
) -> list[dict[str, Any]]:
    """Every item of a listing, following its "next" links (Nova ``<key>_links``,
    Glance ``next``). `strip_prefix` removes a version prefix Glance puts in its links."""
    body = api.get(path, params=params).json()
    items: list[dict[str, Any]] = list(body[key])
    while True:
        nxt = body.get("next")
        for link in body.get(f"{key}_links", ()):
            if link.get("rel") == "next":
                nxt = link.get("href")
        if not nxt:
            return items
        if strip_prefix and nxt.startswith(strip_prefix):
            nxt = nxt[len(strip_prefix) :]
        body = api.get(nxt).json()
        items.extend(body[key])


# --------------------------------------------------------------------------- Rally's resource args

RESOURCE_KEYS = frozenset({"id", "name", "regex", "accurate"})


def check_resource_arg(key: str, value: Any) -> None:
    """A resource argument as Rally takes it: null, a name or id, or {id}, {name[,
    accurate]} or {regex}; ValueError naming the arg otherwise."""
    if value is None or (isinstance(value, str) and value):
        return
    if not isinstance(value, dict) or not value:
        raise ValueError(f"arg {key!r}: expected a name, an id, {{id}}, {{name}} or {{regex}}")
    unknown = set(value) - RESOURCE_KEYS
    if unknown:
        raise ValueError(f"arg {key!r}: unsupported key(s) {', '.join(sorted(unknown))} "
                         f"(accepted: {', '.join(sorted(RESOURCE_KEYS))})")
    given = [k for k in ("id", "name", "regex") if k in value]
    if len(given) != 1 or not isinstance(value[given[0]], str) or not value[given[0]]:
        raise ValueError(f"arg {key!r}: expected exactly one of id, name, regex (a string)")
    if given[0] == "regex" or (given[0] == "name" and not value.get("accurate")):
        try:
            re.compile(value[given[0]])
        except re.error as e:
            raise ValueError(f"arg {key!r}: bad regular expression: {e}") from None


def match_resource(key: str, spec: Any, resources: list[dict[str, Any]]) -> str:
    """The id `spec` designates among `resources` ({"id", "name", "created_at"?}), with
    Rally's rules: an id as is (if present); a name that matches exactly one resource; or
    else (unless `accurate`) the name, like `regex`, searched as a regular expression,
    the newest match winning. LookupError when nothing matches or a name is ambiguous."""
    if isinstance(spec, str):
        spec = {"id": spec} if any(r.get("id") == spec for r in resources) else {"name": spec,
                                                                                 "accurate": True}
    if "id" in spec:
        if not any(r.get("id") == spec["id"] for r in resources):
            raise LookupError(f"{key} {spec['id']!r} not found")
        return str(spec["id"])
    if "name" in spec:
        exact = [r for r in resources if r.get("name") == spec["name"]]
        if len(exact) == 1:
            return str(exact[0]["id"])
        if len(exact) > 1:
            raise LookupError(f"{key} name {spec['name']!r} is ambiguous: "
                              f"{', '.join(str(r['id']) for r in exact)}")
        if spec.get("accurate"):
            raise LookupError(f"{key} {spec['name']!r} not found")
        pattern = spec["name"]
    else:
        pattern = spec["regex"]
    rx = re.compile(pattern)
    found = [r for r in resources if rx.search(r.get("name") or "")]
    if not found:
        raise LookupError(f"no {key} matching {pattern!r}")
    return str(max(found, key=lambda r: r.get("created_at") or "")["id"])


def has_context_networks(job: JobContext) -> bool:
    """Rally's network context made networks for the job's users."""
    return job.users is not None and bool(job.users.networks)


def network_for(ctx: Ctx) -> str:
    """The network a server or port of this iteration goes on: setup's (or the named
    one), else one of the network context's in the iteration's user's project."""
    net = ctx.shared.get("net_id")
    if net is None:
        users = ctx.job_context.users
        net = users.network_of(getattr(ctx, "user", None)) if users is not None else None
    if net is None:
        raise SetupError("no network: the network context made none for this user")
    return str(net)
