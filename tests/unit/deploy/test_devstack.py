"""Deployment method devstack, checked offline (no DevStack can run here).

1. The local.conf of every host, for two layouts of three sites (central control, region
   per site), equals the expected file under tests/unit/data/devstack/<layout>/. The test
   never writes them: after a deliberate change of the template or the renderer, rewrite
   them with `python tests/regenerate_expected.py devstack` and review the diff.
2. FINDINGS' check: the [[local|localrc]] part of each passes `bash -n`, then is sourced
   under `set -u` with DevStack's enable_service/disable_service/enable_plugin stubbed;
   the variables stack.sh would see are asserted host by host.
3. What DevStack cannot deploy is one line naming the key; the testbed files validate;
   deploy() writes what the playbook and the run need, 0600, and no secret travels in the
   extra vars; the helper script that waits for a region's computes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from femdc_bench.cli import main
from femdc_bench.deploy import devstack, native
from femdc_bench.experiment import ExperimentError, load, parse
from femdc_bench.model import DEVSTACK_MANAGED_VARS, Experiment, Host, Inventory

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGIES = ROOT / "topologies"
DATA = Path(__file__).parents[1] / "data" / "devstack"
PLAYBOOKS = ROOT / "playbooks"
REGENERATE = "a deliberate change: python tests/regenerate_expected.py devstack"
SECRETS = {"admin": "admin-Secret_0001", "db_root": "db-Secret_0002",
           "rabbit": "rabbit-Secret_0003", "service": "service-Secret_0004"}


def devstack_doc(topology: str, **deployment: Any) -> dict[str, Any]:
    doc = yaml.safe_load((TOPOLOGIES / topology).read_text())
    doc["deployment"].update(method="devstack", release="2025.1", **deployment)
    return doc


def layouts() -> dict[str, dict[str, Any]]:
    """The two layouts, three sites each: central-control.yaml has core + edge1-2;
    region-per-site.yaml's edge1 becomes edge[1-2]."""
    regions = devstack_doc("region-per-site.yaml")
    regions["sites"][1]["name"] = "edge[1-2]"
    return {"central-control": devstack_doc("central-control.yaml"),
            "region-per-site": regions}


def inventory(exp: Experiment) -> Inventory:
    """A fixed inventory: 10.20.<site index>.<host index + 10>."""
    hosts = []
    for i, s in enumerate(exp.sites):
        for j, h in enumerate(s.hosts):
            hosts.append(Host(alias=h.name, address=f"10.20.{i}.{j + 10}", site=s.name,
                              roles=h.roles, ssh_user="debian"))
    return Inventory(provider="static", hosts=tuple(hosts))


def rendered(layout: str) -> tuple[Experiment, Inventory, dict[str, str]]:
    exp = parse(layouts()[layout], f"{layout}.yaml")
    inv = inventory(exp)
    return exp, inv, devstack.render(exp, inv, SECRETS)


# --------------------------------------------------------------------------- expected files


@pytest.mark.parametrize("layout", sorted(layouts()))
def test_local_conf_files_equal_the_expected_ones(layout: str) -> None:
    exp, inv, confs = rendered(layout)
    assert len(exp.sites) == 3
    where = DATA / layout
    expected = {p.name.removesuffix(".local.conf"): p.read_text()
                for p in where.glob("*.local.conf")}
    assert sorted(confs) == sorted(expected), f"hosts differ ({REGENERATE})"
    for alias, text in confs.items():
        assert text == expected[alias], f"{alias} differs ({REGENERATE})"


def test_load_only_hosts_get_no_local_conf() -> None:
    doc = layouts()["central-control"]
    doc["sites"][0]["hosts"].append({"name": "mon", "roles": ["load"]})
    exp = parse(doc)
    inv = inventory(exp)
    confs = devstack.render(exp, inv, SECRETS)
    assert "core-mon" in [h.alias for h in inv.hosts]
    assert sorted(confs) == ["core-ctl", "edge1-node", "edge2-node"]


# --------------------------------------------------------------------------- sourced under set -u

