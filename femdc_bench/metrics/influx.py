"""The one InfluxDB writer and reader of femdc-bench, and the local InfluxDB server.

Three parts:

* `LocalInfluxd`: Debian's ``influxd`` (1.6.x) run privately for one run, everything under
  one directory, bound to 127.0.0.1 only, restartable on its kept data, stoppable later by
  another process through a small JSON state file.
* `connect(target)`: asks ``/ping`` which InfluxDB answers and returns an `InfluxClient`:
  1.x (and anything that is not 2.x) -> HTTP ``/write`` + InfluxQL ``/query``;
  2.x -> influxdb-client's synchronous write API and Flux query API.
* `InfluxWriter` / `InfluxReader`: buffered writes with a disk spool while the server is
  away, and reads of the raw ``api`` points back into `Sample` objects.

Measurement names live here and only here (`API`, `PROC`, `DB`, `MQ`, `WAN`, `EVENT`).

Example (runnable on a machine with /usr/bin/influxd)::

    from femdc_bench.metrics.influx import (
        InfluxReader, InfluxTarget, InfluxWriter, LocalInfluxd, connect)
    from femdc_bench.model import Sample

    server = LocalInfluxd("/tmp/influx-demo")
    url = server.start()
    client = connect(InfluxTarget(url=url, database="femdc"))
    with InfluxWriter(client, spool_path="/tmp/influx-demo/spool.jsonl") as w:
        w.write_samples([Sample("s1", "s1", "identity", "auth", 1, 12.5, "ok")],
                        run="r1", experiment="demo", point="p0")
    print(InfluxReader(client).count("r1"))   # 1
    server.stop()
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import signal
import socket
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from influxdb_client import Point, WritePrecision

from femdc_bench.model import API_FIELDS, API_TAGS, MetricsSpec, Sample

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- names

API = "api"  # one point per workload iteration, and one per atomic action of it
PROC = "proc"  # per-service process samples (metrics/sampler.py)
TCP = "tcp"  # a service's established TCP connections by peer site
HOST = "host"  # host CPU, memory, and per interface (tag iface) network bytes
DB = "db"  # database server samples
MQ = "mq"  # message queue samples
WAN = "wan"  # measured RTTs
EVENT = "event"  # phase and fault annotations
MEASUREMENTS: frozenset[str] = frozenset({API, PROC, TCP, HOST, DB, MQ, WAN, EVENT})
#: What the per-service sampler of every host writes.
SAMPLED: tuple[str, ...] = (PROC, TCP, HOST, DB, MQ)

#: Columns a row of `API` may have that are not extra fields of the sample.
_API_COLUMNS = frozenset({*API_TAGS, *API_FIELDS, "time"})

DEFAULT_BATCH_SIZE = 5000
INFLUXD = "/usr/bin/influxd"


# --------------------------------------------------------------------------- errors


class InfluxError(Exception):
    """Anything that went wrong talking to InfluxDB."""


class InfluxUnavailable(InfluxError):
    """The server could not be reached or answered 5xx: retrying later may work."""


class InfluxWriteRejected(InfluxError):
    """The server refused the data (4xx: bad line, type conflict...): retrying will not help."""


class LocalInfluxdError(InfluxError):
    """The local influxd could not be started or stopped."""


def safe_url(url: str) -> str:
    """`url` without any user:password@ part, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------- local server


