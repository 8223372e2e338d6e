"""deployment.tls: the run's CA and host certificates (checked by real TLS handshakes on
loopback), the schema key, and what the native playbooks render with and without it
(ansible's own templating over the role defaults and group_vars)."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import stat
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from femdc_bench import backup, catalog
from femdc_bench.bench import plan as bench_plan
from femdc_bench.deploy import native, tls
from femdc_bench.experiment import ExperimentError, load
from femdc_bench.model import Clouds
from tests.unit.playbook_files import PLAYBOOKS
from tests.unit.test_composition import TOPOLOGIES, inventory_for

NATIVE = PLAYBOOKS / "native"


# ------------------------------------------------------------------ certificates


def _handshake(cert: tls.HostCert, cafile: str, server_hostname: str = "127.0.0.1") -> str:
    """A real TLS handshake on loopback: a server with `cert`, a client verifying it
    against `cafile` and `server_hostname`. Returns what the server read."""
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(cert.cert, cert.key)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = lsock.accept()
        try:
            with srv_ctx.wrap_socket(conn, server_side=True) as s:
                got.append(s.recv(16))
        except (ssl.SSLError, OSError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        cli_ctx = ssl.create_default_context(cafile=cafile)
        with socket.create_connection(lsock.getsockname(), timeout=5) as raw, \
                cli_ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            s.sendall(b"hello")
        t.join(5)
    finally:
        lsock.close()
    return b"".join(got).decode()


def test_a_host_certificate_verifies_against_the_run_ca_by_address(tmp_path: Path) -> None:
    cert = tls.issue(tmp_path, "r1", "core-ctl", ["127.0.0.1"], ["core-ctl"])
    assert _handshake(cert, cert.ca) == "hello"
    assert _handshake(cert, cert.ca, server_hostname="core-ctl") == "hello"


def test_another_run_ca_or_another_address_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cert = tls.issue(tmp_path / "a", "a", "h", ["127.0.0.1"])
    other = tls.issue(tmp_path / "b", "b", "h", ["127.0.0.1"])
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(cert, other.ca)
    wrong = tls.issue(tmp_path / "a", "a", "h2", ["127.0.0.2"])
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        _handshake(wrong, wrong.ca)


def test_keys_are_private_and_a_matching_certificate_is_reused(tmp_path: Path) -> None:
    first = tls.issue(tmp_path, "r", "h", ["10.0.0.2"])
    d = tmp_path / "tls"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for key in (d / "ca.key", Path(first.key)):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pem = Path(first.cert).read_bytes()
    again = tls.issue(tmp_path, "r", "h", ["10.0.0.2"])
    assert again == first and Path(again.cert).read_bytes() == pem
    moved = tls.issue(tmp_path, "r", "h", ["10.0.0.3"])
    assert Path(moved.cert).read_bytes() != pem
    assert len(tls.ca_fingerprint(Path(first.ca))) == 64


def test_ipv6_addresses_are_named(tmp_path: Path) -> None:
    from cryptography import x509

    cert = tls.issue(tmp_path, "r", "h", ["fd00::2"])
    c = x509.load_pem_x509_certificate(Path(cert.cert).read_bytes())
    ips = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in ips.get_values_for_type(x509.IPAddress)] == ["fd00::2"]


# ------------------------------------------------------------------ experiment


def _write(tmp_path: Path, name: str, **deployment: Any) -> Path:
    doc = yaml.safe_load((TOPOLOGIES / name).read_text())
    doc["deployment"].update(deployment)
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_schema_takes_tls_true_or_false(tmp_path: Path) -> None:
    assert load(_write(tmp_path, "central-control.yaml", tls=True)).deployment.tls
    assert not load(_write(tmp_path, "central-control.yaml")).deployment.tls
    with pytest.raises(ExperimentError, match=r"deployment\.tls: .*true or false"):
        load(_write(tmp_path, "central-control.yaml", tls="yes please"))


def test_tls_with_another_method_is_a_one_line_error(tmp_path: Path) -> None:
    p = _write(tmp_path, "region-per-site.yaml", tls=True, method="devstack",
               release="2025.1")
    with pytest.raises(ExperimentError, match=r"deployment\.tls: supported by method native "
                       r"only, got 'devstack'") as e:
        load(p)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ python side


def test_tls_vars_urls_clouds_yaml_and_agent_trust(tmp_path: Path) -> None:
    exp = load(_write(tmp_path, "central-control.yaml", tls=True))
    inv = inventory_for("central-control.yaml")
    certs = tls.host_certs(tmp_path, "r", inv)
    hosts = native.host_vars(exp, inv, certs)
    ctl = hosts.host("core-ctl").extra
    assert ctl["femdc_keystone_url"] == "https://10.9.0.2:5000/v3"
    assert ctl["femdc_tls_key_file"].endswith("/tls/core-ctl.key")
    assert ctl["femdc_tls_ca_file"].endswith("/tls/ca.pem")
    clouds = native.clouds_for(exp, inv)
    assert {c.auth_url for c in clouds} == {"https://10.9.0.2:5000/v3"}
    ca = str(tls.ensure_ca(tmp_path, "r"))
    native.write_clouds_yaml(tmp_path / "clouds.yaml", clouds, "pw", ca)
    doc = yaml.safe_load((tmp_path / "clouds.yaml").read_text())
    assert {c["cacert"] for c in doc["clouds"].values()} == {ca}
    cl = Clouds(clouds=tuple(clouds), clouds_yaml="c", secrets_file="s", agent_python="p",
                ca_file=ca)
    specs = bench_plan.agent_specs(exp, inv, cl, "pw", "femdc-x-")
    verify = {j.auth.verify for s in specs.values() for j in s.jobs}
    assert verify == {"/var/lib/femdc-bench/tls/ca.pem"}
    plain = dataclasses.replace(cl, ca_file=None)
    assert {j.auth.verify for s in bench_plan.agent_specs(exp, inv, plain, "pw", "x-").values()
            for j in s.jobs} == {True}


def test_backup_leaves_private_keys_out(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tls.issue(run_dir, "r", "h", ["10.0.0.2"])
    res = backup.write_archive(run_dir, "r", [], tmp_path / "b.tar.gz")
    with tarfile.open(res.path) as tar:
        names = tar.getnames()
        body = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert "r/tls/ca.pem" in names and "r/tls/h.pem" in names
    assert not [n for n in names if n.endswith(".key")]
    assert b"PRIVATE KEY" not in body


# ------------------------------------------------------------------ playbooks


def _render(template: Path, role: str, tls_on: bool, **host: Any) -> str:
    """`template` rendered by ansible's templating with the variables a native play
    has: group_vars/all.yml, the role's defaults and the inventory's host vars."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    variables: dict[str, Any] = {}
    variables.update(yaml.safe_load((NATIVE / "group_vars" / "all.yml").read_text()))
    for r in ("service", role):
        defaults = NATIVE / "roles" / r / "defaults" / "main.yml"
        if defaults.exists():
            variables.update(yaml.safe_load(defaults.read_text()) or {})
    variables.update({
        "femdc_run": "r1", "femdc_address": "10.9.0.2", "femdc_site": "core",
        "femdc_workdir": "/var/lib/femdc-bench/r1", "femdc_region": "core",
        "femdc_db_address": "10.9.0.5", "femdc_keystone_url": "https://10.9.0.3:5000/v3",
        "femdc_venv_dir": "/venv", "femdc_tls": tls_on, "femdc_svc_user": "nova",
        "femdc_secrets": {k: f"{k}-secret" for k in native.SECRET_KEYS},
        "inventory_hostname": "core-ctl", "ansible_managed": "managed",
        "femdc_region_computes": 1, "femdc_keystone_region": "core",
        "service_name": "nova-api", "uwsgi_port": 8774, "uwsgi_socket": "/s",
        "uwsgi_module": "m", "uwsgi_processes": 1, **catalog.ansible_vars(), **host})
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(template.read_text())


