"""Deployment method kolla: the experiment's `deployment` (schema and layouts), the
rendered Kolla-Ansible inputs (checked against expected files, and parsed as Ansible
and YAML read them), clouds.yaml, the venv's lock and interpreter, the environment.

The expected files live in tests/unit/data/kolla/<layout>/ and the tests never write
them: after a deliberate change to the templates, rewrite them with
`python tests/regenerate_expected.py kolla` and review the diff.
"""

from __future__ import annotations

import copy
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from femdc_bench.deploy import kolla
from femdc_bench.experiment import ExperimentError, load, parse
from femdc_bench.model import (
    KOLLA_CONTROLLED_GLOBALS,
    KOLLA_VERSIONS,
    Experiment,
    Host,
    Inventory,
)

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parents[1] / "data" / "kolla"

LAYOUTS: dict[str, dict[str, Any]] = {
    # a VIP (haproxy + keepalived), a registry
    "central-control": {"internal_vip": {"core": "192.0.2.250"},
                        "registry": "registry.example:4000",
                        "neutron_external_interface": "eth2"},
    # no VIP (the control hosts' addresses), extra globals, a dummy external interface
    "region-per-site": {"globals": {"enable_fluentd": False,
                                    "openstack_logging_debug": "True"}},
}


def kolla_doc(layout: str, **kolla_keys: Any) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "topologies" / f"{layout}.yaml").read_text())
    doc["deployment"] = {**doc["deployment"], "method": "kolla", "release": "2026.2",
                         "kolla": {"network_interface": "eth1", **kolla_keys}}
    return doc


def experiment(layout: str, **kolla_keys: Any) -> Experiment:
    return parse(kolla_doc(layout, **kolla_keys), f"{layout}.yaml")


def inventory(exp: Experiment) -> Inventory:
    """Fixed addresses: site i, host j -> 192.0.2.(10 i + j + 10)."""
    hosts = [Host(alias=h.name, address=f"192.0.2.{10 * i + j + 10}", site=s.name,
                  roles=h.roles, ssh_user="root", ssh_key="/home/op/.ssh/id_ed25519")
             for i, s in enumerate(exp.sites) for j, h in enumerate(s.hosts)]
    return Inventory(provider="static", hosts=tuple(hosts))


def rendered(layout: str) -> dict[str, str]:
    exp = experiment(layout, **LAYOUTS[layout])
    return kolla.render(exp, inventory(exp))


# --------------------------------------------------------------------------- expected files


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_rendered_files_are_the_expected_ones(layout: str) -> None:
    files = rendered(layout)
    base = DATA / layout
    expected = {p.relative_to(base).as_posix(): p.read_text()
                for p in sorted(base.rglob("*")) if p.is_file()}
    assert sorted(files) == sorted(expected)
    for rel, text in files.items():
        assert text == expected[rel], f"{layout}/{rel} differs (a deliberate change: " \
                                      "python tests/regenerate_expected.py kolla)"


def test_files_per_region() -> None:
    assert sorted(rendered("central-control")) == ["regions/core/globals.yml",
                                                   "regions/core/multinode"]
    assert sorted(rendered("region-per-site")) == [
        "regions/core/globals.yml", "regions/core/multinode",
        "regions/edge1/config/global.conf", "regions/edge1/config/nova.conf",
        "regions/edge1/globals.yml", "regions/edge1/multinode"]


# --------------------------------------------------------------------------- parsed


