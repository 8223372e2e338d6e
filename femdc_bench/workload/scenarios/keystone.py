"""Keystone (identity v3) scenarios: raw REST through keystoneauth1 Adapters.

Each iteration makes exactly the requests named below, no discovery, no re-auth, no
client-library lookups. Paths are relative to the identity v3 endpoint (".../v3").

=========================================== ==============================================
name                                        one iteration
=========================================== ==============================================
keystone.authenticate_and_validate_token    POST /auth/tokens (password, as the bench user),
                                            GET /auth/tokens (X-Subject-Token, admin token)
keystone.authenticate                       POST /auth/tokens
keystone.create_and_delete_user             POST /users, DELETE /users/{id}
keystone.create_and_list_projects           POST /projects, GET /projects (projects deleted
                                            at teardown)
keystone.list_users                         GET /users
keystone.get_version                        GET /v3 (unauthenticated version document)
=========================================== ==============================================

Rally's names (KeystoneBasic.*) time each request as an atomic action, as Rally does:

=============================================== ===========================================
name                                            one iteration (atomic actions)
=============================================== ===========================================
KeystoneBasic.authenticate_user_and_validate_token keystone.authenticate_user: POST
                                                /auth/tokens; keystone.validate_token: GET
                                                /auth/tokens (as the admin by default, as
                                                Rally: ``use_admin`` true)
KeystoneBasic.create_user                       keystone.create_user: POST /users (with a
                                                random password); deleted at teardown
KeystoneBasic.create_delete_user                keystone.create_user, keystone.delete_user
KeystoneBasic.create_and_list_users             keystone.create_user, keystone.list_users:
                                                GET /users; users deleted at teardown
KeystoneBasic.create_and_list_tenants           keystone.create_project: POST /projects,
                                                keystone.list_projects: GET /projects;
                                                projects deleted at teardown
=============================================== ===========================================

The keystone.* scenarios above time the iteration only (no atomic actions): their
samples are as before. Rally's create_user also looks the domain up (GET /domains) in
the same atomic action; ours uses the admin's domain id, known from its token.

Arguments (defaults in the decorators; Rally's names take the same, ``password``
defaulting to true):
- authenticate*: ``use_admin`` (authenticate as the spec's admin instead of a user made
  by setup: a project, a user with a random password and ``role`` on that project),
  ``nocatalog`` (ask tokens without catalog), ``role`` (default "member").
- create_and_delete_user: ``password`` (set a random password: the server hashes it).
Untimed setup/teardown create and delete the bench user/project and anything left over.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from keystoneauth1 import adapter as ks_adapter

from femdc_bench.workload.context import JobContext, SetupError, WorkerContext
from femdc_bench.workload.registry import scenario
from femdc_bench.workload.scenarios.common import teardown_tracked

SERVICE = "identity"
AUTH_ARGS: dict[str, Any] = {"use_admin": False, "nocatalog": False, "role": "member"}


# --------------------------------------------------------------------------- setup/teardown


def setup_auth_user(job: JobContext) -> None:
    """Make the credentials iterations authenticate with (job.shared["auth_body"])."""
    if job.args["use_admin"]:
        a = job.job.auth
        job.shared["auth_body"] = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": a.username,
                            "domain": {"name": a.user_domain_name},
                            "password": a.password,
                        }
                    },
                },
                "scope": {
                    "project": {"name": a.project_name, "domain": {"name": a.project_domain_name}}
                },
            }
        }
        job.admin().post("/auth/tokens", json=job.shared["auth_body"], authenticated=False)
        return
    # The role, the project and the user are asked for at once, each on its own
    # connection (one round trip instead of three; over a WAN, that is the setup's
    # cost). The user has no default project: its tokens are scoped explicitly.
    role_name = job.args["role"]
    password = secrets.token_urlsafe(24)
    calls: dict[str, Callable[[ks_adapter.Adapter], Any]] = {
        "roles": lambda a: a.get("/roles", params={"name": role_name}).json()["roles"],
        "project": lambda a: a.post("/projects", json={"project": {
            "name": job.new_name(), "domain_id": job.project_domain_id}}).json()["project"],
        "user": lambda a: a.post("/users", json={"user": {
            "name": job.new_name(), "domain_id": job.user_domain_id,
            "password": password}}).json()["user"],
    }
    adapters = {k: job.adapter(job.new_session()) for k in calls}
    with ThreadPoolExecutor(len(calls)) as ex:
        futures = {k: ex.submit(f, adapters[k]) for k, f in calls.items()}
    got: dict[str, Any] = {}
    for k, fut in futures.items():
        with contextlib.suppress(Exception):  # raised below, after what exists is tracked
            got[k] = fut.result()
    for k, collection in (("project", "/projects"), ("user", "/users")):
        if k in got:
            job.track(collection, got[k]["id"])
    for fut in futures.values():
        fut.result()  # the first failure, if any
    roles, project, user = got["roles"], got["project"], got["user"]
    if not roles:
        raise SetupError(f"role {role_name!r} not found")
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": user["id"], "password": password}},
            },
            "scope": {"project": {"id": project["id"]}},
        }
    }
    # The role is given while the user authenticates once, untimed and unscoped (it
    # needs no role): that checks the credentials, and Keystone records the user's first
    # activity (a write: concurrent first logins can collide on SQLite) now, not in the
    # first iteration. Both on connections already open.
    unscoped = {"auth": {"identity": body["auth"]["identity"]}}
    with ThreadPoolExecutor(2) as ex:
        steps = [ex.submit(adapters["roles"].put, f"/projects/{project['id']}/users/"
                           f"{user['id']}/roles/{roles[0]['id']}"),
                 ex.submit(adapters["user"].post, "/auth/tokens", json=unscoped,
                           authenticated=False)]
    for fut in steps:
        fut.result()
    job.shared["auth_body"] = body


# --------------------------------------------------------------------------- scenarios


def _token_params(ctx: WorkerContext) -> dict[str, int] | None:
    return {"nocatalog": 1} if ctx.args["nocatalog"] else None


def issue_token(ctx: WorkerContext) -> str:
    """POST /auth/tokens with setup's credentials; the token."""
    r = ctx.identity.post(
        "/auth/tokens",
        json=ctx.shared["auth_body"],
        params=_token_params(ctx),
        authenticated=False,
    )
    return str(r.headers["X-Subject-Token"])


