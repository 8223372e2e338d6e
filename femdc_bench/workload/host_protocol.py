"""Host side of a bench (femdc_bench/workload/host_*.py): one session per host and bench
over SSH, and a per-run daemon that keeps the load agent's imports (keystoneauth1, the
scenarios) warm between benches.

The controller (femdc_bench/bench/hosts.py) runs on each host it needs, over the run's SSH
control master, the fixed command ``/usr/bin/python3 -S -u -c BOOT``. BOOT reads one
JSON header line on stdin and, when the host lacks it, the agent zip
(`<workdir>/bench/femdc_agent-<sha12>.zip`, sent after a `need-zip` answer), then runs
`session()` from the zip. Everything else travels on stdin/stdout as frames (`encode`,
`read_frame`): JSON lines; a `file` frame is followed by its bytes. The spec holds
credentials: it is never on a command line nor in a file (stdin, then a 0600 socket).

op `bench` (header: zip, zip_sha, workdir, python, spec, sampler):
  - with a `sampler` configuration, the sampler (metrics/sampler.py, the host's python3)
    is started, detached; `ready` waits for its pidfile;
  - with a `spec`, the daemon (`serve`, the agent's python) is reached on
    `<workdir>/run/femdc-benchd.sock`, started first when it does not run or runs other
    code (its `--sha`); it forks one child per bench which runs the spec
    (agent.run_spec) with `<workdir>/agent/agent.pid`, samples to
    `<workdir>/agent/samples.jsonl`;
  - host -> controller: hello, pong (each ping answered with the host's clock), ready
    (the agent set up and waiting for the common start, the sampler running), done (the
    agent's exit status, its one-line errors and summary) then file `samples`; after
    the controller's `finish`, file `metrics` (the sampler's records) and `end`;
    `error` (one line) when something of the host's side could not be done;
  - controller -> host: ping, go (start_ns: the common start, ns since the epoch, read
    on the host's clock), stop (Ctrl-C or a failure elsewhere: the agent stops as on
    SIGTERM: in-flight iterations finish, teardown runs), finish;
  - EOF from the controller (its CLI died): the agent and the sampler are stopped.
op `stop`: the agent and sampler of the last bench stopped by their pidfiles (and the
  daemon, `daemon: true`), their files sent back, `end`. op `warm`: the daemon started
  unless it runs (end of deploy); `hello` says which.

Direct sessions: the controller may instead reach the daemon's socket itself, through
its SSH master's forward of it, and send `{"t": "session", "h": HEADER}` (op bench). The
daemon's child for that connection is then the bench session above (same frames), its
agent in a child of its own; a daemon of other code than `zip_sha` answers `stale` and
the controller falls back to BOOT, which restarts it. Connections from a BOOT session
send `{"t": "run", "spec", "epoch"}`. The daemon keeps the Keystone tokens and endpoints
its agents got (AuthCache): a child gets the daemon's copy at fork, and what it learnt
goes back on a pipe the daemon reads.

Standard library only at import: the session runs with the host's python3; only the
daemon imports the agent (keystoneauth1), once, when it starts.

This module: the wire (BOOT, frames), where things live on a host (Paths) and the
process helpers, shared by host_session.py (one controller session) and host_daemon.py
(the daemon); the controller imports it for the frames and BOOT.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from typing import Any, BinaryIO

# The fixed program the controller runs on each host (no value of the run in it).
BOOT = """import json, os, sys
i, o = sys.stdin.buffer, sys.stdout.buffer
h = json.loads(i.readline())
z = h["zip"]
if not os.path.exists(z):
    o.write(b"{\\"t\\": \\"need-zip\\"}\\n")
    o.flush()
    n = int(i.readline())
    os.makedirs(os.path.dirname(z), mode=0o700, exist_ok=True)
    t = "%s.%d.tmp" % (z, os.getpid())
    with open(t, "wb") as f:
        while n > 0:
            b = i.read(min(n, 65536))
            if not b:
                sys.exit(3)
            f.write(b)
            n -= len(b)
    os.replace(t, z)
