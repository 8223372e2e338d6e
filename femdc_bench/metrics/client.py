"""Talking to an InfluxDB: targets, errors, and `connect(target)`, which asks ``/ping``
which InfluxDB answers and returns an `InfluxClient`: 1.x (and anything that is not 2.x)
-> HTTP ``/write`` + InfluxQL ``/query``; 2.x -> influxdb-client's synchronous write API
and Flux query API."""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from femdc_bench.model import MetricsSpec

# influxdb_client (~130 ms to import) only where a 2.x server is talked to: the CLI imports
# this module on every command. requests stays here: `bench` clears InfluxDB on a thread
# while the hosts set up, and importing it there (~45 ms of CPU under the GIL) delayed
# the hosts' setup, and the first iteration, by ~0.14 s (measured on a kept run).

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



def _session(url: str) -> requests.Session:
    """A requests session; for a loopback URL, one that ignores *_PROXY variables."""
    session = requests.Session()
    if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
        session.trust_env = False
    return session


def ping_ok(url: str, timeout: float) -> bool:
    try:
        with _session(url) as session:
            r = session.get(f"{url}/ping", timeout=timeout)
    except requests.RequestException:
        return False
    return r.status_code == 204


def wait_ping(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ping_ok(url, timeout=1.0):
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


def read_token(env_name: str | None, file: Path | None,
               env: Mapping[str, str] | None = None) -> str | None:
    """An InfluxDB 2.x token from an environment variable or a file readable by its
    owner only (never from a command line). ValueError says what is wrong."""
    env = os.environ if env is None else env
    if env_name and file:
        raise ValueError("give the token by --token-env or --token-file, not both")
    if env_name:
        if not env.get(env_name):
            raise ValueError(f"environment variable {env_name} (the InfluxDB token) is not "
                             "set")
        return env[env_name].strip()
    if file:
        st = file.stat()
        if not file.is_file() or st.st_mode & 0o077:
            raise ValueError(f"{file}: expected a regular file readable by its owner only "
                             "(chmod 600)")
        token = file.read_text().strip()
        if not token:
            raise ValueError(f"{file} is empty")
        return token
    return None


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
        from influxdb_client import WritePrecision

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

    def point_counts(self, tag: str, value: str) -> dict[str, int]:
        """Points per measurement whose `tag` is `value` (a point: one series at one
        time, whatever its fields), by Flux."""
        q = (
            f"from(bucket: {flux_string(self.target.bucket_name)})\n"
            "  |> range(start: 1970-01-01T00:00:00Z, stop: 2262-04-11T00:00:00Z)\n"
            f"  |> filter(fn: (r) => r[{flux_string(tag)}] == {flux_string(value)})\n"
            '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
            "  |> map(fn: (r) => ({_measurement: r._measurement, n: 1}))\n"
            '  |> group(columns: ["_measurement"])\n  |> sum(column: "n")\n'
        )
        try:
            tables = self._query.query(q, org=self.org)
        except Exception as e:
            raise self._translate(e, "query") from e
        out: dict[str, int] = {}
        for table in tables:
            for rec in table.records:
                m = str(rec.values["_measurement"])
                out[m] = out.get(m, 0) + int(rec.values.get("n") or 0)
        return out

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