def ansible_inventory(tmp_path: Path, text: str) -> Any:
    """The inventory as ansible-core's INI plugin reads it."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    path = tmp_path / "multinode"
    path.write_text(text)
    return InventoryManager(loader=DataLoader(), sources=[str(path)])


def hosts_of(inv: Any, group: str) -> list[str]:
    return sorted(h.name for h in inv.get_hosts(pattern=group))


def test_central_inventory_as_ansible_reads_it(tmp_path: Path) -> None:
    inv = ansible_inventory(tmp_path, rendered("central-control")["regions/core/multinode"])
    assert hosts_of(inv, "control") == ["core-ctl"]
    assert hosts_of(inv, "compute") == ["edge1-node", "edge2-node"]
    # kolla's service groups follow the top groups
    for group in ("mariadb", "keystone", "nova-api", "placement-api", "glance-api",
                  "neutron-server", "ovn-northd", "rabbitmq", "memcached", "loadbalancer"):
        assert hosts_of(inv, group) == ["core-ctl"], group
    for group in ("ovn-controller-compute", "hacluster-remote", "collectd"):
        assert hosts_of(inv, group) == ["edge1-node", "edge2-node"], group
    assert hosts_of(inv, "deployment") == ["localhost"]
    node = inv.get_host("edge2-node").get_vars()
    assert node["ansible_host"] == "192.0.2.30" and node["ansible_user"] == "root"
    assert node["ansible_ssh_private_key_file"] == "/home/op/.ssh/id_ed25519"
    assert "num_nova_fake_per_node" not in node  # the same on every host: in globals.yml


def test_region_inventories_hold_their_own_hosts(tmp_path: Path) -> None:
    files = rendered("region-per-site")
    for region in ("core", "edge1"):
        inv = ansible_inventory(tmp_path, files[f"regions/{region}/multinode"])
        assert hosts_of(inv, "control") == [f"{region}-ctl"]
        assert hosts_of(inv, "compute") == [f"{region}-ctl"]
        assert hosts_of(inv, "ovn-controller") == [f"{region}-ctl"]


def globals_of(layout: str, region: str) -> dict[str, Any]:
    return yaml.safe_load(rendered(layout)[f"regions/{region}/globals.yml"])


def test_central_globals() -> None:
    g = globals_of("central-control", "core")
    assert g["openstack_release"] == "2026.2" and g["kolla_base_distro"] == "debian"
    assert g["network_interface"] == "eth1" and g["neutron_external_interface"] == "eth2"
    assert g["kolla_internal_vip_address"] == "192.0.2.250"
    assert g["enable_haproxy"] is True and g["enable_keepalived"] is True
    assert g["docker_registry"] == "registry.example:4000"
    assert g["enable_openstack_core"] is False
    for svc in ("keystone", "glance", "placement", "nova", "neutron"):
        assert g[f"enable_{svc}"] is True, svc
    assert g["enable_horizon"] is False
    assert g["neutron_plugin_agent"] == "ovn"
    assert g["enable_nova_fake"] is True and g["num_nova_fake_per_node"] == 2
    assert g["openstack_region_name"] == "core" and g["multiple_regions_names"] == ["core"]
    assert "kolla_internal_fqdn_r1" not in g and "node_custom_config" not in g


def test_region_globals_share_the_first_keystone() -> None:
    core, edge = globals_of("region-per-site", "core"), globals_of("region-per-site", "edge1")
    assert core["enable_keystone"] is True and edge["enable_keystone"] is False
    assert edge["enable_horizon"] is False
    assert core["multiple_regions_names"] == ["core", "edge1"]
    assert "multiple_regions_names" not in edge
    assert edge["openstack_region_name"] == "edge1"
    # no VIP given: each region's control host, without haproxy
    assert core["kolla_internal_vip_address"] == "192.0.2.10" and core["enable_haproxy"] is False
    assert edge["kolla_internal_vip_address"] == "192.0.2.20"
    assert edge["kolla_internal_fqdn_r1"] == "192.0.2.10"
    assert "kolla_internal_fqdn_r1" in edge["keystone_internal_url"]
    assert edge["node_custom_config"] == "{{ node_config }}/config"
    assert core["keepalived_virtual_router_id"] != edge["keepalived_virtual_router_id"]
    assert "openstack_auth" not in edge  # 2026.x: kolla's clouds.yaml takes the URL
    assert core["neutron_external_interface"] == kolla.DUMMY_EXTERNAL
    assert core["enable_fluentd"] is False and edge["openstack_logging_debug"] == "True"


def test_openstack_auth_before_2026() -> None:
    doc = kolla_doc("region-per-site")
    doc["deployment"]["release"] = "2025.2"
    exp = parse(doc)
    g = yaml.safe_load(kolla.render(exp, inventory(exp))["regions/edge1/globals.yml"])
    assert g["openstack_auth"]["auth_url"] == "{{ keystone_internal_url }}"
    assert g["openstack_auth"]["password"] == "{{ keystone_admin_password }}"


def test_overrides_point_at_the_first_keystone() -> None:
    import configparser

    files = rendered("region-per-site")
    for name, section in (("global.conf", "keystone_authtoken"), ("nova.conf", "placement")):
        cp = configparser.ConfigParser(interpolation=None)
        cp.read_string(files[f"regions/edge1/config/{name}"])
        assert cp[section]["auth_url"] == "{{ keystone_internal_url }}", name


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_globals_keys_are_controlled_or_given(layout: str) -> None:
    given = set(LAYOUTS[layout].get("globals", {}))
    for rel, text in rendered(layout).items():
        if rel.endswith("globals.yml"):
            keys = set(yaml.safe_load(text))
            assert keys - given <= set(KOLLA_CONTROLLED_GLOBALS), keys - given


def test_computes_that_differ_go_per_host(tmp_path: Path) -> None:
    doc = kolla_doc("central-control")
    doc["sites"][1] = {"name": "edge1", "hosts": [
        {"name": "node", "roles": ["compute", "load"], "computes": 3}]}
    doc["sites"].append({"name": "edge2", "hosts": [
        {"name": "node", "roles": ["compute", "load"], "computes": 5}]})
    exp = parse(doc)
    files = kolla.render(exp, inventory(exp))
    assert "num_nova_fake_per_node" not in yaml.safe_load(files["regions/core/globals.yml"])
    inv = ansible_inventory(tmp_path, files["regions/core/multinode"])
    assert inv.get_host("edge1-node").get_vars()["num_nova_fake_per_node"] == 3
    assert inv.get_host("edge2-node").get_vars()["num_nova_fake_per_node"] == 5


def test_non_root_user_becomes_root(tmp_path: Path) -> None:
    exp = experiment("central-control")
    inv = inventory(exp)
    import dataclasses

    inv = dataclasses.replace(inv, hosts=tuple(dataclasses.replace(h, ssh_user="debian",
                                                                   ssh_port=2222)
                                               for h in inv.hosts))
    v = ansible_inventory(tmp_path, kolla.render(exp, inv)["regions/core/multinode"]) \
        .get_host("core-ctl").get_vars()
    assert v["ansible_user"] == "debian" and v["ansible_become"] == "true"
    assert v["ansible_port"] == 2222


# --------------------------------------------------------------------------- clouds


def test_clouds_yaml(tmp_path: Path) -> None:
    exp = experiment("region-per-site")
    c = kolla.clouds(exp, inventory(exp), run_dir=tmp_path, admin_password="s3cret-admin",
                     agent_python="/opt/agent/bin/python", secrets_file=tmp_path / "secrets.json")
    doc = yaml.safe_load(Path(c.clouds_yaml).read_text())
    assert stat.S_IMODE(os.stat(c.clouds_yaml).st_mode) == 0o600
    assert {k: v["region_name"] for k, v in doc["clouds"].items()} == {"core": "core",
                                                                       "edge1": "edge1"}
    assert {v["auth"]["auth_url"] for v in doc["clouds"].values()} == {
        "http://192.0.2.10:5000/v3"}
    assert c.versions["kolla-ansible"] == "23.0.0" and c.versions["openstack_release"] == "2026.2"
    assert c.versions["ansible-core"].startswith("2.21.")
    assert c.agent_python == "/opt/agent/bin/python"


def test_clouds_use_the_vip() -> None:
    exp = experiment("central-control", **LAYOUTS["central-control"])
    assert {c.auth_url for c in kolla.clouds_for(exp, inventory(exp))} == {
        "http://192.0.2.250:5000/v3"}
    assert {c.region for c in kolla.clouds_for(exp, inventory(exp))} == {"core"}


# --------------------------------------------------------------------------- the experiment


def test_testbed_topologies_validate() -> None:
    for name, regions in (("kolla-central", ["core"]), ("kolla-regions", ["core", "edge1"])):
        exp = load(ROOT / "topologies" / "testbeds" / f"{name}.yaml")
        assert exp.deployment.method == "kolla" and exp.deployment.kolla is not None
        assert kolla.regions(exp) == regions
        # the same experiment as the native one but for `deployment`
        native = "central-control" if name == "kolla-central" else "region-per-site"
        a = yaml.safe_load((ROOT / "topologies" / f"{native}.yaml").read_text())
        b = yaml.safe_load((ROOT / "topologies" / "testbeds" / f"{name}.yaml").read_text())
        assert {k: v for k, v in a.items() if k != "deployment"} == \
            {k: v for k, v in b.items() if k != "deployment"}


def error(doc: dict[str, Any]) -> str:
    with pytest.raises(ExperimentError) as e:
        parse(doc, "x.yaml")
    return str(e.value)


def test_release_rules() -> None:
    doc = kolla_doc("central-control")
    del doc["deployment"]["release"]
    assert "deployment.release: missing required key" in error(doc)
    doc["deployment"]["release"] = "2024.1"
    assert "deployment.release: expected a release kolla-ansible is pinned for" in error(doc)
    doc["deployment"]["release"] = "2025.3"
    assert "deployment.release: expected an OpenStack release like '2025.1'" in error(doc)
    native = yaml.safe_load((ROOT / "topologies" / "central-control.yaml").read_text())
    native["deployment"]["release"] = "2025.1"
    assert "deployment.release: not used by method native" in error(native)
    del native["deployment"]["release"]
    native["deployment"]["kolla"] = {"network_interface": "eth0"}
    assert "deployment.kolla: only with method 'kolla'" in error(native)


def test_kolla_keys() -> None:
    doc = kolla_doc("central-control")
    del doc["deployment"]["kolla"]
    assert "deployment.kolla: missing required key" in error(doc)
    for key, value, expect in (
            ("version", "22.2.0", "kolla-ansible 22.2.0 does not deploy 2026.2"),
            ("version", "23", "expected a kolla-ansible version"),
            ("network_interface", "eth 0", "expected a network interface name"),
            ("internal_vip", {"edge1": "192.0.2.9"}, "site 'edge1' is not a region"),
            ("internal_vip", {"nowhere": "192.0.2.9"}, "expected one of the sites"),
            ("internal_vip", {"core": "192.0.2.300"}, "expected an IP address"),
            ("registry", "https://quay.io", "expected a registry like"),
            ("globals", {"enable_keystone": False}, "globals.enable_keystone: set by "
                                                    "femdc-bench"),
            ("globals", {"ansible_user": "x"}, "globals.ansible_user: set by femdc-bench"),
            ("colour", "red", "unknown key 'colour'")):
        d = kolla_doc("central-control", **{key: value})
        assert expect in error(d), (key, value)
    d = kolla_doc("central-control")
    del d["deployment"]["kolla"]["network_interface"]
    assert "deployment.kolla.network_interface: missing required key" in error(d)
    ok = parse(kolla_doc("central-control", version="23.0.0", horizon=True,
                         base_distro="ubuntu", internal_vip={"core": "2001:db8::5"}))
    k = ok.deployment.kolla
    assert k is not None and k.horizon and k.base_distro == "ubuntu"
    assert k.internal_vip == {"core": "2001:db8::5"}


@pytest.mark.parametrize("change, expect", [
    ({"keystone": "per_site", "control": "per_site"}, "deployment.keystone: method 'kolla' "
                                                      "deploys two layouts"),
    ({"control": None}, "deployment.control: method 'kolla' deploys two layouts"),
    ({"database": {"central": "core"}}, "deployment.database: method 'kolla' deploys"),
    ({"database": "galera"}, "deployment.database: method 'kolla' deploys"),
])
def test_layouts_kolla_does_not_deploy(change: dict[str, Any], expect: str) -> None:
    doc = kolla_doc("region-per-site")
    for k, v in change.items():
        if v is None:
            doc["deployment"].pop(k)
        else:
            doc["deployment"][k] = v
    msg = error(doc)
    assert expect in msg and "central control" in msg and "\n" not in msg


def test_the_control_host_holds_database_and_keystone() -> None:
    doc = kolla_doc("region-per-site")
    doc["sites"][0]["hosts"] = [
        {"name": "ctl", "roles": ["database", "control", "compute", "load"]},
        {"name": "ks", "roles": ["keystone"]}]
    assert "sites[0].hosts: method 'kolla' runs a region's database, keystone and " \
           "control plane on one host" in error(doc)
    doc = kolla_doc("region-per-site")
    doc["sites"][1]["hosts"] = [
        {"name": "ctl", "roles": ["control", "compute", "load"]},
        {"name": "db", "roles": ["database"]}]
    assert "'edge1-db' has role 'database'" in error(doc)


# --------------------------------------------------------------------------- venv, env


def test_locks_pin_the_versions_of_the_model() -> None:
    for release, version in KOLLA_VERSIONS.items():
        pins = kolla.lock_versions(release)
        assert pins["kolla-ansible"] == version, release
        assert "ansible-core" in pins and "ansible" in pins
        assert kolla.python_min(release) >= (3, 11)
    assert kolla.python_min("2026.2") == (3, 12)  # kolla-ansible 23 (FINDINGS)
    assert kolla.venv_dir("2026.2").startswith("/var/cache/femdc-bench/venvs/kolla-")
    assert kolla.venv_dir("2026.2") == kolla.venv_dir("2026.2", "23.0.0")
    assert kolla.venv_dir("2026.2") != kolla.venv_dir("2026.2", "23.0.1")
    assert "kolla-ansible==23.0.1\n" in kolla.lock_text("2026.2", "23.0.1")


def fake_python(tmp_path: Path, name: str, version: str) -> str:
    p = tmp_path / name
    p.write_text(f"#!/bin/sh\necho {version}\n")
    p.chmod(0o755)
    return str(p)


def test_find_python_takes_the_first_new_enough(tmp_path: Path) -> None:
    old, new = fake_python(tmp_path, "py311", "3 11"), fake_python(tmp_path, "py312", "3 12")
    assert kolla.find_python((3, 12), lambda: iter([old, "/nonexistent", new])) == new
    assert kolla.find_python((3, 11), lambda: iter([old, new])) == old
    with pytest.raises(kolla.KollaError, match=r"needs Python >= 3.12 .*tried .*py311"):
        kolla.find_python((3, 12), lambda: iter([old]))


def test_kolla_env_keeps_our_ansible_settings_out(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("ANSIBLE_CALLBACK_PLUGINS", "/ours")
    monkeypatch.setenv("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
    monkeypatch.setenv("VIRTUAL_ENV", "/work/main/.venv")
    monkeypatch.setenv("PYTHONPATH", "/ours")
    env = kolla.kolla_env("/v/kolla-x", tmp_path)
    assert "ANSIBLE_CALLBACK_PLUGINS" not in env and "ANSIBLE_PYTHON_INTERPRETER" not in env
    assert "VIRTUAL_ENV" not in env and "PYTHONPATH" not in env
    assert env["PATH"].startswith("/v/kolla-x/bin:")
    assert env["ANSIBLE_COLLECTIONS_PATH"] == "/v/kolla-x/collections"
    argv = kolla.step_argv("/v/kolla-x", "deploy", tmp_path / "regions" / "core")
    assert argv[:2] == ["/v/kolla-x/bin/kolla-ansible", "deploy"]
    assert "--configdir" in argv and not any("password" in a for a in argv)


def test_passwords_from_genpwd_stay_secret(tmp_path: Path) -> None:
    """kolla-genpwd (a stand-in script here) fills the example file; the result is 0600,
    and secrets.json gets the admin password for bench and the values for backups."""
    venv = tmp_path / "venv"
    example = venv / "share" / "kolla-ansible" / "etc_examples" / "kolla" / "passwords.yml"
    example.parent.mkdir(parents=True)
    example.write_text("keystone_admin_password:\ndatabase_password:\n")
    (venv / "bin").mkdir()
    genpwd = venv / "bin" / "kolla-genpwd"
    # like kolla-genpwd: the file written anew, 0640
    genpwd.write_text("#!/bin/sh\nrm \"$2\"; umask 027\n"
                      "printf 'keystone_admin_password: adm1n-pa55word\\n"
                      "database_password: db-pa55word-long\\n' > \"$2\"\n")
    genpwd.chmod(0o755)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    log = tmp_path / "genpwd.log"
    pw = kolla.passwords(str(venv), run_dir, log)
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600
    secrets = yaml.safe_load((run_dir / "secrets.json").read_text())
    assert stat.S_IMODE((run_dir / "secrets.json").stat().st_mode) == 0o600
    assert secrets["admin"] == "adm1n-pa55word"
    assert secrets["database_password"] == "db-pa55word-long"
    assert "pa55word" not in log.read_text()
    assert sorted(p.name for p in run_dir.iterdir()) == ["kolla-passwords.yml", "secrets.json"]
    first = pw.read_text()
    genpwd.write_text("#!/bin/sh\nexit 1\n")  # a second deploy keeps the run's passwords
    assert kolla.passwords(str(venv), run_dir, log).read_text() == first


def test_render_refuses_other_methods() -> None:
    doc = copy.deepcopy(yaml.safe_load((ROOT / "topologies" / "central-control.yaml")
                                       .read_text()))
    exp = parse(doc)
    with pytest.raises(kolla.KollaError, match="not 'kolla'"):
        kolla.render(exp, inventory(exp))


def test_destroy_without_a_venv_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.setattr(kolla.ship, "VENV_ROOT", str(tmp_path / "venvs"))
    exp = experiment("region-per-site")
    kolla.destroy(exp, inventory(exp), run_dir=tmp_path, log=tmp_path / "logs" / "d.log")
    assert not (tmp_path / "logs").exists()
    argv = kolla.destroy_argv("/v", tmp_path / "regions" / "core")
    assert argv[1] == "destroy" and argv[-1] == "--yes-i-really-really-mean-it"
