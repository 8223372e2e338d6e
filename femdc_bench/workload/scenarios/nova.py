"""Nova (compute v2.1, microversion 2.79) scenarios, with Rally's names.

Paths are relative to the compute endpoint (".../v2.1"). `N` and `M` are the numbers of
status polls (at least one each, `poll_interval` apart, the first one after a pause).

================================== ================================================ =========
name                               one iteration                                    requests
================================== ================================================ =========
NovaServers.boot_server            nova.boot_server: POST /servers (image, flavor,  1 + N
                                   networks: [{"uuid": net}]), GET /servers/{id}
                                   until ACTIVE. The server stays (deleted at
                                   teardown).
NovaServers.boot_and_delete_server nova.boot_server; nova.delete_server: DELETE     2 + N + M
                                   /servers/{id}, GET /servers/{id} until 404
                                   (``force_delete``: nova.force_delete_server,
                                   POST /servers/{id}/action forceDelete)
NovaServers.boot_and_list_server   nova.boot_server; nova.list_servers: GET         2 + N
                                   /servers/detail (``detailed``, default true) or
                                   /servers, next pages followed; the new server
                                   must be listed. Servers deleted at teardown.
NovaFlavors.list_flavors           nova.list_flavors: GET /flavors/detail (or       1
                                   /flavors), Rally's filters as query parameters
NovaFlavors.create_and_delete_flavor nova.create_flavor: POST /flavors (as the admin), 2
                                   nova.delete_flavor: DELETE /flavors/{id}
================================== ================================================ =========

Args: ``image`` (null: setup uploads a 64 KiB raw image), ``flavor`` (null: setup
creates one of 1 vCPU, 64 MB RAM, 1 GB disk), ``network`` (null: setup creates a network
and a 10.x.y.0/24 subnet), each otherwise a name or id, or Rally's resource form: {id},
{name} (exact, else searched as a regular expression unless ``accurate``: the newest
match) or {regex} (checked when the task is loaded, resolved by setup), ``poll_interval`` (0.5 s),
``timeout`` (120 s, per wait), ``auto_assign_nic`` (accepted: a server always gets one
network, setup's, or with Rally's network context one of its user's project). Status
ERROR (the server's fault message is quoted) or the timeout fail the iteration; a wait
never hangs. What setup made is named with the job's prefix and deleted at teardown,
after the servers are gone.

Differences from Rally: no pre-poll sleep (Rally: nova_server_boot_prepoll_delay 1 s,
then polls every 1 s; delete: 2 s and 2 s). Without Rally's users context the iterations
run as the admin, in the admin project; with it, as its users (setup's image is then
public and its network shared, so that they can boot with them).
"""

from __future__ import annotations

import os
from typing import Any

from femdc_bench.workload.context import (
    Ctx,
    JobContext,
    SetupError,
    WorkerContext,
    is_gone,
    wait_for,
)
from femdc_bench.workload.registry import scenario
from femdc_bench.workload.scenarios import glance, neutron
from femdc_bench.workload.scenarios.common import (
    WAIT_ARGS,
    RepeatedBytes,
    ScenarioFailed,
    check_resource_arg,
    has_context_networks,
    match_resource,
    network_for,
    pages,
    teardown_tracked,
    wait_args,
)

SERVICE = "compute"
USES = ("image", "network")
TINY_IMAGE_BYTES = 64 * 1024
FLAVOR = {"vcpus": 1, "ram": 64, "disk": 1}
BOOT_ARGS: dict[str, Any] = {"image": None, "flavor": None, "network": None,
                             "auto_assign_nic": False, **WAIT_ARGS}


# --------------------------------------------------------------------------- setup


def check_boot_args(args: dict[str, Any]) -> None:
    """image, flavor, network: null, a name or id, or Rally's {id} / {name} / {regex}."""
    for key in ("image", "flavor", "network"):
        check_resource_arg(key, args[key])


def _find(job: JobContext, key: str, spec: Any, resources: list[dict[str, Any]]) -> str:
    try:
        return match_resource(key, spec, resources)
    except LookupError as e:
        raise SetupError(str(e)) from None


def _from_context(job: JobContext, key: str, spec: Any) -> str | None:
    """What the images/flavors context of this job made under the name `spec` gives
    (a name, {name} or {regex} over the given names), if anything."""
    made = job.context_names.get(key, {})
    if not made or (isinstance(spec, dict) and "id" in spec):
        return None
    try:
        return match_resource(key, spec, [{"id": i, "name": n} for n, i in made.items()])
    except LookupError:
        return None


def find_image(job: JobContext, spec: Any) -> str:
    """This job's images-context image of that name, else an active image the admin
    sees, by Rally's resource rules (common.match_resource)."""
    if (made := _from_context(job, "image", spec)) is not None:
        return made
    images = pages(job.api("image"), "/images", "images", {"status": "active"}, strip_prefix="/v2")
    return _find(job, "image", spec, images)


