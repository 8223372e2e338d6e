"""A run's results as pandas DataFrames: `load(run)` -> `RunFrames`.

Read from the run's InfluxDB (its local influxd is started for the read and stopped
again when the run was destroyed, as `femdc-bench report` does), or from the run's files
(samples/<point>/*.jsonl, metrics/<point>/*.jsonl, events.jsonl, wan/<point>/) when
InfluxDB is away (``source="auto"``) or asked for (``source="files"``).

Columns (every frame has ``run`` and, where it has a point, ``point``):

* Point parameters: one column per swept key of the experiment, named by its key path
  with its unit: ``wan.default.delay_ms`` (a duration, in ms), ``..._kbit`` (a rate, in
  kbit/s), ``..._pct`` (a percentage), or the bare key path holding the value as written
  when it is none of these. ``point_label`` is the point's parameters as one string
  ("default.delay=50ms", "-" without sweep). `RunFrames.params` lists the columns.
* `iterations` (one row per workload iteration) and `actions` (one per atomic action of
  an iteration, ``action`` naming it): run, experiment, point, point_label, the parameter
  columns, site (where the load ran), host (the load host), target_site (whose cloud it
  loaded), region (that cloud's region), service, operation, workload ("" outside Rally
  tasks), action ("" for iterations), status ("ok" or "error"), error (the message, ""
  when ok), duration_ms (float; NaN when not measured), iteration (int), t0 (start, UTC
  timestamp, ns) and one float column per extra numeric field (e.g. ``mb_per_s``).
* `servers`: the sampled server metrics, long format, one row per (sample, field):
  run, point, measurement (``proc``, ``host``, ``db``, ``mq``, ``tcp``), host, site,
  service ("" for host samples), iface (``host`` network rows), peer_site (``tcp``),
  field, value (float), time (UTC).
* `events`: time, kind (phase, wan, partition, kill, degrade, ...), phase (start/end,
  a phase's name or status), point, site, fault, step_s, text.
* `wan`: the measured RTT matrix per point: run, point, the parameter columns, site,
  target_site, target_ms, rtt_ms, rtt_p95_ms, loss_pct, ok.
* `meta`: {"experiment": the experiment file as a mapping, "manifest": versions, layout,
  machine (manifest.json), "points": {id: {"params", "label"}}, "hosts": [{alias, site,
  roles, address}], "clouds": [{site, region, keystone_site, ...}], "state": state.json}.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from femdc_bench.metrics.names import API, SAMPLED, WAN
from femdc_bench.model import API_FIELDS, API_TAGS, Experiment

SOURCES = ("auto", "influxdb", "files")
ITERATION_COLUMNS = ("run", "experiment", "point", "point_label", "site", "host",
                     "target_site", "region", "service", "operation", "workload", "action",
                     "status", "error", "duration_ms", "iteration", "t0")
SERVER_COLUMNS = ("run", "point", "measurement", "host", "site", "service", "iface",
                  "peer_site", "field", "value", "time")
EVENT_COLUMNS = ("time", "kind", "phase", "point", "site", "fault", "step_s", "text")
WAN_COLUMNS = ("run", "point", "site", "target_site", "target_ms", "rtt_ms", "rtt_p95_ms",
               "loss_pct", "ok")
_SERVER_TAGS = ("host", "site", "service", "iface", "peer_site")
_NOT_SERVER_FIELDS = {"run", "experiment", "point", "time", *_SERVER_TAGS}


@dataclass
class RunFrames:
    """A run's results as DataFrames (see the module doc for every column)."""

    run: str
    iterations: pd.DataFrame
    actions: pd.DataFrame
    servers: pd.DataFrame
    events: pd.DataFrame
    wan: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)  # the point-parameter columns
    source: str = "influxdb"  # where the rows came from: "influxdb" or "files"


# ----------------------------------------------------------------------- parameters

def param_columns(key: str, value: str) -> tuple[str, Any]:
    """A swept key and its value as written -> (column, value): ``wan.default.delay``,
    "50ms" -> (``wan.default.delay_ms``, 50.0); a rate -> ``_kbit``; a percentage ->
    ``_pct``; anything else -> (the key, the value as written)."""
    from femdc_bench.experiment import duration_ms, percent, rate_kbit

    text = str(value)
    for suffix, parse in (("_ms", duration_ms), ("_kbit", rate_kbit)):
        try:
            return key + suffix, parse(text)
        except ValueError:
            pass
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?%", text):
        return key + "_pct", percent(text)
    return key, text