@pytest.mark.parametrize("tls_on", [True, False])
def test_apis_rabbitmq_and_database_clients(tls_on: bool) -> None:
    ca = "/var/lib/femdc-bench/r1/tls/ca.pem"
    uwsgi = _render(NATIVE / "roles/service/templates/uwsgi.ini.j2", "nova", tls_on)
    nova = _render(NATIVE / "roles/nova/templates/nova.conf.j2", "nova", tls_on)
    lines = set(nova.splitlines())
    if tls_on:
        assert ("https = 10.9.0.2:8774,/var/lib/femdc-bench/r1/tls/host.pem,"
                "/var/lib/femdc-bench/r1/tls/host.key") in uwsgi.splitlines()
        assert not any(x.startswith("http =") for x in uwsgi.splitlines())
        assert f"connection = mysql+pymysql://nova:nova_db-secret@10.9.0.5/nova?ssl_ca={ca}" \
            in lines
        assert f"connection = mysql+pymysql://nova:nova_db-secret@10.9.0.5/nova_api?ssl_ca={ca}" \
            in lines
        assert "transport_url = rabbit://openstack:rabbit-secret@10.9.0.2:5671/core" in lines
        assert {"ssl = true", f"ssl_ca_file = {ca}"} <= lines
        # every keystoneauth section verifies with the run's CA: authtoken, placement,
        # neutron, glance, service_user
        assert nova.count(f"cafile = {ca}") == 5
        assert "auth_url = https://10.9.0.3:5000" in lines
    else:
        assert "http = 10.9.0.2:8774" in uwsgi.splitlines()
        assert "https" not in uwsgi
        assert "connection = mysql+pymysql://nova:nova_db-secret@10.9.0.5/nova" in lines
        assert "transport_url = rabbit://openstack:rabbit-secret@10.9.0.2:5672/core" in lines
        assert "ssl" not in nova and "cafile" not in nova


