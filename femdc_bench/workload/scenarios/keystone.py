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

Arguments (defaults in the decorators):
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


def teardown_tracked(job: JobContext) -> list[str]:
    """Delete every resource the job tracked; return the failures."""
    return job.delete_tracked()


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
    params = {"nocatalog": 1} if ctx.args["nocatalog"] else None
    r = ctx.identity.post(
        "/auth/tokens", json=ctx.shared["auth_body"], params=params, authenticated=False
    )
    token = r.headers["X-Subject-Token"]
    ctx.identity.get("/auth/tokens", headers={"X-Subject-Token": token}, params=params)


@scenario(
    "keystone.authenticate",
    service=SERVICE,
    setup=setup_auth_user,
    teardown=teardown_tracked,
    args=AUTH_ARGS,
)
def authenticate(ctx: WorkerContext) -> None:
    """Issue a token with a password."""
    params = {"nocatalog": 1} if ctx.args["nocatalog"] else None
    ctx.identity.post(
        "/auth/tokens", json=ctx.shared["auth_body"], params=params, authenticated=False
    )


@scenario(
    "keystone.create_and_delete_user",
    service=SERVICE,
    teardown=teardown_tracked,
    args={"password": False},
)
def create_and_delete_user(ctx: WorkerContext) -> None:
    """Create a user, then delete it (a failed delete is retried at teardown)."""
    user: dict[str, Any] = {"name": ctx.new_name(), "domain_id": ctx.job.user_domain_id}
    if ctx.args["password"]:
        user["password"] = secrets.token_urlsafe(24)
    uid = ctx.identity.post("/users", json={"user": user}).json()["user"]["id"]
    ctx.track("/users", uid)
    ctx.identity.delete(f"/users/{uid}")
    ctx.untrack("/users", uid)


@scenario(
    "keystone.create_and_list_projects",
    service=SERVICE,
    teardown=teardown_tracked,
)
def create_and_list_projects(ctx: WorkerContext) -> None:
    """Create a project, then list projects (created projects are deleted at teardown)."""
    body = {"project": {"name": ctx.new_name(), "domain_id": ctx.job.project_domain_id}}
    pid = ctx.identity.post("/projects", json=body).json()["project"]["id"]
    ctx.track("/projects", pid)
    ctx.identity.get("/projects")


@scenario("keystone.list_users", service=SERVICE)
def list_users(ctx: WorkerContext) -> None:
    """List users."""
    ctx.identity.get("/users")