def _free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (all sockets held until all are chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _toml_str(value: str) -> str:
    # A JSON string is a valid TOML basic string for the characters paths contain.
    return json.dumps(value)


def _proc_cmdline(pid: int) -> list[str] | None:
    """The argv of a live, non-zombie process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        # state is the first field after the ")" closing the command name
        if stat[stat.rindex(")") + 2 :].startswith(("Z", "X")):
            return None
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (OSError, ValueError):
        return None
    if not raw:
        return None
    return [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]


@dataclass
class LocalInfluxdState:
    """What `LocalInfluxd` writes to ``<dir>/influxd.json``."""

    config: str
    http_port: int
    rpc_port: int
    pid: int | None = None
    url: str = ""
    started_at: float | None = None


class LocalInfluxd:
    """A private InfluxDB 1.x server for one run, everything under `directory`.

    Layout: ``influxdb.conf``, ``influxd.log``, ``influxd.json`` (pid and ports), ``meta/``,
    ``data/``, ``wal/``. HTTP and the backup RPC service are bound to 127.0.0.1 on free
    ports (never the default 8088); auth and usage reporting are off. The data outlives
    `stop()`: a later `start()` on the same directory serves it again (on the same HTTP port
    when it is still free, else on a new one: use the URL that `start()` returns).

    The server runs in its own session, so it outlives the process that started it;
    `stop()` from any process reads the state file and only signals the PID if
    ``/proc/PID/cmdline`` is an influxd with this directory's config file.
    """

    STATE_FILE = "influxd.json"
    CONFIG_FILE = "influxdb.conf"
    LOG_FILE = "influxd.log"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        influxd: str = INFLUXD,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 20.0,
    ) -> None:
        self.directory = Path(directory).absolute()
        self.influxd = influxd
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    # paths
    @property
    def config_path(self) -> Path:
        return self.directory / self.CONFIG_FILE

    @property
    def log_path(self) -> Path:
        return self.directory / self.LOG_FILE

    @property
    def state_path(self) -> Path:
        return self.directory / self.STATE_FILE

    # state
    def read_state(self) -> LocalInfluxdState | None:
        try:
            raw = json.loads(self.state_path.read_text())
            return LocalInfluxdState(
                config=str(raw["config"]),
                http_port=int(raw["http_port"]),
                rpc_port=int(raw["rpc_port"]),
                pid=None if raw.get("pid") is None else int(raw["pid"]),
                url=str(raw.get("url", "")),
                started_at=raw.get("started_at"),
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as e:
            raise LocalInfluxdError(f"unreadable state file {self.state_path}: {e}") from e

    def _write_state(self, state: LocalInfluxdState) -> None:
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state.__dict__, indent=2) + "\n")
        os.replace(tmp, self.state_path)

    @property
    def url(self) -> str | None:
        """The HTTP URL of the running server, or None when it is not running."""
        state = self.read_state()
        return state.url if state is not None and self._owns(state.pid) else None

    @property
    def pid(self) -> int | None:
        state = self.read_state()
        return state.pid if state is not None and self._owns(state.pid) else None

    def _owns(self, pid: int | None) -> bool:
        """True if `pid` is a live influxd running this directory's config."""
        if pid is None:
            return False
        if self._proc is not None and self._proc.pid == pid:
            # our own child: its PID cannot have been reused while we have not reaped it
            return self._proc.poll() is None
        argv = _proc_cmdline(pid)
        if argv is None:
            return False
        # argv[0] is influxd (or, for a script, the interpreter and then the script)
        return any(Path(a).name == "influxd" for a in argv[:2]) and str(self.config_path) in argv

    def is_running(self) -> bool:
        state = self.read_state()
        return state is not None and self._owns(state.pid)

    # lifecycle
    def _write_config(self, http_port: int, rpc_port: int) -> None:
        d = self.directory
        conf = f"""\
# Written by femdc-bench (LocalInfluxd): a private InfluxDB for one run.
reporting-disabled = true
bind-address = {_toml_str(f"127.0.0.1:{rpc_port}")}

[meta]
  dir = {_toml_str(str(d / "meta"))}

[data]
  dir = {_toml_str(str(d / "data"))}
  wal-dir = {_toml_str(str(d / "wal"))}
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = {_toml_str(f"127.0.0.1:{http_port}")}
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[continuous_queries]
  enabled = false
"""
        self.config_path.write_text(conf)

    def _log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> str:
        """Start the server (or find it running) and return its URL once /ping answers 204."""
        state = self.read_state()
        if state is not None and self._owns(state.pid):
            _wait_ping(state.url, self.start_timeout_s)
            return state.url
        if not os.access(self.influxd, os.X_OK):
            raise LocalInfluxdError(f"{self.influxd} not found or not executable")
        for sub in ("meta", "data", "wal"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        last_error: LocalInfluxdError | None = None
        for attempt in range(3):
            if (
                attempt == 0
                and state is not None
                and all(_port_is_free(p) for p in (state.http_port, state.rpc_port))
            ):
                http_port, rpc_port = state.http_port, state.rpc_port
            else:
                http_port, rpc_port = _free_ports(2)
            try:
                return self._start_once(http_port, rpc_port)
            except LocalInfluxdError as e:
                last_error = e
                if "address already in use" not in str(e):
                    raise
                log.warning("influxd port clash, retrying on other ports")
        assert last_error is not None
        raise last_error

    def _start_once(self, http_port: int, rpc_port: int) -> str:
        self._write_config(http_port, rpc_port)
        url = f"http://127.0.0.1:{http_port}"
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as logf:
            self._proc = subprocess.Popen(
                [self.influxd, "run", "-config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,  # survives our Ctrl-C and our exit
                close_fds=True,
            )
        self._write_state(
            LocalInfluxdState(
                config=str(self.config_path),
                http_port=http_port,
                rpc_port=rpc_port,
                pid=self._proc.pid,
                url=url,
                started_at=time.time(),
            )
        )
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = self._new_log(log_offset)
                self._clear_pid()
                raise LocalInfluxdError(
                    f"influxd exited with code {code} before answering /ping on {url}; "
                    f"log {self.log_path}:\n{tail}"
                )
            if _ping_ok(url, timeout=1.0):
                log.info("influxd pid %s serving %s", self._proc.pid, url)
                return url
            if time.monotonic() > deadline:
                self.stop()
                raise LocalInfluxdError(
                    f"influxd did not answer /ping on {url} within {self.start_timeout_s:.0f} s; "
                    f"log {self.log_path}:\n{self._new_log(log_offset)}"
                )
            time.sleep(0.1)

    def _new_log(self, offset: int, lines: int = 25) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or self._log_tail(lines)

    def _clear_pid(self) -> None:
        state = self.read_state()
        if state is not None:
            state.pid = None
            state.url = ""
            self._write_state(state)

    def stop(self) -> bool:
        """SIGTERM the server this directory's state names, SIGKILL it after the timeout.

        Returns True if a process was stopped. A PID that is not (any more) this directory's
        influxd is never signalled.
        """
        state = self.read_state()
        if state is None or state.pid is None:
            return False
        pid = state.pid
        if not self._owns(pid):
            log.info("influxd pid %s is not running (or is not ours): nothing to stop", pid)
            if self._proc is not None and self._proc.pid == pid:
                self._proc = None
            self._clear_pid()
            return False
        own_child = self._proc is not None and self._proc.pid == pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, self.stop_timeout_s, own_child):
            log.warning(
                "influxd pid %s ignored SIGTERM for %.0f s: SIGKILL", pid, self.stop_timeout_s
            )
            if self._owns(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0, own_child)
        if own_child:
            self._proc = None
        self._clear_pid()
        return True

    def _wait_gone(self, pid: int, timeout: float, own_child: bool) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if own_child and self._proc is not None:
                try:
                    self._proc.wait(timeout=0.1)
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if _proc_cmdline(pid) is None:
                return True
            time.sleep(0.1)
        return False

    def __enter__(self) -> LocalInfluxd:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _session(url: str) -> requests.Session:
    """A requests session; for a loopback URL, one that ignores *_PROXY variables."""
    session = requests.Session()
    if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
        session.trust_env = False
    return session


def _ping_ok(url: str, timeout: float) -> bool:
    try:
        with _session(url) as session:
            r = session.get(f"{url}/ping", timeout=timeout)
    except requests.RequestException:
        return False
    return r.status_code == 204


def _wait_ping(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _ping_ok(url, timeout=1.0):
        if time.monotonic() > deadline:
            raise LocalInfluxdError(f"{safe_url(url)}/ping did not answer 204 within {timeout} s")
        time.sleep(0.1)


# --------------------------------------------------------------------------- target, clients


@dataclass(frozen=True)
class InfluxTarget:
    """Where the points go. Secrets are kept out of repr()."""

    url: str
    database: str = "femdc"  # 1.x database; also the 2.x bucket when `bucket` is None
    bucket: str | None = None
    org: str | None = None
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def bucket_name(self) -> str:
        return self.bucket or self.database

    @classmethod
    def from_spec(
        cls, spec: MetricsSpec, url: str, env: Mapping[str, str] | None = None
    ) -> InfluxTarget:
        """Build a target from the experiment's metrics section; secrets come from `env`."""
        env = os.environ if env is None else env

        def secret(name: str | None) -> str | None:
            if name is None:
                return None
            if name not in env:
                raise InfluxError(f"environment variable {name} (metrics) is not set")
            return env[name]

        return cls(
            url=url,
            database=spec.database,
            bucket=spec.bucket,
            org=spec.org,
            token=secret(spec.token_env),
            username=secret(spec.username_env),
            password=secret(spec.password_env),
        )


def influxql_string(value: str) -> str:
    """An InfluxQL single-quoted string literal holding exactly `value`."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def influxql_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def flux_string(value: str) -> str:
    """A Flux double-quoted string literal holding exactly `value` (no interpolation)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("${", "\\${")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _major(version: str) -> int | None:
    v = version.strip().lstrip("vV")
    head = v.split(".", 1)[0]
    return int(head) if head.isdigit() else None


class InfluxClient(ABC):
    """What the writer and the reader need from a server; one subclass per API family."""

    api: str = ""

    def __init__(self, target: InfluxTarget, version: str) -> None:
        self.target = target
        self.version = version

    @abstractmethod
    def ensure_database(self) -> None:
        """Create the database (1.x) / bucket (2.x) if it does not exist."""

    @abstractmethod
    def write_lines(self, lines: Sequence[str]) -> None:
        """Write line-protocol records (ns precision). Raises InfluxUnavailable /
        InfluxWriteRejected."""

    @abstractmethod
    def rows(self, measurement: str, where: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Raw points of `measurement` whose tags equal `where`, as dicts of tags and fields
        plus ``time`` (int, epoch ns), in time order."""

    @abstractmethod
    def count(self, measurement: str, field_name: str, where: Mapping[str, str]) -> int:
        """How many points of `measurement` matching `where` have `field_name`."""

    @abstractmethod
    def delete(self, measurement: str, where: Mapping[str, str]) -> None:
        """Delete the points of `measurement` whose tags equal `where` (a re-run point)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _auth_headers(target: InfluxTarget) -> dict[str, str]:
    if target.token and not target.username:
        return {"Authorization": f"Token {target.token}"}
    return {}


def ping(target: InfluxTarget | str, timeout_s: float = 10.0) -> str:
    """The server's ``X-Influxdb-Version`` ("" if it does not say). Raises InfluxUnavailable."""
    t = InfluxTarget(url=target) if isinstance(target, str) else target
    auth = (t.username, t.password or "") if t.username else None
    try:
        with _session(t.url) as session:
            r = session.get(
                f"{t.url.rstrip('/')}/ping",
                timeout=timeout_s,
                headers=_auth_headers(t),
                auth=auth,
            )
    except requests.RequestException as e:
        raise InfluxUnavailable(f"{safe_url(t.url)}/ping: {type(e).__name__}") from e
    if r.status_code not in (200, 204):
        raise InfluxUnavailable(f"{safe_url(t.url)}/ping answered HTTP {r.status_code}")
    return r.headers.get("X-Influxdb-Version", "")


def connect(target: InfluxTarget, *, timeout_s: float = 10.0, create: bool = True) -> InfluxClient:
    """A client for `target`, chosen by the version /ping reports; creates the database
    (1.x) or bucket (2.x) when `create` and it is missing."""
    version = ping(target, timeout_s)
    major = _major(version)
    client: InfluxClient
    if major == 2:
        client = V2Client(target, version, timeout_s=timeout_s)
    else:
        # 1.x, and the v1-compatible /write + /query endpoints elsewhere (3.x: untested).
        client = V1Client(target, version, timeout_s=timeout_s)
    if create:
        client.ensure_database()
    return client


class V1Client(InfluxClient):
    """InfluxDB 1.x: HTTP ``/write`` with line protocol, InfluxQL over ``/query``."""

    api = "v1"

    def __init__(self, target: InfluxTarget, version: str, *, timeout_s: float = 10.0) -> None:
        super().__init__(target, version)
        self.base = target.url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = _session(self.base)
        self.session.headers.update(_auth_headers(target))
        if target.username:
            self.session.auth = (target.username, target.password or "")

    def close(self) -> None:
        self.session.close()

    def _post(self, path: str, **kw: Any) -> requests.Response:
        try:
            return self.session.post(f"{self.base}{path}", timeout=self.timeout_s, **kw)
        except requests.RequestException as e:
            raise InfluxUnavailable(f"{safe_url(self.base)}{path}: {type(e).__name__}: {e}") from e

    def query(self, q: str, *, db: bool = True) -> Iterator[dict[str, Any]]:
        """Run InfluxQL, yield each result's series (chunked, so no row limit applies)."""
        data = {"q": q, "epoch": "ns", "chunked": "true", "chunk_size": "10000"}
        if db:
            data["db"] = self.target.database
        r = self._post("/query", data=data)
        if r.status_code >= 500:
            raise InfluxUnavailable(f"/query answered HTTP {r.status_code}: {r.text[:300]}")
        if r.status_code >= 400:
            raise InfluxError(f"/query answered HTTP {r.status_code}: {r.text[:300]}")
        for chunk in r.text.splitlines():
            if not chunk.strip():
                continue
            doc = json.loads(chunk)
            if "error" in doc:
                raise InfluxError(f"InfluxQL error: {doc['error']}")
            for result in doc.get("results", []):
                if "error" in result:
                    raise InfluxError(f"InfluxQL error: {result['error']}")
                yield from result.get("series", [])

    def ensure_database(self) -> None:
        # Look first: a non-admin user may read and write a database it cannot create.
        for series in self.query("SHOW DATABASES", db=False):
            if any(v and v[0] == self.target.database for v in series.get("values", [])):
                return
        # CREATE DATABASE is idempotent on 1.x.
        for _ in self.query(f"CREATE DATABASE {influxql_ident(self.target.database)}", db=False):
            pass

    def write_lines(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        body = "\n".join(lines).encode()
        params = {"db": self.target.database, "precision": "ns"}
        r = self._post("/write", params=params, data=body)
        if r.status_code == 404 and "database not found" in r.text:
            self.ensure_database()
            r = self._post("/write", params=params, data=body)
        if r.status_code in (200, 204):
            return
        if r.status_code >= 500 or r.status_code == 429:
            raise InfluxUnavailable(f"/write answered HTTP {r.status_code}: {r.text[:300]}")
        raise InfluxWriteRejected(f"/write answered HTTP {r.status_code}: {r.text[:500]}")

    @staticmethod
    def _where(where: Mapping[str, str]) -> str:
        if not where:
            return ""
        return " WHERE " + " AND ".join(
            f"{influxql_ident(k)} = {influxql_string(v)}" for k, v in where.items()
        )

    def delete(self, measurement: str, where: Mapping[str, str]) -> None:
        for _ in self.query(f"DELETE FROM {influxql_ident(measurement)}{self._where(where)}"):
            pass

    def rows(self, measurement: str, where: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        q = f"SELECT * FROM {influxql_ident(measurement)}{self._where(where)}"
        for series in self.query(q):
            cols = series["columns"]
            for values in series.get("values", []):
                yield dict(zip(cols, values, strict=True))

    def count(self, measurement: str, field_name: str, where: Mapping[str, str]) -> int:
        q = (
            f"SELECT COUNT({influxql_ident(field_name)}) FROM {influxql_ident(measurement)}"
            f"{self._where(where)}"
        )
        total = 0
        for series in self.query(q):
            for values in series.get("values", []):
                total += int(values[1] or 0)
        return total


class V2Client(InfluxClient):
    """InfluxDB 2.x through influxdb-client: synchronous writes (we batch), Flux reads."""

    api = "v2"

    def __init__(self, target: InfluxTarget, version: str, *, timeout_s: float = 10.0) -> None:
        super().__init__(target, version)
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        token = target.token
        if token is None and target.username:
            token = f"{target.username}:{target.password or ''}"
        self.org = target.org or "-"
        self._client = InfluxDBClient(
            url=target.url, token=token or "", org=self.org, timeout=int(timeout_s * 1000)
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._query = self._client.query_api()

    def close(self) -> None:
        self._write.close()
        self._client.close()

    @staticmethod
    def _translate(e: Exception, what: str) -> InfluxError:
        from influxdb_client.rest import ApiException

        if isinstance(e, ApiException):
            status = e.status or 0
            msg = f"{what} answered HTTP {status}: {str(e.body or e.reason)[:300]}"
            if status >= 500 or status == 429:
                return InfluxUnavailable(msg)
            if what == "write" and 400 <= status < 500:
                return InfluxWriteRejected(msg)
            return InfluxError(msg)
        return InfluxUnavailable(f"{what}: {type(e).__name__}: {e}")

    def ensure_database(self) -> None:
        name = self.target.bucket_name
        try:
            api = self._client.buckets_api()
            if api.find_bucket_by_name(name) is None:
                api.create_bucket(bucket_name=name, org=self.org)
        except Exception as e:  # ApiException, urllib3 errors
            raise self._translate(e, f"bucket {name!r}") from e

    def write_lines(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        try:
            self._write.write(
                bucket=self.target.bucket_name,
                org=self.org,
                record=list(lines),
                write_precision=WritePrecision.NS,
            )
        except Exception as e:
            raise self._translate(e, "write") from e

    def _flux_filter(self, measurement: str, where: Mapping[str, str]) -> str:
        conds = [f"r._measurement == {flux_string(measurement)}"]
        conds += [f"r[{flux_string(k)}] == {flux_string(v)}" for k, v in where.items()]
        return (
            f"from(bucket: {flux_string(self.target.bucket_name)})\n"
            "  |> range(start: 1970-01-01T00:00:00Z, stop: 2262-04-11T00:00:00Z)\n"
            f"  |> filter(fn: (r) => {' and '.join(conds)})\n"
        )

    def delete(self, measurement: str, where: Mapping[str, str]) -> None:
        preds = [f'_measurement="{measurement}"'] + [f'{k}="{v}"' for k, v in where.items()]
        try:
            self._client.delete_api().delete(
                "1970-01-01T00:00:00Z", "2262-04-11T00:00:00Z", " AND ".join(preds),
                bucket=self.target.bucket_name, org=self.org)
        except Exception as e:  # noqa: BLE001 - translated below
            raise self._translate(e, "delete") from e

    def flux_rows_query(self, measurement: str, where: Mapping[str, str]) -> str:
        return (
            self._flux_filter(measurement, where)
            + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
            # influxdb-client parses _time into a datetime (µs): carry the exact ns along
            + "  |> map(fn: (r) => ({r with _femdc_ns: int(v: r._time)}))\n"
            + '  |> group()\n  |> sort(columns: ["_time"])\n'
        )

    def rows(self, measurement: str, where: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        q = self.flux_rows_query(measurement, where)
        try:
            records = list(self._query.query_stream(q, org=self.org))
        except Exception as e:
            raise self._translate(e, "query") from e
        skip = {"result", "table", "_start", "_stop", "_time", "_measurement", "_femdc_ns"}
        for rec in records:
            values = rec.values
            row = {k: v for k, v in values.items() if k not in skip}
            row["time"] = int(values["_femdc_ns"])
            yield row

    def count(self, measurement: str, field_name: str, where: Mapping[str, str]) -> int:
        q = (
            self._flux_filter(measurement, where)
            + f"  |> filter(fn: (r) => r._field == {flux_string(field_name)})\n"
            + "  |> group()\n  |> count()\n"
        )
        try:
            tables = self._query.query(q, org=self.org)
        except Exception as e:
            raise self._translate(e, "query") from e
        return sum(int(rec.get_value() or 0) for table in tables for rec in table.records)


# --------------------------------------------------------------------------- writer


def to_line(
    measurement: str, tags: Mapping[str, Any], fields: Mapping[str, Any], ts_ns: int
) -> str:
    """One line-protocol record, escaped by influxdb-client's `Point`.

    Tags whose value is None or "" are left out (line protocol has no empty tag values);
    fields that are None or non-finite floats are left out; "" if no field is left.
    """
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
            if k in _API_COLUMNS:
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
        if self.spool_path is None or not self.spool_path.exists():
            return 0
        with open(self.spool_path, "rb") as f:
            return sum(1 for line in f if line.strip())

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


# --------------------------------------------------------------------------- reader


def _sample_from_row(row: Mapping[str, Any]) -> Sample:
    def s(key: str) -> str:
        v = row.get(key)
        return "" if v is None else str(v)

    duration = row.get("duration_ms")
    iteration = row.get("iteration")
    # Extra fields: the numeric columns that are neither tags nor the fixed fields (tags,
    # such as a sweep point's parameters, are strings; a field a point lacks is None).
    fields = {
        str(k): float(v)
        for k, v in row.items()
        if k not in _API_COLUMNS
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    }
    return Sample(
        site=s("site"),
        target_site=s("target_site"),
        service=s("service"),
        operation=s("operation"),
        t0_ns=int(row["time"]),
        duration_ms=math.nan if duration is None else float(duration),
        status=s("status"),
        error=s("error"),
        host=s("host"),
        iteration=0 if iteration is None else int(iteration),
        action=s("action"),
        fields=fields,
        workload=s("workload"),
    )


class InfluxReader:
    """Reads raw points back (no aggregation in the database: the report computes)."""

    def __init__(self, client: InfluxClient) -> None:
        self.client = client

    def api_samples_by_point(self, run: str, point: str | None = None) -> dict[str, list[Sample]]:
        """The run's `API` points as Samples, grouped by their ``point`` tag, time-ordered."""
        where = {"run": run}
        if point is not None:
            where["point"] = point
        out: dict[str, list[Sample]] = {}
        for row in self.client.rows(API, where):
            p = row.get("point")
            out.setdefault("" if p is None else str(p), []).append(_sample_from_row(row))
        for samples in out.values():
            samples.sort(key=lambda x: x.t0_ns)
        return out

    def api_samples(self, run: str, point: str | None = None) -> list[Sample]:
        """The run's (or one sweep point's) `API` points as Samples, time-ordered."""
        merged = [s for ss in self.api_samples_by_point(run, point).values() for s in ss]
        merged.sort(key=lambda x: x.t0_ns)
        return merged

    def count(self, run: str, measurement: str = API, field_name: str = "iteration") -> int:
        """Number of points of `measurement` for `run` (counting `field_name`)."""
        return self.client.count(measurement, field_name, {"run": run})
