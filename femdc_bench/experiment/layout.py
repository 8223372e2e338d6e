"""Layout rules: which hosts each site needs for where `deployment` puts Keystone, the
rest of the control plane and the database (the three layouts of the published
studies, and their databases). What one deployment method adds (DevStack's and Kolla's
controller hosts) is that method's `validate` / `validate_hosts` (deploy/<method>.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from femdc_bench import deploy
from femdc_bench.errors import ExperimentError
from femdc_bench.model import DeploymentSpec, SiteSpec
from femdc_bench.units import expand_range


def check(file: str, doc: Mapping[str, Any], sites: list[SiteSpec],
          host_paths: Mapping[str, str], dep: DeploymentSpec) -> None:
    """Which hosts each site needs for where deployment puts Keystone, the control plane
    and the database; the first mismatch is raised."""
    names = [s.name for s in sites]
    index = {n: i for i, s in enumerate(doc["sites"]) for n in expand_range(s["name"])}
    ks_sites, ctl_sites = set(dep.keystone_sites(names)), set(dep.control_sites(names))
    method = deploy.get(dep.method)
    method.validate(file, dep)
    if dep.control == "centralized" and (dep.keystone != "centralized"
                                         or dep.keystone_site != dep.control_site):
        raise ExperimentError(
            file, "deployment.control", f"{dep.control_text()} needs deployment.keystone "
            f"{{centralized: {dep.control_site}}} (the control plane and its Keystone share a "
            f"site), got deployment.keystone {dep.keystone_text()}")
    for s in sites:
        where = f"sites[{index[s.name]}].hosts"

        def count(role: str, s: SiteSpec = s) -> int:
            return len(s.hosts_with(role))

        # Keystone
        if s.name in ks_sites:
            if count("keystone") != 1:
                raise ExperimentError(
                    file, where, f"site {s.name!r} runs a Keystone "
                    f"(deployment.keystone is {dep.keystone_text()}): expected exactly one "
                    f"host with role 'keystone', found {count('keystone')}")
        elif count("keystone"):
            raise ExperimentError(
                file, where, f"site {s.name!r} has a 'keystone' host but deployment.keystone "
                f"is {dep.keystone_text()}")
        # the rest of the control plane, and computes
        if dep.control is None:
            for h in s.hosts:
                for role in ("control", "compute"):
                    if role in h.roles:
                        raise ExperimentError(
                            file, f"{host_paths[h.name]}.roles",
                            f"role {role!r} needs deployment.control (per_site or "
                            "{centralized: <site>}); without it only Keystone is deployed")
        elif s.name in ctl_sites:
            if count("control") != 1:
                raise ExperimentError(
                    file, where, f"site {s.name!r} runs a control plane "
                    f"(deployment.control is {dep.control_text()}): expected exactly one host "
                    f"with role 'control', found {count('control')}")
        elif count("control"):
            raise ExperimentError(
                file, where, f"site {s.name!r} has a 'control' host but deployment.control "
                f"is {dep.control_text()}")
        # the database
        n_db = count("database")
        runs = " and ".join(x for x, on in (("a Keystone", s.name in ks_sites),
                                            ("a control plane", s.name in ctl_sites)) if on)
        if dep.database == "central":
            if s.name == dep.database_site:
                if n_db != 1:
                    raise ExperimentError(
                        file, where, f"site {s.name!r} holds the central database "
                        f"(deployment.database is {dep.database_text()}): expected exactly "
                        f"one host with role 'database', found {n_db}")
            elif n_db:
                raise ExperimentError(
                    file, where, f"role 'database' is not used at site {s.name!r}: "
                    f"deployment.database is {dep.database_text()}")
        elif runs:
            if n_db != 1:
                kind = "a per-site database" if dep.database == "per_site" else \
                    "a Galera database (each site uses its own node)"
                raise ExperimentError(
                    file, where, f"site {s.name!r} runs {runs} with {kind}: expected exactly "
                    f"one host with role 'database', found {n_db}")
        elif n_db and dep.database == "per_site":
            raise ExperimentError(
                file, where, f"role 'database' is not used at site {s.name!r}: it runs no "
                "Keystone and no control plane (deployment.database is per_site)")
    if dep.control and not any(s.hosts_with("compute") for s in sites):
        raise ExperimentError(
            file, "sites", f"deployment.control is {dep.control_text()} but no host has role "
            "'compute': Nova would have no compute node")
    if dep.control:
        served = {dep.region_for(s.name) for s in sites if s.hosts_with("compute")}
        for region in dep.control_sites([s.name for s in sites]):
            if region not in served:
                raise ExperimentError(
                    file, f"sites[{index[region]}].hosts",
                    f"region {region!r} has no host with role 'compute' (deployment.control "
                    f"is {dep.control_text()}): its Nova would have no compute node")
    if dep.database == "galera":
        n_db = sum(len(s.hosts_with("database")) for s in sites)
        if n_db < 2:
            raise ExperimentError(
                file, "deployment.database", "galera needs at least 2 hosts with role "
                f"'database' (a 1-node cluster is not a cluster), found {n_db}")
    method.validate_hosts(file, dep, sites, index)


