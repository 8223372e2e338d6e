"""Host side of a bench: one session per host and bench over SSH, and a per-run daemon
that keeps the load agent's imports (keystoneauth1, the scenarios) warm between benches.

The controller (femdc_bench/benchrun.py) runs on each host it needs, over the run's SSH
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
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
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
from femdc_bench.workload import benchd
sys.exit(benchd.session(h, i, o))
"""

MAX_LINE = 1 << 26  # one JSON frame (the header holds the spec)
DAEMON_NEEDLE = b"femdc_bench.workload.benchd"  # the daemon's and its agents' cmdline
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


def _alive(pid: int) -> bool:
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
    return pid if _alive(pid) else None


def stop_pids(pids: list[int], term_s: float = STOP_TERM_S) -> list[int]:
    """SIGTERM each, up to `term_s` for all to end, then SIGKILL: the ones killed."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + term_s
    left = list(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if _alive(p)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def _write_private(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- session


def session(h: dict[str, Any], rin: BinaryIO, wout: BinaryIO) -> int:
    """One controller session (see the module's docstring); the exit status."""
    out = Out(wout)
    p = Paths(str(h["workdir"]))
    op = h.get("op", "bench")
    try:
        if op == "stop":
            return _stop(h, p, out)
        if op == "warm":
            t0 = time.monotonic()
            conn, how = ensure_daemon(h, p)
            conn.close()
            out.send({"t": "hello", "daemon": how, "daemon_s": round(time.monotonic() - t0, 3)})
            return 0
        return _Bench(h, p, out, rin).run()
    except DaemonError as e:
        out.send({"t": "error", "text": str(e)})
        return 1


def _stop(h: dict[str, Any], p: Paths, out: Out) -> int:
    targets = [(p.agent_pid, DAEMON_NEEDLE), (p.sampler_pid, SAMPLER_NEEDLE)]
    if h.get("daemon"):
        targets.append((p.daemon_pid, DAEMON_NEEDLE))
    pids = [pid for f, n in targets if (pid := pid_from(f, n)) is not None]
    killed = stop_pids(pids)
    if h.get("daemon"):
        with contextlib.suppress(OSError):
            os.unlink(p.sock)
    out.send({"t": "stopped", "stopped": len(pids), "killed": len(killed)})
    if h.get("fetch", True):
        out.file("samples", p.agent_out)
        out.file("metrics", p.sampler_out)
    out.send({"t": "end"})
    return 0


class _Gone(Exception):
    """The controller went away (EOF on stdin)."""


class _Bench:
    """One bench on this host; `agent()`: a connection to a load agent waiting for its
    `run` frame, and how it was had (ensure_daemon: through the daemon's socket)."""

    def __init__(self, h: dict[str, Any], p: Paths, out: Out, rin: BinaryIO,
                 agent: Any = None) -> None:
        self.h, self.p, self.out, self.rin = h, p, out, rin
        self.agent = agent or (lambda: ensure_daemon(self.h, self.p))
        self.q: queue.Queue[tuple[str, dict[str, Any] | None]] = queue.Queue()
        self.conn: socket.socket | None = None
        self.conn_out: Out | None = None
        self.stopped = False  # the controller asked for a stop before the agent existed
        self.lock = threading.Lock()
        self.sampler: subprocess.Popen[bytes] | None = None
        self.pending: list[tuple[str, dict[str, Any] | None]] = []

    # -- the controller's frames (a thread): pings answered at once, go/stop passed on
    def _from_controller(self) -> None:
        while True:
            try:
                m = read_frame(self.rin)
            except (FrameError, OSError):
                m = None
            if m is None:
                self.q.put(("ctl", None))
                self._close_agent()  # the agent sees EOF: it stops
                return
            t = m["t"]
            if t == "ping":
                self.out.send({"t": "pong", "n": m.get("n"), "now_ns": time.time_ns()})
            elif t in ("go", "stop"):
                with self.lock:
                    if t == "stop":
                        self.stopped = True
                    if self.conn_out is not None:
                        self.conn_out.send(m)
            elif t == "finish":
                self.q.put(("ctl", m))

    def _from_agent(self, conn: socket.socket) -> None:
        rf = conn.makefile("rb")
        while True:
            try:
                m = read_frame(rf)
            except (FrameError, OSError):
                m = None
            self.q.put(("agent", m))
            if m is None:
                return

    def _close_agent(self) -> None:
        with self.lock:
            if self.conn is not None:
                with contextlib.suppress(OSError):
                    self.conn.shutdown(socket.SHUT_RDWR)

    def _wait(self, source: str, kinds: tuple[str, ...]) -> dict[str, Any] | None:
        """The next frame of `source` of one of `kinds` (None: that source ended); the
        others are kept for a later wait."""
        for i, (src, m) in enumerate(self.pending):
            if src == source and (m is None or m["t"] in kinds):
                del self.pending[i]
                return m
        while True:
            src, m = self.q.get()
            if src == "ctl" and m is None:
                raise _Gone
            if src == source and (m is None or m["t"] in kinds):
                return m
            self.pending.append((src, m))

    def run(self) -> int:
        try:
            return self._run()
        except _Gone:
            self._close_agent()
            self._stop_sampler()
            return 1

    def _run(self) -> int:
        t0 = time.monotonic()
        p = self.p
        for d in ("run", "agent", "sampler"):
            os.makedirs(os.path.join(p.workdir, d), mode=0o700, exist_ok=True)
        # what an earlier bench whose controller vanished may have left running
        stop_pids([pid for f, n in ((p.agent_pid, DAEMON_NEEDLE),
                                    (p.sampler_pid, SAMPLER_NEEDLE))
                   if (pid := pid_from(f, n)) is not None])
        if not self.h.get("spec"):  # no load here this time: no samples of an earlier one
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p.agent_out)
        self.out.send({"t": "hello", "now_ns": time.time_ns()})
        threading.Thread(target=self._from_controller, daemon=True).start()
        if self.h.get("sampler"):
            self._start_sampler()
        info: dict[str, Any] = {}
        if self.h.get("spec"):
            conn, how = self.agent()
            info.update(daemon=how, daemon_s=round(time.monotonic() - t0, 3))
            conn_out = Out(conn.makefile("wb"))
            conn_out.send({"t": "run", "spec": self.h["spec"], "epoch": self.h.get("epoch")})
            with self.lock:
                self.conn, self.conn_out = conn, conn_out
                if self.stopped:
                    conn_out.send({"t": "stop"})
            threading.Thread(target=self._from_agent, args=(conn,), daemon=True).start()
        if self.sampler is not None and not self._sampler_started():
            self.out.send({"t": "error", "text": f"the sampler did not start within "
                           f"{SAMPLER_START_S:.0f} s (its log: {p.sampler_log})"})
            self._close_agent()
            self._stop_sampler()
            return 1
        if self.sampler is not None:
            info["sampler_s"] = round(time.monotonic() - t0, 3)
        first = self._wait("agent", ("ready", "done")) if self.conn is not None else None
        self.out.send({"t": "ready", "setup_s": round(time.monotonic() - t0, 3), **info})
        if self.conn is not None:
            done = first if first is not None and first["t"] == "done" else \
                self._wait("agent", ("done",))
            if done is None:
                done = {"t": "done", "code": None, "summary": None, "errors": [
                    f"the load agent ended without its summary (its log: {p.daemon_log})"]}
            self.out.send(done)
            self.out.file("samples", p.agent_out)
        self._wait("ctl", ("finish",))
        self._stop_sampler()
        if self.h.get("sampler"):
            self.out.file("metrics", p.sampler_out)
        self.out.send({"t": "end"})
        return 0

    # -- the sampler
    def _start_sampler(self) -> None:
        p = self.p
        conf = dict(self.h["sampler"], workdir=p.workdir)
        _write_private(p.sampler_conf, json.dumps(conf).encode())
        for f in (p.sampler_out, p.sampler_pid):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f)
        with open(p.sampler_log, "ab") as log:
            self.sampler = subprocess.Popen(
                [sys.executable, "-S", "-m", "femdc_bench.metrics.sampler", "--config",
                 p.sampler_conf, "--out", p.sampler_out, "--pidfile", p.sampler_pid],
                env={**os.environ, "PYTHONPATH": str(self.h["zip"])}, cwd=p.workdir,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True)

    def _sampler_started(self) -> bool:
        deadline = time.monotonic() + SAMPLER_START_S
        while time.monotonic() < deadline:
            if os.path.exists(self.p.sampler_pid):
                return True
            if self.sampler is not None and self.sampler.poll() is not None:
                return False
            time.sleep(0.01)
        return False

    def _stop_sampler(self) -> None:
        if self.sampler is None:
            return
        pid = pid_from(self.p.sampler_pid, SAMPLER_NEEDLE)
        if pid is not None:
            stop_pids([pid])
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.sampler.wait(timeout=STOP_TERM_S)


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


