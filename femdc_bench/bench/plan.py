"""What each host does in a bench, from the experiment (pure): the load hosts' agent
specs, every host's sampler configuration, and how long a bench may take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from femdc_bench.model import Clouds, Experiment, Inventory


def sampler_confs(exp: Experiment, inv: Inventory, run_id: str, max_s: int) -> dict[str, Any]:
    """One sampler configuration per host (metrics/sampler.py; the playbook adds its
    work directory): every host, since every host runs services."""
    if not exp.metrics.sampling:
        return {}
    sites = {h.address: h.site for h in inv.hosts}
    return {h.alias: {"host": h.alias, "site": h.site, "address": h.address,
                      "own_addresses": [h.address], "period_s": exp.metrics.period_s,
                      "sites_by_address": sites, "max_s": max_s,
                      "unit_prefix": f"femdc-{run_id}-"}
            for h in inv.hosts}


def agent_specs(exp: Experiment, inv: Inventory, clouds: Clouds, admin_password: str,
                name_prefix: str, only_from: Sequence[str] | None = None) -> dict[str, Any]:
    """One AgentSpec per load host: (scenario x target) jobs in experiment order.

    Each `load` host of a site takes its share of the scenario's concurrency (and of a
    `times` runner's iterations: `share_runner`). `to: local` loads the region that serves
    the source site; target_site names the site of the loaded region (its control
    plane, or its Keystone in a Keystone-only deployment). `only_from`: only these
    source sites run their share (`bench --from`).
    """
    from femdc_bench.workload.spec import AgentSpec, AuthSpec, JobSpec, share_runner

    jobs: dict[str, list[Any]] = {}
    for sc in exp.workload.scenarios:
        for src in sc.sources:
            if only_from is not None and src not in only_from:
                continue
            hosts = inv.with_role("load", src)
            shares = share_runner(sc.runner, len(hosts))
            targets = sc.targets if sc.targets is not None else (
                exp.deployment.region_for(src),)
            for tgt in targets:
                cloud = clouds.for_site(tgt)
                for host, share in zip(hosts, shares, strict=True):
                    if share is None:
                        continue
                    auth = AuthSpec(auth_url=cloud.auth_url, username="admin",
                                    password=admin_password, project_name="admin",
                                    region_name=cloud.region,
                                    verify=clouds.host_ca_file(host) or True)
                    jobs.setdefault(host.alias, []).append(JobSpec.from_scenario(
                        sc, target_site=cloud.region_site or cloud.keystone_site, auth=auth,
                        name_prefix=name_prefix, sla=exp.workload.sla, runner=share))
    return {alias: AgentSpec(site=inv.host(alias).site, host=alias, jobs=tuple(js))
            for alias, js in jobs.items()}


def agent_timeout(exp: Experiment) -> int:
    seconds = 600.0
    for sc in exp.workload.scenarios:
        r = sc.runner
        if r.type == "duration":
            per_target = r.duration_s
        elif r.type == "rps":  # the schedule, then the last iterations' own time
            per_target = r.start_offset_s(r.times or 0) + (r.timeout_s or 60)
        else:
            per_target = (r.times or 0) / r.concurrency
        seconds += (per_target or 0) * (len(sc.targets) if sc.targets else 1) + 30
    return int(seconds)