def find_flavor(job: JobContext, spec: Any) -> str:
    """This job's flavors-context flavor of that name, else one by Rally's rules."""
    if (made := _from_context(job, "flavor", spec)) is not None:
        return made
    return _find(job, "flavor", spec, pages(job.api("compute"), "/flavors", "flavors"))


def find_network(job: JobContext, spec: Any) -> str:
    return _find(job, "network", spec, pages(job.api("network"), "/networks", "networks"))


def setup_boot(job: JobContext) -> None:
    """Image, flavor and network to boot with (job.shared); what is made is tracked."""
    try:
        poll, timeout = wait_args(job.args)
    except ValueError as e:
        raise SetupError(str(e)) from None
    image, flavor, network = (job.args[k] for k in ("image", "flavor", "network"))
    # with Rally's users context the servers are booted by its users: what setup makes
    # (as the admin) must be theirs to use
    for_users = job.users is not None
    if image is None:
        data = RepeatedBytes(os.urandom(TINY_IMAGE_BYTES), TINY_IMAGE_BYTES)
        image_id = glance.create_image(
            job, data, disk_format="raw", container_format="bare", poll_s=poll,
            timeout_s=timeout, visibility="public" if for_users else "private")
    else:
        image_id = find_image(job, image)
    if flavor is None:
        body = {"flavor": {"name": job.new_name(), **FLAVOR}}
        flavor_id = str(job.api("compute").post("/flavors", json=body).json()["flavor"]["id"])
        job.track("/flavors", flavor_id, SERVICE)
    else:
        flavor_id = find_flavor(job, flavor)
    if network is None and has_context_networks(job):
        net_id = None  # each server gets a network of its user's project (network context)
    elif network is None:
        net_id = neutron.create_network(job, shared=for_users)
        neutron.create_subnet(job, net_id)
    else:
        net_id = find_network(job, network)
    job.shared.update(image_id=image_id, flavor_id=flavor_id, net_id=net_id)


# --------------------------------------------------------------------------- helpers


def _fault(server: dict[str, Any]) -> str | None:
    if server.get("status") != "ERROR":
        return None
    fault = server.get("fault") or {}
    return f"status ERROR: {fault.get('message') or 'no fault message'}"


def boot_server(ctx: Ctx) -> str:
    """nova.boot_server: POST /servers, then GET until ACTIVE; the server is tracked."""
    poll, timeout = wait_args(ctx.args)
    sh = ctx.shared
    with ctx.atomic("nova.boot_server"):
        body = {
            "server": {
                "name": ctx.new_name(),
                "imageRef": sh["image_id"],
                "flavorRef": sh["flavor_id"],
                "networks": [{"uuid": network_for(ctx)}],
            }
        }
        server_id = str(ctx.api("compute").post("/servers", json=body).json()["server"]["id"])
        ctx.track("/servers", server_id, SERVICE)
        wait_for(
            lambda: ctx.api("compute").get(f"/servers/{server_id}").json()["server"],
            lambda s: s.get("status") == "ACTIVE",
            failed=_fault,
            what=f"server {server_id}",
            timeout_s=timeout,
            poll_s=poll,
        )
    return server_id


def delete_server(ctx: Ctx, server_id: str, force: bool = False) -> None:
    """nova.delete_server (nova.force_delete_server with `force`, as Rally names it:
    POST /servers/{id}/action forceDelete), then GET until 404."""
    poll, timeout = wait_args(ctx.args)
    path = f"/servers/{server_id}"
    with ctx.atomic("nova.force_delete_server" if force else "nova.delete_server"):
        if force:
            ctx.api("compute").post(f"{path}/action", json={"forceDelete": None})
        else:
            ctx.api("compute").delete(path)
        wait_for(
            lambda: is_gone(ctx.api("compute"), path),
            lambda v: v is True,
            failed=lambda v: _fault(v) if isinstance(v, dict) else None,
            what=f"server {server_id} deletion",
            timeout_s=timeout,
            poll_s=poll,
        )
    ctx.untrack("/servers", server_id, SERVICE)


# --------------------------------------------------------------------------- scenarios


@scenario(
    "NovaServers.boot_server",
    service=SERVICE,
    uses=USES,
    setup=setup_boot,
    teardown=teardown_tracked,
    args=BOOT_ARGS,
    qualified=True,
    check=check_boot_args,
)
def boot(ctx: WorkerContext) -> None:
    """Boot a server and wait until it is ACTIVE (it is deleted at teardown)."""
    boot_server(ctx)