def _log_tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 2000))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def ensure_daemon(h: dict[str, Any], p: Paths) -> tuple[socket.socket, str]:
    """A connection to the host's daemon running this code (`zip_sha`), which is started
    first when none runs, it runs other code, or it does not answer: (the connection,
    "reused" | "started")."""
    sha = str(h["zip_sha"]).encode()
    pid = pid_from(p.daemon_pid, DAEMON_NEEDLE)
    if pid is not None:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                current = sha in f.read().split(b"\0")
        except OSError:
            current = False
        conn = connect_socket(p.sock) if current else None
        if conn is not None:
            return conn, "reused"
        stop_pids([pid], term_s=5.0)
    os.makedirs(os.path.dirname(p.sock), mode=0o700, exist_ok=True)
    with open(p.daemon_log, "ab") as log:
        proc = subprocess.Popen(
            [str(h["python"]), "-m", "femdc_bench.workload.benchd", "serve", "--workdir",
             p.workdir, "--sha", sha.decode()],
            env={**os.environ, "PYTHONPATH": str(h["zip"])}, cwd=p.workdir,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True)
    deadline = time.monotonic() + DAEMON_START_S
    while time.monotonic() < deadline:
        if pid_from(p.daemon_pid, DAEMON_NEEDLE) == proc.pid:
            conn = connect_socket(p.sock)
            if conn is not None:
                return conn, "started"
        if proc.poll() is not None:
            raise DaemonError(f"the bench daemon exited {proc.returncode} at its start: "
                              f"{_log_tail(p.daemon_log) or 'no output'}")
        time.sleep(0.01)
    stop_pids([proc.pid], term_s=2.0)
    raise DaemonError(f"the bench daemon did not listen within {DAEMON_START_S:.0f} s "
                      f"(its log: {p.daemon_log})")