def point_table(exp: Experiment) -> dict[str, dict[str, Any]]:
    """point id -> {column: value} of its parameters, and its label."""
    out: dict[str, dict[str, Any]] = {}
    for p in exp.points:
        cols = dict(param_columns(k, v) for k, v in p.params.items())
        out[p.id] = {"point_label": p.label(), **cols}
    return out


def _add_point_columns(df: pd.DataFrame, points: Mapping[str, Mapping[str, Any]],
                       params: list[str]) -> pd.DataFrame:
    labels = {p: v["point_label"] for p, v in points.items()}
    if "point" not in df:
        df["point"] = ""
    df["point_label"] = df["point"].map(labels).fillna("-")
    for col in params:
        df[col] = df["point"].map({p: v.get(col) for p, v in points.items()})
    return df


# ----------------------------------------------------------------------- shaping

def _api_frame(raw: pd.DataFrame, run: str, exp: Experiment,
               points: Mapping[str, Mapping[str, Any]], params: list[str],
               regions: Mapping[str, str], drop: Iterable[str] = ()
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw `api` rows (InfluxDB's columns or Sample dicts, time in ns) -> (iterations,
    actions)."""
    df = raw.drop(columns=[c for c in drop if c in raw.columns])
    n = len(df)
    for col in API_TAGS:
        if col not in df:
            df[col] = ""
    for col in ("run", "experiment", "point", "site", "host", "target_site", "service",
                "operation", "status", "action", "workload"):
        df[col] = df[col].fillna("").astype(str) if n else df[col].astype(str)
    df["run"] = run
    df["experiment"] = exp.name
    df["error"] = df["error"].fillna("").astype(str) if "error" in df else ""
    df["duration_ms"] = pd.to_numeric(df.get("duration_ms"), errors="coerce").astype(float) \
        if "duration_ms" in df else float("nan")
    df["iteration"] = pd.to_numeric(df.get("iteration"), errors="coerce").fillna(0) \
        .astype("int64") if "iteration" in df else 0
    df["t0"] = pd.to_datetime(df.pop("time").astype("int64"), unit="ns", utc=True) \
        if "time" in df else pd.Series([], dtype="datetime64[ns, UTC]")
    df["region"] = df["target_site"].map(dict(regions)).fillna("")
    df = _add_point_columns(df, points, params)
    fixed = set(ITERATION_COLUMNS) | set(API_TAGS) | set(API_FIELDS) | set(params)
    extra = sorted(c for c in df.columns if c not in fixed
                   and pd.api.types.is_numeric_dtype(df[c]) and not
                   pd.api.types.is_bool_dtype(df[c]))
    for c in extra:
        df[c] = df[c].astype(float)
    cols = [*ITERATION_COLUMNS[:4], *params, *ITERATION_COLUMNS[4:], *extra]
    df = df[cols].sort_values(["point", "t0"], kind="stable").reset_index(drop=True)
    df.columns = pd.Index(cols)  # the same index type whatever the source
    is_action = df["action"] != ""
    iterations = df[~is_action].reset_index(drop=True)
    actions = df[is_action].reset_index(drop=True)
    return iterations, actions


def _servers_frame(wide: Iterable[tuple[str, pd.DataFrame]], run: str) -> pd.DataFrame:
    """(measurement, its rows: tags, numeric fields, time in ns, point) -> the long
    `servers` frame."""
    parts = []
    for m, df in wide:
        if df.empty:
            continue
        fields = [c for c in df.columns if c not in _NOT_SERVER_FIELDS
                  and pd.api.types.is_numeric_dtype(df[c]) and not
                  pd.api.types.is_bool_dtype(df[c])]
        ids = pd.DataFrame({"point": df["point"].fillna("").astype(str)
                            if "point" in df else "", "time": df["time"]})
        for t in _SERVER_TAGS:
            ids[t] = df[t].where(df[t].map(lambda v: isinstance(v, str)), "") \
                if t in df else ""
        long = pd.concat([ids, df[fields]], axis=1).melt(
            id_vars=list(ids.columns), value_vars=fields, var_name="field",
            value_name="value").dropna(subset=["value"])
        long["measurement"] = m
        parts.append(long)
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=[c for c in SERVER_COLUMNS if c != "run"])
    df["run"] = run
    df["value"] = df["value"].astype(float)
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="ns", utc=True)
    df = df[list(SERVER_COLUMNS)]
    return df.sort_values(["point", "measurement", "time"], kind="stable").reset_index(
        drop=True)


def _wide_from_records(records: Iterable[Mapping[str, Any]]
                       ) -> list[tuple[str, pd.DataFrame]]:
    """Sampler records ({"m", "tags", "fields", "t", "point"}) -> one wide frame per
    measurement (as InfluxDB answers)."""
    by_m: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_m.setdefault(r["m"], []).append({
            **{k: str(v) for k, v in r["tags"].items() if k in _SERVER_TAGS},
            **{k: float(v) for k, v in r["fields"].items()
               if isinstance(v, int | float) and not isinstance(v, bool)},
            "time": int(r["t"]), "point": r["point"]})
    return [(m, pd.DataFrame.from_records(rows)) for m, rows in sorted(by_m.items())]


def _events_frame(events: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame([{c: e.get(c) for c in EVENT_COLUMNS} for e in events],
                      columns=list(EVENT_COLUMNS))
    for c in ("kind", "phase", "point", "site", "fault", "text"):
        df[c] = df[c].fillna("").astype(str)
    df["step_s"] = pd.to_numeric(df["step_s"], errors="coerce").astype(float)
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="ns", utc=True)
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def _wan_frame(rows: Iterable[Mapping[str, Any]], run: str,
               points: Mapping[str, Mapping[str, Any]], params: list[str]) -> pd.DataFrame:
    df = pd.DataFrame([{**{c: r.get(c) for c in WAN_COLUMNS}, "run": run} for r in rows],
                      columns=list(WAN_COLUMNS))
    for c in ("target_ms", "rtt_ms", "rtt_p95_ms", "loss_pct"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["ok"] = df["ok"].fillna(False).astype(bool)
    df = _add_point_columns(df, points, params)
    df = df[["run", "point", "point_label", *params, *WAN_COLUMNS[2:]]]
    return df.sort_values(["point", "site", "target_site"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------- sources

# columns that hold text whatever they look like (a host named "1", a point "0")
_TEXT_COLUMNS = frozenset({*API_TAGS, "error", "text", "kind", "phase", "fault", "name",
                           "tags", *("host", "site", "service", "iface", "peer_site")})


def _influx_series(client: Any, measurement: str, where: Mapping[str, str],
                   text: Iterable[str] = ()) -> Iterator[pd.DataFrame]:
    """A measurement's rows as DataFrames. A 1.x server answers in CSV (chunked, so no
    row limit applies), parsed column-wise by pyarrow: a million rows in seconds where
    JSON rows cost a Python object each. A 2.x one goes row by row (client.rows).
    `text`: more columns to keep as text (the point's parameter tags)."""
    from femdc_bench.metrics.client import V1Client

    if isinstance(client, V1Client):
        df = _v1_csv(client, measurement, where, _TEXT_COLUMNS | set(text))
        if not df.empty:
            yield df
        return
    rows = list(client.rows(measurement, where))
    if rows:
        yield pd.DataFrame.from_records(rows)


def _v1_csv(client: Any, measurement: str, where: Mapping[str, str],
            text: set[str]) -> pd.DataFrame:
    import io

    from femdc_bench.metrics.client import InfluxError, InfluxUnavailable, influxql_ident

    q = f"SELECT * FROM {influxql_ident(measurement)}{client._where(where)}"
    r = client._post("/query", headers={"Accept": "application/csv"},
                     data={"q": q, "db": client.target.database, "epoch": "ns",
                           "chunked": "true", "chunk_size": "100000"})
    if r.status_code >= 500:
        raise InfluxUnavailable(f"/query answered HTTP {r.status_code}: {r.text[:300]}")
    if r.status_code >= 400:
        raise InfluxError(f"/query answered HTTP {r.status_code}: {r.text[:300]}")
    body = r.content
    if not body.strip():
        return pd.DataFrame()
    if body.lstrip().startswith(b"{"):  # an error, in JSON even when CSV was asked
        doc = json.loads(body.splitlines()[0])
        raise InfluxError(f"InfluxQL error: {doc.get('error') or doc}")
    header, _, rest = body.partition(b"\n")
    # each chunk (and each series) repeats the header line: keep the first
    rest = rest.replace(b"\n" + header + b"\n", b"\n")
    if rest.startswith(header + b"\n"):
        rest = rest[len(header) + 1:]
    import pyarrow as pa
    import pyarrow.csv as pacsv

    cols = header.decode().split(",")
    data = header + b"\n" + rest
    # text as text, time as ns, every field a float (an integer field that some rows lack
    # must not become a nullable integer, nor an int column meet a float later on)
    types = {c: pa.string() if c in text else pa.int64() if c == "time" else pa.float64()
             for c in cols}
    try:
        table = pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True))
    except pa.ArrowInvalid:  # a field that is not a number (a boolean, a string): infer
        table = pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
            column_types={c: t for c, t in types.items() if t == pa.string()},
            strings_can_be_null=True))
    df = table.to_pandas()
    return df.drop(columns=[c for c in ("name", "tags") if c in df.columns])


