"""Host side of a bench: one controller session (op bench, stop or warm), as described in
host_protocol.py; it reaches (or starts) the run's bench daemon (host_daemon.py) for the
load agent. Standard library only: it runs with the host's python3."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from typing import Any, BinaryIO

from femdc_bench.workload.host_protocol import (
    DAEMON_NEEDLE,
    DAEMON_START_S,
    SAMPLER_NEEDLE,
    SAMPLER_START_S,
    STOP_TERM_S,
    DaemonError,
    FrameError,
    Out,
    Paths,
    connect_socket,
    pid_from,
    read_frame,
    stop_pids,
    write_private,
)

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
        return BenchSession(h, p, out, rin).run()
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


class BenchSession:
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
        write_private(p.sampler_conf, json.dumps(conf).encode())
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
            [str(h["python"]), "-m", "femdc_bench.workload.host_daemon", "serve", "--workdir",
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