@pytest.mark.parametrize("tls_on", [True, False])
def test_rabbitmq_listens_on_tls_only(tls_on: bool) -> None:
    conf = _render(NATIVE / "roles/rabbitmq/templates/rabbitmq.conf.j2", "rabbitmq", tls_on)
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    defaults = yaml.safe_load((NATIVE / "roles/rabbitmq/defaults/main.yml").read_text())
    group = yaml.safe_load((NATIVE / "group_vars/all.yml").read_text())
    env = Templar(loader=DataLoader(), variables={
        **group, **defaults, "femdc_tls": tls_on, "femdc_address": "10.9.0.2",
        "femdc_workdir": "/w", "femdc_region": "core", **catalog.ansible_vars()}
                   ).template("{{ rabbitmq_env }}")
    if tls_on:
        assert "listeners.tcp = none" in conf.splitlines()
        assert "listeners.ssl.1 = 10.9.0.2:5671" in conf.splitlines()
        assert "RABBITMQ_NODE_PORT" not in env and "RABBITMQ_NODE_IP_ADDRESS" not in env
    else:
        assert "listeners.tcp.1 = 10.9.0.2:5672" in conf.splitlines()
        assert "ssl" not in conf
        assert env["RABBITMQ_NODE_PORT"] == "5672"


@pytest.mark.parametrize("galera", [True, False])
def test_mariadb_requires_tls_and_galera_replicates_over_it(galera: bool) -> None:
    host = {"femdc_galera_nodes": ["10.9.0.2", "10.9.0.3"]} if galera else {}
    conf = _render(NATIVE / "roles/mariadb/templates/my.cnf.j2", "mariadb", True, **host)
    lines = conf.splitlines()
    assert "require_secure_transport = ON" in lines
    assert "ssl_key = /var/lib/femdc-bench/r1/mariadb/server.key" in lines
    if galera:
        opts = next(x for x in lines if x.startswith("wsrep_provider_options"))
        assert "gmcast.listen_addr=ssl://10.9.0.2:4567" in opts
        assert "socket.ssl_ca=/var/lib/femdc-bench/r1/tls/ca.pem" in opts
    plain = _render(NATIVE / "roles/mariadb/templates/my.cnf.j2", "mariadb", False, **host)
    assert "ssl" not in plain and "require_secure_transport" not in plain


def test_every_api_check_verifies_with_the_run_ca() -> None:
    """Each uri task of the native playbooks passes ca_path (omitted without tls), and the
    catalog module gets the CA: a check that skipped verification would pass with any
    certificate."""
    for f in NATIVE.rglob("*.yml"):
        text = f.read_text()
        assert text.count("ansible.builtin.uri:") == text.count(
            'ca_path: "{{ native_tls_ca if native_tls else omit }}"'), f
        assert text.count("femdc_keystone_catalog:") == text.count(
            'ca_file: "{{ native_tls_ca if native_tls else omit }}"'), f


def test_ovn_databases_and_their_clients_use_mutual_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    ml2 = _render(NATIVE / "roles/neutron/templates/ml2_conf.ini.j2", "neutron", True)
    lines = set(ml2.splitlines())
    assert {"ovn_nb_connection = ssl:10.9.0.2:6641", "ovn_sb_connection = ssl:10.9.0.2:6642",
            "ovn_sb_private_key = /var/lib/femdc-bench/r1/tls/host.key"} <= lines
    plain = _render(NATIVE / "roles/neutron/templates/ml2_conf.ini.j2", "neutron", False)
    assert "ovn_nb_connection = tcp:10.9.0.2:6641" in plain.splitlines()
    assert "private_key" not in plain
    keeper = load_keeper()
    argv: list[list[str]] = []

    class Done(Exception):
        pass

    def fake_run(cmd: list[str], **_: Any) -> Any:
        argv.append(cmd)
        raise Done

    monkeypatch.setattr(keeper.subprocess, "run", fake_run)
    monkeypatch.setattr(keeper, "SSL_ARGS", ["--private-key=k", "--certificate=c",
                                             "--ca-cert=a"])
    with pytest.raises(Done):
        keeper.sbctl("ssl:10.9.0.2:6642", "show")
    assert argv == [["ovn-sbctl", "--db=ssl:10.9.0.2:6642", "--private-key=k",
                     "--certificate=c", "--ca-cert=a", "--timeout=30", "show"]]


def load_keeper() -> Any:
    from tests.unit.playbook_files import load

    return load("native/roles/ovn_chassis/files/chassis_keeper.py")


def test_every_api_listener_comes_from_the_one_uwsgi_template() -> None:
    """Keystone had its own uwsgi ini, which the first TLS deploy left on plain http."""
    listeners = [p for p in NATIVE.rglob("*.j2")
                 if any(x.startswith(("http =", "https =")) for x in p.read_text().splitlines())]
    assert listeners == [NATIVE / "roles/service/templates/uwsgi.ini.j2"]
