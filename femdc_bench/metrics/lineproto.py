"""A run's points out of InfluxDB as line protocol, and back in (backup / restore).

Export reads each measurement's tag keys and field types first (SHOW TAG KEYS, SHOW
FIELD KEYS): a JSON row does not say which columns are tags, and an integer field would
otherwise come back as a float. The lines re-write into any InfluxDB 1.x (`/write`) or
2.x (`influx write`), and by `restore`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from femdc_bench.metrics.client import (
    InfluxClient,
    InfluxError,
    V1Client,
    V2Client,
    influxql_ident,
    influxql_string,
)
from femdc_bench.metrics.names import MEASUREMENTS
from femdc_bench.metrics.writer import to_line

_CAST = {"integer": int, "float": float, "string": str, "boolean": bool}


def _keys(client: V1Client, q: str) -> dict[str, list[list[Any]]]:
    return {s.get("name", ""): s.get("values", []) for s in client.query(q)}


def run_lines(client: InfluxClient, run: str) -> Iterator[tuple[str, str]]:
    """(measurement, line) for every point of `run`, measurement by measurement."""
    if not isinstance(client, V1Client):
        raise InfluxError("backup reads InfluxDB 1.x (InfluxQL) only; this server is 2.x")
    tags_of = {m: {v[0] for v in vals} for m, vals in _keys(client, "SHOW TAG KEYS").items()}
    fields_of = {m: {v[0]: v[1] for v in vals}
                 for m, vals in _keys(client, "SHOW FIELD KEYS").items()}
    for m in sorted(MEASUREMENTS & fields_of.keys()):
        tags, fields = tags_of.get(m, set()), fields_of[m]
        q = (f"SELECT * FROM {influxql_ident(m)} WHERE "
             f"{influxql_ident('run')} = {influxql_string(run)}")
        for series in client.query(q):
            cols = series["columns"]
            for values in series.get("values", []):
                row = dict(zip(cols, values, strict=True))
                ts = int(row.pop("time"))
                t = {k: v for k, v in row.items() if k in tags and v not in (None, "")}
                f = {k: _CAST.get(fields.get(k, "float"), float)(v) for k, v in row.items()
                     if k not in tags and v is not None}
                line = to_line(m, t, f, ts)
                if line:
                    yield m, line


def point_counts(client: InfluxClient, run: str) -> dict[str, int]:
    """Points per measurement of `run`: InfluxQL (1.x) through the export itself, Flux
    (2.x) by counting rows of the pivoted series."""
    if isinstance(client, V2Client):
        return client.point_counts("run", run)
    counts: dict[str, int] = {}
    for m, _ in run_lines(client, run):
        counts[m] = counts.get(m, 0) + 1
    return counts
