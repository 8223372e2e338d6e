"""The bench daemon of a run on a load host: keeps the load agent's imports (keystoneauth1,
the scenarios) and the Keystone tokens and endpoints (AuthCache) warm between benches,
and forks one child per bench session (host_protocol.py describes the sessions).

    <python> -m femdc_bench.workload.host_daemon serve --workdir W --sha S
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Any, BinaryIO

from femdc_bench.workload.host_protocol import (
    AUTH_CACHE_MAX,
    AUTH_CACHE_S,
    DAEMON_IDLE_S,
    DAEMON_NEEDLE,
    FrameError,
    Out,
    Paths,
    alive,
    encode,
    pid_from,
    read_frame,
    stop_pids,
    write_private,
)
from femdc_bench.workload.host_session import BenchSession


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
        return BenchSession(h, p, out, rf, agent=lambda: (agent_conn, "direct")).run()
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
    write_private(p.agent_pid, f"{os.getpid()}\n".encode())
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
    write_private(p.daemon_pid, f"{os.getpid()}\n".encode())
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
        stop_pids([c for c in children if alive(c)])
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
