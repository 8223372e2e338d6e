"""Pure parts of the composition: clouds per site, per-host vars, agent specs, agent zip."""

from __future__ import annotations

import base64
import dataclasses
import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from femdc_bench.bench import controller as bench_controller
from femdc_bench.bench import plan as bench_plan
from femdc_bench.deploy import native
from femdc_bench.experiment import load
from femdc_bench.model import Clouds, Host, Inventory

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def inventory_for(exp_file: str) -> Inventory:
    exp = load(TOPOLOGIES / exp_file)
    hosts = []
    for i, (site, h) in enumerate((s.name, h) for s in exp.sites for h in s.hosts):
        hosts.append(Host(alias=h.name, address=f"10.9.0.{i + 2}", site=site, roles=h.roles))
    return Inventory(provider="local", hosts=tuple(hosts), shared_filesystem=True)


def test_centralized_clouds_point_every_site_at_the_core() -> None:
    exp = load(TOPOLOGIES / "default.yaml")
    clouds = native.clouds_for(exp, inventory_for("default.yaml"))
    assert [(c.site, c.auth_url, c.region, c.keystone_site) for c in clouds] == [
        ("core", "http://10.9.0.2:5000/v3", "core", "core"),
        ("edge1", "http://10.9.0.2:5000/v3", "core", "core"),
        ("edge2", "http://10.9.0.2:5000/v3", "core", "core"),
    ]


def test_per_site_clouds_have_their_own_keystone_and_region() -> None:
    exp = load(TOPOLOGIES / "per-site.yaml")
    inv = native.host_vars(exp, inventory_for("per-site.yaml"))
    clouds = native.clouds_for(exp, inv)
    assert [(c.site, c.auth_url, c.region) for c in clouds] == [
        ("site1", "http://10.9.0.2:5000/v3", "site1"),
        ("site2", "http://10.9.0.3:5000/v3", "site2"),
    ]
    assert inv.host("site2-ctl").extra == {"femdc_keystone_region": "site2",
                                           "femdc_db_address": "10.9.0.3",
                                           "femdc_keystone_primary": True}


def test_secrets_and_clouds_yaml_are_private(tmp_path: Path) -> None:
    pw = native.load_or_create_secrets(tmp_path / "secrets.json")
    assert set(pw) == {*native.SECRET_KEYS, *native.KEY_KEYS}
    assert len({*pw.values()}) == len(pw)
    for k in native.KEY_KEYS:  # fernet keys: 32 bytes, URL-safe base64
        assert len(base64.urlsafe_b64decode(pw[k])) == 32
    assert native.load_or_create_secrets(tmp_path / "secrets.json") == pw  # reused
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    exp = load(TOPOLOGIES / "default.yaml")
    clouds = native.clouds_for(exp, inventory_for("default.yaml"))
    native.write_clouds_yaml(tmp_path / "clouds.yaml", clouds, pw["admin"])
    assert stat.S_IMODE((tmp_path / "clouds.yaml").stat().st_mode) == 0o600
    doc = yaml.safe_load((tmp_path / "clouds.yaml").read_text())
    assert doc["clouds"]["edge2"]["region_name"] == "core"
    assert doc["clouds"]["edge2"]["auth"]["password"] == pw["admin"]


def test_lock_names_the_venv() -> None:
    versions = native.lock_versions()
    assert versions["keystone"] == "30.0.0"
    assert native.venv_dir().endswith(native.lock_sha256()[:12])


def test_agent_specs_one_per_load_host_jobs_in_order() -> None:
    exp = load(TOPOLOGIES / "default.yaml")
    inv = inventory_for("default.yaml")
    clouds = Clouds(clouds=tuple(native.clouds_for(exp, inv)), clouds_yaml="c", secrets_file="s",
                    agent_python="/venv/bin/python")
    specs = bench_plan.agent_specs(exp, inv, clouds, "pw", "femdc-r1-")
    assert sorted(specs) == ["core-ctl", "edge1-node", "edge2-node"]
    edge = specs["edge1-node"]
    assert edge.site == "edge1"
    assert [j.scenario for j in edge.jobs] == [s.name for s in exp.workload.scenarios]
    assert {j.target_site for j in edge.jobs} == {"core"}
    assert all(j.auth.auth_url == "http://10.9.0.2:5000/v3" and j.auth.region_name == "core"
               for j in edge.jobs)
    assert edge.jobs[0].sla == exp.workload.sla
    assert "pw" not in repr(edge)


def test_agent_specs_every_load_host_of_a_site_takes_its_share() -> None:
    exp = load(TOPOLOGIES / "default.yaml")
    inv = inventory_for("default.yaml")
    extra = Host(alias="edge1-node2", address="10.9.0.9", site="edge1", roles=("load",))
    inv = dataclasses.replace(inv, hosts=(*inv.hosts, extra))
    clouds = Clouds(clouds=tuple(native.clouds_for(exp, inv)), clouds_yaml="c", secrets_file="s",
                    agent_python="p")
    specs = bench_plan.agent_specs(exp, inv, clouds, "pw", "femdc-r1-")
    assert "edge1-node2" in specs
    for i, sc in enumerate(exp.workload.scenarios):
        a, b = specs["edge1-node"].jobs[i].runner, specs["edge1-node2"].jobs[i].runner
        assert a.concurrency + b.concurrency == sc.runner.concurrency
        if sc.runner.type == "times":
            assert (a.times or 0) + (b.times or 0) == sc.runner.times
    # the other sites' single load host runs the whole load
    assert [j.runner for j in specs["edge2-node"].jobs] == [
        s.runner for s in exp.workload.scenarios]