def validate_token(ctx: WorkerContext, token: str) -> None:
    """GET /auth/tokens with X-Subject-Token, authenticated by the admin token."""
    ctx.identity.get(
        "/auth/tokens", headers={"X-Subject-Token": token}, params=_token_params(ctx)
    )


def create_user(ctx: WorkerContext) -> str:
    """POST /users, with a random password if the ``password`` arg (tracked)."""
    user: dict[str, Any] = {"name": ctx.new_name(), "domain_id": ctx.job.user_domain_id}
    if ctx.args["password"]:
        user["password"] = secrets.token_urlsafe(24)
    uid = str(ctx.identity.post("/users", json={"user": user}).json()["user"]["id"])
    ctx.track("/users", uid)
    return uid


def delete_user(ctx: WorkerContext, uid: str) -> None:
    """DELETE /users/{id} (a failed delete is retried at teardown)."""
    ctx.identity.delete(f"/users/{uid}")
    ctx.untrack("/users", uid)


def create_project(ctx: WorkerContext) -> str:
    """POST /projects (tracked: deleted at teardown)."""
    body = {"project": {"name": ctx.new_name(), "domain_id": ctx.job.project_domain_id}}
    pid = str(ctx.identity.post("/projects", json=body).json()["project"]["id"])
    ctx.track("/projects", pid)
    return pid


# --------------------------------------------------------------------------- scenarios


@scenario(
    "keystone.authenticate_and_validate_token",
    service=SERVICE,
    setup=setup_auth_user,
    teardown=teardown_tracked,
    args=AUTH_ARGS,
)
def authenticate_and_validate_token(ctx: WorkerContext) -> None:
    """Issue a token with a password, then validate it with the admin token."""
    validate_token(ctx, issue_token(ctx))


@scenario(
    "keystone.authenticate",
    service=SERVICE,
    setup=setup_auth_user,
    teardown=teardown_tracked,
    args=AUTH_ARGS,
)
def authenticate(ctx: WorkerContext) -> None:
    """Issue a token with a password."""
    issue_token(ctx)


