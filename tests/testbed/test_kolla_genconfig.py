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


def test_central_control(tmp_path: Path) -> None:
    exp, inv, nodes, seconds = genconfig("kolla-central", tmp_path)
    print(f"kolla-central: genconfig in {seconds:.0f} s")
    core = inv.host("core-ctl").address
    api = ini(nodes / "core-ctl" / "etc" / "kolla" / "nova-api" / "nova.conf")
    assert core in api["keystone_authtoken"]["auth_url"]
    assert api["keystone_authtoken"]["region_name"] == "core"
    ml2 = ini(nodes / "core-ctl" / "etc" / "kolla" / "neutron-server" / "ml2_conf.ini")
    assert "ovn" in ml2["ml2"]["mechanism_drivers"]
    for edge in ("edge1-node", "edge2-node"):
        fakes = sorted((nodes / edge / "etc" / "kolla").glob("nova-compute-fake-*"))
        assert [p.name for p in fakes] == ["nova-compute-fake-1", "nova-compute-fake-2"], edge
        conf = ini(fakes[0] / "nova.conf")
        assert "fake" in conf["DEFAULT"]["compute_driver"].lower()
        assert core in conf["placement"]["auth_url"]
        assert not (nodes / edge / "etc" / "kolla" / "keystone").exists()
    assert (nodes / "core-ctl" / "etc" / "kolla" / "keystone").is_dir()
    assert not (nodes / "core-ctl" / "etc" / "kolla" / "horizon").exists()


def test_region_per_site(tmp_path: Path) -> None:
    exp, inv, nodes, seconds = genconfig("kolla-regions", tmp_path)
    print(f"kolla-regions: genconfig in {seconds:.0f} s")
    core, edge = inv.host("core-ctl").address, inv.host("edge1-ctl").address
    for host, region in (("core-ctl", "core"), ("edge1-ctl", "edge1")):
        etc = nodes / host / "etc" / "kolla"
        api = ini(etc / "nova-api" / "nova.conf")
        # the one Keystone, at core, for both regions
        assert f"{core}:5000" in api["keystone_authtoken"]["auth_url"], host
        assert f"{core}:5000" in api["keystone_authtoken"]["www_authenticate_uri"], host
        assert f"{core}:5000" in api["placement"]["auth_url"], host
        assert api["placement"]["region_name"] == region
        glance = ini(etc / "glance-api" / "glance-api.conf")
        assert f"{core}:5000" in glance["keystone_authtoken"]["auth_url"], host
        fake = ini(etc / "nova-compute-fake-1" / "nova.conf")
        assert "fake" in fake["DEFAULT"]["compute_driver"].lower(), host
    edge_etc = nodes / "edge1-ctl" / "etc" / "kolla"
    assert not (edge_etc / "keystone").exists()  # no Keystone in region edge1
    # region edge1's own services: its own RabbitMQ, at its own address
    assert edge in ini(edge_etc / "nova-api" / "nova.conf")["DEFAULT"]["transport_url"]
    assert (nodes / "core-ctl" / "etc" / "kolla" / "keystone").is_dir()
