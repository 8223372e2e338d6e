"""Scenario families; importing this package registers all of them in REGISTRY."""

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
