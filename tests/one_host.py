"""The smallest experiment document: one site, one host (database, Keystone, load), a
two-iteration Keystone scenario. Tests that need a valid run directory without deploying
anything (InfluxDB stores, preflight checks) build it from here."""

from __future__ import annotations

from typing import Any


def one_host_experiment(metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "t", "provider": {"type": "local"},
        "sites": [{"name": "s1", "hosts": [{"name": "h", "roles": ["database", "keystone",
                                                                    "load"]}]}],
        "deployment": {"method": "native", "keystone": {"centralized": "s1"}},
        "workload": {"scenarios": [{"name": "keystone.list_users",
                                    "runner": {"type": "times", "times": 2}}]},
    }
    if metrics is not None:
        doc["metrics"] = metrics
    return doc
