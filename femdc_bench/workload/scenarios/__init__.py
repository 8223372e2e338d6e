"""Scenario families; importing this package registers all of them in REGISTRY."""

from femdc_bench.workload.scenarios import keystone  # noqa: F401  (registers)
