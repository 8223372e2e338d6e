"""`LocalInfluxd`: Debian's ``influxd`` (1.6.x) run privately for one run, everything
under one directory, bound to 127.0.0.1 only, restartable on its kept data, stoppable
later by another process through a small JSON state file."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from femdc_bench.metrics.client import LocalInfluxdError, ping_ok, wait_ping

log = logging.getLogger(__name__)

INFLUXD = "/usr/bin/influxd"

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
            wait_ping(state.url, self.start_timeout_s)
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
            if ping_ok(url, timeout=1.0):
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
