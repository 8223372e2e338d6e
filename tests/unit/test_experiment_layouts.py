"""Layouts of the control plane in the experiment file: roles, deployment.control and
deployment.database, and the checks that tie hosts, regions and scenarios to them."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from femdc_bench.experiment import (
    ROLES,
    ExperimentError,
    load,
    parse,
)
from femdc_bench.model import SERVICE_OF_TYPE
from femdc_bench.workload import scenarios

# The scenario registry's table: name -> the service type it loads.
SCENARIO_SERVICE = scenarios.table()

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def host(name: str, *roles: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "roles": list(roles), **extra}


def experiment(sites: list[dict[str, Any]], scenarios: list[dict[str, Any]] | None = None,
               **deployment: Any) -> dict[str, Any]:
    return {
        "name": "layout",
        "provider": {"type": "local"},
        "sites": sites,
        "deployment": {"method": "native", **deployment},
        "wan": {"default": {"delay": "25ms"}},
        "workload": {"scenarios": scenarios or [
            {"name": "keystone.authenticate_and_validate_token",
             "runner": {"type": "times", "times": 1}}]},
    }


def central_control() -> dict[str, Any]:
    """keystone and control at core, compute at the edges."""
    return experiment(
        [{"name": "core", "hosts": [host("ctl", "database", "keystone", "control", "load")]},
         {"name": "edge[1-2]", "hosts": [host("node", "compute", "load", computes=2)]}],
        [{"name": "NovaServers.boot_and_delete_server",
          "runner": {"type": "times", "times": 1}, "to": "all"}],
        keystone={"centralized": "core"}, control={"centralized": "core"})


def region_per_site() -> dict[str, Any]:
    return experiment(
        [{"name": "core", "hosts": [host("ctl", "database", "keystone", "control", "compute",
                                         "load")]},
         {"name": "edge1", "hosts": [host("ctl", "database", "control", "compute", "load")]}],
        [{"name": "NovaServers.boot_and_list_server",
          "runner": {"type": "times", "times": 1}, "to": "all"}],
        keystone={"centralized": "core"}, control="per_site")


def keystone_per_site(database: Any = "per_site", n: int = 3) -> dict[str, Any]:
    return experiment(
        [{"name": f"site[1-{n}]", "hosts": [host("ctl", "database", "keystone", "load")]}],
        keystone="per_site", database=database)


def error(doc: dict[str, Any]) -> tuple[str, str]:
    """(key path, what was expected) of the one-line error `doc` gets."""
    with pytest.raises(ExperimentError) as e:
        parse(doc, "exp.yaml")
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith("exp.yaml: ")
    path, _, message = text.removeprefix("exp.yaml: ").partition(": ")
    assert (e.value.path, e.value.message) == (path, message)
    return path, message


# --------------------------------------------------------------------------- good files


def test_central_control_builds_the_model() -> None:
    exp = parse(central_control())
    d = exp.deployment
    assert (d.keystone, d.keystone_site, d.control, d.control_site) == (
        "centralized", "core", "centralized", "core")
    assert (d.database, d.database_site, d.api_workers) == ("per_site", None, 1)
    assert d.services == ("keystone", "placement", "glance", "nova", "neutron")
    assert [(h.name, h.roles, h.computes) for s in exp.sites for h in s.hosts] == [
        ("core-ctl", ("database", "keystone", "control", "load"), 0),
        ("edge1-node", ("compute", "load"), 2),
        ("edge2-node", ("compute", "load"), 2),
    ]
    assert exp.workload.scenarios[0].targets == ("core",)


def test_compute_host_defaults_to_one_compute() -> None:
    doc = central_control()
    del doc["sites"][1]["hosts"][0]["computes"]
    assert [h.computes for s in parse(doc).sites for h in s.hosts] == [0, 1, 1]


def test_api_workers() -> None:
    doc = central_control()
    doc["deployment"]["api_workers"] = 4
    assert parse(doc).deployment.api_workers == 4
    doc["deployment"]["api_workers"] = 17
    assert error(doc) == ("deployment.api_workers",
                          "expected an integer from 1 to 16, got 17")


def test_region_per_site() -> None:
    exp = parse(region_per_site())
    d = exp.deployment
    assert (d.keystone, d.keystone_site, d.control) == ("centralized", "core", "per_site")
    assert d.regions(exp.site_names) == ["core", "edge1"]
    assert exp.workload.scenarios[0].targets == ("core", "edge1")


def test_region_per_site_with_keystone_per_site() -> None:
    doc = region_per_site()
    doc["deployment"]["keystone"] = "per_site"
    doc["sites"][1]["hosts"][0]["roles"].append("keystone")
    exp = parse(doc)
    assert exp.deployment.keystone_sites(exp.site_names) == ["core", "edge1"]


def test_keystone_only_is_the_default() -> None:
    exp = parse(keystone_per_site())
    assert exp.deployment.control is None
    assert exp.deployment.services == ("keystone",)
    assert exp.deployment.database == "per_site"


def test_central_database() -> None:
    doc = keystone_per_site({"central": "site1"})
    doc["sites"] = [{"name": "site1", "hosts": [host("ctl", "database", "keystone", "load")]},
                    {"name": "site[2-3]", "hosts": [host("ctl", "keystone", "load")]}]
    d = parse(doc).deployment
    assert (d.database, d.database_site) == ("central", "site1")
    assert d.database_site_for("site3") == "site1"


def test_central_database_on_a_site_of_its_own() -> None:
    doc = experiment(
        [{"name": "core", "hosts": [host("ctl", "keystone", "load")]},
         {"name": "edge1", "hosts": [host("node", "load")]},
         {"name": "db", "hosts": [host("h", "database")]}],
        keystone={"centralized": "core"}, database={"central": "db"})
    assert parse(doc).deployment.database_site_for("core") == "db"


def test_galera() -> None:
    d = parse(keystone_per_site("galera")).deployment
    assert d.database == "galera" and d.database_site is None
    assert d.database_site_for("site2") == "site2"


def test_galera_nodes_at_sites_without_services_join_the_cluster() -> None:
    doc = experiment(
        [{"name": "core", "hosts": [host("ctl", "database", "keystone", "load")]},
         {"name": "edge[1-2]", "hosts": [host("node", "database", "load")]}],
        keystone={"centralized": "core"}, database="galera")
    assert parse(doc).deployment.database == "galera"


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("make", "mutate", "path", "expected"),
    [
        # hosts: roles and computes
        (central_control, lambda d: d["sites"][0]["hosts"][0].update(computes=1),
         "sites[0].hosts[0].computes", "allowed only on a host with role 'compute'"),
        (central_control, lambda d: d["sites"][1]["hosts"][0].update(computes=0),
         "sites[1].hosts[0].computes", "expected an integer from 1 to 1000, got 0"),
        (central_control, lambda d: d["sites"][1]["hosts"][0].update(computes=1001),
         "sites[1].hosts[0].computes", "expected an integer from 1 to 1000, got 1001"),
        (central_control, lambda d: d["sites"][1]["hosts"][0].update(computes="2"),
         "sites[1].hosts[0].computes", "expected an integer from 1 to 1000, got '2'"),
        (central_control, lambda d: d["sites"][1]["hosts"][0].update(roles=["comptue"]),
         "sites[1].hosts[0].roles[0]",
         "expected one of database, keystone, load, control, compute, got 'comptue' "
         "(did you mean 'compute'?)"),
        # deployment: the shapes
        (central_control, lambda d: d["deployment"].update(control="central"),
         "deployment.control",
         "expected 'per_site' or {centralized: <site>}, got 'central'"),
        (central_control, lambda d: d["deployment"].update(database={"centralized": "core"}),
         "deployment.database",
         "expected 'per_site', 'galera' or {central: <site>}, got {'centralized': 'core'}"),
        # control centralized
        (central_control, lambda d: d["deployment"].update(control={"centralized": "cor"}),
         "deployment.control.centralized",
         "expected one of the sites (core, edge1, edge2), got 'cor' (did you mean 'core'?)"),
        (central_control, lambda d: d["deployment"].update(keystone="per_site"),
         "deployment.control",
         "{centralized: core} needs deployment.keystone {centralized: core} (the control "
         "plane and its Keystone share a site), got deployment.keystone per_site"),
        (central_control, lambda d: d["deployment"].update(control={"centralized": "edge1"}),
         "deployment.control",
         "{centralized: edge1} needs deployment.keystone {centralized: edge1} (the control "
         "plane and its Keystone share a site), got deployment.keystone {centralized: core}"),
        (central_control, lambda d: d["sites"][0]["hosts"][0]["roles"].remove("control"),
         "sites[0].hosts",
         "site 'core' runs a control plane (deployment.control is {centralized: core}): "
         "expected exactly one host with role 'control', found 0"),
        (central_control,
         lambda d: d["sites"][0]["hosts"].append(host("ctl2", "control")),
         "sites[0].hosts",
         "site 'core' runs a control plane (deployment.control is {centralized: core}): "
         "expected exactly one host with role 'control', found 2"),
        (central_control, lambda d: d["sites"][1]["hosts"][0]["roles"].append("control"),
         "sites[1].hosts",
         "site 'edge1' has a 'control' host but deployment.control is {centralized: core}"),
        # control per_site
        (region_per_site, lambda d: d["sites"][1]["hosts"][0]["roles"].remove("control"),
         "sites[1].hosts",
         "site 'edge1' runs a control plane (deployment.control is per_site): expected "
         "exactly one host with role 'control', found 0"),
        # no control
        (keystone_per_site, lambda d: d["sites"][0]["hosts"][0]["roles"].append("compute"),
         "sites[0].hosts[0].roles",
         "role 'compute' needs deployment.control (per_site or {centralized: <site>}); "
         "without it only Keystone is deployed"),
        (keystone_per_site,
         lambda d: d["sites"][0]["hosts"].append(host("n", "control")),
         "sites[0].hosts[1].roles",
         "role 'control' needs deployment.control (per_site or {centralized: <site>}); "
         "without it only Keystone is deployed"),
        # control but no compute
        (central_control, lambda d: d["sites"][1].update(hosts=[host("node", "load")]),
         "sites",
         "deployment.control is {centralized: core} but no host has role 'compute': "
         "Nova would have no compute node"),
        # database per_site
        (central_control, lambda d: d["sites"][0]["hosts"][0]["roles"].remove("database"),
         "sites[0].hosts",
         "site 'core' runs a Keystone and a control plane with a per-site database: "
         "expected exactly one host with role 'database', found 0"),
        (region_per_site, lambda d: d["sites"][1]["hosts"][0]["roles"].remove("database"),
         "sites[1].hosts",
         "site 'edge1' runs a control plane with a per-site database: expected exactly "
         "one host with role 'database', found 0"),
        (central_control, lambda d: d["sites"][1]["hosts"][0]["roles"].append("database"),
         "sites[1].hosts",
         "role 'database' is not used at site 'edge1': it runs no Keystone and no control "
         "plane (deployment.database is per_site)"),
        # database central
        (lambda: keystone_per_site({"central": "nowhere"}), lambda d: None,
         "deployment.database.central",
         "expected one of the sites (site1, site2, site3), got 'nowhere'"),
        (lambda: keystone_per_site({"central": "site0"}),
         lambda d: d["sites"].insert(0, {"name": "site0", "hosts": [host("h", "keystone")]}),
         "sites[0].hosts",
         "site 'site0' holds the central database (deployment.database is {central: "
         "site0}): expected exactly one host with role 'database', found 0"),
        (lambda: keystone_per_site({"central": "site1"}), lambda d: None,
         "sites[0].hosts",
         "role 'database' is not used at site 'site2': deployment.database is "
         "{central: site1}"),
        # galera
        (lambda: keystone_per_site("galera"),
         lambda d: d["sites"].append({"name": "site4", "hosts": [host("ctl", "keystone")]}),
         "sites[1].hosts",
         "site 'site4' runs a Keystone with a Galera database (each site uses its own "
         "node): expected exactly one host with role 'database', found 0"),
        (lambda: keystone_per_site("galera"),
         lambda d: d["sites"][0]["hosts"].append(host("db2", "database")),
         "sites[0].hosts",
         "site 'site1' runs a Keystone with a Galera database (each site uses its own "
         "node): expected exactly one host with role 'database', found 2"),
        (lambda: keystone_per_site("galera", n=1), lambda d: None,
         "deployment.database",
         "galera needs at least 2 hosts with role 'database' (a 1-node cluster is not a "
         "cluster), found 1"),
        # workload: services and regions
        (keystone_per_site,
         lambda d: d["workload"]["scenarios"].append(
             {"name": "NovaServers.boot_server", "runner": {"type": "times", "times": 1}}),
         "workload.scenarios[1].name",
         "NovaServers.boot_server needs nova: set deployment.control "
         "(per_site or {centralized: <site>})"),
        (keystone_per_site,
         lambda d: d["workload"]["scenarios"][0].update(
             name="GlanceImages.create_and_delete_image"),
         "workload.scenarios[0].name",
         "GlanceImages.create_and_delete_image needs glance: set deployment.control "
         "(per_site or {centralized: <site>})"),
        (central_control, lambda d: d["workload"]["scenarios"][0].update(to="edge1"),
         "workload.scenarios[0].to",
         "site 'edge1' is not a region (deployment.control is {centralized: core}); "
         "targets: core or 'local'"),
        (central_control, lambda d: d["workload"]["scenarios"][0].update(to=["core", "edge*"]),
         "workload.scenarios[0].to",
         "site 'edge1' is not a region (deployment.control is {centralized: core}); "
         "targets: core or 'local'"),
        (central_control,
         lambda d: d["workload"]["scenarios"][0].update(name="NovaServers.boot_servr"),
         "workload.scenarios[0].name",
         "expected a scenario name (see README: Scenarios), got 'NovaServers.boot_servr' "
         "(did you mean 'NovaServers.boot_server'?)"),
        (central_control,
         lambda d: d["workload"]["scenarios"][0].update(name="novaservers.boot_server"),
         "workload.scenarios[0].name",
         "expected a scenario name (see README: Scenarios), got 'novaservers.boot_server' "
         "(did you mean 'NovaServers.boot_server'?)"),
        (central_control,
         lambda d: d["workload"]["scenarios"][0].update(name="Cinder.create_volume"),
         "workload.scenarios[0].name",
         "expected a scenario name (see README: Scenarios), got 'Cinder.create_volume'"),
    ],
)
def test_bad_layouts(make: Any, mutate: Any, path: str, expected: str) -> None:
    doc = copy.deepcopy(make())
    mutate(doc)
    assert error(doc) == (path, expected)


def test_region_per_site_targets_any_site() -> None:
    doc = region_per_site()
    doc["workload"]["scenarios"][0]["to"] = "edge1"
    assert parse(doc).workload.scenarios[0].targets == ("edge1",)


def test_keystone_only_to_all_is_every_keystone() -> None:
    doc = keystone_per_site()
    doc["workload"]["scenarios"][0]["to"] = "all"
    assert parse(doc).workload.scenarios[0].targets == ("site1", "site2", "site3")


@pytest.mark.parametrize("name", sorted(SCENARIO_SERVICE))
def test_every_scenario_needs_its_service(name: str) -> None:
    scenario = {"name": name, "runner": {"type": "times", "times": 1}}
    central = central_control()
    central["workload"]["scenarios"] = [scenario]
    assert parse(central).workload.scenarios[0].name == name
    only_keystone = keystone_per_site()
    only_keystone["workload"]["scenarios"] = [scenario]
    if SCENARIO_SERVICE[name] in ("identity", "http", "dummy"):
        assert parse(only_keystone).workload.scenarios[0].name == name
    else:
        service = SERVICE_OF_TYPE[SCENARIO_SERVICE[name]]
        assert error(only_keystone) == (
            "workload.scenarios[0].name",
            f"{name} needs {service}: set deployment.control "
            "(per_site or {centralized: <site>})")


# --------------------------------------------------------------------------- the tables


def test_roles() -> None:
    assert set(ROLES) == {"database", "keystone", "control", "compute", "load"}


def test_scenario_table() -> None:
    assert set(SCENARIO_SERVICE.values()) == set(SERVICE_OF_TYPE) | {"http", "dummy"}
    expected = {
        "identity": {
            "keystone.authenticate_and_validate_token", "keystone.create_and_delete_user",
            "keystone.create_and_list_projects", "keystone.list_users",
            "KeystoneBasic.authenticate_user_and_validate_token",
            "KeystoneBasic.create_delete_user", "KeystoneBasic.create_and_list_tenants",
            "KeystoneBasic.create_and_list_users", "KeystoneBasic.create_user"},
        "compute": {"NovaServers.boot_and_delete_server", "NovaServers.boot_and_list_server",
                    "NovaServers.boot_server"},
        "image": {"GlanceImages.create_and_delete_image", "GlanceImages.create_and_list_image",
                  "GlanceImages.create_and_download_image"},
        "network": {"NeutronNetworks.create_and_list_networks",
                    "NeutronNetworks.create_and_delete_networks",
                    "NeutronNetworks.create_and_list_ports"},
        "placement": {"Placement.create_and_delete_resource_provider",
                      "Placement.set_inventory_and_allocate"},
    }
    for service_type, names in expected.items():
        assert names <= {n for n, t in SCENARIO_SERVICE.items() if t == service_type}


def test_readme_lists_every_scenario() -> None:
    readme = (TOPOLOGIES.parent / "README.md").read_text()
    section = readme.split("### Scenarios", 1)[1].split("\n## ", 1)[0]
    listed = {}
    for line in section.split("\n- ")[1:]:
        service_type, names = line.split(":", 1)
        listed |= {n: service_type for n in re.findall(r"`([^`]+)`", names)}
    assert listed == SCENARIO_SERVICE


# --------------------------------------------------------------------------- shipped files


def test_central_control_topology() -> None:
    exp = load(TOPOLOGIES / "central-control.yaml")
    d = exp.deployment
    assert (d.keystone_site, d.control_site, d.database) == ("core", "core", "per_site")
    assert [h.computes for s in exp.sites for h in s.hosts] == [0, 2, 2]
    assert [sc.name for sc in exp.workload.scenarios] == [
        "NovaServers.boot_and_delete_server", "GlanceImages.create_and_delete_image",
        "NeutronNetworks.create_and_delete_networks",
        "KeystoneBasic.authenticate_user_and_validate_token"]
    assert all(sc.targets == ("core",) for sc in exp.workload.scenarios)
    assert exp.workload.scenarios[1].args == {"image_size_mb": 1}
    assert exp.workload.sla.failure_rate_max_pct == 0.0
    assert exp.wan.default.delay_ms == 25.0


def test_region_per_site_topology() -> None:
    exp = load(TOPOLOGIES / "region-per-site.yaml")
    assert exp.deployment.control == "per_site"
    assert exp.deployment.regions(exp.site_names) == ["core", "edge1"]
    boot, auth = exp.workload.scenarios
    assert boot.targets is None and auth.targets == ("core", "edge1")


def test_keystone_galera_topology() -> None:
    exp = load(TOPOLOGIES / "keystone-galera.yaml")
    assert exp.site_names == ["site1", "site2", "site3"]
    assert exp.deployment.database == "galera" and exp.deployment.control is None
    assert all(sc.targets is None for sc in exp.workload.scenarios)


def test_keystone_central_db_topology() -> None:
    exp = load(TOPOLOGIES / "keystone-central-db.yaml")
    assert exp.deployment.keystone_sites(exp.site_names) == ["site1", "site2", "site3"]
    assert (exp.deployment.database, exp.deployment.database_site) == ("central", "site1")
    assert [len(s.hosts_with("database")) for s in exp.sites] == [1, 0, 0]


def test_every_region_of_a_per_site_control_plane_needs_a_compute() -> None:
    doc = region_per_site()
    doc["sites"][1]["hosts"][0]["roles"].remove("compute")
    with pytest.raises(ExperimentError) as e:
        parse(doc, "r.yaml")
    assert str(e.value).startswith("r.yaml: sites[1].hosts: region 'edge1' has no host with "
                                   "role 'compute'")