@scenario(
    "keystone.create_and_delete_user",
    service=SERVICE,
    teardown=teardown_tracked,
    args={"password": False},
)
def create_and_delete_user(ctx: WorkerContext) -> None:
    """Create a user, then delete it (a failed delete is retried at teardown)."""
    delete_user(ctx, create_user(ctx))


@scenario(
    "keystone.create_and_list_projects",
    service=SERVICE,
    teardown=teardown_tracked,
)
def create_and_list_projects(ctx: WorkerContext) -> None:
    """Create a project, then list projects (created projects are deleted at teardown)."""
    create_project(ctx)
    ctx.identity.get("/projects")


@scenario("keystone.get_version", service=SERVICE)
def get_version(ctx: WorkerContext) -> None:
    """GET /v3 (the version document, no token, no database): Keystone's cheapest
    request, for measuring the client and the runner rather than the server."""
    ctx.identity.get("", authenticated=False)


@scenario("keystone.list_users", service=SERVICE)
def list_users(ctx: WorkerContext) -> None:
    """List users."""
    ctx.identity.get("/users")


# --------------------------------------------------------------------------- Rally's names

RALLY_USER_ARGS: dict[str, Any] = {"password": True}


@scenario(
    "KeystoneBasic.authenticate_user_and_validate_token",
    service=SERVICE,
    setup=setup_auth_user,
    teardown=teardown_tracked,
    args={**AUTH_ARGS, "use_admin": True},
    qualified=True,
)
def rally_authenticate_user_and_validate_token(ctx: WorkerContext) -> None:
    """Issue a token (as the admin, as Rally), then validate it."""
    with ctx.atomic("keystone.authenticate_user"):
        token = issue_token(ctx)
    with ctx.atomic("keystone.validate_token"):
        validate_token(ctx, token)


@scenario(
    "KeystoneBasic.create_user",
    service=SERVICE,
    teardown=teardown_tracked,
    args=RALLY_USER_ARGS,
    qualified=True,
)
def rally_create_user(ctx: WorkerContext) -> None:
    """Create a user (deleted at teardown)."""
    with ctx.atomic("keystone.create_user"):
        create_user(ctx)


@scenario(
    "KeystoneBasic.create_delete_user",
    service=SERVICE,
    teardown=teardown_tracked,
    args=RALLY_USER_ARGS,
    qualified=True,
)
def rally_create_delete_user(ctx: WorkerContext) -> None:
    """Create a user, then delete it."""
    with ctx.atomic("keystone.create_user"):
        uid = create_user(ctx)
    with ctx.atomic("keystone.delete_user"):
        delete_user(ctx, uid)


@scenario(
    "KeystoneBasic.create_and_list_users",
    service=SERVICE,
    teardown=teardown_tracked,
    args=RALLY_USER_ARGS,
    qualified=True,
)
def rally_create_and_list_users(ctx: WorkerContext) -> None:
    """Create a user, then list users (users deleted at teardown)."""
    with ctx.atomic("keystone.create_user"):
        create_user(ctx)
    with ctx.atomic("keystone.list_users"):
        ctx.identity.get("/users")


@scenario(
    "KeystoneBasic.create_and_list_tenants",
    service=SERVICE,
    teardown=teardown_tracked,
    qualified=True,
)
def rally_create_and_list_tenants(ctx: WorkerContext) -> None:
    """Create a project, then list projects (projects deleted at teardown)."""
    with ctx.atomic("keystone.create_project"):
        create_project(ctx)
    with ctx.atomic("keystone.list_projects"):
        ctx.identity.get("/projects")


# --------------------------------------------------------------------------- more of Rally's
#
# The rest of rally-openstack's KeystoneBasic scenarios (EC2 credentials
# excepted): the same requests as Rally, as the admin; the user and project of the
# *_user_role ones come from the users context (ctx.user). Everything created is tracked
# and deleted at teardown (the ones that delete it themselves untrack it).

USER_FIELDS = frozenset({"name", "password", "email", "description", "enabled",
                         "default_project_id"})
