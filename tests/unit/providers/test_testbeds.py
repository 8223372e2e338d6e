"""Providers other than local: provider.* of the experiment file (every type, good and
bad), EnOSlib's configurations built and validated offline, EnOSlib Roles turned into
our Inventory, `up --dry-run` through the CLI, and the example files under
topologies/testbeds/. Nothing here may reach the network: `no_network` makes any
connection attempt or name lookup fail the test."""

from __future__ import annotations

import copy
import dataclasses
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from femdc_bench.cli import main
from femdc_bench.experiment import ExperimentError, parse
from femdc_bench.model import Experiment, flavour_for
from femdc_bench.providers import static, testbeds
from femdc_bench.providers.local import ProviderError

ROOT = Path(__file__).resolve().parents[3]
CENTRAL = ROOT / "topologies" / "central-control.yaml"
# the provider examples (topologies/testbeds/ also has the devstack and kolla ones)
TESTBEDS = [ROOT / "topologies" / "testbeds" / f"{p}.yaml"
            for p in ("chameleon", "g5k", "static", "vagrant")]
METHODS = {"native": CENTRAL, "devstack": ROOT / "topologies" / "testbeds" /
           "devstack-central.yaml", "kolla": ROOT / "topologies" / "testbeds" /
           "kolla-central.yaml"}