def test_agent_specs_local_targets_follow_the_source_site() -> None:
    exp = load(TOPOLOGIES / "per-site.yaml")
    inv = inventory_for("per-site.yaml")
    clouds = Clouds(clouds=tuple(native.clouds_for(exp, inv)), clouds_yaml="c", secrets_file="s",
                    agent_python="p")
    specs = bench_plan.agent_specs(exp, inv, clouds, "pw", "femdc-r1-")
    # per-site.yaml loads every site's Keystone from every site ("to: all").
    assert [j.target_site for j in specs["site1-ctl"].jobs] == ["site1", "site2"]
    assert bench_plan.agent_timeout(exp) >= 600 + 2 * 10


def test_agent_zip_runs_standalone(tmp_path: Path) -> None:
    """The zip holds model + workload + the sampler only and imports without the rest of
    the project (the sampler with the standard library alone)."""
    z = bench_controller.build_agent_zip(tmp_path / "agent.zip")
    names = zipfile.ZipFile(z).namelist()
    assert "femdc_bench/model.py" in names
    assert "femdc_bench/workload/agent.py" in names
    assert "femdc_bench/metrics/sampler.py" in names
    assert not any(n.startswith(("femdc_bench/run", "femdc_bench/cli", "femdc_bench/metrics/client",
                                 "femdc_bench/metrics/writer")) for n in names)
    proc = subprocess.run(
        [sys.executable, "-I", "-c",
         "import sys; sys.path.insert(0, sys.argv[1]); import femdc_bench.workload.agent, "
         "femdc_bench.metrics.sampler, "
         "json; print(json.dumps(femdc_bench.workload.agent.__file__))", str(z)],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout).startswith(str(z))


def test_central_control_vars_name_every_fake_compute() -> None:
    exp = load(TOPOLOGIES / "central-control.yaml")
    inv = native.host_vars(exp, inventory_for("central-control.yaml"))
    ctl, edge = inv.host("core-ctl").extra, inv.host("edge2-node").extra
    assert ctl["femdc_region"] == "core" and ctl["femdc_region_computes"] == 4
    assert ctl["femdc_keystone_url"] == "http://10.9.0.2:5000/v3"
    assert edge["femdc_control_address"] == "10.9.0.2"
    assert edge["femdc_compute_hosts"] == ["edge2-node-c001", "edge2-node-c002"]
    clouds = native.clouds_for(exp, inv)
    assert {(c.site, c.region, c.region_site) for c in clouds} == {
        ("core", "core", "core"), ("edge1", "core", "core"), ("edge2", "core", "core")}
    assert clouds[0].services == ("keystone", "placement", "glance", "nova", "neutron")


def test_region_per_site_vars_point_each_region_at_the_shared_keystone() -> None:
    exp = load(TOPOLOGIES / "region-per-site.yaml")
    inv = native.host_vars(exp, inventory_for("region-per-site.yaml"))
    edge = inv.host("edge1-ctl").extra
    assert edge["femdc_region"] == "edge1" and edge["femdc_region_computes"] == 1
    assert edge["femdc_keystone_url"] == "http://10.9.0.2:5000/v3"  # core's Keystone
    assert edge["femdc_db_address"] == "10.9.0.3" and edge["femdc_control_address"] == "10.9.0.3"
    assert [c.region for c in native.clouds_for(exp, inv)] == ["core", "edge1"]


def test_galera_vars_bootstrap_one_node_and_one_keystone_schema() -> None:
    exp = load(TOPOLOGIES / "keystone-galera.yaml")
    inv = native.host_vars(exp, inventory_for("keystone-galera.yaml"))
    nodes = ["10.9.0.2", "10.9.0.3", "10.9.0.4"]
    for i, alias in enumerate(("site1-ctl", "site2-ctl", "site3-ctl")):
        extra = inv.host(alias).extra
        assert extra["femdc_galera_nodes"] == nodes
        assert extra["femdc_galera_first"] is (i == 0)
        assert extra["femdc_galera_joiner"] is (i != 0)
        assert extra["femdc_keystone_primary"] is (i == 0)
        assert extra["femdc_db_address"] == nodes[i]  # each Keystone uses its own node


def test_deploy_inputs_digest_sees_every_input() -> None:
    exp = load(TOPOLOGIES / "central-control.yaml")
    inv = native.host_vars(exp, inventory_for("central-control.yaml"))
    base = native.inputs_digest(inv, {"femdc_run": "r1", "femdc_api_workers": 1})
    assert native.inputs_digest(inv, {"femdc_api_workers": 1, "femdc_run": "r1"}) == base
    assert native.inputs_digest(inv, {"femdc_run": "r1", "femdc_api_workers": 2}) != base
    fewer = native.host_vars(exp, inventory_for("central-control.yaml"))
    hosts = tuple(h if h.alias != "edge1-node" else dataclasses.replace(
        h, extra={**h.extra, "femdc_compute_hosts": ["edge1-node-c001"]}) for h in fewer.hosts)
    assert native.inputs_digest(dataclasses.replace(fewer, hosts=hosts),
                                {"femdc_run": "r1", "femdc_api_workers": 1}) != base
