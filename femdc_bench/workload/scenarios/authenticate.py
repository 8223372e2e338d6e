"""Rally's Authenticate scenarios: a new token per iteration, then (validate_*) requests
to one service that make its keystonemiddleware validate that token.

=============================== ==========================================================
name                            one iteration (atomic actions)
=============================== ==========================================================
Authenticate.keystone           authenticate.keystone: POST /auth/tokens (password)
Authenticate.validate_nova      POST /auth/tokens, then authenticate.validate_nova:
                                ``repetitions`` x GET /flavors with that token
Authenticate.validate_glance    ... authenticate.validate_glance: ``repetitions`` x GET
                                /images?name=__intentionally_non_existent_image___
Authenticate.validate_neutron   ... authenticate.validate_neutron: ``repetitions`` x GET
                                /networks
=============================== ==========================================================

Each iteration authenticates as its Rally users-context user (without one: as the admin)
with a new keystoneauth1 password plugin, as Rally's clients do for every scenario
instance, so the service sees a token it has not validated yet: the first request makes
keystonemiddleware ask Keystone (over the WAN in a central-control layout), the next
ones hit its token cache. ``repetitions`` is required (an integer >= 1), as in Rally.
"""

from __future__ import annotations

from typing import Any

from keystoneauth1.identity import v3

from femdc_bench.workload.context import WorkerContext
from femdc_bench.workload.registry import scenario

NONEXISTENT_IMAGE = "__intentionally_non_existent_image___"
#: scenario -> (service type, path, query)
VALIDATE: dict[str, tuple[str, str, dict[str, str] | None]] = {
    "nova": ("compute", "/flavors", None),
    "glance": ("image", "/images", {"name": NONEXISTENT_IMAGE}),
    "neutron": ("network", "/networks", None),
}


def new_auth(ctx: WorkerContext) -> v3.Password:
    """A new password plugin for this iteration's user (or the admin): no cached token."""
    a, user = ctx.job.job.auth, ctx.user
    if user is not None:
        return v3.Password(auth_url=a.auth_url, user_id=user.id, password=user.password,
                           project_id=user.project_id)
    return v3.Password(auth_url=a.auth_url, username=a.username, password=a.password,
                       project_name=a.project_name, user_domain_name=a.user_domain_name,
                       project_domain_name=a.project_domain_name)


def _check_repetitions(args: dict[str, Any]) -> None:
    r = args["repetitions"]
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise ValueError(f"arg 'repetitions': expected an integer >= 1, got {r!r}")


@scenario("Authenticate.keystone", service="identity", qualified=True)
def keystone(ctx: WorkerContext) -> None:
    """Authenticate (a new token)."""
    auth = new_auth(ctx)
    with ctx.atomic("authenticate.keystone"):
        auth.get_access(ctx.session)


def _validate(name: str) -> Any:
    service, path, params = VALIDATE[name]

    def run(ctx: WorkerContext) -> None:
        auth = new_auth(ctx)
        auth.get_access(ctx.session)
        api = ctx.api(service)
        with ctx.atomic(f"authenticate.validate_{name}"):
            for _ in range(ctx.args["repetitions"]):
                api.get(path, params=params, auth=auth)

    run.__doc__ = f"A new token, then GET {path} ({service}) `repetitions` times with it."
    return run


for _name, (_service, _path, _params) in VALIDATE.items():
    scenario(f"Authenticate.validate_{_name}", service=_service, qualified=True,
             args={"repetitions": None}, check=_check_repetitions)(_validate(_name))
