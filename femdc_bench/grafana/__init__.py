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


DATASOURCE = """apiVersion: 1
datasources:
  - name: femdc-influxdb
    uid: femdc-influxdb
    type: influxdb
    access: proxy
    url: {url}
    jsonData: {{dbName: {database}, httpMode: POST}}
"""
PROVIDER = """apiVersion: 1
providers:
  - name: femdc-bench
    folder: femdc-bench
    type: file
    options: {{path: {path}}}
"""


def write_provisioning(dest: Path, influx_url: str, database: str = "femdc") -> list[Path]:
    """dest/datasources/femdc.yaml, dest/dashboards/femdc.yaml and dest/dashboards/*.json
    (Grafana's provisioning directory layout)."""
    written = []
    (dest / "datasources").mkdir(parents=True, exist_ok=True)
    (dest / "dashboards").mkdir(parents=True, exist_ok=True)
    p = dest / "datasources" / "femdc.yaml"
    p.write_text(DATASOURCE.format(url=json.dumps(influx_url), database=json.dumps(database)))
    written.append(p)
    p = dest / "dashboards" / "femdc.yaml"
    p.write_text(PROVIDER.format(path=json.dumps(str((dest / "dashboards").resolve()))))
    written.append(p)
    for name, doc in dashboards().items():
        p = dest / "dashboards" / f"{name}.json"
        p.write_text(json.dumps(doc, indent=2) + "\n")
        written.append(p)
    return written