ROLE_FIELDS = frozenset({"name", "description", "domain_id"})
PROJECT_ARGS: dict[str, Any] = {"name_length": 10, "description": "", "enabled": True}


class ScenarioNeedsUsers(RuntimeError):
    """The scenario ran without Rally's users context (the task check prevents it)."""


def _fields(ctx: WorkerContext, key: str, allowed: frozenset[str]) -> dict[str, Any]:
    value = ctx.args[key] or {}
    if not isinstance(value, dict) or not set(value) <= allowed:
        raise ValueError(f"arg {key!r}: expected a mapping of {', '.join(sorted(allowed))}")
    return dict(value)


def create_role(ctx: WorkerContext, **extra: Any) -> str:
    """keystone.create_role: POST /roles (tracked)."""
    with ctx.atomic("keystone.create_role"):
        body = {"role": {"name": ctx.new_name(), **extra}}
        rid = str(ctx.identity.post("/roles", json=body).json()["role"]["id"])
    ctx.track("/roles", rid)
    return rid


def _new_project(ctx: WorkerContext) -> str:
    p: dict[str, Any] = {"name": ctx.new_name(), "domain_id": ctx.job.project_domain_id}
    if ctx.args.get("description"):
        p["description"] = ctx.args["description"]
    if ctx.args.get("enabled") is False:
        p["enabled"] = False
    with ctx.atomic("keystone.create_project"):
        pid = str(ctx.identity.post("/projects", json={"project": p}).json()["project"]["id"])
    ctx.track("/projects", pid)
    return pid


def _new_user(ctx: WorkerContext, **fields: Any) -> str:
    with ctx.atomic("keystone.create_user"):
        body = {"user": {"name": ctx.new_name(), "domain_id": ctx.job.user_domain_id,
                         "password": secrets.token_urlsafe(24), **fields}}
        uid = str(ctx.identity.post("/users", json=body).json()["user"]["id"])
    ctx.track("/users", uid)
    return uid


def _delete(ctx: WorkerContext, collection: str, rid: str, action: str) -> None:
    with ctx.atomic(action):
        ctx.identity.delete(f"{collection}/{rid}")
    ctx.untrack(collection, rid)


def _context_user(ctx: WorkerContext) -> tuple[str, str]:
    if ctx.user is None:
        raise ScenarioNeedsUsers("this scenario runs on the users context's users")
    return ctx.user.id, ctx.user.project_id


def _member_role(job: JobContext) -> None:
    roles = job.admin().get("/roles", params={"name": "member"}).json()["roles"]
    job.shared["member_role"] = roles[0]["id"] if roles else None


@scenario("KeystoneBasic.create_tenant", service=SERVICE, teardown=teardown_tracked,
          args=PROJECT_ARGS, qualified=True)
def rally_create_tenant(ctx: WorkerContext) -> None:
    """Create a project (deleted at teardown)."""
    _new_project(ctx)


@scenario("KeystoneBasic.create_tenant_with_users", service=SERVICE,
          setup=_member_role, teardown=teardown_tracked,
          args={**PROJECT_ARGS, "users_per_tenant": 1}, qualified=True)
def rally_create_tenant_with_users(ctx: WorkerContext) -> None:
    """Create a project and `users_per_tenant` users in it, each given "member"."""
    n = ctx.args["users_per_tenant"]
    if not isinstance(n, int) or n < 1:
        raise ValueError("arg 'users_per_tenant': expected an integer >= 1")
    pid = _new_project(ctx)
    role = ctx.shared["member_role"]
    for _ in range(n):
        uid = _new_user(ctx, default_project_id=pid)
        if role is not None:
            with ctx.atomic("keystone.add_role"):
                ctx.identity.put(f"/projects/{pid}/users/{uid}/roles/{role}")


@scenario("KeystoneBasic.create_update_and_delete_tenant", service=SERVICE,
          teardown=teardown_tracked, args={**PROJECT_ARGS, "name_length": None},
          qualified=True)
def rally_create_update_and_delete_tenant(ctx: WorkerContext) -> None:
    """Create a project, rename it (and its description), delete it."""
    pid = _new_project(ctx)
    with ctx.atomic("keystone.update_project"):
        ctx.identity.patch(f"/projects/{pid}", json={"project": {
            "name": ctx.new_name(), "description": ctx.new_name()}})
    _delete(ctx, "/projects", pid, "keystone.delete_project")