def _concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = list(frames)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_influx(run: Any, exp: Experiment) -> dict[str, Any]:
    from femdc_bench.metrics.client import connect
    from femdc_bench.metrics.server import LocalInfluxd
    from femdc_bench.metrics.store import read_events
    from femdc_bench.metrics.target import metrics_target

    target, started = metrics_target(run, exp)
    try:
        client = connect(target, create=False)
        try:
            where = {"run": run.id}
            text = {re.sub(r"[^A-Za-z0-9]+", "_", k).strip("_")
                    for p in exp.points for k in p.params}
            api = _concat(_influx_series(client, API, where, text))
            servers = [(m, _concat(_influx_series(client, m, where, text))) for m in SAMPLED]
            return {"api": api, "servers": servers,
                    "events": read_events(client, run.id),
                    "wan": list(client.rows(WAN, where))}
        finally:
            client.close()
    finally:
        if started:
            LocalInfluxd(run.influx_dir()).stop()


def _samples_file(path: Path) -> pd.DataFrame:
    """A load host's samples file (workload/sink.py's JSON lines, one Sample each) as
    columns: the Sample's keys, `fields` spread into columns, t0_ns as `time`. A torn
    last line (a killed agent) is skipped, as iter_samples does; any other bad line
    raises ValueError naming it."""
    import io

    from femdc_bench.workload.sink import iter_samples

    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1]:  # no newline after the last record: it may be torn
        try:
            json.loads(lines[-1])
        except ValueError:
            lines.pop()
    body = "\n".join(line for line in lines if line)
    if not body:
        return pd.DataFrame()
    try:
        df = pd.read_json(io.StringIO(body), lines=True, dtype=False)
    except ValueError:  # find and name the bad line
        list(iter_samples(str(path), strict=True))
        raise
    fields = df.pop("fields") if "fields" in df else None
    if fields is not None and fields.map(lambda v: bool(v)).any():
        extra = pd.DataFrame([v or {} for v in fields], index=df.index)
        df = df.join(extra[[c for c in extra.columns if c not in df.columns]])
    return df.rename(columns={"t0_ns": "time"})


