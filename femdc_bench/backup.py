"""One archive of a run: its InfluxDB points, files, host logs and configuration.

    femdc-bench backup RUN [--out F]      (also the last step of `run`)
    femdc-bench restore ARCHIVE [--influxdb URL]

Layout of `<run>.backup.tar.gz` (every member under `<run>/`):

    SHA256SUMS                  `sha256sum -c SHA256SUMS` checks every other member
    backup.json                 run id, time, points per measurement, files
    influx/points-NNNN.lp       the run's points as line protocol, <= 20,000 lines each
    experiment.yaml, manifest.json, state.json, inventory.json, events.jsonl,
    report.json, wan/, samples/, metrics/, tasks/, logs/ (phases and every host's logs
    and rendered configuration)

Left out: secrets.json, clouds.yaml (the admin password), ssh/ (the run's key),
provider/ (host keys), influxdb/ (the raw data: the line protocol replaces it), tmp/,
kolla-passwords.yml (method kolla), tls/*.key (deployment.tls: the private keys of the
run's CA and hosts; the certificates are kept).
Every generated secret that still appears in a text member (a log line, a rendered
config) is replaced by `<redacted>`. Restoring into any InfluxDB 1.x by hand:

    for f in RUN/influx/*.lp; do curl -sf -XPOST "$URL/write?db=femdc&precision=ns" \
      --data-binary @$f; done

Into InfluxDB 2.x with its `influx` CLI (the 1.x database `femdc` becomes the bucket
`femdc`; the token from INFLUX_TOKEN, the server from INFLUX_HOST or --host):

    influx bucket create --name femdc --org ORG --retention 0
    for f in RUN/influx/*.lp; do influx write --bucket femdc --org ORG --precision ns \
      --format lp --file "$f"; done

or `femdc-bench restore ARCHIVE --influxdb URL --org ORG --token-env INFLUX_TOKEN`
(or --token-file F, 0600), which also checks the counts read back (Flux).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from femdc_bench.rundir import Progress, Run, noop

LINES_PER_FILE = 20_000
EXCLUDED = {"secrets.json", "clouds.yaml", "ssh", "provider", "influxdb", "tmp", "backup",
            "influx-spool.jsonl.lock", "kolla-passwords.yml"}
REDACTED = b"<redacted>"


class RestoreMismatch(RuntimeError):
    """The points read back after a restore differ from the archive's (a failure, not
    bad input)."""


class BackupError(Exception):
    pass


@dataclass
class BackupResult:
    path: Path
    points: dict[str, int] = field(default_factory=dict)
    files: int = 0
    redactions: int = 0


def _secrets(run_dir: Path) -> list[bytes]:
    p = run_dir / "secrets.json"
    if not p.exists():
        return []
    vals = [str(v).encode() for v in json.loads(p.read_text()).values()
            if isinstance(v, str | int) and len(str(v)) >= 8]
    return sorted(set(vals), key=len, reverse=True)


def _files(run_dir: Path) -> Iterable[Path]:
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir)
        if rel.parts[0] in EXCLUDED or not p.is_file() or p.is_symlink():
            continue
        if rel.parts[0] == "tls" and p.suffix in (".key", ".tmp"):
            continue
        yield p


def write_archive(run_dir: Path, run_id: str, lines: Iterable[tuple[str, str]],
                  out: Path) -> BackupResult:
    """The archive of `run_dir` plus `lines` (measurement, line protocol)."""
    secrets = _secrets(run_dir)
    res = BackupResult(path=out)
    sums: list[str] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.unlink(missing_ok=True)  # a crashed backup's: its mode is not ours to keep
    # 0600 from the first byte: the archive holds logs and configurations of the run.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f, \
            tarfile.open(tmp, "w:gz", fileobj=f, compresslevel=6) as tar:

        def add(name: str, data: bytes, mtime: float | None = None) -> None:
            info = tarfile.TarInfo(f"{run_id}/{name}")
            info.size, info.mtime, info.mode = len(data), int(mtime or time.time()), 0o644
            tar.addfile(info, io.BytesIO(data))
            sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}")

        chunk: list[str] = []
        n_files = 0

        def flush() -> None:
            nonlocal n_files
            if chunk:
                n_files += 1
                add(f"influx/points-{n_files:04d}.lp", ("\n".join(chunk) + "\n").encode())
                chunk.clear()

        for m, line in lines:
            res.points[m] = res.points.get(m, 0) + 1
            chunk.append(line)
            if len(chunk) >= LINES_PER_FILE:
                flush()
        flush()
        for p in _files(run_dir):
            data = p.read_bytes()
            for s in secrets:
                if s in data:
                    res.redactions += data.count(s)
                    data = data.replace(s, REDACTED)
            add(p.relative_to(run_dir).as_posix(), data, p.stat().st_mtime)
            res.files += 1
        meta = {"run": run_id, "created": time.time(), "points": res.points,
                "files": res.files, "influx_files": n_files, "redactions": res.redactions}
        add("backup.json", json.dumps(meta, indent=2).encode())
        data = ("\n".join(sums) + "\n").encode()
        info = tarfile.TarInfo(f"{run_id}/SHA256SUMS")
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
        tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return res


@dataclass
class Opened:
    run_id: str
    meta: dict[str, Any]
    members: dict[str, bytes]  # name below <run>/ -> content


def open_archive(path: Path) -> Opened:
    """Read and verify an archive: every member's sha256 against SHA256SUMS, nothing
    outside `<run>/`, no links or devices."""
    members: dict[str, bytes] = {}
    root = None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for info in tar:
                parts = info.name.split("/")
                if not info.isfile() or ".." in parts or info.name.startswith("/") \
                        or len(parts) < 2:
                    raise BackupError(f"{path}: unexpected member {info.name!r}")
                if root is None:
                    root = parts[0]
                if parts[0] != root:
                    raise BackupError(f"{path}: members of two runs ({root}, {parts[0]})")
                f = tar.extractfile(info)
                assert f is not None
                members["/".join(parts[1:])] = f.read()
    except (OSError, EOFError, tarfile.TarError, zlib.error) as e:
        raise BackupError(f"{path}: not a femdc-bench backup ({e})") from e
    if root is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", root):
        raise BackupError(f"{path}: {root!r} is not a run id")
    if root is None or "SHA256SUMS" not in members or "backup.json" not in members:
        raise BackupError(f"{path}: no SHA256SUMS or backup.json: not a femdc-bench backup")
    listed = {}
    for line in members["SHA256SUMS"].decode().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    for name, data in members.items():
        if name == "SHA256SUMS":
            continue
        if listed.get(name) != hashlib.sha256(data).hexdigest():
            raise BackupError(f"{path}: {name} does not match its checksum")
    if set(listed) - set(members):
        raise BackupError(f"{path}: missing {sorted(set(listed) - set(members))[0]}")
    return Opened(run_id=root, meta=json.loads(members["backup.json"]), members=members)


def influx_lines(opened: Opened) -> list[str]:
    out: list[str] = []
    for name in sorted(n for n in opened.members if n.startswith("influx/")):
        out += [ln for ln in opened.members[name].decode().splitlines() if ln]
    return out


def extract_files(opened: Opened, dest: Path) -> int:
    """The run's files (not the line protocol) into `dest`, which must not exist."""
    if dest.exists():
        raise BackupError(f"{dest} exists: restore into another results directory "
                          "(--results) or remove it")
    n = 0
    for name, data in opened.members.items():
        if name.startswith("influx/") or name in ("SHA256SUMS",):
            continue
        p = dest / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        n += 1
    return n