class SessionStart:
    """The common start over the bench session (the agent's Barrier): `ready` to the
    controller once the first job is set up, then the start time from its `go`."""

    def __init__(self, out: Out, stop: threading.Event) -> None:
        self.out, self.stop = out, stop
        self.arrived = False
        self.start_ns: int | None = None
        self.late_s = 0.0
        self._go = threading.Event()

    def go(self, start_ns: int | None) -> None:
        self.start_ns = start_ns
        self._go.set()

    def wake(self) -> None:
        self._go.set()

    def announce(self) -> None:
        if not self.arrived:
            self.arrived = True
            self.out.send({"t": "ready"})

    def arrive(self) -> None:
        if self.arrived:
            return
        self.announce()
        self._go.wait()
        if self.start_ns is None or self.stop.is_set():
            return
        wait_s = (self.start_ns - time.time_ns()) / 1e9
        if wait_s > 0:
            self.stop.wait(wait_s)
        else:
            self.late_s = -wait_s


class AuthCache:
    """What the daemon remembers between benches: per Keystone identity (the job's
    credentials, interface, region, CA and the deployment's `epoch`), the token and the
    endpoints a load agent resolved, so that the next bench's agents start without
    authenticating nor discovering again (keystoneauth1 still renews a token near its
    expiry, and re-authenticates on a 401). Kept in the daemon's memory only: a forked
    child reads the copy it was born with (`entries`) and gives what it learnt back on
    its pipe (`put`), which the daemon reads."""

    def __init__(self, entries: dict[str, dict[str, Any]], w: int | None = None,
                 epoch: str | None = None) -> None:
        self.entries, self.w, self.epoch = entries, w, epoch or ""

    def key(self, parts: list[Any]) -> str:
        import hashlib

        return hashlib.sha256(json.dumps([self.epoch, *parts], sort_keys=True,
                                         default=str).encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        e = self.entries.get(key)
        if e is None or time.time() - float(e.get("t", 0)) > AUTH_CACHE_S:
            return None
        v = e.get("v")
        return v if isinstance(v, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.entries[key] = {"t": time.time(), "v": value}
        if self.w is None:
            return
        data = encode({"t": "cache", "k": key, "v": value})
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(self.w, data):]


def take_cache_lines(buf: bytearray, entries: dict[str, dict[str, Any]]) -> None:
    """The daemon's side of AuthCache.put: every whole line of `buf` into `entries`
    (kept by age, at most AUTH_CACHE_MAX); what is left is an unfinished line."""
    while (i := buf.find(b"\n")) >= 0:
        line = bytes(buf[:i])
        del buf[:i + 1]
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if isinstance(m, dict) and m.get("t") == "cache" and isinstance(m.get("k"), str) \
                and isinstance(m.get("v"), dict):
            entries[m["k"]] = {"t": time.time(), "v": m["v"]}
    now = time.time()
    for k in [k for k, e in entries.items() if now - e["t"] > AUTH_CACHE_S]:
        del entries[k]
    while len(entries) > AUTH_CACHE_MAX:
        del entries[min(entries, key=lambda k: entries[k]["t"])]


def _child(conn: socket.socket, p: Paths, sha: str, cache: AuthCache) -> int:
    """One connection in a child of the daemon. Its first frame says what it is: `run`
    (a spec from a bench session on this host, ensure_daemon) or `session` (the
    controller itself, through its SSH master's forward of the daemon's socket: this
    child is that host's bench session, see the module's docstring)."""
    rf = conn.makefile("rb")
    try:
        req = read_frame(rf)
    except (FrameError, OSError):
        req = None
    if req is None:
        return 2
    if req.get("t") == "session":
        return _direct(conn, rf, p, sha, cache, req)
    if req.get("t") != "run":
        return 2
    return _agent(conn, rf, p, req, cache)


def _direct(conn: socket.socket, rf: BinaryIO, p: Paths, sha: str, cache: AuthCache,
            req: dict[str, Any]) -> int:
    """The bench session of a controller that reached the daemon's socket directly: no
    process started on the host for it. Another code than this daemon's (`zip_sha`):
    `stale`, and the controller opens a session over ssh instead, which restarts it."""
    out = Out(conn.makefile("wb"))
    h = req.get("h")
    if not isinstance(h, dict) or h.get("zip_sha") != sha or h.get("workdir") != p.workdir:
        out.send({"t": "stale"})
        return 0
    agent_conn: socket.socket | None = None
    pid = 0
    if h.get("spec"):
        # the agent's process before any thread of this one (a fork copies one thread)
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                mine.close()
                conn.close()
                code = _agent(theirs, theirs.makefile("rb"), p, None, cache)
            finally:
                os._exit(code)
        theirs.close()
        agent_conn = mine
    try:
        return _Bench(h, p, out, rf, agent=lambda: (agent_conn, "direct")).run()
    finally:
        if pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _agent(conn: socket.socket, rf: BinaryIO, p: Paths, req: dict[str, Any] | None,
           cache: AuthCache) -> int:
    """One bench's load agent: the spec (`req`, else the first frame), the agent's jobs,
    `ready` then `done` on `conn`."""
    from femdc_bench.workload import agent
    from femdc_bench.workload.registry import REGISTRY
    from femdc_bench.workload.spec import AgentSpec, SpecError

    stopper = agent.Stopper()
    stopper.install()
    out = Out(conn.makefile("wb"))
    start = SessionStart(out, stopper.stop)
    errors: list[str] = []
    if req is None:
        try:
            req = read_frame(rf)
        except (FrameError, OSError):
            req = None
        if req is None or req.get("t") != "run":
            return 2
    cache.epoch = str(req.get("epoch") or "")  # what names the deployment (AuthCache.key)

    def reader() -> None:
        while True:
            try:
                m = read_frame(rf)
            except (FrameError, OSError):
                m = None
            if m is None or m["t"] == "stop":  # EOF: the session (or its controller) is gone
                stopper(signal.SIGTERM, None)
                start.wake()
                if m is None:
                    return
            elif m["t"] == "go":
                start.go(int(m["start_ns"]))

    threading.Thread(target=reader, daemon=True).start()
    try:
        spec = agent.check_spec(AgentSpec.from_dict(req.get("spec")), REGISTRY)
    except SpecError as e:
        start.announce()
        out.send({"t": "done", "code": agent.EXIT_SPEC, "summary": None,
                  "errors": [f"bad spec: {e}"]})
        return 0
    _write_private(p.agent_pid, f"{os.getpid()}\n".encode())
    code, summary = agent.EXIT_SINK, None
    try:
        code, summary = agent.run_spec(spec, p.agent_out, stopper, start, errors.append,
                                       auth_cache=cache)
    except Exception as e:  # noqa: BLE001 - one line to the controller, not a traceback
        errors.append(f"the agent failed: {type(e).__name__}: {e}")
    finally:
        start.announce()  # never leave the other hosts waiting for this one
        with contextlib.suppress(OSError):
            os.unlink(p.agent_pid)
    out.send({"t": "done", "code": code, "summary": summary, "errors": errors,
              "late_s": round(start.late_s, 6)})
    return 0


def serve(workdir: str, sha: str, idle_s: float = DAEMON_IDLE_S) -> int:
    """The per-run daemon: the agent imported once; one forked child per connection
    (a bench session's agent, or a controller's direct session). Keeps the AuthCache
    its children give back on their pipes. Ends on SIGTERM (its children too), when no
    session came for `idle_s`, or when its work directory is gone (the run was
    destroyed)."""
    import femdc_bench.workload.scenarios  # noqa: F401  (registers the scenarios)
    from femdc_bench.workload import agent, context  # noqa: F401 - keystoneauth1, once

    agent.setup_logging()
    p = Paths(workdir)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(p.sock)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        srv.bind(p.sock)
    finally:
        os.umask(old)
    srv.listen(16)
    _write_private(p.daemon_pid, f"{os.getpid()}\n".encode())
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    children: set[int] = set()
    pipes: dict[int, bytearray] = {}  # a child's pipe (read end) -> what came so far
    entries: dict[str, dict[str, Any]] = {}
    last = time.monotonic()
    try:
        while not stopping.is_set():
            for c in list(children):
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(c, os.WNOHANG)[0]:
                        children.discard(c)
            if not os.path.isdir(workdir) or (
                    not children and time.monotonic() - last > idle_s):
                break
            try:
                readable, _, _ = select.select([srv, *pipes], [], [], 1.0)
            except InterruptedError:
                continue
            for fd in [f for f in readable if f is not srv]:
                data = os.read(fd, 1 << 16)
                pipes[fd] += data
                take_cache_lines(pipes[fd], entries)
                if not data:
                    os.close(fd)
                    del pipes[fd]
            if srv not in readable:
                continue
            try:
                conn, _ = srv.accept()
            except (BlockingIOError, InterruptedError):
                continue
            last = time.monotonic()
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: this connection only
                code = 1
                try:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    srv.close()
                    os.close(r)
                    for fd in pipes:
                        os.close(fd)
                    conn.settimeout(None)
                    code = _child(conn, p, sha, AuthCache(entries, w))
                finally:
                    os._exit(code)
            os.close(w)
            pipes[r] = bytearray()
            children.add(pid)
            conn.close()
    finally:
        srv.close()
        for fd in pipes:
            with contextlib.suppress(OSError):
                os.close(fd)
        if pid_from(p.daemon_pid, DAEMON_NEEDLE) == os.getpid():
            for f in (p.sock, p.daemon_pid):
                with contextlib.suppress(OSError):
                    os.unlink(f)
        stop_pids([c for c in children if _alive(c)])
        for c in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(c, 0)
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="femdc-benchd")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="the per-run daemon (started by a bench session)")
    s.add_argument("--workdir", required=True)
    s.add_argument("--sha", required=True, help="the agent zip's sha256 (its code)")
    s.add_argument("--idle-s", type=float, default=DAEMON_IDLE_S)
    a = ap.parse_args(argv)
    return serve(a.workdir, a.sha, a.idle_s)


if __name__ == "__main__":
    sys.exit(main())