sys.path.insert(0, z)
from femdc_bench.workload import host_session
sys.exit(host_session.session(h, i, o))
"""

MAX_LINE = 1 << 26  # one JSON frame (the header holds the spec)
DAEMON_NEEDLE = b"femdc_bench.workload.host_daemon"  # the daemon's and its agents' cmdline
SAMPLER_NEEDLE = b"femdc_bench.metrics.sampler"
DAEMON_IDLE_S = 12 * 3600  # a daemon no bench reached for this long exits
DAEMON_START_S = 60.0
SAMPLER_START_S = 30.0
STOP_TERM_S = 10.0  # SIGTERM, then this long before SIGKILL
AUTH_CACHE_S = 1800.0  # a token and endpoints the daemon keeps: at most this old
AUTH_CACHE_MAX = 256  # entries


class FrameError(ValueError):
    pass


def encode(msg: dict[str, Any]) -> bytes:
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode()


def file_frame(name: str, data: bytes) -> bytes:
    return encode({"t": "file", "name": name, "size": len(data)}) + data


def read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    """The next frame (a `file` frame with its bytes under "data"); None at EOF."""
    line = stream.readline(MAX_LINE)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise FrameError("a frame cut short or longer than its limit")
    try:
        msg = json.loads(line)
    except ValueError:
        raise FrameError(f"not a frame: {line[:60]!r}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
        raise FrameError(f"not a frame: {line[:60]!r}")
    if msg["t"] == "file":
        size = msg.get("size")
        if not isinstance(size, int) or size < 0 or not isinstance(msg.get("name"), str):
            raise FrameError("a file frame needs a name and a size")
        chunks, left = [], size
        while left > 0:
            b = stream.read(left)
            if not b:
                raise FrameError(f"file {msg['name']} cut short ({size - left} of {size} bytes)")
            chunks.append(b)
            left -= len(b)
        msg["data"] = b"".join(chunks)
    return msg


class Out:
    """Frames to one peer, from any thread. A peer gone is not an error here: its EOF
    on the reading side says so."""

    def __init__(self, w: BinaryIO) -> None:
        self.w, self.lock = w, threading.Lock()

    def send(self, msg: dict[str, Any]) -> None:
        self.raw(encode(msg))

    def file(self, name: str, path: str) -> None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return
        self.raw(file_frame(name, data))

    def raw(self, data: bytes) -> None:
        with self.lock, contextlib.suppress(OSError, ValueError):
            self.w.write(data)
            self.w.flush()


class Paths:
    """Where the bench keeps its things on a host (under the host's work directory).
    (Not a dataclass: the session imports as little as it can, it is on the hot path.)"""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir

    def _p(self, *parts: str) -> str:
        return os.path.join(self.workdir, *parts)

    @property
    def daemon_pid(self) -> str:
        return self._p("run", "femdc-benchd.pid")

    @property
    def sock(self) -> str:
        return self._p("run", "femdc-benchd.sock")

    @property
    def daemon_log(self) -> str:
        return self._p("run", "femdc-benchd.log")

    @property
    def agent_pid(self) -> str:
        return self._p("agent", "agent.pid")

    @property
    def agent_out(self) -> str:
        return self._p("agent", "samples.jsonl")

    @property
    def sampler_pid(self) -> str:
        return self._p("run", "femdc-sampler.pid")

    @property
    def sampler_conf(self) -> str:
        return self._p("sampler", "conf.json")

    @property
    def sampler_out(self) -> str:
        return self._p("sampler", "samples.jsonl")

    @property
    def sampler_log(self) -> str:
        return self._p("sampler", "sampler.log")


# ---------------------------------------------------------------------------- processes


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def pid_from(pidfile: str, needle: bytes) -> int | None:
    """The live process a pidfile names, if its command line holds `needle` (a reused
    PID is never ours)."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if needle not in f.read():
                return None
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def stop_pids(pids: list[int], term_s: float = STOP_TERM_S) -> list[int]:
    """SIGTERM each, up to `term_s` for all to end, then SIGKILL: the ones killed."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + term_s
    left = list(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def write_private(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- daemon


class DaemonError(RuntimeError):
    pass


def connect_socket(path: str) -> socket.socket | None:
    """A connection to the unix socket `path`; None when nothing answers there."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        s.close()
        return None
    return s


