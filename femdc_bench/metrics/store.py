"""Storing a run's points: samples, sampler records and events into InfluxDB, through
the run's spool while InfluxDB is away (spooling_writer), and `store` to write them
again from the run's files."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from femdc_bench.metrics.target import metrics_target
from femdc_bench.model import Experiment, Sample
from femdc_bench.rundir import Progress, Run, RunError, log, noop, read_jsonl


def spool_file(run: Run) -> Path:
    """Points the run could not write (InfluxDB away), waiting to be sent."""
    return run.dir / "influx-spool.jsonl"


def spool_waiting(run: Run) -> int:
    from femdc_bench.metrics.writer import spool_count

    return spool_count(spool_file(run))


@contextlib.contextmanager
def spooling_writer(run: Run, target: Any, tags: dict[str, str] | None = None
                    ) -> Iterator[tuple[Any, Any]]:
    """(client, writer) for the run's points that loses none: while InfluxDB does not
    answer (its influxd died, the network is down) the client is None and every point
    goes to the run's spool, as do the points of a server that dies during the writes;
    they are sent at the next write that reaches it, or by `femdc-bench store`. A server
    that refuses us (credentials, database) still raises."""
    from femdc_bench.metrics.client import InfluxUnavailable, connect
    from femdc_bench.metrics.writer import InfluxWriter

    client = None
    try:
        client = connect(target)
    except InfluxUnavailable as e:
        log.warning("InfluxDB unreachable (%s): the points go to %s", e, spool_file(run))
    try:
        with InfluxWriter(client, common_tags=tags, spool_path=spool_file(run)) as w:
            yield client, w
    finally:
        if client is not None:
            client.close()


def delete_before_store(run: Run, client: Any, point: str, measurements: Iterable[str],
                         what: str) -> None:
    """The point's earlier `measurements`, deleted before a store step writes them again
    (`client` of spooling_writer). InfluxDB away is a warning: the new points wait in
    the spool."""
    from femdc_bench.metrics.client import InfluxUnavailable

    try:
        for measurement in measurements if client is not None else ():
            client.delete(measurement, {"run": run.id, "point": point})
    except InfluxUnavailable as e:
        log.warning("%s of %s not deleted before storing (%s)", what, point, e)


def replace_point(run: Run, client: Any, point: str) -> int:
    """Before `point` is benched again: what waits in the spool is sent first (an
    earlier bench of the point may have left its points there: sent after the delete,
    they would double the point), then the point's points are deleted (`api`, `event`
    and the sampled ones). Returns the spooled points sent."""
    from femdc_bench.metrics.names import API, EVENT, SAMPLED
    from femdc_bench.metrics.writer import InfluxWriter

    sent = 0
    if spool_waiting(run):
        sent = InfluxWriter(client, spool_path=spool_file(run)).replay_spool()
        log.info("sent %d spooled points before replacing %s", sent, point)
    for measurement in (API, EVENT, *SAMPLED):
        client.delete(measurement, {"run": run.id, "point": point})
    return sent


def point_tags(exp: Experiment, point: str) -> dict[str, str]:
    """The point's swept parameters as tags: wan.default.delay -> wan_default_delay."""
    sp = exp.point(point)
    return {re.sub(r"[^A-Za-z0-9]+", "_", k).strip("_"): v for k, v in sp.params.items()}


def read_samples(run: Run, point: str) -> list[Sample]:
    """The samples fetched from the load hosts (a torn last line of a killed agent is
    skipped)."""
    from femdc_bench.workload.sink import iter_samples

    return [s for f in sorted(run.samples_dir(point).glob("*.jsonl"))
            for s in iter_samples(str(f))]


def store_samples(run: Run, exp: Experiment, target: Any, point: str) -> int:
    """The point's samples as `api` points (into the spool while InfluxDB is away)."""
    samples = read_samples(run, point)
    with spooling_writer(run, target, point_tags(exp, point)) as (_, w):
        w.write_samples(samples, run=run.id, experiment=exp.name, point=point)
    run.update_manifest(samples={point: len(samples)})
    return len(samples)


def read_metrics(run: Run, point: str) -> list[dict[str, Any]]:
    """The sampler records fetched from the hosts (a torn last line is skipped)."""
    return [rec for f in sorted(run.metrics_dir(point).glob("*.jsonl"))
            for rec in read_jsonl(f) if {"m", "tags", "fields", "t"} <= rec.keys()]


