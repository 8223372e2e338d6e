"""Grafana beside the run's InfluxDB on a testbed host (`metrics.grafana`).

    metrics:
      influxdb: {url: http://10.0.0.5:8086, database: femdc}
      grafana: {host: core-ctl, port: 3000}

`deploy` (after OpenStack's deploy) runs `playbooks/grafana/deploy.yml` on that host:
Docker from the distribution (`docker.io`), the provisioning tree written under the
host's work directory (the datasource: the run's InfluxDB, its credentials in
`secureJsonData`, the file readable by Grafana's user only; the dashboard provider; our
dashboards unchanged), one container `femdc-grafana-<run>` on the host network, then
checks that Grafana answers, that it loaded our four dashboards and that its datasource
reaches the InfluxDB. Anonymous users are viewers; `admin`'s password is generated per
run into `secrets.json` (0600, redacted from backups) and reaches the container as a
file (`GF_SECURITY_ADMIN_PASSWORD__FILE`), never on a command line. `destroy` removes
the container and the directory.

Why not EnOSlib 10.9.0's TIGMonitoring/TPGMonitoring: both deploy their own collector
(InfluxDB 1.8 or Prometheus in Docker) on a `collector` host they require, and Telegraf
on every agent, while the run already has its InfluxDB and our samplers write to it;
their Grafana gets one datasource through the HTTP API as admin/admin, named and reading
the database `telegraf`, and no dashboards (there is no way to mount a provisioning
tree); Docker comes from `curl https://get.docker.com | sh` and the Docker SDK from pip
on the host; and they run Ansible inside our process (`run_ansible`), where ours runs as
a logged child process. What we keep of it: the shape (Grafana in Docker with the host's
network, waiting for the port, datasource proxy access).

The playbook's variables are built here without contacting anything (`playbook_vars`),
so that unit tests check them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

from femdc_bench import grafana
from femdc_bench.model import Experiment, GrafanaSpec, Inventory

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks" / "grafana"
GRAFANA_UID = 472  # the user the grafana/grafana-oss image runs as
IN_CONTAINER = {"provisioning": "/etc/grafana/provisioning",
                "dashboards": "/var/lib/femdc-bench/dashboards",
                "secrets": "/run/femdc-grafana"}
SECRET_KEY = "grafana_admin"  # in the run's secrets.json


def container_name(run_id: str) -> str:
    from femdc_bench.providers.local import short_id

    return f"femdc-grafana-{short_id(run_id)}"


def datasource_url(exp: Experiment) -> str:
    """The run's InfluxDB as the Grafana host reaches it."""
    g = exp.metrics.grafana
    assert g is not None and exp.metrics.influxdb != "local"
    return g.influxdb_url or exp.metrics.influxdb


def url(exp: Experiment, inv: Inventory, run_id: str) -> str:
    """The API latency dashboard of this run."""
    g = exp.metrics.grafana
    assert g is not None
    host = next(h for h in inv.hosts if h.alias == g.host)
    address = f"[{host.address}]" if ":" in host.address else host.address  # IPv6
    return f"http://{address}:{g.port}/d/femdc-api?var-run={run_id}"


def run_argv(g: GrafanaSpec, name: str, run_id: str, directory: str) -> list[str]:
    """`docker run` of the container (argv: no shell; no secret in it)."""
    env = {
        "GF_SERVER_HTTP_PORT": str(g.port),
        "GF_SECURITY_ADMIN_PASSWORD__FILE": f"{IN_CONTAINER['secrets']}/admin-password",
        "GF_AUTH_ANONYMOUS_ENABLED": "true",
        "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH":
            f"{IN_CONTAINER['dashboards']}/femdc-api.json",
    }
    argv = ["docker", "run", "--detach", "--name", name, "--label", f"femdc-run={run_id}",
            "--restart", "unless-stopped", "--network", "host", "--user", str(GRAFANA_UID)]
    for part, inside in IN_CONTAINER.items():
        argv += ["--volume", f"{directory}/{part}:{inside}:ro"]
    for k, v in env.items():
        argv += ["--env", f"{k}={v}"]
    return [*argv, g.image]


def playbook_vars(exp: Experiment, inv: Inventory, *, run_id: str, admin_password: str,
                  username: str | None = None, password: str | None = None,
                  token: str | None = None) -> dict[str, Any]:
    """The extra vars of playbooks/grafana/deploy.yml (and destroy.yml)."""
    g = exp.metrics.grafana
    assert g is not None
    host = next(h for h in inv.hosts if h.alias == g.host)
    directory = f"{host.workdir.rstrip('/')}/grafana"
    name = container_name(run_id)
    files = grafana.provisioning_files(datasource_url(exp), exp.metrics.database,
                                       IN_CONTAINER["dashboards"], username=username,
                                       password=password, token=token)
    ds_file = "provisioning/datasources/femdc.yaml"
    # base64: Ansible would otherwise evaluate a `{{` in a dashboard or a credential
    b64 = {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}
    return {"femdc_run": run_id, "femdc_grafana": {
        "host": g.host, "name": name, "image": g.image, "port": g.port, "dir": directory,
        "uid": GRAFANA_UID,
        "datasource_file": ds_file, "datasource_b64": b64.pop(ds_file),
        "files_b64": b64, "admin_password": admin_password,
        "dashboards": sorted(grafana.dashboards()),
        "datasource_uid": grafana.DATASOURCE_UID,
        "run_argv": run_argv(g, name, run_id, directory)}}


def admin_password(run_dir: Path) -> str:
    """Grafana's admin password for this run, generated once into secrets.json (0600)."""
    path = run_dir / "secrets.json"
    values: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if SECRET_KEY not in values:
        values[SECRET_KEY] = secrets.token_urlsafe(24)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(values, f)
        os.replace(tmp, path)
    return str(values[SECRET_KEY])


def deploy(exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path, log: Path,
           on_task: Any = None) -> str:
    """Grafana on `metrics.grafana.host`; returns its URL."""
    from femdc_bench.ansible import run_playbook
    from femdc_bench.metrics.client import InfluxTarget

    g = exp.metrics.grafana
    assert g is not None
    target = InfluxTarget.from_spec(exp.metrics, datasource_url(exp))  # secrets: env
    extra = playbook_vars(exp, inv, run_id=run_id, admin_password=admin_password(run_dir),
                          username=target.username, password=target.password,
                          token=target.token)
    run_playbook(PLAYBOOKS / "deploy.yml", inv, run_dir=run_dir, log=log, extra_vars=extra,
                 limit=g.host, on_task=on_task)
    return url(exp, inv, run_id)


def destroy(exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path,
            log: Path) -> None:
    from femdc_bench.ansible import run_playbook

    g = exp.metrics.grafana
    assert g is not None
    host = next(h for h in inv.hosts if h.alias == g.host)
    extra = {"femdc_run": run_id, "femdc_grafana": {
        "name": container_name(run_id), "dir": f"{host.workdir.rstrip('/')}/grafana"}}
    run_playbook(PLAYBOOKS / "destroy.yml", inv, run_dir=run_dir, log=log, extra_vars=extra,
                 limit=g.host)