BASE = yaml.safe_load(CENTRAL.read_text())
ALIASES = ["core-ctl", "edge1-node", "edge2-node"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def f(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{name}{args[1:] if name == 'connect' else args}")
            raise OSError(f"test: no network ({name})")
        return f

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    yield attempts
    assert attempts == [], f"the network was asked: {attempts}"


def exp_with(provider: dict[str, Any]) -> Experiment:
    doc = copy.deepcopy(BASE)
    doc["provider"] = provider
    return parse(doc, "x.yaml")


def error_of(provider: dict[str, Any]) -> str:
    with pytest.raises(ExperimentError) as e:
        exp_with(provider)
    text = str(e.value)
    assert "\n" not in text
    return text


STATIC = {"type": "static", "hosts": {
    "core-ctl": {"address": "10.0.0.1", "user": "debian", "key": "~/.ssh/id_ed25519"},
    "edge1-node": {"address": "10.0.0.2", "port": 2222},
    "edge2-node": {"address": "fd00::3"}}}
G5K = {"type": "g5k", "job_name": "femdc", "walltime": "03:00:00", "env_name": "debian12-min",
       "reservation": "2026-12-24 19:00:00", "queue": "production",
       "clusters": {"core": "rennes/paravance", "edge*": {"site": "nancy", "cluster": "gros"}}}
VAGRANT = {"type": "vagrant", "backend": "virtualbox", "box": "generic/debian12",
           "flavours": {"default": "small", "control": "large", "edge2-node": "big"}}
CHAMELEON = {"type": "chameleon", "kind": "baremetal", "image": "CC-Ubuntu22.04",
             "key_name": "mine", "rc_file": "~/openrc.sh", "lease_name": "l1",
             "walltime": "01:30:00", "flavours": {"default": "compute_skylake"}}


def with_(base: dict[str, Any], **kw: Any) -> dict[str, Any]:
    d = copy.deepcopy(base)
    for k, v in kw.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    return d


# ----------------------------------------------------------------------- schema: good


def test_static_hosts_in_experiment_order_with_defaults() -> None:
    p = exp_with(STATIC).provider
    assert p.type == "static"
    assert [(h.alias, h.address, h.user, h.port, h.key) for h in p.hosts] == [
        ("core-ctl", "10.0.0.1", "debian", 22, "~/.ssh/id_ed25519"),
        ("edge1-node", "10.0.0.2", "root", 2222, None),
        ("edge2-node", "fd00::3", "root", 22, None)]


def test_g5k_sites_map_to_clusters_first_key_wins() -> None:
    g = exp_with(with_(G5K, clusters={"core": "rennes/paravance", "edge1": "lyon/nova",
                                      "edge*": "nancy/gros", "*": "lille/chiclet"})).provider.g5k
    assert g is not None
    assert g.placement == (("core", "rennes", "paravance"), ("edge1", "lyon", "nova"),
                           ("edge2", "nancy", "gros"))
    assert (g.walltime, g.queue, g.env_name, g.reservation, g.job_name) == (
        "03:00:00", "production", "debian12-min",
        "2026-12-24 19:00:00", "femdc")
    g2 = exp_with({"type": "g5k", "walltime": "1:00:00", "clusters": {"*": "rennes/paravance"}})
    assert g2.provider.g5k is not None
    assert (g2.provider.g5k.queue, g2.provider.g5k.env_name, g2.provider.g5k.job_name) == (
        "default", None, "femdc-bench")


def test_vagrant_and_chameleon_defaults_and_flavours() -> None:
    v = exp_with({"type": "vagrant"}).provider.vagrant
    assert v is not None
    assert (v.backend, v.box, v.cidr, v.flavours) == (
        "libvirt", "generic/debian12", "192.168.42.0/24", (("default", "medium"),))
    flav = exp_with(VAGRANT).provider.vagrant.flavours  # type: ignore[union-attr]
    # alias first, then the heaviest role, then default
    assert flavour_for(flav, "edge2-node", ("compute", "load")) == "big"
    assert flavour_for(flav, "core-ctl", ("database", "keystone", "control")) == "large"
    assert flavour_for(flav, "edge1-node", ("compute", "load")) == "small"
    c = exp_with(CHAMELEON).provider.chameleon
    assert c is not None
    assert (c.kind, c.user, c.lease_name, c.walltime, c.rc_file) == (
        "baremetal", "cc", "l1", "01:30:00", "~/openrc.sh")
    kvm = exp_with(with_(CHAMELEON, kind="kvm", lease_name=None, walltime=None,
                         rc_file=None)).provider.chameleon
    assert kvm is not None and kvm.rc_file is None


def test_local_is_unchanged() -> None:
    assert exp_with({"type": "local", "subnet": "10.9.0.0/24"}).provider.subnet == "10.9.0.0/24"
    assert "provider.subnet: 10.0.0.0/30 has room for 1 hosts" in error_of(
        {"type": "local", "subnet": "10.0.0.0/30"})
    assert "provider.hosts: unknown key 'hosts'; expected one of: subnet, type" in error_of(
        {"type": "local", "hosts": {}})


# ----------------------------------------------------------------------- schema: bad


@pytest.mark.parametrize("provider,expected", [
    # static
    (with_(STATIC, hosts={**STATIC["hosts"], "edge3-node": {"address": "10.0.0.9"}}),
     "provider.hosts.edge3-node: not a host of the experiment (did you mean 'edge2-node'?); "
     "hosts: core-ctl, edge1-node, edge2-node"),
    (with_(STATIC, hosts={k: v for k, v in STATIC["hosts"].items() if k != "edge1-node"}),
     "provider.hosts: no entry for edge1-node: every host of the experiment needs its address"),
    (with_(STATIC, hosts={**STATIC["hosts"], "edge1-node": {"address": "node1.example"}}),
     "provider.hosts.edge1-node.address: expected an IP address"),
    (with_(STATIC, hosts={**STATIC["hosts"], "edge1-node": {"address": "10.0.0.1"}}),
     "provider.hosts.edge1-node.address: 10.0.0.1 is also core-ctl's"),
    (with_(STATIC, hosts={**STATIC["hosts"], "edge1-node": {"address": "10.0.0.2",
                                                           "usr": "x"}}),
     "provider.hosts.edge1-node.usr: unknown key 'usr' (did you mean 'user'?); "
     "expected one of: address, device, key, port, user"),
    (with_(STATIC, hosts={**STATIC["hosts"], "edge1-node": {"address": "10.0.0.2",
                                                           "key": "id_rsa"}}),
     "provider.hosts.edge1-node.key: expected a file path, absolute or from '~/'"),
    (with_(STATIC, hosts={**STATIC["hosts"], "edge1-node": {"address": "10.0.0.2",
                                                           "port": 0}}),
     "provider.hosts.edge1-node.port: expected a port from 1 to 65535"),
    (with_(STATIC, hosts=None), "provider.hosts: missing required key"),
    (with_(STATIC, walltime="01:00:00"), "provider.walltime: unknown key 'walltime'; "
     "expected one of: hosts, type"),
    # g5k
    (with_(G5K, walltime="3h"), "provider.walltime: expected a walltime like '02:00:00'"),
    (with_(G5K, reservation="2026-13-45 19:00:00"),
     "provider.reservation: expected a real date like"),
    (with_(G5K, reservation="tomorrow"), "provider.reservation: expected a start date like"),
    (with_(G5K, queue="testing"), "provider.queue: expected one of default, production, "
     "besteffort, got 'testing'"),
    (with_(G5K, clusters={"core": "paravance"}), "provider.clusters.core: expected "
     "'<g5k site>/<cluster>' like 'rennes/paravance' or {site: rennes, cluster: paravance}"),
    (with_(G5K, clusters={"core": "rennes/paravance"}),
     "provider.clusters: no cluster for site(s) edge1, edge2"),
    (with_(G5K, clusters={"*": "rennes/paravance", "edgee*": "nancy/gros"}),
     "provider.clusters.edgee*: matches no site"),
    (with_(G5K, clusters=None), "provider.clusters: missing required key"),
    (with_(G5K, clusters={"*": ["rennes", "paravance"]}),
     "provider.clusters.*: expected a mapping, got ['rennes', 'paravance']"),
    (with_(G5K, clusters={"*": {"site": "rennes"}}),
     "provider.clusters.*.cluster: missing required key"),
    (with_(G5K, box="x"), "provider.box: unknown key 'box'; expected one of: clusters, "
     "env_name, job_name, queue, reservation, type, walltime"),
    # vagrant
    (with_(VAGRANT, backend="qemu"), "provider.backend: expected 'libvirt' or 'virtualbox'"),
    (with_(VAGRANT, flavours={"control": "large"}), "provider.flavours.default: missing "
     "required key"),
    (with_(VAGRANT, flavours={"default": "small", "controll": "large"}),
     "provider.flavours.controll: expected 'default', a role (database, keystone, load, "
     "control, compute) or a host alias (did you mean 'control'?)"),
    (with_(VAGRANT, cidr="192.168.42.0/28"), "provider.cidr: 192.168.42.0/28 has room for "
     "0 VMs"),
    (with_(VAGRANT, cidr="192.168.42.1/24"), "provider.cidr: expected an IPv4 network"),
    # chameleon
    (with_(CHAMELEON, kind="kvm"), "provider.lease_name: only with kind 'baremetal'"),
    (with_(CHAMELEON, kind="vm"), "provider.kind: expected 'kvm' or 'baremetal'"),
    (with_(CHAMELEON, key_name=None), "provider.key_name: missing required key"),
    (with_(CHAMELEON, rc_file="openrc.sh"), "provider.rc_file: expected a file path"),
    # the type
    ({"type": "grid5000"}, "provider.type: expected one of local, static, g5k, vagrant, "
     "chameleon, got 'grid5000'"),
    ({"walltime": "01:00:00"}, "provider.type: missing required key"),
])
def test_bad_provider_is_one_line_naming_the_key(provider: dict[str, Any],
                                                 expected: str) -> None:
    assert f"x.yaml: {expected}" in error_of(provider)


@pytest.mark.parametrize("provider,where,key", [
    (with_(G5K, password="hunter2"), "provider", "password"),
    (with_(CHAMELEON, OS_PASSWORD="hunter2"), "provider", "OS_PASSWORD"),
    (with_(CHAMELEON, application_credential_secret="s"), "provider",
     "application_credential_secret"),
    (with_(STATIC, hosts={**STATIC["hosts"], "edge1-node": {"address": "10.0.0.2",
                                                           "password": "hunter2"}}),
     "provider.hosts.edge1-node", "password"),
    (with_(G5K, clusters={"*": {"site": "rennes", "cluster": "x", "token": "t"}}),
     "provider.clusters.*", "token"),
    (with_(VAGRANT, api_key="k"), "provider", "api_key"),
])
def test_credentials_are_refused_without_echoing_them(provider: dict[str, Any], where: str,
                                                      key: str) -> None:
    text = error_of(provider)
    assert f"x.yaml: {where}: expected a key that is not a credential" in text
    assert repr(key) in text and "hunter2" not in text
    assert "~/.python-grid5000.yaml" in text


def test_a_private_key_itself_is_refused_without_echo() -> None:
    secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU"
    text = error_of(with_(STATIC, hosts={**STATIC["hosts"], "edge1-node": {
        "address": "10.0.0.2", "key": "/" + secret}}))
    assert "provider.hosts.edge1-node.key: expected the path of a private key file" in text
    assert "b3Bl" not in text


# ----------------------------------------------------------------------- EnOSlib confs


def test_g5k_conf_offline_one_node_per_host(no_network: list[str]) -> None:
    exp = exp_with(G5K)
    c = testbeds.conf(exp)
    assert [(m.roles, m.site, m.cluster, m.nodes) for m in c.machines] == [
        (["core-ctl", "site_core", "database", "keystone", "control", "load"], "rennes",
         "paravance", 1),
        (["edge1-node", "site_edge1", "compute", "load"], "nancy", "gros", 1),
        (["edge2-node", "site_edge2", "compute", "load"], "nancy", "gros", 1)]
    assert (c.job_name, c.walltime, c.queue, c.reservation, c.env_name) == (
        "femdc", "03:00:00", "production", "2026-12-24 19:00:00", "debian12-min")
    assert "deploy" in c.job_type and "exotic" not in c.job_type
    # EnOSlib added one prod network per Grid'5000 site, each machine on its site's
    assert sorted(n.id for n in c.networks) == ["prod-nancy", "prod-rennes"]
    assert all(m.primary_network.site == m.site for m in c.machines)
    # its own OAR request: one resource group per host
    assert [m.oar() for m in c.machines][0] == ("rennes", "{cluster='paravance'}/nodes=1")
    nodeploy = testbeds.conf(exp_with(with_(G5K, env_name=None)))
    assert "deploy" not in nodeploy.job_type


def test_enoslib_refusals_become_one_line_naming_provider_keys(no_network: list[str]) -> None:
    exp = exp_with(G5K)
    g = dataclasses.replace(exp.provider.g5k, walltime="3h")  # type: ignore[type-var]
    bad = dataclasses.replace(exp, provider=dataclasses.replace(exp.provider, g5k=g))
    with pytest.raises(ExperimentError) as e:
        testbeds.conf(bad)
    assert str(e.value).startswith("x.yaml: provider.walltime: EnOSlib g5k configuration "
                                   "refused it:")
    exp = exp_with(VAGRANT)
    v = dataclasses.replace(exp.provider.vagrant, flavours=(("default", "huge"),))  # type: ignore[type-var]
    bad = dataclasses.replace(exp, provider=dataclasses.replace(exp.provider, vagrant=v))
    with pytest.raises(ExperimentError) as e:
        testbeds.conf(bad)
    assert str(e.value) == ("x.yaml: provider.flavours: 'huge' is not one of EnOSlib's "
                            "Vagrant flavours (tiny, small, medium, big, large, extra-large)")


def test_vagrant_conf_one_vm_per_alias(no_network: list[str]) -> None:
    c = testbeds.conf(exp_with(VAGRANT), run_id="r1")
    assert [(m.name_prefix, m.roles[:2], m.flavour, m.number, m.backend, m.box, m.user)
            for m in c.machines] == [
        ("core-ctl", ["core-ctl", "site_core"], "large", 1, "virtualbox", "generic/debian12",
         "root"),
        ("edge1-node", ["edge1-node", "site_edge1"], "small", 1, "virtualbox",
         "generic/debian12", "root"),
        ("edge2-node", ["edge2-node", "site_edge2"], "big", 1, "virtualbox",
         "generic/debian12", "root")]
    assert [(n.roles, n.cidr) for n in c.networks] == [(["femdc"], "192.168.42.0/24")]


@pytest.mark.parametrize("kind", ["kvm", "baremetal"])
def test_chameleon_conf(kind: str, no_network: list[str]) -> None:
    prov = with_(CHAMELEON, kind=kind, flavours={"default": "m1.medium", "control": "m1.xlarge"})
    if kind == "kvm":
        prov = with_(prov, lease_name=None, walltime=None)
    c = testbeds.conf(exp_with(prov), rc_file="/x/openrc.sh")
    assert (c.key_name, c.image, c.user, c.rc_file) == ("mine", "CC-Ubuntu22.04", "cc",
                                                        "/x/openrc.sh")
    assert [(m.roles[0], m.flavour, m.number) for m in c.machines] == [
        ("core-ctl", "m1.xlarge", 1), ("edge1-node", "m1.medium", 1),
        ("edge2-node", "m1.medium", 1)]
    assert c.networks == ["femdc"]
    if kind == "baremetal":
        assert (c.lease_name, c.walltime) == ("l1", "01:30:00")
    else:
        assert not hasattr(c, "lease_name")


def test_static_conf_and_inventory(no_network: list[str]) -> None:
    exp = exp_with(STATIC)
    c = static.conf(exp)
    assert [(m.alias, m.address, m.user, m.port) for m in c.machines] == [
        ("core-ctl", "10.0.0.1", "debian", 22), ("edge1-node", "10.0.0.2", "root", 2222),
        ("edge2-node", "fd00::3", "root", 22)]
    inv = static.inventory(exp, "r1")
    assert inv.provider == "static" and not inv.shared_filesystem
    ctl = inv.host("core-ctl")
    assert ctl.ssh_key == str(Path("~/.ssh/id_ed25519").expanduser())
    # user debian: the playbooks need root
    assert ctl.extra == {"ansible_become": True, "femdc_device": "eth0"}
    assert inv.host("edge1-node").extra == {"femdc_device": "eth0"}
    assert inv.host("edge1-node").ssh_key is None
    other = with_(STATIC, hosts={**STATIC["hosts"], "edge1-node": {"address": "10.0.0.2",
                                                                  "device": "eno1"}})
    assert static.inventory(exp_with(other), "r1").host("edge1-node").extra == {
        "femdc_device": "eno1"}
    assert ctl.workdir == "/var/lib/femdc-bench/runs/r1/core-ctl"
    assert [(h.alias, h.site, h.roles) for h in inv.hosts] == [
        (s.name + "-" + h.name.split("-", 1)[1], s.name, h.roles)
        for s in exp.sites for h in s.hosts]


# ----------------------------------------------------------------------- Roles -> Inventory


def _roles(hosts: dict[str, Any]) -> Any:
    import enoslib as en

    roles = en.Roles()
    for roles_of, h in hosts.values():
        roles.add_one(h, roles_of)
    return roles


def test_enoslib_roles_become_our_hosts(no_network: list[str]) -> None:
    import enoslib as en

    exp = exp_with(G5K)
    g5k_like = {
        a: (testbeds.machine_roles(s.name, h),
            en.Host(f"paravance-{i}.rennes.grid5000.fr", user="root",
                    extra={"gateway": "access.grid5000.fr", "gateway_user": "alice",
                           "ansible_ssh_common_args": "-o X=y"}))
        for i, (a, s, h) in enumerate((h.name, s, h) for s in exp.sites for h in s.hosts)}
    addresses = {f"paravance-{i}.rennes.grid5000.fr": f"172.16.96.{i + 10}" for i in range(3)}
    inv = testbeds.to_inventory(exp, _roles(g5k_like), run_id="r1",
                                address_of=lambda h: addresses[h.address])
    assert [(h.alias, h.site, h.address, h.roles) for h in inv.hosts] == [
        ("core-ctl", "core", "172.16.96.10", ("database", "keystone", "control", "load")),
        ("edge1-node", "edge1", "172.16.96.11", ("compute", "load")),
        ("edge2-node", "edge2", "172.16.96.12", ("compute", "load"))]
    h = inv.host("edge1-node")
    assert (h.ssh_user, h.ssh_port, h.ssh_key) == ("root", 22, None)
    assert h.extra == {"gateway": "access.grid5000.fr", "gateway_user": "alice"}
    assert h.workdir == "/var/lib/femdc-bench/runs/r1/edge1-node"
    assert inv.provider == "g5k" and not inv.shared_filesystem

    # Chameleon-like: user cc (sudo), a key file, a port
    cc = {a: (r, en.Host(f"10.52.0.{i}", user="cc", keyfile="/k", port=2200))
          for i, (a, (r, _)) in enumerate(g5k_like.items())}
    inv = testbeds.to_inventory(exp, _roles(cc), run_id="r1", address_of=lambda h: h.address)
    h = inv.host("core-ctl")
    assert (h.address, h.ssh_user, h.ssh_key, h.ssh_port, h.extra) == (
        "10.52.0.0", "cc", "/k", 2200, {"ansible_become": True})


def test_a_missing_or_doubled_machine_is_an_error() -> None:
    import enoslib as en

    exp = exp_with(G5K)
    hosts = {h.name: (testbeds.machine_roles(s.name, h), en.Host(f"10.0.0.{i}"))
             for i, (s, h) in enumerate((s, h) for s in exp.sites for h in s.hosts)}
    missing = dict(hosts)
    missing.pop("edge2-node")
    with pytest.raises(ProviderError, match="returned 0 machines with role 'edge2-node'"):
        testbeds.to_inventory(exp, _roles(missing), run_id="r", address_of=lambda h: h.address)
    doubled = {**hosts, "x": (["edge2-node"], en.Host("10.0.0.99"))}
    with pytest.raises(ProviderError, match="returned 2 machines with role 'edge2-node'"):
        testbeds.to_inventory(exp, _roles(doubled), run_id="r", address_of=lambda h: h.address)


# ----------------------------------------------------------------------- up --dry-run


def _cli(*args: str, results: Path) -> Any:
    return CliRunner().invoke(main, ["--results", str(results), *args])


@pytest.mark.parametrize("path", TESTBEDS, ids=lambda p: p.stem)
def test_testbed_examples_change_only_the_provider(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["provider"]["type"] == path.stem
    assert {k: v for k, v in doc.items() if k != "provider"} == \
        {k: v for k, v in BASE.items() if k != "provider"}
    # the text too, comments included, from the sites on
    assert path.read_text().split("\nsites:")[1] == CENTRAL.read_text().split("\nsites:")[1]


@pytest.mark.parametrize("path", [*TESTBEDS, CENTRAL], ids=lambda p: p.stem)
def test_every_example_validates_and_dry_runs(path: Path, tmp_path: Path,
                                              no_network: list[str]) -> None:
    results = tmp_path / "results"
    res = _cli("validate", str(path), results=results)
    assert res.exit_code == 0, res.output
    res = _cli("up", str(path), "--dry-run", results=results)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "dry run: nothing reserved, nothing contacted" in out
    for alias in ALIASES:
        assert alias in out
    assert "3 sites: core (1 host), edge1 (1 host), edge2 (1 host)" in out
    assert "database,keystone,control,load" in out and "compute,load" in out
    assert not results.exists()  # no run directory


def test_dry_run_says_what_would_be_reserved(tmp_path: Path, no_network: list[str]) -> None:
    def dry(name: str) -> str:
        res = _cli("up", "--dry-run", str(ROOT / "topologies" / "testbeds" / f"{name}.yaml"),
                   results=tmp_path)
        assert res.exit_code == 0, res.output
        return res.output

    out = dry("g5k")
    assert "OAR job 'femdc-central-control', walltime 03:00:00, queue default" in out
    assert "rennes: 1 paravance node(s) for core" in out
    assert "nancy: 1 gros node(s) for edge1, 1 gros node(s) for edge2" in out
    assert "deploy environment debian12-min" in out
    assert "<paravance-N.rennes.grid5000.fr>" in out
    out = dry("vagrant")
    assert "3 Vagrant VM(s), libvirt, box generic/debian12, network 192.168.42.0/24" in out
    assert "VM extra-large (6 vCPU, 6144 MB)" in out and "VM medium (2 vCPU, 2048 MB)" in out
    out = dry("chameleon")
    assert "Blazar lease 'femdc-central-control' for 03:00:00" in out
    assert "node type compute_skylake" in out and "~/CHI-openrc.sh" in out
    out = dry("static")
    assert "root@192.0.2.12:2222 (SSH agent/ssh config)" in out
    assert "192.0.2.10" in out


def test_dry_run_local_with_and_without_subnet(tmp_path: Path, no_network: list[str]) -> None:
    doc = copy.deepcopy(BASE)
    doc["provider"] = {"type": "local", "subnet": "10.77.0.0/24"}
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump(doc))
    res = _cli("up", "--dry-run", str(f), results=tmp_path / "results")
    assert res.exit_code == 0, res.output
    # as the local provider would give them: the gateway first, then the hosts in order
    assert "10.77.0.2" in res.output and "10.77.0.4" in res.output
    assert "network namespace" in res.output
    res = _cli("up", "--dry-run", str(CENTRAL), results=tmp_path / "results")
    assert "<10.231.x.2>" in res.output
    assert not (tmp_path / "results").exists()


def test_dry_run_of_a_bad_file_is_one_line_exit_2(tmp_path: Path,
                                                  no_network: list[str]) -> None:
    doc = copy.deepcopy(BASE)
    doc["provider"] = with_(G5K, walltime="3h")
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(doc))
    res = _cli("up", "--dry-run", str(f), results=tmp_path / "results")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {f}: provider.walltime: "), lines
    assert not (tmp_path / "results").exists()


def test_the_network_guard_catches_what_enoslib_would_use(no_network: list[str]) -> None:
    import requests  # python-grid5000 and the OpenStack clients speak HTTP through it

    with pytest.raises(OSError):
        requests.get("https://api.grid5000.fr/stable/sites", timeout=1)
    with pytest.raises(OSError):
        socket.create_connection(("192.0.2.1", 22), timeout=1)
    assert len(no_network) == 2
    no_network.clear()


def test_the_wan_device_is_the_interface_holding_the_address() -> None:
    import enoslib as en
    from enoslib.objects import IPAddress, NetDevice

    exp = exp_with(G5K)
    roles_of = {h.name: testbeds.machine_roles(s.name, h) for s in exp.sites for h in s.hosts}
    hosts = {}
    for i, alias in enumerate(roles_of):
        h = en.Host(f"10.0.0.{i + 1}")
        h.net_devices = {NetDevice("lo", {IPAddress("127.0.0.1/8")}),
                         NetDevice("eno2", {IPAddress("192.168.1.5/24")}),
                         NetDevice(f"enp{i}s0", {IPAddress(f"10.0.0.{i + 1}/24")})}
        hosts[alias] = (roles_of[alias], h)
    roles = _roles(hosts)
    inv = testbeds.to_inventory(exp, roles, run_id="r", address_of=lambda h: h.address)
    inv = testbeds.with_devices(inv, roles)
    assert [h.extra["femdc_device"] for h in inv.hosts] == ["enp0s0", "enp1s0", "enp2s0"]
    lost = testbeds.to_inventory(exp, roles, run_id="r", address_of=lambda h: "10.9.9.9")
    with pytest.raises(ProviderError, match="core-ctl: no interface holds 10.9.9.9"):
        testbeds.with_devices(lost, roles)


def test_names_that_merely_contain_a_credential_word_are_fine() -> None:
    doc = copy.deepcopy(BASE)
    doc["sites"][0]["name"] = "compass"
    doc["deployment"]["keystone"] = {"centralized": "compass"}
    doc["deployment"]["control"] = {"centralized": "compass"}
    doc["provider"] = {"type": "static", "hosts": {
        "compass-ctl": {"address": "10.0.0.1"}, "edge1-node": {"address": "10.0.0.2"},
        "edge2-node": {"address": "10.0.0.3"}}}
    assert parse(doc, "x.yaml").provider.hosts[0].alias == "compass-ctl"
    doc["provider"] = {"type": "vagrant", "flavours": {"default": "small", "compass-ctl": "big"}}
    assert parse(doc, "x.yaml").provider.vagrant is not None
    with pytest.raises(ExperimentError, match="provider.flavours.passwd: expected 'default'"):
        parse({**doc, "provider": {"type": "vagrant", "flavours": {"default": "small",
                                                                  "passwd": "x"}}}, "x.yaml")


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("path", [*TESTBEDS, CENTRAL], ids=lambda p: p.stem)
def test_every_provider_with_every_method(path: Path, method: str, tmp_path: Path,
                                          no_network: list[str]) -> None:
    """Issue 9: the same three-site file, changed only in `provider` and `deployment`,
    validates and dry-runs for every provider and method."""
    doc = yaml.safe_load(path.read_text())
    doc["deployment"] = yaml.safe_load(METHODS[method].read_text())["deployment"]
    assert doc["deployment"]["method"] == method
    f = tmp_path / f"{path.stem}-{method}.yaml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    results = tmp_path / "results"
    res = _cli("validate", str(f), results=results)
    assert res.exit_code == 0, res.output
    res = _cli("up", str(f), "--dry-run", results=results)
    assert res.exit_code == 0, res.output
    assert "3 sites: core (1 host), edge1 (1 host), edge2 (1 host)" in res.output
    assert not results.exists()
