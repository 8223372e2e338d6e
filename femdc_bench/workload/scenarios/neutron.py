"""Neutron (network v2.0) scenarios, with Rally's names: raw REST through Adapters.

Paths are relative to the network endpoint (".../v2.0").

====================================== ============================================ ========
name                                   one iteration                                requests
====================================== ============================================ ========
NeutronNetworks.create_and_list_networks neutron.create_network: POST /networks;    2
                                       neutron.list_networks: GET /networks
NeutronNetworks.create_and_delete_networks neutron.create_network; neutron.create_  3
                                       subnet: POST /subnets (10.x.y.0/24);
                                       neutron.delete_network: DELETE /networks/{id}
                                       (Neutron deletes the subnet with it)
NeutronNetworks.create_and_list_ports  neutron.create_port: POST /ports on the      P + 1
                                       network setup made (P = ports_per_network);
                                       neutron.list_ports: GET /ports
====================================== ============================================ ========

What an iteration creates and does not delete is tracked and deleted at teardown
(ports, then subnets, then networks). Rally's create_and_delete_networks creates no
subnet; ours does, as the issue asks. For create_and_list_ports, setup creates one
network with a 10.x.0.0/16 subnet, so up to ~65000 ports get an address (shared when
Rally's users context is given, so that its users can use it). Without a users context
the lists are the admin's, so they hold every project's networks and ports.

Args, as Rally's: ``network_create_args`` (all three: more attributes of the new
network, e.g. ``{"provider:network_type": "geneve"}``, default {}); for
create_and_list_ports ``port_create_args`` ({}) and ``ports_per_network`` (1).
"""

from __future__ import annotations

from typing import Any

from femdc_bench.workload.context import Ctx, JobContext, SetupError, WorkerContext
from femdc_bench.workload.registry import scenario
from femdc_bench.workload.scenarios.common import (
    has_context_networks,
    network_for,
    random_cidr,
    teardown_tracked,
)

SERVICE = "network"


# --------------------------------------------------------------------------- helpers


def create_network(ctx: Ctx, shared: bool = False, extra: dict[str, Any] | None = None
                   ) -> str:
    """neutron.create_network (`extra`: more attributes, Rally's network_create_args);
    the network is tracked."""
    with ctx.atomic("neutron.create_network"):
        body: dict[str, Any] = {"network": {"name": ctx.new_name(), **(extra or {})}}
        if shared:
            body["network"]["shared"] = True
        net_id = str(ctx.api("network").post("/networks", json=body).json()["network"]["id"])
    ctx.track("/networks", net_id, SERVICE)
    return net_id


def create_subnet(ctx: Ctx, net_id: str, prefix: int = 24) -> str:
    """neutron.create_subnet (IPv4, random 10.x CIDR); the subnet is tracked."""
    with ctx.atomic("neutron.create_subnet"):
        body = {
            "subnet": {
                "name": ctx.new_name(),
                "network_id": net_id,
                "ip_version": 4,
                "cidr": random_cidr(prefix),
            }
        }
        subnet_id = str(ctx.api("network").post("/subnets", json=body).json()["subnet"]["id"])
    ctx.track("/subnets", subnet_id, SERVICE)
    return subnet_id


def delete_network(ctx: Ctx, net_id: str, subnets: tuple[str, ...] = ()) -> None:
    with ctx.atomic("neutron.delete_network"):
        ctx.api("network").delete(f"/networks/{net_id}")
    for sid in subnets:
        ctx.untrack("/subnets", sid, SERVICE)
    ctx.untrack("/networks", net_id, SERVICE)


def find_network(job: JobContext, name_or_id: str) -> str:
    """The id of an existing network, by id or name (setup)."""
    r = job.api("network").get(f"/networks/{name_or_id}", raise_exc=False)
    if r.status_code == 200:
        return str(r.json()["network"]["id"])
    nets: list[dict[str, Any]] = job.api("network").get(
        "/networks", params={"name": name_or_id}
    ).json()["networks"]
    if not nets:
        raise SetupError(f"network {name_or_id!r} not found")
    return str(nets[0]["id"])


# --------------------------------------------------------------------------- scenarios


NETWORK_ARGS: dict[str, Any] = {"network_create_args": {}}


@scenario(
    "NeutronNetworks.create_and_list_networks",
    service=SERVICE,
    teardown=teardown_tracked,
    qualified=True,
    args=NETWORK_ARGS,
)
def create_and_list_networks(ctx: WorkerContext) -> None:
    """Create a network, then list networks (networks deleted at teardown)."""
    create_network(ctx, extra=ctx.args["network_create_args"])
    with ctx.atomic("neutron.list_networks"):
        ctx.api("network").get("/networks")


@scenario(
    "NeutronNetworks.create_and_delete_networks",
    service=SERVICE,
    teardown=teardown_tracked,
    qualified=True,
    args=NETWORK_ARGS,
)
def create_and_delete_networks(ctx: WorkerContext) -> None:
    """Create a network and a subnet on it, then delete the network."""
    net_id = create_network(ctx, extra=ctx.args["network_create_args"])
    subnet_id = create_subnet(ctx, net_id)
    delete_network(ctx, net_id, (subnet_id,))


def _check_ports_args(args: dict[str, Any]) -> None:
    n = args["ports_per_network"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"ports_per_network: expected an integer >= 1, got {n!r}")


def setup_ports(job: JobContext) -> None:
    """The network (and /16 subnet) iterations create their ports on, unless Rally's
    network context made networks for the users (then: one of the user's project, as
    Rally's _get_or_create_network)."""
    if has_context_networks(job):
        return
    net_id = create_network(job, shared=job.users is not None,
                            extra=job.args["network_create_args"])
    create_subnet(job, net_id, prefix=16)
    job.shared["net_id"] = net_id


@scenario(
    "NeutronNetworks.create_and_list_ports",
    service=SERVICE,
    setup=setup_ports,
    teardown=teardown_tracked,
    qualified=True,
    args={**NETWORK_ARGS, "port_create_args": {}, "ports_per_network": 1},
    check=_check_ports_args,
)
def create_and_list_ports(ctx: WorkerContext) -> None:
    """Create ``ports_per_network`` ports on setup's network, then list ports (ports
    deleted at teardown)."""
    net_id = network_for(ctx)
    for _ in range(ctx.args["ports_per_network"]):
        with ctx.atomic("neutron.create_port"):
            body = {"port": {"name": ctx.new_name(), **ctx.args["port_create_args"],
                             "network_id": net_id}}
            port_id = str(ctx.api("network").post("/ports", json=body).json()["port"]["id"])
        ctx.track("/ports", port_id, SERVICE)
    with ctx.atomic("neutron.list_ports"):
        ctx.api("network").get("/ports")
