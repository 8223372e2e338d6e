"""The shipped dashboards: structure, variables, and Grafana's substitution."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from femdc_bench import grafana
from femdc_bench.metrics import names as influx


def test_every_panel_and_annotation_uses_the_datasource_variable() -> None:
    ds = grafana.dashboards()
    assert set(ds) == {"femdc-api", "femdc-services", "femdc-db-mq", "femdc-galera"}
    for name, d in ds.items():
        assert d["uid"] == name
        assert d["templating"]["list"][0] == {**d["templating"]["list"][0],
                                              "name": "datasource", "type": "datasource"}
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in d["panels"]:
            assert p["datasource"]["uid"] == "${datasource}"
            assert all(t["datasource"]["uid"] == "${datasource}" and t["rawQuery"]
                       for t in p["targets"])
        for a in d["annotations"]["list"]:
            assert a["datasource"]["uid"] == "${datasource}" and '"event"' in a["query"]


def test_queries_name_our_measurements_and_filter_by_run() -> None:
    for name, d in grafana.dashboards().items():
        for where, q in grafana.queries(d):
            ms = set(re.findall(r'FROM "([a-z]+)"', q))
            assert ms and ms <= influx.MEASUREMENTS, (name, where, q)
            assert '"run" =~ /^$run$/' in q or where == "variable 'run'", (name, where)
            if q.startswith("SELECT"):
                assert "$timeFilter" in q, (name, where)


def test_render_substitutes_as_grafana_does() -> None:
    q = ('SELECT mean("x") FROM "proc" WHERE "run" =~ /^$run$/ AND "site" =~ /^$site$/ '
         'AND $timeFilter GROUP BY time($__interval)')
    out = grafana.render(q, {"run": "e2e-control.1", "site": ".*"}, 1_500_000_000,
                         2_600_000_000, "1s")
    assert out == ('SELECT mean("x") FROM "proc" WHERE "run" =~ /^e2e\\-control\\.1$/ AND '
                   '"site" =~ /^.*$/ AND time >= 1500ms and time <= 2601ms GROUP BY time(1s)')


def test_provisioning_tree(tmp_path: Path) -> None:
    files = grafana.write_provisioning(tmp_path, "http://10.0.0.1:8086")
    ds = yaml.safe_load((tmp_path / "datasources" / "femdc.yaml").read_text())
    assert ds["datasources"][0]["url"] == "http://10.0.0.1:8086"
    assert ds["datasources"][0]["jsonData"]["dbName"] == "femdc"
    prov = yaml.safe_load((tmp_path / "dashboards" / "femdc.yaml").read_text())
    assert prov["providers"][0]["options"]["path"] == str(tmp_path / "dashboards")
    assert len([f for f in files if f.suffix == ".json"]) == 4
    json.loads((tmp_path / "dashboards" / "femdc-api.json").read_text())
