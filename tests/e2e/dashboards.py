"""Every query of the shipped Grafana dashboards, with their variables substituted as
Grafana does, run against a real run's InfluxDB: each must return series."""

from __future__ import annotations

from typing import Any

import requests

from femdc_bench import grafana


def influxql(url: str, q: str) -> list[dict[str, Any]]:
    r = requests.post(f"{url}/query", data={"db": "femdc", "q": q, "epoch": "ns"},
                      timeout=60)
    r.raise_for_status()
    res = r.json()["results"][0]
    assert "error" not in res, f"{res['error']}: {q}"
    return res.get("series", [])


def run_range(url: str, run_id: str) -> tuple[int, int]:
    """The run's first and last point (events span it)."""
    ts = [v[0] for s in influxql(url, f"SELECT * FROM event WHERE run = '{run_id}'")
          for v in s["values"]]
    ts += [v[0] for s in influxql(url, f"SELECT first(duration_ms), last(duration_ms) FROM api "
                                       f"WHERE run = '{run_id}'") for v in s["values"]]
    assert ts, "no events or api points for the run"
    return min(ts), max(ts)


def check_dashboards(url: str, run_id: str, names: tuple[str, ...]) -> dict[str, int]:
    """Series per dashboard; fails naming every query that returns nothing."""
    start, end = run_range(url, run_id)
    variables = {"run": run_id, "site": ".*", "host": ".*", "service": ".*",
                 "operation": ".*"}
    empty, counts = [], {}
    dashes = grafana.dashboards()
    for name in names:
        n = 0
        for where, query in grafana.queries(dashes[name]):
            q = grafana.render(query, variables, start, end, interval="5s")
            series = influxql(url, q)
            if not series:
                empty.append(f"{name}: {where}: {q}")
            n += len(series)
        counts[name] = n
    assert empty == [], "\n".join(empty)
    return counts
