"""Deployment methods: native (our roles), devstack, kolla. `_method` picks the module
of a method (deploy/destroy), `_destroy_deployment` removes a run's deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from femdc_bench.model import Experiment, Inventory
    from femdc_bench.rundir import Run


def _method(name: str) -> Any:
    """The module of a deployment method (deploy/<name>.py): deploy() and destroy()."""
    if name == "devstack":
        from femdc_bench.deploy import devstack

        return devstack
    if name == "kolla":
        from femdc_bench.deploy import kolla

        return kolla
    from femdc_bench.deploy import native

    return native


def _destroy_deployment(run: Run, exp: Experiment, inv: Inventory) -> None:
    kw = {"run_id": run.id, "run_dir": run.dir, "log": run.log("destroy")}
    if exp.deployment.method == "devstack":
        from femdc_bench.deploy import devstack

        assert exp.deployment.devstack is not None
        devstack.destroy(inv, stack_user=exp.deployment.devstack.stack_user, **kw)
    elif exp.deployment.method == "kolla":
        from femdc_bench.deploy import kolla

        kolla.destroy(exp, inv, run_dir=run.dir, log=run.log("destroy"))
    else:
        from femdc_bench.deploy import native

        native.destroy(inv, **kw)