@scenario("KeystoneBasic.create_and_update_user", service=SERVICE,
          teardown=teardown_tracked,
          args={"create_user_kwargs": None, "update_user_kwargs": None}, qualified=True)
def rally_create_and_update_user(ctx: WorkerContext) -> None:
    """Create a user (create_user_kwargs), then update it (update_user_kwargs)."""
    create = _fields(ctx, "create_user_kwargs", USER_FIELDS)
    update = _fields(ctx, "update_user_kwargs", USER_FIELDS)
    uid = _new_user(ctx, **create)
    with ctx.atomic("keystone.update_user"):
        ctx.identity.patch(f"/users/{uid}", json={"user": update})


@scenario("KeystoneBasic.create_user_update_password", service=SERVICE,
          teardown=teardown_tracked, args={"name_length": None, "password_length": None},
          qualified=True)
def rally_create_user_update_password(ctx: WorkerContext) -> None:
    """Create a user, then set a new password."""
    uid = _new_user(ctx)
    with ctx.atomic("keystone.update_user"):
        ctx.identity.patch(f"/users/{uid}",
                           json={"user": {"password": secrets.token_urlsafe(24)}})


@scenario("KeystoneBasic.create_user_set_enabled_and_delete", service=SERVICE,
          teardown=teardown_tracked, args={"enabled": True}, qualified=True)
def rally_create_user_set_enabled_and_delete(ctx: WorkerContext) -> None:
    """Create a user with `enabled`, toggle it, delete the user."""
    enabled = bool(ctx.args["enabled"])
    uid = _new_user(ctx, enabled=enabled)
    with ctx.atomic("keystone.update_user"):
        ctx.identity.patch(f"/users/{uid}", json={"user": {"enabled": not enabled}})
    _delete(ctx, "/users", uid, "keystone.delete_user")


@scenario("KeystoneBasic.create_and_delete_role", service=SERVICE,
          teardown=teardown_tracked, qualified=True)
def rally_create_and_delete_role(ctx: WorkerContext) -> None:
    """Create a role, then delete it."""
    _delete(ctx, "/roles", create_role(ctx), "keystone.delete_role")


@scenario("KeystoneBasic.create_and_get_role", service=SERVICE,
          teardown=teardown_tracked, args={"description": ""}, qualified=True)
def rally_create_and_get_role(ctx: WorkerContext) -> None:
    """Create a role, then get it (roles deleted at teardown)."""
    extra = {"description": ctx.args["description"]} if ctx.args["description"] else {}
    rid = create_role(ctx, **extra)
    with ctx.atomic("keystone.get_role"):
        ctx.identity.get(f"/roles/{rid}")


@scenario("KeystoneBasic.create_and_list_roles", service=SERVICE,
          teardown=teardown_tracked,
          args={"create_role_kwargs": None, "list_role_kwargs": None}, qualified=True)
def rally_create_and_list_roles(ctx: WorkerContext) -> None:
    """Create a role (create_role_kwargs), then list roles (list_role_kwargs as query);
    the new role must be listed unless the query filters it out."""
    create = _fields(ctx, "create_role_kwargs", ROLE_FIELDS)
    query = _fields(ctx, "list_role_kwargs", ROLE_FIELDS)
    rid = create_role(ctx, **create)
    with ctx.atomic("keystone.list_roles"):
        roles = ctx.identity.get("/roles", params=query or None).json()["roles"]
    if not query and not any(r["id"] == rid for r in roles):
        raise RuntimeError(f"role {rid} not in the list of {len(roles)} roles")


@scenario("KeystoneBasic.add_and_remove_user_role", service=SERVICE,
          teardown=teardown_tracked, qualified=True, needs_users=True)
def rally_add_and_remove_user_role(ctx: WorkerContext) -> None:
    """Create a role, give it to the context user on its project, revoke it."""
    uid, pid = _context_user(ctx)
    rid = create_role(ctx)
    with ctx.atomic("keystone.add_role"):
        ctx.identity.put(f"/projects/{pid}/users/{uid}/roles/{rid}")
    with ctx.atomic("keystone.revoke_role"):
        ctx.identity.delete(f"/projects/{pid}/users/{uid}/roles/{rid}")


