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

import secrets
from typing import Any

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
    admin = job.admin()
    role_name = job.args["role"]
    roles = admin.get("/roles", params={"name": role_name}).json()["roles"]
    if not roles:
        raise SetupError(f"role {role_name!r} not found")
    project = admin.post(
        "/projects",
        json={"project": {"name": job.new_name(), "domain_id": job.project_domain_id}},
    ).json()["project"]
    job.track("/projects", project["id"])
    password = secrets.token_urlsafe(24)
    user = admin.post(
        "/users",
        json={
            "user": {
                "name": job.new_name(),
                "domain_id": job.user_domain_id,
                "password": password,
                "default_project_id": project["id"],
            }
        },
    ).json()["user"]
    job.track("/users", user["id"])
    admin.put(f"/projects/{project['id']}/users/{user['id']}/roles/{roles[0]['id']}")
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": user["id"], "password": password}},
            },
            "scope": {"project": {"id": project["id"]}},
        }
    }
    # One untimed authentication: checks the credentials, and Keystone records the user's
    # first activity (a write: concurrent first logins can collide on SQLite) now.
    admin.post("/auth/tokens", json=body, authenticated=False)
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
