"""Providers: the hosts of a run (local namespaces, static machines, testbeds through
EnOSlib). `provider_for` picks a run's provider, `dry_run` plans without one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from femdc_bench.model import Experiment
    from femdc_bench.providers.local import LocalProvider
    from femdc_bench.providers.plan import Plan
    from femdc_bench.providers.static import StaticProvider
    from femdc_bench.providers.testbeds import TestbedProvider
    from femdc_bench.rundir import Run


def provider_for(run: Run, exp: Experiment) -> LocalProvider | StaticProvider | TestbedProvider:
    if exp.provider.type == "local":
        from femdc_bench.providers.local import LocalProvider

        return LocalProvider(run_id=run.id, run_dir=run.dir)
    if exp.provider.type == "static":
        from femdc_bench.providers.static import StaticProvider

        return StaticProvider(exp, run_id=run.id, run_dir=run.dir)
    from femdc_bench.providers.testbeds import TestbedProvider

    return TestbedProvider(exp, run_id=run.id, run_dir=run.dir)


def dry_run(exp_file: Path) -> Plan:
    """What `up` would reserve or reach and the hosts it would give, from the experiment
    and EnOSlib's configuration classes alone: no run directory, no network."""
    from femdc_bench.experiment import load
    from femdc_bench.providers import static, testbeds
    from femdc_bench.providers.plan import local_plan

    exp = load(exp_file)
    if exp.provider.type == "local":
        return local_plan(exp)
    if exp.provider.type == "static":
        return static.plan(exp)
    return testbeds.plan(exp)

