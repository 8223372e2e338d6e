"""Rally's `users` and `roles` contexts: made by the agent before a job's load, untimed,
and deleted after it with everything else the job tracked.

    users: {tenants: 2, users_per_tenant: 3, user_choice_method: round_robin}
    roles: [reader]

`users` creates `tenants` projects (named with the job's prefix, in the admin's project
domain), `users_per_tenant` users in each (random passwords, or `user_password`) with
the role "member" on their project, as rally-openstack does, and authenticates each one
once. Each iteration then runs as one of them (`ContextUsers.pick`): `random` (Rally's
default) or `round_robin` (iteration i: project i mod T in id order, its user (i div T)
mod U, Rally's formula). The scenario's compute, image, network and placement requests
carry that user's token; identity requests stay the admin's (Rally's Keystone scenarios
use admin clients) and a scenario reads the user as ``ctx.user``.

`roles` gives each context user these existing roles on its project (a missing role
fails the job's setup). Deleting the users and projects removes the assignments.

`resource_management_workers` and `user_domain`/`project_domain` other than the
admin's are accepted by the validation for Rally files and reported: the domains must
be the admin's ("default"), the workers have no effect (creation is sequential).

Imports the standard library and keystoneauth1 (hosts only at run time).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUPPORTED = ("users", "roles")
CHOICE_METHODS = ("random", "round_robin")
USERS_KEYS = frozenset({"tenants", "users_per_tenant", "user_password",
                        "resource_management_workers", "project_domain", "user_domain",
                        "user_choice_method"})
DEFAULT_ROLE = "member"


class ContextError(ValueError):
    """A context's configuration is not valid: `path` (below the context) and message."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def validate(contexts: Mapping[str, Any]) -> dict[str, Any]:
    """The contexts in normal form (defaults filled); ContextError names the bad key
    relative to the contexts section, e.g. ``users.tenants``."""
    out: dict[str, Any] = {}
    for name, cfg in contexts.items():
        if name == "users":
            if not isinstance(cfg, dict):
                raise ContextError("users", "expected a mapping")
            for k in cfg:
                if k not in USERS_KEYS:
                    raise ContextError(f"users.{k}", "unsupported option (accepted: "
                                       f"{', '.join(sorted(USERS_KEYS))})")
            u: dict[str, Any] = {}
            for k in ("tenants", "users_per_tenant", "resource_management_workers"):
                v = cfg.get(k, 1)
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise ContextError(f"users.{k}", f"expected an integer >= 1, got {v!r}")
                u[k] = v
            method = cfg.get("user_choice_method", "random")
            if method not in CHOICE_METHODS:
                raise ContextError("users.user_choice_method",
                                   f"expected one of {', '.join(CHOICE_METHODS)}")
            u["user_choice_method"] = method
            for k in ("project_domain", "user_domain"):
                v = cfg.get(k, "default")
                if not isinstance(v, str) or v.lower() != "default":
                    raise ContextError(f"users.{k}", "unsupported: context users are made "
                                       "in the admin's domain ('default')")
            if "user_password" in cfg:
                if not isinstance(cfg["user_password"], str) or not cfg["user_password"]:
                    raise ContextError("users.user_password", "expected a non-empty string")
                u["user_password"] = cfg["user_password"]
            out["users"] = u
        elif name == "roles":
            if not isinstance(cfg, list) or not all(isinstance(r, str) and r for r in cfg):
                raise ContextError("roles", "expected a list of role names")
            out["roles"] = list(cfg)
        else:
            raise ContextError(str(name), "unsupported context")
    if "roles" in out and "users" not in out:
        raise ContextError("roles", "needs the users context (roles are given to its users)")
    return out


@dataclass(frozen=True)
class ContextUser:
    id: str
    name: str
    project_id: str
    password: str = field(repr=False)
    auth: Any = field(repr=False, compare=False, default=None)  # keystoneauth1 plugin


@dataclass
class ContextUsers:
    """The users of the `users` context, by project (in project id order)."""

    by_project: dict[str, list[ContextUser]]
    method: str = "random"
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def all(self) -> list[ContextUser]:
        return [u for p in sorted(self.by_project) for u in self.by_project[p]]

    def pick(self, iteration: int) -> ContextUser:
        """The user iteration `iteration` (from 0) runs as."""
        if self.method == "random":
            return self._rng.choice(self.all)
        projects = sorted(self.by_project)
        users = self.by_project[projects[iteration % len(projects)]]
        return users[(iteration // len(projects)) % len(users)]


def setup(jc: Any, contexts: Mapping[str, Any]) -> ContextUsers | None:
    """Create what `contexts` asks (tracked on the job context `jc`: deleted with the
    job's other resources); the context users, or None without a users context."""
    cfg = contexts.get("users")
    if not cfg:
        return None
    from keystoneauth1.identity import v3

    from femdc_bench.workload.context import SetupError

    admin = jc.admin()
    role_ids = {}
    for name in [DEFAULT_ROLE, *contexts.get("roles", [])]:
        found = admin.get("/roles", params={"name": name}).json()["roles"]
        if not found:
            raise SetupError(f"role {name!r} not found"
                             + (" (roles context)" if name != DEFAULT_ROLE else ""))
        role_ids[name] = found[0]["id"]
    by_project: dict[str, list[ContextUser]] = {}
    for _ in range(cfg["tenants"]):
        project = admin.post("/projects", json={"project": {
            "name": jc.new_name(), "domain_id": jc.project_domain_id}}).json()["project"]
        jc.track("/projects", project["id"])
        users = by_project.setdefault(project["id"], [])
        for _ in range(cfg["users_per_tenant"]):
            password = cfg.get("user_password") or secrets.token_urlsafe(24)
            user = admin.post("/users", json={"user": {
                "name": jc.new_name(), "domain_id": jc.user_domain_id, "password": password,
                "default_project_id": project["id"]}}).json()["user"]
            jc.track("/users", user["id"])
            for rid in role_ids.values():
                admin.put(f"/projects/{project['id']}/users/{user['id']}/roles/{rid}")
            auth = v3.Password(auth_url=jc.job.auth.auth_url, user_id=user["id"],
                               password=password, project_id=project["id"])
            auth.get_access(jc.session)  # once, untimed: later requests reuse the token
            users.append(ContextUser(user["id"], user["name"], project["id"], password, auth))
    return ContextUsers(by_project, cfg["user_choice_method"])
