"""Deployment methods, chosen by `deployment.method` through this registry.

Every method implements `Method` (EnOSlib's service shape: validate, deploy, destroy)
at the end of its module: `native` (deploy/native.py: our playbooks), `devstack`
(deploy/devstack.py), `kolla` (deploy/kolla.py). What only one method knows (DevStack's
localrc rules, Kolla's layouts and globals) is checked there, when the experiment is
loaded. `get(method)` imports the module only then::

    m = deploy.get(exp.deployment.method)
    clouds = m.deploy(exp, inv, run_id=run.id, run_dir=run.dir, log=log, on_task=print,
                      phase=run.phase)
    m.destroy(exp, inv, run_id=run.id, run_dir=run.dir, log=log)

No module outside this one chooses by a method name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from femdc_bench.model import Clouds, DeploymentSpec, Experiment, Inventory, SiteSpec

#: deployment.method -> the module that implements it (its `METHOD`)
MODULES: dict[str, str] = {
    "native": "femdc_bench.deploy.native",
    "devstack": "femdc_bench.deploy.devstack",
    "kolla": "femdc_bench.deploy.kolla",
}
#: The methods an experiment may name.
NAMES: tuple[str, ...] = tuple(MODULES)

#: run.phase: a context manager recording one named phase (kolla's steps are phases)
Phase = Callable[[str], AbstractContextManager[Any]]


class Method(Protocol):
    """One deployment method: its checks of the experiment, deploy and destroy."""

    name: str
    #: deployment.tls is wired (every endpoint, RabbitMQ and MariaDB behind the run's CA)
    tls: bool
    #: `kill` faults can restart what it starts (workload.faults[].kill)
    service_faults: bool

    def options(self, file: str, d: Mapping[str, Any], names: Sequence[str]
                ) -> dict[str, Any]:
        """The `deployment.*` keys this method reads or refuses, checked: the
        DeploymentSpec fields it sets (release, devstack, kolla)."""
        ...

    def validate(self, file: str, dep: DeploymentSpec) -> None:
        """The layouts the method deploys (keystone, control, database); called before
        the host roles are checked."""
        ...

    def validate_hosts(self, file: str, dep: DeploymentSpec, sites: Sequence[SiteSpec],
                       index: Mapping[str, int]) -> None:
        """Which roles must share a host (`index`: site name -> its sites[] index);
        called after the host roles are checked."""
        ...

    def deploy(self, exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path,
               log: Path, on_task: Callable[[str], None] | None = None,
               phase: Phase | None = None) -> Clouds:
        ...

    def destroy(self, exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path,
                log: Path) -> None:
        """Stop the run's services and remove their data on every host."""
        ...

    def manifest(self, exp: Experiment) -> dict[str, Any]:
        """What the run's manifest records of what was deployed (the lock's sha256, the
        release)."""
        ...


def get(method: str) -> Method:
    """The method named `method` (KeyError for an unknown one: the schema has refused
    it before)."""
    m: Method = importlib.import_module(MODULES[method]).METHOD
    return m


#: deployment.<method> (a method's own section) -> the message when another method is set
SECTION_ONLY = {"devstack": "only with deployment.method devstack, got {method!r}",
                "kolla": "only with method 'kolla'"}


def refuse_others(file: str, d: Mapping[str, Any], method: Method) -> None:
    """What no method but another one takes: deployment.tls, another method's section.
    Each method's `options` calls it (after what it checks first)."""
    from femdc_bench.errors import ExperimentError

    if d.get("tls") and not method.tls:
        raise ExperimentError(file, "deployment.tls", f"supported by method native only, got "
                              f"{method.name!r} (DevStack's tls-proxy and Kolla's "
                              f"kolla_enable_tls_* are not wired yet)")
    for other, message in SECTION_ONLY.items():
        if other in d and other != method.name:
            raise ExperimentError(file, f"deployment.{other}",
                                  message.format(method=method.name))
