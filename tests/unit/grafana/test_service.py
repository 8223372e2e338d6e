"""`metrics.grafana`: the experiment key, the provisioning files and the playbook's
variables, built without contacting anything (the network guard of test_providers)."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from femdc_bench import grafana
from femdc_bench.experiment import ExperimentError, parse
from femdc_bench.grafana import service
from femdc_bench.model import GRAFANA_IMAGE, Experiment
from femdc_bench.providers import static
from tests.unit.providers.test_testbeds import BASE, STATIC, no_network  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[3]
INFLUX = {"url": "http://10.0.0.9:8086", "database": "bench", "username_env": "T_USER",
          "password_env": "T_PASS"}


def exp_with(grafana_doc: Any, provider: dict[str, Any] | None = None,
             influxdb: Any = None) -> Experiment:
    doc = copy.deepcopy(BASE)
    doc["provider"] = provider or STATIC
    doc["metrics"] = {"influxdb": INFLUX if influxdb is None else influxdb,
                      "grafana": grafana_doc}
    return parse(doc, "x.yaml")


def error_of(*args: Any, **kw: Any) -> str:
    with pytest.raises(ExperimentError) as e:
        exp_with(*args, **kw)
    text = str(e.value)
    assert "\n" not in text
    return text


def test_the_key_and_its_defaults() -> None:
    g = exp_with({"host": "core-ctl"}).metrics.grafana
    assert g is not None
    assert (g.host, g.port, g.image, g.influxdb_url) == ("core-ctl", 3000, GRAFANA_IMAGE, None)
    g = exp_with({"host": "edge1-node", "port": 3300, "image": "grafana/grafana-oss:12.0.1",
                  "influxdb_url": "http://192.168.1.9:8086"}).metrics.grafana
    assert g is not None and (g.port, g.influxdb_url) == (3300, "http://192.168.1.9:8086")
    doc = copy.deepcopy(BASE)
    assert parse(doc, "x.yaml").metrics.grafana is None


@pytest.mark.parametrize(("args", "kw", "expected"), [
    ({"host": "core-ctl"}, {"provider": {"type": "local"}},
     "x.yaml: metrics.grafana: expected a testbed provider (g5k, vagrant, chameleon, "
     "static): Grafana runs in Docker on a testbed host"),
    ({"host": "core-ctl"}, {"influxdb": "local"},
     "x.yaml: metrics.grafana: expected metrics.influxdb: {url: ...} that the Grafana host "
     "reaches: the run's local InfluxDB listens on this machine's 127.0.0.1 only"),
    ({"host": "core-clt"}, {},
     "x.yaml: metrics.grafana.host: expected a host alias (did you mean 'core-ctl'?); "
     "hosts: core-ctl, edge1-node, edge2-node"),
    ({"host": "core-ctl", "port": 0}, {}, "metrics.grafana.port: expected a port"),
    ({"host": "core-ctl", "image": "grafana; rm -rf /"}, {},
     "metrics.grafana.image: expected a Docker image"),
    ({"host": "core-ctl", "influxdb_url": "10.0.0.1:8086"}, {},
     "metrics.grafana.influxdb_url: expected an http(s) URL"),
    ({"port": 3000}, {}, "metrics.grafana"),
    ({"host": "core-ctl", "prot": 3000}, {}, "unknown key 'prot' (did you mean 'port'?)"),
])
def test_refusals_are_one_line(args: Any, kw: dict[str, Any], expected: str) -> None:
    assert expected in error_of(args, **kw)


def test_the_local_provider_is_refused_by_validate(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from femdc_bench.cli import main

    doc = copy.deepcopy(BASE)
    doc.pop("provider", None)
    doc["metrics"] = {"influxdb": INFLUX, "grafana": {"host": "core-ctl"}}
    f = tmp_path / "g.yaml"
    f.write_text(yaml.safe_dump(doc))
    res = CliRunner().invoke(main, ["validate", str(f)])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "metrics.grafana: expected a testbed" in res.output


def _vars(exp: Experiment, **creds: str | None) -> dict[str, Any]:
    inv = static.inventory(exp, "r1")
    return service.playbook_vars(exp, inv, run_id="r1", admin_password="pw-admin-0123",
                                 **creds)["femdc_grafana"]


def _files(v: dict[str, Any]) -> dict[str, str]:
    out = {k: base64.b64decode(x).decode() for k, x in v["files_b64"].items()}
    out[v["datasource_file"]] = base64.b64decode(v["datasource_b64"]).decode()
    return out


def test_datasource_is_the_runs_influxdb(no_network: list[str]) -> None:  # noqa: F811
    v = _vars(exp_with({"host": "core-ctl"}), username="alice", password="s3cr{{et}}")
    doc = yaml.safe_load(_files(v)["provisioning/datasources/femdc.yaml"])
    assert doc == {"apiVersion": 1, "datasources": [{
        "name": "femdc-influxdb", "uid": "femdc-influxdb", "type": "influxdb",
        "access": "proxy", "url": "http://10.0.0.9:8086", "isDefault": True,
        "editable": False, "jsonData": {"dbName": "bench", "httpMode": "POST"},
        "user": "alice", "secureJsonData": {"password": "s3cr{{et}}"}}]}
    # the override: the InfluxDB as the Grafana host reaches it
    v = _vars(exp_with({"host": "core-ctl", "influxdb_url": "http://192.168.1.9:8086"}),
              token="tok==")
    ds = yaml.safe_load(_files(v)["provisioning/datasources/femdc.yaml"])["datasources"][0]
    assert ds["url"] == "http://192.168.1.9:8086" and "user" not in ds
    assert ds["jsonData"]["httpHeaderName1"] == "Authorization"
    assert ds["secureJsonData"] == {"httpHeaderValue1": "Token tok=="}
    v = _vars(exp_with({"host": "core-ctl"}))
    assert "secureJsonData" not in yaml.safe_load(
        _files(v)["provisioning/datasources/femdc.yaml"])["datasources"][0]


def test_every_dashboard_provisioned_is_ours(no_network: list[str]) -> None:  # noqa: F811
    files = _files(_vars(exp_with({"host": "core-ctl"})))
    shipped = {p.name: json.loads(p.read_text())
               for p in (ROOT / "femdc_bench" / "grafana" / "dashboards").glob("*.json")}
    boards = {k.removeprefix("dashboards/"): json.loads(t) for k, t in files.items()
              if k.startswith("dashboards/")}
    assert boards == shipped and len(boards) == 4
    prov = yaml.safe_load(files["provisioning/dashboards/femdc.yaml"])["providers"][0]
    # the provider reads them where the container mounts them
    assert prov["options"]["path"] == service.IN_CONTAINER["dashboards"]
    assert prov["type"] == "file" and prov["disableDeletion"] is True
    assert set(files) == {"provisioning/datasources/femdc.yaml",
                          "provisioning/dashboards/femdc.yaml",
                          *(f"dashboards/{n}" for n in shipped)}


def test_playbook_vars_and_docker_argv(no_network: list[str]) -> None:  # noqa: F811
    exp = exp_with({"host": "edge1-node", "port": 3300})
    v = _vars(exp, token="tok")
    name = service.container_name("r1")
    d = "/var/lib/femdc-bench/runs/r1/edge1-node/grafana"
    assert (v["host"], v["name"], v["port"], v["dir"], v["uid"]) == (
        "edge1-node", name, 3300, d, 472)
    assert re.fullmatch(r"femdc-grafana-[0-9a-f]{5}", name)
    assert v["dashboards"] == ["femdc-api", "femdc-db-mq", "femdc-galera", "femdc-services"]
    argv = v["run_argv"]
    assert argv[:4] == ["docker", "run", "--detach", "--name"] and argv[4] == name
    assert argv[-1] == GRAFANA_IMAGE
    pairs = {argv[i]: [] for i in range(len(argv))}  # flag -> values
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag.startswith("--") and not value.startswith("--"):
            pairs[flag].append(value)
    assert pairs["--network"] == ["host"] and pairs["--user"] == ["472"]
    assert sorted(pairs["--volume"]) == sorted([
        f"{d}/provisioning:/etc/grafana/provisioning:ro",
        f"{d}/dashboards:/var/lib/femdc-bench/dashboards:ro",
        f"{d}/secrets:/run/femdc-grafana:ro"])
    env = dict(e.split("=", 1) for e in pairs["--env"])
    assert env["GF_SERVER_HTTP_PORT"] == "3300"
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/femdc-grafana/admin-password"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    # no secret on the command line
    assert not any("pw-admin" in a or "tok" in a for a in argv)
    inv = static.inventory(exp, "r1")
    assert service.url(exp, inv, "r1") == "http://10.0.0.2:3300/d/femdc-api?var-run=r1"


def test_the_playbooks_use_only_these_vars(no_network: list[str]) -> None:  # noqa: F811
    v = _vars(exp_with({"host": "core-ctl"}))
    for name in ("deploy.yml", "destroy.yml"):
        used = set(re.findall(r"\bg\.([a-z_0-9]+)", (service.PLAYBOOKS / name).read_text()))
        assert used and used <= set(v), (name, used - set(v))
    # the files of the provisioning tree land where the container mounts them
    mounted = {a.split(":")[0].removeprefix(v["dir"] + "/") for a in v["run_argv"]
               if a.startswith(v["dir"])}
    assert {k.split("/")[0] for k in v["files_b64"]} | {"secrets"} == mounted


def test_admin_password_generated_once_0600(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps({"admin": "x" * 20}))
    pw = service.admin_password(tmp_path)
    assert len(pw) >= 24 and service.admin_password(tmp_path) == pw
    data = json.loads((tmp_path / "secrets.json").read_text())
    assert data == {"admin": "x" * 20, "grafana_admin": pw}  # backups redact these values
    assert stat.S_IMODE(os.stat(tmp_path / "secrets.json").st_mode) == 0o600


def test_deploy_runs_the_playbook_on_the_grafana_host_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        no_network: list[str]) -> None:  # noqa: F811
    from femdc_bench import ansible

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ansible, "run_playbook",
                        lambda playbook, inv, **kw: calls.append({"playbook": playbook, **kw}))
    monkeypatch.setenv("T_USER", "alice")
    monkeypatch.setenv("T_PASS", "from-the-env")
    exp = exp_with({"host": "core-ctl"})
    inv = static.inventory(exp, "r1")
    url = service.deploy(exp, inv, run_id="r1", run_dir=tmp_path, log=tmp_path / "l.log")
    assert url == "http://10.0.0.1:3000/d/femdc-api?var-run=r1"
    (call,) = calls
    assert call["playbook"] == service.PLAYBOOKS / "deploy.yml" and call["limit"] == "core-ctl"
    g = call["extra_vars"]["femdc_grafana"]
    ds = yaml.safe_load(base64.b64decode(g["datasource_b64"]))["datasources"][0]
    assert ds["user"] == "alice" and ds["secureJsonData"]["password"] == "from-the-env"
    assert g["admin_password"] == json.loads((tmp_path / "secrets.json").read_text())[
        "grafana_admin"]
    calls.clear()
    service.destroy(exp, inv, run_id="r1", run_dir=tmp_path, log=tmp_path / "l.log")
    assert calls[0]["playbook"].name == "destroy.yml" and calls[0]["limit"] == "core-ctl"
    assert calls[0]["extra_vars"]["femdc_grafana"] == {
        "name": service.container_name("r1"),
        "dir": "/var/lib/femdc-bench/runs/r1/core-ctl/grafana"}


def test_write_provisioning_keeps_its_layout(tmp_path: Path) -> None:
    files = grafana.write_provisioning(tmp_path, "http://127.0.0.1:8086", "femdc")
    assert {p.relative_to(tmp_path).as_posix() for p in files} == {
        "datasources/femdc.yaml", "dashboards/femdc.yaml", "dashboards/femdc-api.json",
        "dashboards/femdc-db-mq.json", "dashboards/femdc-galera.json",
        "dashboards/femdc-services.json"}


def test_run_deploys_grafana_after_openstack_and_destroy_removes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        no_network: list[str]) -> None:  # noqa: F811
    """run.py's composition: deploy ends with Grafana (its URL in the manifest, which
    `run --keep` prints), destroy removes it before the services; a run without
    metrics.grafana touches neither."""
    from types import SimpleNamespace

    from femdc_bench import ansible, teardown
    from femdc_bench import run as pipeline
    from femdc_bench.model import Clouds
    from femdc_bench.rundir import Run

    calls: list[str] = []
    monkeypatch.setattr(ansible, "run_playbook", lambda playbook, inv, **kw: calls.append(
        f"{playbook.parent.name}/{playbook.name}@{kw.get('limit')}"))
    fake_method = SimpleNamespace(
        deploy=lambda *a, **kw: calls.append("openstack") or Clouds(
            clouds=(), clouds_yaml="", secrets_file="", agent_python=""),
        destroy=lambda *a, **kw: calls.append("services"),
        manifest=lambda exp: {})
    chooser = SimpleNamespace(get=lambda name: fake_method)
    monkeypatch.setattr(pipeline, "methods", chooser)
    monkeypatch.setattr(teardown, "methods", chooser)
    monkeypatch.setattr(pipeline, "collect", lambda run, inv: None)
    monkeypatch.setattr(teardown, "collect", lambda run, inv: None)
    monkeypatch.setattr(pipeline, "deployment_memory",
                        lambda run: {"memory_mb": 0.0, "by_host": {}})
    monkeypatch.setattr(pipeline, "host_versions", lambda run: {})
    monkeypatch.setattr(teardown, "recover", lambda run, progress=None: [])
    monkeypatch.setattr(teardown, "close_connections", lambda d: 0)
    monkeypatch.setattr(teardown, "stop_local_influx", lambda run: None)
    monkeypatch.setenv("T_USER", "alice")
    monkeypatch.setenv("T_PASS", "from-the-env")

    for with_grafana in (True, False):
        doc = copy.deepcopy(BASE)
        doc["provider"] = STATIC
        doc["metrics"] = {"influxdb": INFLUX}
        if with_grafana:
            doc["metrics"]["grafana"] = {"host": "edge2-node"}
        f = tmp_path / f"g{with_grafana}.yaml"
        f.write_text(yaml.safe_dump(doc))
        run = Run.create(f, tmp_path / "results", f"r-{with_grafana}")
        exp = run.experiment()
        run.save_inventory(static.inventory(exp, run.id))
        calls.clear()
        pipeline.deploy(run)
        run = Run.open(str(run.dir))
        url = pipeline.grafana_url(run)
        monkeypatch.setattr(teardown, "provider_for", lambda run, exp: SimpleNamespace(
            exists=lambda: True, destroy=lambda: []))
        rep = teardown.destroy(run)
        if with_grafana:
            assert calls == ["openstack", "grafana/deploy.yml@edge2-node",
                             "grafana/destroy.yml@edge2-node", "services"]
            assert url == f"http://[fd00::3]:3000/d/femdc-api?var-run={run.id}"
            assert "Grafana on edge2-node" in rep.removed
        else:
            assert calls == ["openstack", "services"] and url is None
