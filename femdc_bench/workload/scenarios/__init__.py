"""Scenario families; importing this package registers all of them in REGISTRY.

The registry is the one list of scenario names: the experiment schema's enum, the
service each loads (`table()`) and the README's list (checked by a unit test) come
from it."""

from femdc_bench.workload.registry import REGISTRY
from femdc_bench.workload.scenarios import (  # noqa: F401  (registers)
    authenticate,
    dummy,
    glance,
    http,
    keystone,
    neutron,
    nova,
    placement,
)


def table() -> dict[str, str]:
    """Every scenario name users may write -> the catalog service type it loads
    (Sample.service: "identity", "compute", ...; "http" and "dummy" load none)."""
    return {name: REGISTRY.get(name).service for name in REGISTRY.names()}
