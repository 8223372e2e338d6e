"""Providers of hosts, chosen by `provider.type` through this registry.

Every provider type implements `ProviderType` (EnOSlib's service shape: plan, up,
destroy) at the end of its module: `local` (providers/local.py), `static`
(providers/static.py), `g5k`, `vagrant` and `chameleon` (providers/testbeds.py, one
class for the three). `get(type)` imports the module only then, so that a command that
touches no provider does not pay for it::

    kind = providers.get(exp.provider.type)
    kind.plan(exp)                                   # up --dry-run: offline
    hosts = kind.open(exp, run_id=run.id, run_dir=run.dir)
    inv = hosts.up(exp)
    hosts.destroy()

No module outside this one chooses by a provider type.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from femdc_bench.model import Experiment, Inventory, ProviderSpec, SiteSpec
    from femdc_bench.providers.plan import Plan

#: provider.type -> the module that implements it (its `PROVIDERS[type]`)
MODULES: dict[str, str] = {
    "local": "femdc_bench.providers.local",
    "static": "femdc_bench.providers.static",
    "g5k": "femdc_bench.providers.testbeds",
    "vagrant": "femdc_bench.providers.testbeds",
    "chameleon": "femdc_bench.providers.testbeds",
}
#: The provider types an experiment may name, in the order users read them.
NAMES: tuple[str, ...] = tuple(MODULES)


class Hosts(Protocol):
    """A run's hosts from one provider: made by `up`, removed by `destroy`."""

    def up(self, exp: Experiment) -> Inventory:
        """Create or reach every host of `exp` (idempotent: a second up finishes the
        first) and return the Inventory."""
        ...

    def exists(self) -> bool:
        """Whether `up` may have created something that `destroy` removes."""
        ...

    def destroy(self) -> list[str]:
        """Remove what up made; one line per kind of thing removed."""
        ...


class ProviderType(Protocol):
    """One provider type: its experiment checks, its dry run, its hosts for a run."""

    name: str
    #: its hosts can run a Docker container of their own (metrics.grafana); not the local
    #: provider's namespaces, which share this machine
    docker_hosts: bool

    def check(self, file: str, p: Mapping[str, Any], sites: Sequence[SiteSpec]
              ) -> ProviderSpec:
        """`provider.*` beyond the schema (hosts and sites of the experiment,
        addresses, dates) as a ProviderSpec, or an ExperimentError."""
        ...

    def plan(self, exp: Experiment) -> Plan:
        """What `up` would reserve or reach, offline (`up --dry-run`)."""
        ...

    def open(self, exp: Experiment, *, run_id: str, run_dir: Path) -> Hosts:
        """The hosts of run `run_id` (nothing is created before `up`)."""
        ...


def get(type_: str) -> ProviderType:
    """The provider type named `type_` (KeyError for an unknown one: the schema has
    refused it before)."""
    module = importlib.import_module(MODULES[type_])
    kinds: dict[str, ProviderType] = module.PROVIDERS
    return kinds[type_]


class _RunDir(Protocol):
    id: str
    dir: Path


def provider_for(run: _RunDir, exp: Experiment) -> Hosts:
    """The run's hosts from the provider of provider.type."""
    return get(exp.provider.type).open(exp, run_id=run.id, run_dir=run.dir)

