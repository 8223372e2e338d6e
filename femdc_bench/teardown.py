"""Teardown of a run: its leftovers recovered, logs collected, WAN emulation, Grafana,
bench daemons and the deployment removed, then the hosts, the SSH masters and the local
InfluxDB. The run's directory stays."""

from __future__ import annotations

from dataclasses import dataclass, field

from femdc_bench import deploy as methods
from femdc_bench.ansible import AnsibleError, close_connections
from femdc_bench.bench.controller import stop_bench
from femdc_bench.collect import collect
from femdc_bench.metrics.target import stop_local_influx
from femdc_bench.providers import provider_for
from femdc_bench.recovery import recover
from femdc_bench.rundir import Progress, Run, noop
from femdc_bench.wan.state import remove_wan


@dataclass
class DestroyReport:
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def destroy(run: Run, progress: Progress = noop) -> DestroyReport:
    """Stop services, remove hosts, stop the local InfluxDB. Keeps results/<run>/."""
    report = DestroyReport()
    report.warnings += recover(run, progress)  # a CLI killed mid-phase: its leftovers first
    exp = run.experiment()
    provider = provider_for(run, exp)
    with run.phase("destroy"):
        if provider.exists() and (run.dir / "inventory.json").exists():
            inv = run.inventory()
            progress("collecting logs")
            try:
                collect(run, inv)
            except AnsibleError as e:
                report.warnings.append(f"logs not collected: {e}")
            if any(name.startswith("emulate@") for name in run.state.phases):
                try:
                    remove_wan(run, progress)
                    report.removed.append("WAN emulation (qdiscs, iptables chains, daemons)")
                except AnsibleError as e:
                    report.warnings.append(f"WAN emulation not removed: {e}")
            if run.state.phases.get("deploy") and exp.metrics.grafana is not None:
                from femdc_bench.grafana import service as grafana

                try:
                    grafana.destroy(exp, inv, run_id=run.id, run_dir=run.dir,
                                    log=run.log("destroy"))
                    report.removed.append(f"Grafana on {exp.metrics.grafana.host}")
                except AnsibleError as e:
                    report.warnings.append(f"Grafana not removed: {e}")
            if run.state.phases.get("deploy"):
                progress("stopping the bench daemons")
                report.warnings += stop_bench(run, inv, daemon=True)
                progress("stopping services on hosts")
                try:
                    methods.get(exp.deployment.method).destroy(
                        exp, inv, run_id=run.id, run_dir=run.dir, log=run.log("destroy"))
                    report.removed.append("OpenStack services and their data on every host")
                except AnsibleError as e:
                    # Hosts are namespaces we own: removing them below ends what is left.
                    report.warnings.append(str(e))
        progress("removing hosts")
        report.removed += provider.destroy()
        if n := close_connections(run.dir):
            report.removed.append(f"{n} SSH master connection(s)")
        removed_influx = stop_local_influx(run)
        if removed_influx:
            report.removed.append(removed_influx)
        run.state.status = "destroyed"
    run.save()
    return report