def store_metrics(run: Run, exp: Experiment, target: Any, point: str) -> int:
    """The point's sampler records into InfluxDB (replacing the point's earlier ones)."""
    from femdc_bench.metrics.names import SAMPLED

    recs = read_metrics(run, point)
    counts: dict[str, int] = {}
    with spooling_writer(run, target, point_tags(exp, point)) as (client, w):
        # Away: the bench deleted them before its load; `store` asks for InfluxDB first.
        # (The records of the files are the same points again: a resend overwrites.)
        delete_before_store(run, client, point, SAMPLED, "sampler records")
        for r in recs:
            if r["m"] not in SAMPLED:
                continue
            w.write(r["m"], {**r["tags"], "run": run.id, "experiment": exp.name,
                             "point": point}, r["fields"], int(r["t"]))
            counts[r["m"]] = counts.get(r["m"], 0) + 1
    run.update_manifest(metrics={point: counts})
    return sum(counts.values())


def store_events(run: Run, exp: Experiment, target: Any) -> int:
    """The run's events.jsonl (phases, WAN changes) as `event` points; idempotent (the
    same event is the same point). Fault events are stored by FaultInjector.store."""
    from femdc_bench.metrics.names import EVENT

    evs = run.events()
    with spooling_writer(run, target) as (_, w):
        for e in evs:
            tags = {"run": run.id, "experiment": exp.name, "kind": e["kind"],
                    "phase": e["phase"], "point": e.get("point"), "site": e.get("site")}
            fields = {"text": e["text"]}
            if isinstance(e.get("seconds"), int | float):
                fields["seconds"] = e["seconds"]
            w.write(EVENT, tags, fields, int(e["t"]))
    return len(evs)


def read_events(client: Any, run_id: str) -> list[dict[str, Any]]:
    from femdc_bench.metrics.names import EVENT

    rows = list(client.rows(EVENT, {"run": run_id}))
    return sorted(({"time": r.get("time"), "kind": r.get("kind"), "phase": r.get("phase"),
                    "point": r.get("point"), "site": r.get("site"), "fault": r.get("fault"),
                    "step_s": r.get("step_s"),
                    "text": r.get("text") or f"{r.get('kind')} {r.get('site')} {r.get('phase')}"}
                   for r in rows), key=lambda e: int(e["time"] or 0))


def store(run: Run, points: Sequence[str] | None = None, progress: Progress = noop
          ) -> dict[str, int]:
    """Write the run's points into InfluxDB again, from what the run keeps on disk:
    first the spool (what waited while InfluxDB was away), then for each benched point
    (or `points`) its samples (`api`) and sampler records, each replacing the point's
    earlier ones, and the events. After an outage, or into another InfluxDB
    (`metrics.influxdb`). Raises InfluxUnavailable while it is still away: the spool
    keeps what was not sent."""
    from femdc_bench.metrics.client import connect
    from femdc_bench.metrics.names import API
    from femdc_bench.metrics.server import LocalInfluxd
    from femdc_bench.metrics.writer import InfluxWriter

    exp = run.experiment()
    known = [p.id for p in exp.points]
    for p in points or ():
        if p not in known:
            raise RunError(f"no sweep point {p!r} in {run.id} (points: {', '.join(known)})")
    chosen = list(points) if points else [
        p for p in known if (run.dir / "samples" / p).is_dir()
        and any((run.dir / "samples" / p).glob("*.jsonl"))]
    counts: dict[str, int] = {}
    with run.phase("store"):
        target, started = metrics_target(run, exp)
        try:
            with connect(target) as client:
                if spool_waiting(run):
                    progress(f"sending the {spool_waiting(run)} spooled points")
                    with InfluxWriter(client, spool_path=spool_file(run)) as w:
                        counts["spooled"] = w.replay_spool()
                for pid in chosen:
                    client.delete(API, {"run": run.id, "point": pid})
            for pid in chosen:
                progress(f"storing {pid}")
                counts[f"api@{pid}"] = store_samples(run, exp, target, pid)
                counts[f"metrics@{pid}"] = store_metrics(run, exp, target, pid)
            counts["events"] = store_events(run, exp, target)
        finally:
            if started:
                LocalInfluxd(run.influx_dir()).stop()
    run.event("store", "store", f"stored again: {', '.join(f'{k} {v}' for k, v in counts.items())}")
    return counts