def _read_files(run: Any) -> dict[str, Any]:
    from femdc_bench.rundir import read_jsonl

    samples: list[pd.DataFrame] = []
    servers: list[dict[str, Any]] = []
    wan: list[dict[str, Any]] = []
    for d in sorted((run.dir / "samples").glob("*/")):
        for f in sorted(d.glob("*.jsonl")):
            df = _samples_file(f)
            if not df.empty:
                df["point"] = d.name
                samples.append(df)
    for d in sorted((run.dir / "metrics").glob("*/")):
        for f in sorted(d.glob("*.jsonl")):
            for r in read_jsonl(f):
                if {"m", "tags", "fields", "t"} <= r.keys() and r["m"] in SAMPLED:
                    servers.append({**r, "point": d.name})
    wide = _wide_from_records(servers)
    for d in sorted((run.dir / "wan").glob("*/")):
        chk = d / "check.json"
        if chk.exists():
            for p in json.loads(chk.read_text()).get("pairs", []):
                wan.append({"point": d.name, "site": p.get("src_site"),
                            "target_site": p.get("dst_site"),
                            # the RTT it should have, as InfluxDB has it (expected_ms)
                            "target_ms": (p.get("target_ms") or 0.0) + (p.get("base_ms")
                                                                        or 0.0),
                            "rtt_ms": p.get("measured_ms"), "rtt_p95_ms": p.get("p95_ms"),
                            "loss_pct": p.get("loss_pct"), "ok": p.get("ok")})
    events = [{"time": e.get("t"), **e} for e in run.events()]
    for d in sorted((run.dir / "wan").glob("*/")):
        ev = d / "events.json"
        if ev.exists():  # FaultInjector.store: [t, kind, site, phase, label, step_s]
            for ts, kind, site, phase, label, step_s in json.loads(ev.read_text()):
                events.append({"time": ts, "kind": kind, "site": site, "phase": phase,
                               "fault": label, "point": d.name, "step_s": step_s,
                               "text": f"{label}: {phase} ({step_s:.1f} s to take effect)"})
    return {"api": _concat(samples), "servers": wide,
            "events": events, "wan": wan}