STUBS = textwrap.dedent("""\
    set -u
    # DevStack's functions-common, reduced to what a localrc may call
    enable_service() {
        local s
        for s in "$@"; do
            [[ ",${ENABLED_SERVICES-}," == *",$s,"* ]] || \
                ENABLED_SERVICES="${ENABLED_SERVICES:+$ENABLED_SERVICES,}$s"
        done
    }
    disable_service() {
        local s
        for s in "$@"; do
            ENABLED_SERVICES=$(echo ",${ENABLED_SERVICES-}," | sed "s/,$s,/,/g; s/^,//; s/,$//")
        done
    }
    disable_all_services() { ENABLED_SERVICES=""; }
    enable_plugin() { PLUGINS="${PLUGINS:+$PLUGINS }$1"; }
    source "$1"
    for v in $VARS; do printf '%s=%s\\n' "$v" "${!v-<unset>}"; done
    """)
VARS = ("HOST_IP SERVICE_HOST MYSQL_HOST DATABASE_TYPE RABBIT_HOST GLANCE_HOSTPORT Q_HOST "
        "KEYSTONE_SERVICE_HOST REGION_NAME KEYSTONE_REGION_NAME ENABLED_SERVICES VIRT_DRIVER "
        "NUMBER_FAKE_NOVA_COMPUTE ADMIN_PASSWORD DATABASE_PASSWORD RABBIT_PASSWORD "
        "SERVICE_PASSWORD LOGFILE API_WORKERS ENABLE_CHASSIS_AS_GW GIT_BASE EVIL")


