"""Grafana dashboards for a run's InfluxDB, shipped as provisioning files.

    dashboards/femdc-api.json       API latency p50/p95 by site, target and operation;
                                    atomic actions; iterations by status; measured RTT
    dashboards/femdc-services.json  per-service CPU, RSS, processes, threads, TCP
                                    connections by peer site; host CPU, memory, network
    dashboards/femdc-db-mq.json     MariaDB and RabbitMQ
    dashboards/femdc-galera.json    Galera replication (wsrep_*)

Every panel and annotation uses the datasource variable `${datasource}`, so the same
dashboards work against the run's local InfluxDB or a testbed's; `run`, `site`, `host`,
`service` and `operation` are query variables; phases, WAN changes and faults (`event`
points) are annotations. `femdc-bench grafana DIR [--influxdb URL]` writes a provisioning
tree (datasource + dashboard provider + these files) for a Grafana to load.

`render` substitutes the variables the way Grafana does for InfluxQL (`$timeFilter`,
`$__interval`, regex-formatted values), so a test can run every query against a real run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

DIR = Path(__file__).resolve().parent
DASHBOARDS = DIR / "dashboards"


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, InfluxQL) of every panel target, annotation and query variable."""
    out = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            out.append((f"panel {p['title']!r} {t['refId']}", t["query"]))
    for a in dash.get("annotations", {}).get("list", []):
        out.append((f"annotation {a['name']!r}", a["query"]))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            out.append((f"variable {v['name']!r}", v["query"]))
    return out


def _regex_value(value: str) -> str:
    """A variable's value inside /^...$/, as Grafana formats it (`.*` is All)."""
    return value if value == ".*" else re.sub(r"([\\/.^$*+?()\[\]{}|-])", r"\\\1", value)


def render(query: str, variables: dict[str, str], start_ns: int, end_ns: int,
           interval: str = "5s") -> str:
    """InfluxQL as Grafana sends it for this time range and these variable values."""
    q = query.replace("$timeFilter", f"time >= {start_ns // 1_000_000}ms and "
                                     f"time <= {end_ns // 1_000_000 + 1}ms")
    q = q.replace("$__interval", interval)
    for name in sorted(variables, key=len, reverse=True):
        q = q.replace(f"${{{name}}}", _regex_value(variables[name]))
        q = q.replace(f"${name}", _regex_value(variables[name]))
    return q


DATASOURCE_UID = "femdc-influxdb"


def datasource(influx_url: str, database: str = "femdc", *, username: str | None = None,
               password: str | None = None, token: str | None = None) -> dict[str, Any]:
    """Grafana's provisioning document of the run's InfluxDB (InfluxQL), the default
    datasource so that the dashboards' `datasource` variable picks it. Credentials go in
    `secureJsonData` (Grafana encrypts them): a 1.x user and password, or a 2.x token as
    the `Authorization: Token` header (InfluxQL on 2.x reads the database through its
    DBRP mapping)."""
    ds: dict[str, Any] = {
        "name": DATASOURCE_UID, "uid": DATASOURCE_UID, "type": "influxdb",
        "access": "proxy", "url": influx_url, "isDefault": True, "editable": False,
        "jsonData": {"dbName": database, "httpMode": "POST"},
    }
    secure: dict[str, str] = {}
    if username:
        ds["user"] = username
        secure["password"] = password or ""
    elif token:
        ds["jsonData"]["httpHeaderName1"] = "Authorization"
        secure["httpHeaderValue1"] = f"Token {token}"
    if secure:
        ds["secureJsonData"] = secure
    return {"apiVersion": 1, "datasources": [ds]}


def provider(path: str) -> dict[str, Any]:
    """The dashboard provider reading our dashboards from `path` (as Grafana sees it)."""
    return {"apiVersion": 1, "providers": [{
        "name": "femdc-bench", "folder": "femdc-bench", "type": "file",
        "disableDeletion": True, "allowUiUpdates": False, "options": {"path": path}}]}


def provisioning_files(influx_url: str, database: str, dashboards_path: str,
                       **credentials: str | None) -> dict[str, str]:
    """Grafana's provisioning tree as {relative path: text}: `provisioning/datasources/
    femdc.yaml`, `provisioning/dashboards/femdc.yaml` (reading `dashboards_path`) and
    `dashboards/<name>.json`, ours unchanged."""
    def dump(doc: dict[str, Any]) -> str:
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)

    files = {
        "provisioning/datasources/femdc.yaml": dump(datasource(influx_url, database,
                                                               **credentials)),
        "provisioning/dashboards/femdc.yaml": dump(provider(dashboards_path)),
    }
    for name, doc in dashboards().items():
        files[f"dashboards/{name}.json"] = json.dumps(doc, indent=2) + "\n"
    return files


def write_provisioning(dest: Path, influx_url: str, database: str = "femdc") -> list[Path]:
    """dest/datasources/femdc.yaml, dest/dashboards/femdc.yaml and dest/dashboards/*.json
    (Grafana's provisioning directory layout)."""
    files = provisioning_files(influx_url, database, str((dest / "dashboards").resolve()))
    written = []
    for rel, text in files.items():
        p = dest / rel.removeprefix("provisioning/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        written.append(p)
    return written