@scenario(
    "NovaServers.boot_and_delete_server",
    service=SERVICE,
    uses=USES,
    setup=setup_boot,
    teardown=teardown_tracked,
    args={**BOOT_ARGS, "force_delete": False},
    qualified=True,
    check=check_boot_args,
)
def boot_and_delete_server(ctx: WorkerContext) -> None:
    """Boot a server, wait until ACTIVE, delete it (``force_delete``: forceDelete
    action) and wait until it is gone."""
    delete_server(ctx, boot_server(ctx), force=ctx.args["force_delete"])


@scenario(
    "NovaServers.boot_and_list_server",
    service=SERVICE,
    uses=USES,
    setup=setup_boot,
    teardown=teardown_tracked,
    args={**BOOT_ARGS, "detailed": True},
    qualified=True,
    check=check_boot_args,
)
def boot_and_list_server(ctx: WorkerContext) -> None:
    """Boot a server, then list servers; the new one must be listed."""
    server_id = boot_server(ctx)
    path = "/servers/detail" if ctx.args["detailed"] else "/servers"
    with ctx.atomic("nova.list_servers"):
        servers = pages(ctx.api("compute"), path, "servers")
    if not any(s.get("id") == server_id for s in servers):
        raise ScenarioFailed(f"server {server_id} not in the list of {len(servers)} servers")


# --------------------------------------------------------------------------- flavors

LIST_FLAVOR_ARGS: dict[str, Any] = {"detailed": True, "is_public": True, "marker": None,
                                    "min_disk": None, "min_ram": None, "limit": None,
                                    "sort_key": None, "sort_dir": None}
FLAVOR_ARGS: dict[str, Any] = {"ram": None, "vcpus": None, "disk": None, "flavorid": "auto",
                               "ephemeral": 0, "swap": 0, "rxtx_factor": 1.0,
                               "is_public": True}


def _check_flavor_args(args: dict[str, Any]) -> None:
    for key, lo in (("ram", 1), ("vcpus", 1), ("disk", 0), ("ephemeral", 0), ("swap", 0)):
        v = args[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"arg {key!r}: expected an integer >= {lo}, got {v!r}")
    if not isinstance(args["flavorid"], str) or not args["flavorid"]:
        raise ValueError("arg 'flavorid': expected 'auto' or an id")


def _check_list_flavor_args(args: dict[str, Any]) -> None:
    if args["sort_dir"] not in (None, "asc", "desc"):
        raise ValueError(f"arg 'sort_dir': expected asc or desc, got {args['sort_dir']!r}")
    for key in ("min_disk", "min_ram", "limit"):
        v = args[key]
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise ValueError(f"arg {key!r}: expected an integer >= 0, got {v!r}")


@scenario("NovaFlavors.list_flavors", service=SERVICE, qualified=True,
          args=LIST_FLAVOR_ARGS, check=_check_list_flavor_args)
def list_flavors(ctx: WorkerContext) -> None:
    """nova.list_flavors: GET /flavors/detail (``detailed``) or /flavors with Rally's
    filters (is_public, marker, min_disk, min_ram, limit, sort_key, sort_dir)."""
    a = ctx.args
    params = {"is_public": a["is_public"]} | {
        k: a[k] for k in ("marker", "min_disk", "min_ram", "limit", "sort_key", "sort_dir")
        if a[k] is not None}
    path = "/flavors/detail" if a["detailed"] else "/flavors"
    with ctx.atomic("nova.list_flavors"):
        ctx.api("compute").get(path, params=params)


@scenario("NovaFlavors.create_and_delete_flavor", service=SERVICE, qualified=True,
          teardown=teardown_tracked, args=FLAVOR_ARGS, check=_check_flavor_args)
def create_and_delete_flavor(ctx: WorkerContext) -> None:
    """nova.create_flavor: POST /flavors (as the admin, as Rally); nova.delete_flavor:
    DELETE /flavors/{id}."""
    a = ctx.args
    api = ctx.admin_api(SERVICE)
    body: dict[str, Any] = {"name": ctx.new_name(), "ram": a["ram"], "vcpus": a["vcpus"],
                            "disk": a["disk"], "swap": a["swap"],
                            "OS-FLV-EXT-DATA:ephemeral": a["ephemeral"],
                            "os-flavor-access:is_public": a["is_public"]}
    if a["flavorid"] != "auto":
        body["id"] = a["flavorid"]
    if a["rxtx_factor"] != 1.0:
        body["rxtx_factor"] = a["rxtx_factor"]
    with ctx.atomic("nova.create_flavor"):
        fid = str(api.post("/flavors", json={"flavor": body}).json()["flavor"]["id"])
        ctx.track("/flavors", fid, SERVICE)
    with ctx.atomic("nova.delete_flavor"):
        api.delete(f"/flavors/{fid}")
    ctx.untrack("/flavors", fid, SERVICE)