def localrc(text: str) -> str:
    """The [[local|localrc]] part of a local.conf, as DevStack's extract_localrc_section
    takes it: from that header to the next [[...]] header."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("[["):
            inside = line.strip() == "[[local|localrc]]"
            continue
        if inside:
            out.append(line)
    assert out, "no [[local|localrc]] part"
    return "\n".join(out) + "\n"


def effective(text: str, tmp_path: Path) -> dict[str, str]:
    rc = tmp_path / "localrc"
    rc.write_text(localrc(text))
    syntax = subprocess.run(["bash", "-n", str(rc)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    script = tmp_path / "source.sh"
    script.write_text(STUBS)
    p = subprocess.run(["bash", str(script), str(rc)], capture_output=True, text=True,
                       env={"PATH": os.environ["PATH"], "VARS": VARS}, cwd=tmp_path,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    return dict(line.split("=", 1) for line in p.stdout.splitlines())


@pytest.mark.parametrize("layout", sorted(layouts()))
def test_localrc_sourced_under_set_u_gives_the_layout(layout: str, tmp_path: Path) -> None:
    exp, inv, confs = rendered(layout)
    d = exp.deployment
    keystone = inv.with_role("keystone")[0]
    computes = {h.name: h.computes for s in exp.sites for h in s.hosts}
    for alias, text in confs.items():
        h = inv.host(alias)
        v = effective(text, tmp_path)
        region = d.region_for(h.site)
        ctl = inv.with_role("control", region)[0]
        services = v["ENABLED_SERVICES"].split(",")
        assert v["HOST_IP"] == h.address
        assert v["SERVICE_HOST"] == ctl.address
        assert v["REGION_NAME"] == region
        assert v["KEYSTONE_SERVICE_HOST"] == keystone.address
        assert v["KEYSTONE_REGION_NAME"] == keystone.site
        assert (v["ADMIN_PASSWORD"], v["DATABASE_PASSWORD"], v["RABBIT_PASSWORD"],
                v["SERVICE_PASSWORD"]) == (SECRETS["admin"], SECRETS["db_root"],
                                           SECRETS["rabbit"], SECRETS["service"])
        assert v["VIRT_DRIVER"] == "fake"
        assert v["LOGFILE"].startswith("/opt/stack/logs/")
        assert len(services) == len(set(services))
        if "control" in h.roles:
            assert ctl.alias == alias
            assert {"key", "mysql", "rabbit", "placement-api", "g-api", "n-api", "n-cond",
                    "n-sch", "q-svc", "ovn-northd"} <= set(services)
            assert v["MYSQL_HOST"] == "<unset>"  # DevStack's default: its own MySQL
            assert v["API_WORKERS"] == str(d.api_workers)
        else:
            assert set(services) == {"n-cpu", "placement-client", "ovn-controller",
                                     "ovs-vswitchd", "ovsdb-server"}
            assert v["MYSQL_HOST"] == v["RABBIT_HOST"] == v["Q_HOST"] == ctl.address
            assert v["GLANCE_HOSTPORT"] == f"{ctl.address}:9292"
            assert v["DATABASE_TYPE"] == "mysql"
            assert v["ENABLE_CHASSIS_AS_GW"] == "False"
        if "compute" in h.roles:
            assert "n-cpu" in services
            assert v["NUMBER_FAKE_NOVA_COMPUTE"] == str(computes[alias])
        else:
            assert "n-cpu" not in services
            assert v["NUMBER_FAKE_NOVA_COMPUTE"] == "<unset>"
    if layout == "region-per-site":
        assert sorted(d.region_for(s) for s in exp.site_names) == ["core", "edge1", "edge2"]
    else:
        assert {d.region_for(s) for s in exp.site_names} == {"core"}


def test_extra_localrc_is_literal_and_last(tmp_path: Path) -> None:
    evil = f"$(touch {tmp_path}/pwned)`touch {tmp_path}/pwned2`'\"; touch {tmp_path}/p3"
    doc = layouts()["central-control"]
    doc["deployment"]["devstack"] = {"extra_localrc": {"GIT_BASE": "https://github.com",
                                                       "EVIL": evil}}
    exp = parse(doc)
    inv = inventory(exp)
    text = devstack.render(exp, inv, SECRETS)["core-ctl"]
    v = effective(text, tmp_path)
    assert v["GIT_BASE"] == "https://github.com"
    assert v["EVIL"] == evil
    assert not list(tmp_path.glob("p*"))
    assert localrc(text).rstrip().splitlines()[-1].startswith("EVIL=")


def test_managed_variables_are_those_the_template_sets(tmp_path: Path) -> None:
    """Every variable the renderer writes is one extra_localrc may not override."""
    for layout in layouts():
        _, _, confs = rendered(layout)
        for text in confs.values():
            names = {line.split("=", 1)[0] for line in localrc(text).splitlines()
                     if line and not line.startswith("#")}
            assert names - {"LOG_COLOR", "VERBOSE"} <= set(DEVSTACK_MANAGED_VARS), names


def test_bad_secrets_and_ipv6_hosts_are_refused() -> None:
    exp, inv, _ = rendered("central-control")
    with pytest.raises(devstack.DevstackError, match="'rabbit'"):
        devstack.render(exp, inv, {**SECRETS, "rabbit": "a b"})
    h = inv.hosts[0]
    v6 = Inventory(provider="static", hosts=(Host(alias=h.alias, address="fd00::1",
                                                  site=h.site, roles=h.roles),
                                             *inv.hosts[1:]))
    with pytest.raises(devstack.DevstackError, match="IPv4"):
        devstack.render(exp, v6, SECRETS)


# --------------------------------------------------------------------------- clouds


def test_clouds_use_devstack_keystone_url_and_native_layout() -> None:
    for layout in layouts():
        exp, inv, _ = rendered(layout)
        keystone = inv.with_role("keystone")[0].address
        cl = devstack.clouds(exp, inv)
        assert [c.site for c in cl] == exp.site_names
        assert {c.auth_url for c in cl} == {f"http://{keystone}/identity/v3"}
        native_clouds = native.clouds_for(exp, inv)
        assert [(c.site, c.region, c.keystone_site, c.region_site, c.services)
                for c in cl] == [(c.site, c.region, c.keystone_site, c.region_site,
                                  c.services) for c in native_clouds]
        assert {c.auth_url for c in native_clouds} == {f"http://{keystone}:5000/v3"}


# --------------------------------------------------------------------------- experiment


def error(doc: dict[str, Any]) -> str:
    with pytest.raises(ExperimentError) as e:
        parse(doc, "exp.yaml")
    text = str(e.value)
    assert "\n" not in text and text.startswith("exp.yaml: ")
    return text.removeprefix("exp.yaml: ")


def test_devstack_defaults() -> None:
    exp = parse(layouts()["central-control"])
    ds = exp.deployment.devstack
    assert exp.deployment.release == "2025.1"
    assert ds is not None and ds.ref == "stable/2025.1" and ds.stack_user == "stack"
    assert ds.repo == "https://opendev.org/openstack/devstack" and ds.extra_localrc == {}
    assert parse(devstack_doc("central-control.yaml", devstack={"ref": "2025.1-eol"})
                 ).deployment.devstack.ref == "2025.1-eol"  # type: ignore[union-attr]


def _keystone_per_site() -> dict[str, Any]:
    doc = devstack_doc("keystone-galera.yaml")
    doc["deployment"].pop("keystone_workers", None)
    return doc


def _keystone_only() -> dict[str, Any]:
    doc = devstack_doc("default.yaml")
    doc["deployment"] = {"method": "devstack", "release": "2025.1",
                         "keystone": doc["deployment"]["keystone"]}
    return doc


def _separate_database_host() -> dict[str, Any]:
    doc = layouts()["central-control"]
    doc["sites"][0]["hosts"] = [{"name": "ctl", "roles": ["keystone", "control", "load"]},
                                {"name": "db", "roles": ["database"]}]
    return doc


def _with(key: str, value: Any, topology: str = "central-control.yaml") -> dict[str, Any]:
    doc = devstack_doc(topology)
    doc["deployment"][key] = value
    return doc


def _without(key: str) -> dict[str, Any]:
    doc = devstack_doc("central-control.yaml")
    del doc["deployment"][key]
    return doc


def _native(**deployment: Any) -> dict[str, Any]:
    doc = yaml.safe_load((TOPOLOGIES / "central-control.yaml").read_text())
    doc["deployment"].update(deployment)
    return doc


def _extra(var: str, value: Any) -> dict[str, Any]:
    return _with("devstack", {"extra_localrc": {var: value}})


BAD = [
    (_keystone_per_site, "deployment.keystone: per_site is not supported by "
     "deployment.method devstack; DevStack supports central control"),
    (_keystone_only, "deployment.control: missing: a Keystone-only layout is not supported"),
    (lambda: _with("database", {"central": "edge1"}),
     "deployment.database: {central: edge1} is not supported by deployment.method devstack"),
    (lambda: _with("database", {"central": "core"}, "region-per-site.yaml"),
     "deployment.database: {central: core} is not supported"),
    (_separate_database_host, "sites[0].hosts: deployment.method devstack runs a region's "
     "Keystone, MySQL and control plane on one host: role 'database' must be on 'core-ctl'"),
    (lambda: _without("release"), "deployment.release: missing required key: method "
     "devstack deploys one OpenStack release"),
    (lambda: _with("release", "2025.3"), "deployment.release: expected an OpenStack release "
     "like '2025.1', got '2025.3'"),
    (lambda: _with("release", "2025.1\n"), "deployment.release: expected an OpenStack"),
    (lambda: _with("keystone_workers", 2), "deployment.keystone_workers: not used by method "
     "devstack"),
    (lambda: _native(release="2025.1"), "deployment.release: not used by method native"),
    (lambda: _native(devstack={"ref": "master"}), "deployment.devstack: only with "
     "deployment.method devstack, got 'native'"),
    (lambda: _with("devstack", {"ref": "--upload-pack=x"}), "deployment.devstack.ref: "
     "expected a git branch, tag or commit"),
    (lambda: _with("devstack", {"repo": "-oProxyCommand=x"}), "deployment.devstack.repo: "
     "expected a git URL"),
    (lambda: _with("devstack", {"stack_user": "Root;x"}), "deployment.devstack.stack_user: "
     "expected a user name"),
    (lambda: _with("devstack", {"branch": "x"}), "deployment.devstack.branch: unknown key "
     "'branch'"),
    (lambda: _extra("git_base", "x"), "deployment.devstack.extra_localrc.git_base: expected "
     "a variable name"),
    (lambda: _extra("SERVICE_HOST", "10.0.0.1"), "deployment.devstack.extra_localrc."
     "SERVICE_HOST: set by femdc-bench"),
    (lambda: _extra("ADMIN_PASSWORD", "x"), "deployment.devstack.extra_localrc."
     "ADMIN_PASSWORD: set by femdc-bench"),
    (lambda: _extra("GIT_BASE", "a\nrm -rf /"), "deployment.devstack.extra_localrc.GIT_BASE: "
     "expected a value on one line"),
    (lambda: _extra("GIT_BASE", 3), "deployment.devstack.extra_localrc.GIT_BASE: expected a "
     "string"),
    (lambda: _with("method", "devstak"),
     "deployment.method: expected one of native, devstack, kolla"),
]


@pytest.mark.parametrize("make, expected", BAD, ids=[b[1][:60] for b in BAD])
def test_what_devstack_cannot_do_is_one_line(make: Any, expected: str) -> None:
    assert error(make()).startswith(expected)


def test_bad_layout_through_the_cli_is_one_line_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(_keystone_per_site()))
    res = CliRunner().invoke(main, ["validate", str(f)])
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert "deployment.keystone" in res.output and "devstack" in res.output


@pytest.mark.parametrize("name", ["devstack-central.yaml", "devstack-regions.yaml"])
def test_testbed_files_validate_and_differ_only_in_deployment(name: str) -> None:
    exp = load(TOPOLOGIES / "testbeds" / name)
    assert exp.deployment.method == "devstack" and exp.deployment.release == "2025.1"
    base = {"devstack-central.yaml": "central-control.yaml",
            "devstack-regions.yaml": "region-per-site.yaml"}[name]
    a = yaml.safe_load((TOPOLOGIES / "testbeds" / name).read_text())
    b = yaml.safe_load((TOPOLOGIES / base).read_text())
    assert {k: v for k, v in a.items() if k != "deployment"} == \
        {k: v for k, v in b.items() if k != "deployment"}
    assert devstack.render(exp, inventory(exp), SECRETS)


# --------------------------------------------------------------------------- deploy()


def test_deploy_writes_confs_and_clouds_private_and_passes_no_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp, inv, _ = rendered("region-per-site")
    calls: list[dict[str, Any]] = []

    def fake_playbook(playbook: Path, hosts: Inventory, **kw: Any) -> None:
        calls.append({"playbook": playbook, "hosts": hosts, **kw})
        versions = tmp_path / "devstack" / "versions"
        versions.mkdir(parents=True, exist_ok=True)
        for h in ("core-ctl", "edge1-ctl"):
            (versions / f"{h}.json").write_text(json.dumps({"devstack": "abc", "nova": h}))

    monkeypatch.setattr(devstack, "run_playbook", fake_playbook)
    monkeypatch.setattr(devstack, "_agent_python", lambda inv, run_dir, log: "/venv/bin/python")
    clouds = devstack.deploy(exp, inv, run_id="r1", run_dir=tmp_path, log=tmp_path / "d.log")
    secrets = json.loads((tmp_path / "secrets.json").read_text())
    conf_dir = tmp_path / "devstack"
    assert stat.S_IMODE(conf_dir.stat().st_mode) == 0o700
    confs = sorted(conf_dir.glob("*.local.conf"))
    assert [p.name for p in confs] == [f"{a}.local.conf" for a in sorted(
        ("core-ctl", "edge1-ctl", "edge2-ctl"))]
    for p in confs:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert f"ADMIN_PASSWORD={secrets['admin']}" in p.read_text()
    assert stat.S_IMODE(Path(clouds.clouds_yaml).stat().st_mode) == 0o600
    cy = yaml.safe_load(Path(clouds.clouds_yaml).read_text())["clouds"]
    assert cy["edge2"]["region_name"] == "edge2"
    assert cy["edge2"]["auth"]["auth_url"] == "http://10.20.0.10/identity/v3"
    assert cy["edge2"]["auth"]["password"] == secrets["admin"]
    (call,) = calls
    assert call["playbook"] == PLAYBOOKS / "devstack" / "deploy.yml"
    blob = json.dumps(call["extra_vars"]) + json.dumps([h.extra for h in call["hosts"].hosts])
    assert not [k for k, v in secrets.items() if v in blob]
    assert call["extra_vars"]["femdc_devstack_ref"] == "stable/2025.1"
    ctl = {h.alias: h.extra for h in call["hosts"].hosts}
    assert ctl["edge1-ctl"] == {"femdc_devstack": True, "femdc_region": "edge1",
                                "femdc_region_computes": 1}
    assert clouds.agent_python == "/venv/bin/python"
    assert clouds.versions == {
        "devstack.release": "2025.1", "devstack.ref": "stable/2025.1",
        "devstack.repo": "https://opendev.org/openstack/devstack",
        "devstack.commit": "abc", "nova.commit@core-ctl": "core-ctl",
        "nova.commit@edge1-ctl": "edge1-ctl"}


def test_deploy_refuses_the_local_provider(tmp_path: Path) -> None:
    exp, inv, _ = rendered("central-control")
    local = Inventory(provider="local", hosts=inv.hosts, shared_filesystem=True)
    with pytest.raises(devstack.DevstackError, match="testbed provider"):
        devstack.deploy(exp, local, run_id="r", run_dir=tmp_path, log=tmp_path / "l")
    assert not (tmp_path / "devstack").exists()


# --------------------------------------------------------------------------- playbooks


def test_included_task_files_pass_the_syntax_check(tmp_path: Path) -> None:
    """deploy.yml includes tasks/*.yml dynamically, which --syntax-check does not read:
    import them statically in a throwaway play."""
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{
        "name": "t", "hosts": "all", "gather_facts": False,
        "tasks": [{"ansible.builtin.import_tasks": str(p)}
                  for p in sorted((PLAYBOOKS / "devstack" / "tasks").glob("*.yml"))]}]))
    p = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"),
                        "--syntax-check", "-i", "localhost,", str(play)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]


def _fake_venv(tmp_path: Path, services: list[dict[str, str]], hypervisors: int) -> Path:
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "nova-manage").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/discover\n")
    (bin_dir / "openstack").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in
          *"--os-region-name edge1 compute service list --service nova-compute -f json")
            echo '{json.dumps(services)}' ;;
          *"--os-region-name edge1 hypervisor list -f json")
            echo '{json.dumps([{"id": i} for i in range(hypervisors)])}' ;;
          *) exit 1 ;;
        esac
        """))
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return tmp_path / "venv"


@pytest.mark.parametrize("hypervisors, down, rc", [(2, False, 0), (1, False, 1), (2, True, 1)])
def test_region_computes_script(tmp_path: Path, hypervisors: int, down: bool, rc: int) -> None:
    services = [{"Host": "a1", "State": "up", "Status": "enabled"},
                {"Host": "a2", "State": "down" if down else "up", "Status": "enabled"}]
    venv = _fake_venv(tmp_path, services, hypervisors)
    script = PLAYBOOKS / "devstack" / "files" / "region_computes.py"
    p = subprocess.run([sys.executable, str(script), "--discover", "edge1", "2", "0",
                        str(venv)], capture_output=True, text=True, timeout=30)
    assert p.returncode == rc, p.stderr
    assert (tmp_path / "discover").read_text().split() == ["cell_v2", "discover_hosts"]
    if rc:
        assert p.stderr.strip().startswith("region edge1: ") and "\n" not in p.stderr.strip()
    else:
        assert json.loads(p.stdout) == {"region": "edge1", "expected": 2, "up": 2,
                                        "hypervisors": 2}