# ----------------------------------------------------------------------- load

def _meta(run: Any, exp: Experiment) -> dict[str, Any]:
    def js(name: str) -> Any:
        p = run.dir / name
        try:
            return json.loads(p.read_text()) if p.exists() else None
        except ValueError:
            return None

    inv = js("inventory.json") or {}
    clouds = (js("clouds.json") or {}).get("clouds", [])
    return {"experiment": exp.raw, "experiment_name": exp.name,
            "manifest": js("manifest.json") or {}, "state": js("state.json") or {},
            "points": {p.id: {"params": dict(p.params), "label": p.label()}
                       for p in exp.points},
            "hosts": [{k: h.get(k) for k in ("alias", "site", "roles", "address")}
                      for h in inv.get("hosts", [])],
            "clouds": clouds}


def _regions(exp: Experiment, clouds: list[dict[str, Any]]) -> dict[str, str]:
    """target site -> the region its users work in (clouds.json, else the layout)."""
    out = {c["site"]: c.get("region", "") for c in clouds if "site" in c}
    for s in exp.site_names:
        if s not in out:
            try:
                out[s] = exp.deployment.region_for(s)
            except Exception:  # noqa: BLE001 - a layout that cannot say: no region
                out[s] = ""
    return out


def load(run: Any, *, results: Path | str | None = None, source: str = "auto") -> RunFrames:
    """The results of `run` (a run id, a run directory, "last", or a `Run`) as DataFrames.

    `results`: the results directory (default: femdc-bench's, env FEMDC_RESULTS).
    `source`: "influxdb" (the run's InfluxDB; its local influxd is started for the read
    and stopped again if it was not running), "files" (the run directory's samples,
    sampler records, events and WAN checks), or "auto": InfluxDB, and the files when it
    does not answer or has no iteration of the run.

    >>> from femdc_bench.results import load
    >>> f = load("last")
    >>> f.iterations.groupby(["site", "target_site"]).duration_ms.quantile(0.95)
    """
    from femdc_bench.metrics.client import InfluxError
    from femdc_bench.rundir import RESULTS, Run

    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    r = run if isinstance(run, Run) else Run.open(str(run), Path(results or RESULTS))
    exp = r.experiment()
    meta = _meta(r, exp)
    points = point_table(exp)
    params = list(dict.fromkeys(c for v in points.values() for c in v if c != "point_label"))
    used = "influxdb"
    raw: dict[str, Any]
    if source == "files":
        raw, used = _read_files(r), "files"
    else:
        try:
            raw = _read_influx(r, exp)
        except (InfluxError, OSError) as e:
            if source == "influxdb":
                raise
            import logging

            logging.getLogger("femdc_bench").warning(
                "InfluxDB of %s not read (%s): reading the run's files", r.id, e)
            raw, used = _read_files(r), "files"
        if source == "auto" and used == "influxdb" and raw["api"].empty and any(
                (r.dir / "samples").glob("*/*.jsonl")):
            # nothing stored (or all of it still in the spool): the files have it
            raw, used = _read_files(r), "files"
    # InfluxDB carries the point's parameters as tags (wan_default_delay): our columns
    # replace them.
    tag_names = {re.sub(r"[^A-Za-z0-9]+", "_", k).strip("_")
                 for p in exp.points for k in p.params}
    iterations, actions = _api_frame(raw["api"], r.id, exp, points, params,
                                     _regions(exp, meta["clouds"]), drop=tag_names)
    return RunFrames(run=r.id, iterations=iterations, actions=actions,
                     servers=_servers_frame(raw["servers"], r.id),
                     events=_events_frame(raw["events"]),
                     wan=_wan_frame(raw["wan"], r.id, points, params),
                     meta=meta, params=params, source=used)
