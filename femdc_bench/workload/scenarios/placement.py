"""Placement scenarios (microversion 1.39; Rally has none, the names follow its style).

Paths are relative to the placement endpoint (its root).

============================================ ====================================== ========
name                                         one iteration                          requests
============================================ ====================================== ========
Placement.create_and_delete_resource_provider placement.create_resource_provider:   2
                                             POST /resource_providers;
                                             placement.delete_resource_provider:
                                             DELETE /resource_providers/{uuid}
Placement.set_inventory_and_allocate         create_resource_provider;              5
                                             placement.set_inventory: PUT
                                             /resource_providers/{uuid}/inventories
                                             (VCPU 8, MEMORY_MB 16384);
                                             placement.create_allocation: PUT
                                             /allocations/{new consumer uuid}
                                             (VCPU 1, MEMORY_MB 64);
                                             placement.delete_allocation: DELETE
                                             /allocations/{consumer};
                                             delete_resource_provider
============================================ ====================================== ========

The providers are named with the job's prefix; what an iteration leaves (after a
failure) is deleted at teardown: allocations first, then providers. No args.
"""

from __future__ import annotations

import uuid
from typing import Any

from femdc_bench.workload.context import WorkerContext
from femdc_bench.workload.registry import scenario
from femdc_bench.workload.scenarios.common import teardown_tracked

SERVICE = "placement"
INVENTORY = {"VCPU": {"total": 8}, "MEMORY_MB": {"total": 16384}}
ALLOCATION = {"VCPU": 1, "MEMORY_MB": 64}
CONSUMER_TYPE = "INSTANCE"  # required from 1.38


def create_resource_provider(ctx: WorkerContext) -> dict[str, Any]:
    """placement.create_resource_provider; returns the provider (1.20+), tracked."""
    with ctx.atomic("placement.create_resource_provider"):
        rp: dict[str, Any] = ctx.api("placement").post(
            "/resource_providers", json={"name": ctx.new_name()}
        ).json()
    ctx.track("/resource_providers", rp["uuid"], SERVICE)
    return rp


def delete_resource_provider(ctx: WorkerContext, rp_uuid: str) -> None:
    with ctx.atomic("placement.delete_resource_provider"):
        ctx.api("placement").delete(f"/resource_providers/{rp_uuid}")
    ctx.untrack("/resource_providers", rp_uuid, SERVICE)


@scenario(
    "Placement.create_and_delete_resource_provider",
    service=SERVICE,
    teardown=teardown_tracked,
    qualified=True,
)
def create_and_delete_resource_provider(ctx: WorkerContext) -> None:
    """Create a resource provider, then delete it."""
    rp = create_resource_provider(ctx)
    delete_resource_provider(ctx, rp["uuid"])


@scenario(
    "Placement.set_inventory_and_allocate",
    service=SERVICE,
    teardown=teardown_tracked,
    qualified=True,
)
def set_inventory_and_allocate(ctx: WorkerContext) -> None:
    """Provider, inventory, one allocation; then delete the allocation and the provider."""
    rp = create_resource_provider(ctx)
    rp_uuid = rp["uuid"]
    with ctx.atomic("placement.set_inventory"):
        ctx.api("placement").put(
            f"/resource_providers/{rp_uuid}/inventories",
            json={"resource_provider_generation": rp["generation"], "inventories": INVENTORY},
        )
    consumer = str(uuid.uuid4())
    job = ctx.job_context
    with ctx.atomic("placement.create_allocation"):
        ctx.api("placement").put(
            f"/allocations/{consumer}",
            json={
                "allocations": {rp_uuid: {"resources": ALLOCATION}},
                "project_id": job.project_id,
                "user_id": job.user_id,
                "consumer_generation": None,
                "consumer_type": CONSUMER_TYPE,
            },
        )
    ctx.track("/allocations", consumer, SERVICE)
    with ctx.atomic("placement.delete_allocation"):
        ctx.api("placement").delete(f"/allocations/{consumer}")
    ctx.untrack("/allocations", consumer, SERVICE)
    delete_resource_provider(ctx, rp_uuid)