@scenario("KeystoneBasic.create_add_and_list_user_roles", service=SERVICE,
          teardown=teardown_tracked, qualified=True, needs_users=True)
def rally_create_add_and_list_user_roles(ctx: WorkerContext) -> None:
    """Create a role, give it to the context user, list the user's role assignments
    on the project (the role must be there)."""
    uid, pid = _context_user(ctx)
    rid = create_role(ctx)
    with ctx.atomic("keystone.add_role"):
        ctx.identity.put(f"/projects/{pid}/users/{uid}/roles/{rid}")
    with ctx.atomic("keystone.list_role_assignments"):
        got = ctx.identity.get("/role_assignments", params={
            "user.id": uid, "scope.project.id": pid}).json()["role_assignments"]
    if not any(a["role"]["id"] == rid for a in got):
        raise RuntimeError(f"role {rid} not among the user's {len(got)} assignments")


@scenario("KeystoneBasic.get_entities", service=SERVICE, teardown=teardown_tracked,
          args={"service_name": "keystone"}, qualified=True)
def rally_get_entities(ctx: WorkerContext) -> None:
    """Create a project, a user in it and a role; get each by id; find the service
    `service_name` by name and get it by id."""
    pid = _new_project(ctx)
    uid = _new_user(ctx, default_project_id=pid)
    rid = create_role(ctx)
    with ctx.atomic("keystone.get_project"):
        ctx.identity.get(f"/projects/{pid}")
    with ctx.atomic("keystone.get_user"):
        ctx.identity.get(f"/users/{uid}")
    with ctx.atomic("keystone.get_role"):
        ctx.identity.get(f"/roles/{rid}")
    with ctx.atomic("keystone.list_services"):
        services = ctx.identity.get("/services").json()["services"]
    found = [s for s in services if s.get("name") == ctx.args["service_name"]]
    if not found:
        raise RuntimeError(f"no service named {ctx.args['service_name']!r}")
    with ctx.atomic("keystone.get_service"):
        ctx.identity.get(f"/services/{found[0]['id']}")


SERVICE_ARGS: dict[str, Any] = {"service_type": None, "description": None}


def _create_service(ctx: WorkerContext) -> str:
    """keystone.create_service: POST /services (a random name; tracked). Rally's default
    type is "rally_test_type"; a service without endpoints is not in any catalog."""
    body: dict[str, Any] = {"name": ctx.new_name(),
                            "type": ctx.args["service_type"] or "rally_test_type"}
    if ctx.args["description"]:
        body["description"] = ctx.args["description"]
    with ctx.atomic("keystone.create_service"):
        sid = str(ctx.identity.post("/services", json={"service": body}).json()
                  ["service"]["id"])
    ctx.track("/services", sid)
    return sid


def _check_service_args(args: dict[str, Any]) -> None:
    for key in SERVICE_ARGS:
        if args[key] is not None and not isinstance(args[key], str):
            raise ValueError(f"arg {key!r}: expected a string, got {args[key]!r}")


@scenario("KeystoneBasic.create_and_delete_service", service=SERVICE,
          teardown=teardown_tracked, args=SERVICE_ARGS, check=_check_service_args,
          qualified=True)
def rally_create_and_delete_service(ctx: WorkerContext) -> None:
    """Create a service, then delete it."""
    _delete(ctx, "/services", _create_service(ctx), "keystone.delete_service")


@scenario("KeystoneBasic.create_and_list_services", service=SERVICE,
          teardown=teardown_tracked, args=SERVICE_ARGS, check=_check_service_args,
          qualified=True)
def rally_create_and_list_services(ctx: WorkerContext) -> None:
    """Create a service, then list services; the new one must be listed (services
    deleted at teardown)."""
    sid = _create_service(ctx)
    with ctx.atomic("keystone.list_services"):
        services = ctx.identity.get("/services").json()["services"]
    if not any(s["id"] == sid for s in services):
        raise RuntimeError(f"service {sid} not in the list of {len(services)} services")
