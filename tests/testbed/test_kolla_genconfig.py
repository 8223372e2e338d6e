"""Kolla-Ansible itself reads what femdc-bench renders: `kolla-ansible genconfig` (every
service's configuration files, no container touched) on the two testbed topologies,
offline, on this machine. Minutes; run by hand (`tox -e testbed`, or
`pytest -m testbed tests/testbed/test_kolla_genconfig.py`), as root, under
`flock /tmp/femdc-heavy.lock`.

How (../shared/FINDINGS.md, "Kolla-Ansible"): kolla-ansible's venv is built by the
deploy's own code (`kolla.ensure_venv`, the release's lock; PyPI only), passwords come
from `kolla.passwords` (kolla-genpwd), the inventory from `kolla.render` with every host
reached by a local connection, facts come from a jsonfile cache filled once from this
machine and given each host's name and address on `network_interface`, and
`node_config_directory` points each host's files into a temporary directory.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from femdc_bench.deploy import kolla
from femdc_bench.experiment import parse
from femdc_bench.model import Experiment, Host, Inventory

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]
IFACE = "femdc0"  # network_interface in the facts (not an interface of this machine)


def experiment(name: str, nodes: Path) -> Experiment:
    doc = yaml.safe_load((ROOT / "topologies" / "testbeds" / f"{name}.yaml").read_text())
    doc["deployment"]["kolla"]["network_interface"] = IFACE
    doc["deployment"]["kolla"]["globals"] = {
        "node_config_directory": f"{nodes}/{{{{ inventory_hostname }}}}/etc/kolla"}
    return parse(doc, f"{name}.yaml")


def inventory(exp: Experiment, python: str) -> Inventory:
    hosts = [Host(alias=h.name, address=f"10.9.{i}.{j + 10}", site=s.name, roles=h.roles,
                  extra={"ansible_connection": "local", "ansible_become": "false",
                         "ansible_python_interpreter": python})
             for i, s in enumerate(exp.sites) for j, h in enumerate(s.hosts)]
    return Inventory(provider="static", hosts=tuple(hosts))


GATHER = """\
- hosts: all
  gather_facts: true
  tasks: []