def backup(run: Run, out: Path | None = None, progress: Progress = noop) -> BackupResult:
    """One archive of the run: its InfluxDB points as line
    protocol (after the spool and the events are written), its files, host logs and
    configuration, secrets redacted, with a checksum manifest."""
    from femdc_bench.metrics.client import connect
    from femdc_bench.metrics.lineproto import run_lines
    from femdc_bench.metrics.server import LocalInfluxd
    from femdc_bench.metrics.store import spool_file, store_events
    from femdc_bench.metrics.target import metrics_target
    from femdc_bench.metrics.writer import InfluxWriter

    exp = run.experiment()
    dest = out or run.dir / "backup" / f"{run.id}.backup.tar.gz"
    with run.phase("backup"):
        target, started = metrics_target(run, exp)
        try:
            spool = spool_file(run)
            with connect(target) as client:
                if spool.exists() and spool.stat().st_size:
                    with InfluxWriter(client, spool_path=spool) as w:
                        w.replay_spool()
            store_events(run, exp, target)
            progress("reading the run's points")
            with connect(target, create=False) as client:
                res = write_archive(run.dir, run.id, run_lines(client, run.id), dest)
        finally:
            if started:
                LocalInfluxd(run.influx_dir()).stop()
    run.update_manifest(backup={"path": str(dest), "points": res.points, "files": res.files})
    return res


def restore(archive: Path, results: Path, influx_url: str | None = None,
            database: str = "femdc", progress: Progress = noop, *,
            org: str | None = None, token: str | None = None) -> tuple[Run, dict[str, int]]:
    """A backup into `results/<run>/` and its points into `influx_url` (or the restored
    run's own local InfluxDB, which `report` then reads): 1.x into `database`, 2.x into
    the bucket of that name in `org` with `token`. Returns the run and the points per
    measurement read back from the server, which must equal the archive's."""
    import json as _json

    from femdc_bench.metrics.client import InfluxTarget, connect
    from femdc_bench.metrics.lineproto import point_counts
    from femdc_bench.metrics.server import LocalInfluxd

    opened = open_archive(archive)
    dest = results / opened.run_id
    extract_files(opened, dest)
    st = dest / "state.json"
    state = _json.loads(st.read_text())
    state["status"] = "destroyed"  # no host of it exists here
    state["metrics_url"] = None
    st.write_text(_json.dumps(state, indent=2))
    run = Run.open(str(dest))
    run.update_manifest(restored_from={"archive": str(archive), "at": time.time()})
    influxd = None
    if influx_url is None:
        influxd = LocalInfluxd(run.influx_dir())
        influx_url = influxd.start()
    target = InfluxTarget(url=influx_url, database=database, org=org, token=token)
    try:
        lines = influx_lines(opened)
        progress(f"writing {len(lines)} points")
        with connect(target) as client:
            for i in range(0, len(lines), 5000):
                client.write_lines(lines[i:i + 5000])
        with connect(target, create=False) as client:
            counts = point_counts(client, opened.run_id)
    finally:
        if influxd is not None:
            influxd.stop()
    if counts != opened.meta.get("points", {}):
        raise RestoreMismatch(f"restored points differ from the archive's: {counts} != "
                       f"{opened.meta.get('points')}")
    return run, counts

