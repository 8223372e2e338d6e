"""`InfluxWriter`: the one writer of points, buffered, with a disk spool while the server
is away (replayed at the next write and by `femdc-bench store`), and `to_line`."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from femdc_bench.metrics.client import InfluxClient, InfluxUnavailable, InfluxWriteRejected
from femdc_bench.metrics.names import API, API_COLUMNS, MEASUREMENTS
from femdc_bench.model import Sample

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000

# --------------------------------------------------------------------------- writer


def to_line(
    measurement: str, tags: Mapping[str, Any], fields: Mapping[str, Any], ts_ns: int
) -> str:
    """One line-protocol record, escaped by influxdb-client's `Point`.

    Tags whose value is None or "" are left out (line protocol has no empty tag values);
    fields that are None or non-finite floats are left out; "" if no field is left.
    """
    from influxdb_client import Point, WritePrecision  # here: its import takes ~130 ms

    p = Point(measurement)
    for k, v in tags.items():
        if v is not None and v != "":
            p.tag(k, str(v))
    for k, v in fields.items():
        p.field(k, v)
    p.time(int(ts_ns), WritePrecision.NS)
    return p.to_line_protocol()


@dataclass
class WriterStats:
    written: int = 0  # points accepted by write()
    sent: int = 0  # points the server acknowledged
    spooled: int = 0  # points put in the spool file (not counting replays)
    replayed: int = 0  # points sent from the spool file
    rejected: int = 0  # points the server refused (kept in <spool>.rejected)
    ts_bumped: int = 0  # timestamps moved by the tiebreak


def spool_count(path: Path) -> int:
    """Records waiting in a spool file (0 when there is none)."""
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


class InfluxWriter:
    """The one writer: buffered, spooled to disk while the server is away.

    * `write()` buffers one point; every `batch_size` points it flushes automatically.
    * When the server is unreachable (connection error, 5xx), the unsent records are
      appended to `spool_path` (JSON lines, one record each, flock-ed) and no further
      automatic flush tries the server for `retry_interval_s`. An explicit `flush()`,
      `close()` or `replay_spool()` always tries, and sends the spool first (oldest first).
      Without a spool path, `flush()` raises InfluxUnavailable and keeps the buffer.
    * Records the server refuses (4xx) go to ``<spool_path>.rejected`` and
      InfluxWriteRejected is raised: resending them would not help.
    * Timestamp tiebreak: InfluxDB keeps one point per (measurement, tag set, timestamp),
      so two points of one series with the same timestamp would overwrite each other
      (e.g. two concurrent iterations of one host starting in the same ns: `iteration` is
      a field, not a tag). The writer remembers the (series, ts) pairs it wrote (the last
      `dedup_window` of them) and bumps a repeated timestamp by 1 ns until it is unique.
      A stored timestamp may thus be a few ns after the sample's t0_ns.
      Writes of the same series from another writer (another process) are not seen: give
      each writer distinct tags (the `host` tag does that for workload agents).
    * Writes are idempotent: a batch that is resent after a timeout overwrites itself.
    """

    def __init__(
        self,
        client: InfluxClient | None,
        common_tags: Mapping[str, str] | None = None,
        *,
        spool_path: str | os.PathLike[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retry_interval_s: float = 5.0,
        dedup_window: int = 200_000,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.client = client
        self.common_tags: dict[str, str] = dict(common_tags or {})
        self.spool_path = Path(spool_path) if spool_path is not None else None
        self.batch_size = batch_size
        self.retry_interval_s = retry_interval_s
        self.dedup_window = dedup_window
        self.stats = WriterStats()
        self._buf: list[str] = []
        self._recent: dict[tuple[str, tuple[tuple[str, str], ...], int], None] = {}
        self._down_until = 0.0
        self._lock = threading.RLock()  # write/flush may be called from several threads

    # -- points
    def write(
        self,
        measurement: str,
        tags: Mapping[str, Any],
        fields: Mapping[str, Any],
        ts_ns: int,
    ) -> None:
        """Buffer one point (`measurement` must be one of MEASUREMENTS)."""
        with self._lock:
            self._write(measurement, tags, fields, ts_ns)

    def _write(
        self,
        measurement: str,
        tags: Mapping[str, Any],
        fields: Mapping[str, Any],
        ts_ns: int,
    ) -> None:
        if measurement not in MEASUREMENTS:
            raise ValueError(
                f"unknown measurement {measurement!r}; use one of {sorted(MEASUREMENTS)}"
            )
        merged = {**self.common_tags, **tags}
        clean = {k: str(v) for k, v in merged.items() if v is not None and v != ""}
        series = tuple(sorted(clean.items()))
        ts = int(ts_ns)
        while (measurement, series, ts) in self._recent:
            ts += 1
            self.stats.ts_bumped += 1
        self._recent[(measurement, series, ts)] = None
        if len(self._recent) > self.dedup_window:
            del self._recent[next(iter(self._recent))]
        line = to_line(measurement, clean, fields, ts)
        if not line:
            raise ValueError(f"point of {measurement!r} at {ts_ns} has no (finite) field")
        self._buf.append(line)
        self.stats.written += 1
        if len(self._buf) >= self.batch_size:
            self._flush(auto=True)

    def write_samples(
        self, samples: Iterable[Sample], run: str, experiment: str, point: str
    ) -> int:
        """Buffer one `API` point per sample; returns how many."""
        n = 0
        with self._lock:
            for s in samples:
                self._write_sample(s, run, experiment, point)
                n += 1
        return n

    def _write_sample(self, s: Sample, run: str, experiment: str, point: str) -> None:
        """One `API` point. A whole iteration (action "") has no `action` tag (line
        protocol has no empty tag values); an atomic action has its name there."""
        fields: dict[str, Any] = {
            "duration_ms": float(s.duration_ms),
            "error": s.error or "",
            "iteration": int(s.iteration),
        }
        for k, v in (s.fields or {}).items():
            if k in API_COLUMNS:
                raise ValueError(f"sample field {k!r} is a column of {API!r}")
            fields[k] = float(v)
        self._write(
            API,
            {
                "run": run,
                "experiment": experiment,
                "point": point,
                "site": s.site,
                "host": s.host,
                "target_site": s.target_site,
                "service": s.service,
                "operation": s.operation,
                "status": s.status,
                "action": s.action,
                "workload": s.workload,
            },
            fields,
            s.t0_ns,
        )

    @property
    def pending(self) -> int:
        """Points buffered in memory."""
        return len(self._buf)

    def spooled_count(self) -> int:
        """Records waiting in the spool file."""
        return spool_count(self.spool_path) if self.spool_path is not None else 0

    # -- sending
    def _send(self, lines: list[str]) -> tuple[int, list[str], InfluxWriteRejected | None]:
        """Send in batches. Returns (sent, unsent after an outage, last rejection)."""
        if self.client is None:
            return 0, lines, None
        sent = 0
        rejection: InfluxWriteRejected | None = None
        for i in range(0, len(lines), self.batch_size):
            chunk = lines[i : i + self.batch_size]
            try:
                self.client.write_lines(chunk)
            except InfluxUnavailable as e:
                log.warning("InfluxDB unavailable (%s): keeping %d points", e, len(lines) - i)
                self._down_until = time.monotonic() + self.retry_interval_s
                return sent, lines[i:], rejection
            except InfluxWriteRejected as e:
                self._reject(chunk)
                rejection = e
                continue
            sent += len(chunk)
        return sent, [], rejection

    def _reject(self, lines: list[str]) -> None:
        self.stats.rejected += len(lines)
        if self.spool_path is None:
            return
        rej = self.spool_path.with_name(self.spool_path.name + ".rejected")
        rej.parent.mkdir(parents=True, exist_ok=True)
        with open(rej, "a", encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")

    def _append_spool(self, lines: list[str]) -> None:
        assert self.spool_path is not None
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.spool_path, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write("".join(json.dumps(line) + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        self.stats.spooled += len(lines)

    def flush(self, *, auto: bool = False) -> int:
        """Send the spool (first) and the buffer; returns points sent.

        Unsent points end in the spool file (or, without one, stay buffered and
        InfluxUnavailable is raised). `auto` flushes (from write()) do not try the server
        during `retry_interval_s` after a failure.
        """
        with self._lock:
            return self._flush(auto)

    def _flush(self, auto: bool) -> int:
        sent = 0
        down = auto and time.monotonic() < self._down_until
        if not down and self.spooled_count():
            try:
                sent += self._replay_spool()
            except InfluxUnavailable:
                down = True
        if not self._buf:
            return sent
        batch, self._buf = self._buf, []
        rejection = None
        if down or self.client is None:
            unsent = batch
        else:
            n, unsent, rejection = self._send(batch)
            sent += n
            self.stats.sent += n
        if unsent:
            if self.spool_path is None:
                self._buf = unsent + self._buf
                raise InfluxUnavailable(f"{len(unsent)} points not sent and no spool file")
            self._append_spool(unsent)
        if rejection is not None:
            raise InfluxWriteRejected(f"{rejection} (records kept in {self.spool_path}.rejected)")
        return sent

    def replay_spool(self) -> int:
        """Send the records in the spool file; the file keeps only what is still unsent.

        Returns the number sent; raises InfluxUnavailable if the server is still away.
        """
        with self._lock:
            return self._replay_spool()

    def _replay_spool(self) -> int:
        if self.spool_path is None or not self.spool_path.exists():
            return 0
        if self.client is None:
            raise InfluxUnavailable("no client to replay the spool to")
        with open(self.spool_path, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            lines = [json.loads(raw) for raw in f if raw.strip()]
            if not lines:
                return 0
            sent, unsent, rejection = self._send(lines)
            f.seek(0)
            f.truncate()
            f.write("".join(json.dumps(line) + "\n" for line in unsent))
            f.flush()
            os.fsync(f.fileno())
        self.stats.replayed += sent
        self.stats.sent += sent
        if sent:
            log.info("replayed %d spooled points", sent)
        if unsent:
            raise InfluxUnavailable(f"{len(unsent)} spooled points still unsent")
        if rejection is not None:
            raise InfluxWriteRejected(f"{rejection} (records kept in {self.spool_path}.rejected)")
        return sent

    def close(self) -> None:
        """Flush; whatever cannot be sent stays in the spool file."""
        self.flush()

    def __enter__(self) -> InfluxWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