"""


def fill_fact_cache(venv: str, region_dirs: list[Path], env: dict[str, str],
                    inv: Inventory, cache: Path, log: Path) -> None:
    """Gather this machine's facts once per host of every region (local connection),
    then give each host its own name and an address on IFACE, as a testbed node has."""
    playbook = cache.parent / "gather.yml"
    playbook.write_text(GATHER)
    for region_dir in region_dirs:
        with open(log, "a") as out:
            subprocess.run([f"{venv}/bin/ansible-playbook", "-i",
                            str(region_dir / "multinode"), str(playbook)], stdout=out,
                           stderr=subprocess.STDOUT, env=env, check=True, timeout=600)
    for h in inv.hosts:
        files = [p for p in cache.iterdir() if p.name == h.alias or p.name.endswith(
            f"_{h.alias}")]
        assert files, f"no cached facts for {h.alias} in {cache}: {os.listdir(cache)}"
        for f in files:
            raw = json.loads(f.read_text())
            wrapped = isinstance(raw, dict) and "__payload__" in raw
            facts = json.loads(raw["__payload__"]) if wrapped else raw
            patch_facts(facts, h)
            f.write_text(json.dumps({**raw, "__payload__": json.dumps(facts)} if wrapped
                                    else facts))


def patch_facts(facts: dict[str, Any], h: Host) -> None:
    prefix = "ansible_" if "ansible_hostname" in facts else ""
    iface = {"device": IFACE, "active": True, "type": "ether", "mtu": 1500,
             "macaddress": "52:54:00:00:00:01",
             "ipv4": {"address": h.address, "netmask": "255.255.255.0",
                      "network": h.address.rsplit(".", 1)[0] + ".0", "prefix": "24"},
             "ipv6": []}
    facts[prefix + IFACE] = iface
    ext = kolla.DUMMY_EXTERNAL.replace("-", "_")
    facts[prefix + ext] = {**iface, "device": kolla.DUMMY_EXTERNAL, "ipv4": {}}
    facts[prefix + "interfaces"] = sorted({*facts.get(prefix + "interfaces", []), IFACE,
                                           kolla.DUMMY_EXTERNAL})
    facts[prefix + "hostname"] = facts[prefix + "nodename"] = h.alias
    facts[prefix + "fqdn"] = h.alias
    facts[prefix + "default_ipv4"] = {**iface["ipv4"], "interface": IFACE}


def ini(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.read_string(path.read_text())
    return cp


def genconfig(name: str, tmp_path: Path) -> tuple[Experiment, Inventory, Path, float]:
    t0 = time.monotonic()
    logs = tmp_path / "logs"
    logs.mkdir()
    release = "2026.2"
    venv = kolla.ensure_venv(release, None, logs / "kolla-venv.log")
    nodes = tmp_path / "nodes"
    exp = experiment(name, nodes)
    assert exp.deployment.release == release
    inv = inventory(exp, f"{venv}/bin/python")
    run_dir = tmp_path / "run"
    (run_dir / "tmp" / "kolla-ansible").mkdir(parents=True)
    kolla.write_config(exp, inv, run_dir / "kolla")
    pw = kolla.passwords(venv, run_dir, logs / "kolla-genpwd.log")
    cache = tmp_path / "facts"
    env = {**kolla.kolla_env(venv, run_dir), "ANSIBLE_CACHE_PLUGIN": "jsonfile",
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache),
           "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "86400"}
    region_dirs = [run_dir / "kolla" / "regions" / r for r in kolla.regions(exp)]
    for region_dir in region_dirs:
        kolla._link_passwords(region_dir, pw)
    fill_fact_cache(venv, region_dirs, env, inv, cache, logs / "gather.log")
    for region_dir in region_dirs:
        log = logs / f"kolla-genconfig-{region_dir.name}.log"
        with open(log, "a") as out:
            p = subprocess.run(kolla.step_argv(venv, "genconfig", region_dir), stdout=out,
                               stderr=subprocess.STDOUT, env=env, timeout=900)
        tail = "\n".join(log.read_text().splitlines()[-30:])
        assert p.returncode == 0, f"genconfig of {name}/{region_dir.name} failed:\n{tail}"
    return exp, inv, nodes, time.monotonic() - t0


def test_groups_table_matches_kolla_ansibles_own() -> None:
    """Every group of the installed kolla-ansible's multinode example is in
    playbooks/kolla/files/groups.yml with the same children."""
    venv = kolla.ensure_venv("2026.2", None, Path("/tmp/femdc-kolla-venv.log"))
    example = Path(venv) / "share" / "kolla-ansible" / "ansible" / "inventory" / "multinode"
    theirs: dict[str, list[str]] = {}
    group = None
    for line in example.read_text().splitlines():
        line = line.split("#")[0].strip()
        m = re.fullmatch(r"\[([^\]]+):children\]", line)
        if m:
            group = m.group(1)
            theirs[group] = []
        elif line.startswith("["):
            group = None
        elif line and group:
            theirs[group].append(line.split()[0])
    ours = yaml.safe_load(kolla.GROUPS.read_text())
    assert theirs and {g: ours.get(g) for g in theirs} == theirs


def fake_computes_are_kollas_deploy_step(venv: str) -> None:
    """kolla-ansible 23 renders the fake computes' configuration (nova-compute-fake-N,
    compute_driver = fake.FakeDriver) in its `deploy` action only, not in genconfig:
    what genconfig shows is that the real nova-compute is off where enable_nova_fake
    is on. The step that makes them is checked to be there, driven by our keys."""
    role = Path(venv) / "share" / "kolla-ansible" / "ansible" / "roles" / "nova-cell"
    deploy = (role / "tasks" / "deploy.yml").read_text()
    assert "config-nova-fake.yml" in deploy and "enable_nova_fake" in deploy
    assert "num_nova_fake_per_node" in (role / "tasks" / "config-nova-fake.yml").read_text()
    assert "compute_driver = fake.FakeDriver" in (role / "templates" / "nova.conf.j2") \
        .read_text()


def check_central(nodes: Path, core: str, libvirt_off: bool = True) -> None:
    etc = nodes / "core-ctl" / "etc" / "kolla"
    api = ini(etc / "nova-api" / "nova.conf")
    assert f"{core}:5000" in api["keystone_authtoken"]["auth_url"]
    assert api["keystone_authtoken"]["region_name"] == "core"
    assert f"{core}:5672" in api["DEFAULT"]["transport_url"]
    ml2 = ini(etc / "neutron-server" / "ml2_conf.ini")
    assert "ovn" in ml2["ml2"]["mechanism_drivers"]
    assert (etc / "keystone-api").is_dir() and not (etc / "horizon").exists()
    for edge in ("edge1-node", "edge2-node"):
        made = {p.name for p in (nodes / edge / "etc" / "kolla").iterdir()}
        assert "ovn-controller" in made, edge
        assert "nova-compute" not in made, edge  # enable_nova_fake: no real nova-compute
        assert not {"keystone-api", "nova-api", "mariadb", "rabbitmq"} & made, edge
        if libvirt_off:
            assert "nova-libvirt" not in made, edge


def check_regions(nodes: Path, core: str, edge: str) -> None:
    for host, region, own in (("core-ctl", "core", core), ("edge1-ctl", "edge1", edge)):
        etc = nodes / host / "etc" / "kolla"
        api = ini(etc / "nova-api" / "nova.conf")
        # the one Keystone, at core, for both regions
        for section in ("keystone_authtoken", "placement", "neutron", "service_user"):
            assert f"{core}:5000" in api[section]["auth_url"], (host, section)
            assert api[section]["region_name"] == region, (host, section)
        assert f"{core}:5000" in api["keystone_authtoken"]["www_authenticate_uri"], host
        # ...and the region's own RabbitMQ and services
        assert f"{own}:5672" in api["DEFAULT"]["transport_url"], host
        glance = ini(etc / "glance-api" / "glance-api.conf")
        assert f"{core}:5000" in glance["keystone_authtoken"]["auth_url"], host
        placement = ini(etc / "placement-api" / "placement.conf")
        assert f"{core}:5000" in placement["keystone_authtoken"]["auth_url"], host
        neutron = ini(etc / "neutron-server" / "neutron.conf")
        assert f"{core}:5000" in neutron["nova"]["auth_url"], host
        assert neutron["nova"]["region_name"] == region, host
        assert "nova-compute" not in {p.name for p in etc.iterdir()}, host
    assert (nodes / "core-ctl" / "etc" / "kolla" / "keystone-api").is_dir()
    assert not (nodes / "edge1-ctl" / "etc" / "kolla" / "keystone-api").exists()


def test_central_control(tmp_path: Path) -> None:
    exp, inv, nodes, seconds = genconfig("kolla-central", tmp_path)
    print(f"kolla-central: genconfig in {seconds:.0f} s")
    check_central(nodes, inv.host("core-ctl").address)
    fake_computes_are_kollas_deploy_step(kolla.venv_dir("2026.2"))


def test_region_per_site(tmp_path: Path) -> None:
    exp, inv, nodes, seconds = genconfig("kolla-regions", tmp_path)
    print(f"kolla-regions: genconfig in {seconds:.0f} s")
    check_regions(nodes, inv.host("core-ctl").address, inv.host("edge1-ctl").address)
