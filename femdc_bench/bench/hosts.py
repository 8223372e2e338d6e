"""The controller's side of a bench: one SSH session per host, all hosts at once, over
the run's SSH master connections (femdc_bench/workload/host_session.py and
host_daemon.py are the hosts' side; host_protocol.py describes the frames).

A bench: every session opens (direct to a load host's bench daemon where it can, see
_Session; else ssh running BOOT, the agent zip sent where a host lacks it), its host
starts its sampler and, on a load host, hands the spec to the run's daemon there, whose
forked child sets the first job up; once every host is `ready`, one start time, a short
margin away (`start_margin_s`), goes to every load host and to
`samples/<point>/start.json` (faults are timed from it); the samples come back over the
same sessions when each agent is done; then the samplers are stopped and their records
come back. Ctrl-C or a failure stops every agent the same way (their teardown runs)
and keeps what was measured. Nothing on a command line: the spec travels on stdin.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import shlex
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from femdc_bench.ansible import ssh_argv, ssh_forward_argv
from femdc_bench.clocks import best_offset
from femdc_bench.model import Host
from femdc_bench.workload.host_protocol import (
    BOOT,
    FrameError,
    Paths,
    connect_socket,
    encode,
    read_frame,
)

log = logging.getLogger(__name__)

REMOTE = f"/usr/bin/python3 -S -u -c {shlex.quote(BOOT)}"
PINGS = 3  # clock and round-trip exchanges per session, while the hosts set up
MARGIN_MIN_S = 0.1  # from "every host ready" to the common start, at least
MARGIN_MAX_S = 2.0
STOP_WAIT_S = 60.0  # after a stop: the agents' in-flight iterations and teardown
FINISH_WAIT_S = 30.0  # the samplers' last sample and their records
OPEN_WAIT_S = 60.0  # a stop or warm session: connect, act, answer


class BenchError(RuntimeError):
    pass


@dataclass
class HostWork:
    """What one host does in a bench: run a load agent (`spec`, AgentSpec.to_dict())
    and/or a sampler (its configuration)."""

    host: Host
    spec: dict[str, Any] | None = None
    sampler: dict[str, Any] | None = None


@dataclass
class Outcome:
    start_ns: int
    summaries: dict[str, dict[str, Any]]  # alias -> the agent's summary
    timings: dict[str, Any] = field(default_factory=dict)


def start_margin_s(exchanges: dict[str, list[tuple[int, int, int]]]) -> float:
    """Seconds from "every host is ready" to the common start: MARGIN_MIN_S, plus three
    round trips of the slowest session (the `go` reaches it in one), plus how far the
    clock of the host most ahead is ahead (it reads the start on its own clock), at
    most MARGIN_MAX_S. Exchanges: (sent, host clock, received), ns, per host."""
    worst = 0.0
    for ex in exchanges.values():
        if not ex:
            continue
        o = best_offset(ex)
        worst = max(worst, 3 * (2 * o.uncertainty_ms) / 1e3 + max(0.0, o.offset_ms / 1e3))
    return round(min(MARGIN_MAX_S, MARGIN_MIN_S + worst), 3)


def zip_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def host_zip_path(workdir: str, sha: str) -> str:
    """Where a host keeps the agent zip: named by its code, never overwritten."""
    return f"{workdir}/bench/femdc_agent-{sha[:12]}.zip"


def failure_line(alias: str, what: str, tail: Iterable[str] = ()) -> str:
    """One line naming the host: `alias: what (last line of ssh's stderr)`."""
    last = [ln.strip() for ln in tail if ln.strip()]
    return f"{alias}: {what}" + (f" ({last[-1][:300]})" if last else "")


def agent_failure(alias: str, done: dict[str, Any]) -> str | None:
    """The line for an agent that did not end well (None: exit 0)."""
    code = done.get("code")
    if code == 0:
        return None
    errors = [str(e) for e in done.get("errors") or [] if str(e).strip()]
    how = f"the load agent exited {code}" if code is not None else "the load agent failed"
    return f"{alias}: {how}" + (f": {errors[-1]}" if errors else "")


def forward_path(control_dir: Path, h: Host) -> Path:
    """The local socket the run's master connection to `h` forwards to its daemon's."""
    tag = hashlib.sha1(f"{h.ssh_user}@{h.address}:{h.ssh_port}:{h.workdir}".encode())
    return control_dir / f"b-{tag.hexdigest()[:12]}.sock"


def forward(h: Host, control_dir: Path) -> tuple[socket.socket | None, str]:
    """A connection to the host's bench daemon socket through the run's master
    connection to `h`, which forwards forward_path() there (asked for when that does
    not answer): (the connection, "") or (None, why not: no master runs, ...). The
    daemon may still not be there: the connection then ends at once."""
    local = forward_path(control_dir, h)
    s = connect_socket(str(local))
    if s is not None:
        return s, ""
    control_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    remote = Paths(h.workdir).sock
    # a master that has gone left its socket; one that runs may hold the forward still
    # (it answers "forwarded" again without binding it anew): cancelled first
    for op in ("cancel", "forward"):
        try:
            p = subprocess.run(ssh_forward_argv(h, local, remote, control_dir, op=op),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, str(e)
        if op == "cancel":
            local.unlink(missing_ok=True)
        elif p.returncode != 0:
            lines = [ln for ln in p.stderr.decode(errors="replace").splitlines() if ln.strip()]
            return None, (lines[-1] if lines else f"ssh -O forward exited {p.returncode}")[:300]
    s = connect_socket(str(local))
    return (s, "") if s is not None else (None, f"{local} does not answer")


class _Session:
    """One session to a host; frames go to a shared queue as (alias, frame), None when
    the session's output ends.

    `direct` (a load host whose bench daemon runs as the ssh user): the daemon's socket
    is reached through the run's master connection (forward()), and a child of the
    daemon is the host's side: nothing starts on the host, no shell, no interpreter.
    Anything that keeps it from answering (no master, no daemon, a daemon of other
    code: `stale`) makes it an ssh session running BOOT before its first frame, with
    what had been written replayed. `via` says which it was."""

    def __init__(self, host: Host, header: dict[str, Any], zip_bytes: bytes,
                 control_dir: Path, q: queue.Queue[tuple[str, dict[str, Any] | None]],
                 direct: bool = False) -> None:
        self.host, self.alias, self.header = host, host.alias, header
        self.control_dir, self.zip_bytes, self.q = control_dir, zip_bytes, q
        self.err: deque[str] = deque(maxlen=20)
        self.zip_sent = False
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self._w: Any = None  # where frames go, once open
        self._early: list[bytes] = []  # written before the host's first frame
        self._first = False
        self._closing = False
        self.via = "direct" if direct else "ssh"
        self.direct_error = ""
        self._reader = threading.Thread(target=self._run, daemon=True,
                                        name=f"bench-{self.alias}")
        self._reader.start()

    # -- opening
    def _attach(self, w: Any, first: bytes) -> bool:
        with self.lock:
            if self._closing:
                return False
            self._w = w
            for data in (first, *self._early):
                self._write(data)
        return True

    def _open_direct(self) -> Any:
        s, why = forward(self.host, self.control_dir)
        if s is None:
            self.direct_error = why
            return None
        self.sock = s
        if not self._attach(s.makefile("wb"), encode({"t": "session", "h": self.header})):
            return None
        return s.makefile("rb")

    def _open_ssh(self) -> Any:
        with self.lock:
            if self._closing:
                return None
            self.via = "ssh"
            self.proc = subprocess.Popen(
                ssh_argv(self.host, REMOTE, control_dir=self.control_dir, become=True),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True)  # Ctrl-C reaches the CLI only: it stops the load
        threading.Thread(target=self._read_err, args=(self.proc,), daemon=True).start()
        if not self._attach(self.proc.stdin, encode(self.header)):
            return None
        return self.proc.stdout

    def _drop_direct(self) -> None:
        with self.lock:
            self._w = None
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.close()
                self.sock = None

    # -- reading
    def _run(self) -> None:
        r = self._open_direct() if self.via == "direct" else None
        if r is None:
            r = self._open_ssh()
        while r is not None:
            try:
                m = read_frame(r)
            except (FrameError, OSError) as e:
                self.err.append(f"bad frame from the host: {e}")
                m = None
            if self.sock is not None and not self._first and (m is None or m["t"] == "stale"):
                self.direct_error = "stale daemon" if m is not None else \
                    "the daemon's socket did not answer"
                self._drop_direct()
                r = self._open_ssh()
                continue
            if m is not None and not self._first:
                with self.lock:
                    self._first, self._early = True, []
            if m is not None and m["t"] == "need-zip":
                self.zip_sent = True
                self.raw(f"{len(self.zip_bytes)}\n".encode() + self.zip_bytes)
                continue
            self.q.put((self.alias, m))
            if m is None:
                return
        self.q.put((self.alias, None))  # closed before it opened

    def _read_err(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.err.append(line.decode(errors="replace").rstrip())

    # -- writing
    def _write(self, data: bytes) -> None:
        try:
            self._w.write(data)
            self._w.flush()
        except (OSError, ValueError, AttributeError):
            pass  # the session ended: its reader says so

    def raw(self, data: bytes) -> None:
        with self.lock:
            if not self._first:
                self._early.append(data)
            if self._w is not None:
                self._write(data)

    def send(self, msg: dict[str, Any]) -> None:
        self.raw(encode(msg))

    def close(self, wait_s: float = 5.0) -> None:
        """The host told that the controller is done (its input closed: the host side
        stops what it started), then up to `wait_s` for the session to end before it is
        ended (0: do not wait, do not end it)."""
        with self.lock:
            self._closing = True
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)
            elif self.proc is not None and self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
        if wait_s <= 0:
            return
        if self.proc is None:
            self._reader.join(wait_s)
            with self.lock:
                if self.sock is not None:
                    with contextlib.suppress(OSError):
                        self.sock.shutdown(socket.SHUT_RDWR)
                    self.sock.close()
            return
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class _Host:
    """What the controller knows of one host's session."""

    work: HostWork
    session: _Session
    hello_s: float | None = None
    ready: dict[str, Any] | None = None
    ready_s: float | None = None
    done: dict[str, Any] | None = None
    samples: bool = False  # its samples file came back (or it has no agent)
    ended: bool = False  # `end`
    gone: bool = False  # its output ended
    pings: list[tuple[int, int, int]] = field(default_factory=list)
    ping_sent_ns: int = 0
    error: str | None = None


def direct_ok(w: HostWork) -> bool:
    """Whether a direct session (see _Session) is worth trying for this host: it runs a
    load agent (its daemon runs there) as the ssh user (no sudo between)."""
    return w.spec is not None and not w.host.extra.get("ansible_become")


class _Bench:
    def __init__(self, work: list[HostWork], *, python: str, zip_path: Path,
                 samples_dir: Path, metrics_dir: Path, control_dir: Path,
                 epoch: str = "") -> None:
        self.samples_dir, self.metrics_dir = samples_dir, metrics_dir
        zip_bytes = zip_path.read_bytes()
        sha = zip_sha(zip_bytes)
        self.q: queue.Queue[tuple[str, dict[str, Any] | None]] = queue.Queue()
        self.t0 = time.monotonic()
        self.hosts: dict[str, _Host] = {}
        for w in work:
            header = {"op": "bench", "workdir": w.host.workdir, "zip_sha": sha,
                      "zip": host_zip_path(w.host.workdir, sha), "python": python,
                      "spec": w.spec, "sampler": w.sampler, "epoch": epoch}
            self.hosts[w.host.alias] = _Host(
                w, _Session(w.host, header, zip_bytes, control_dir, self.q,
                            direct=direct_ok(w)),
                samples=w.spec is None)

    # -- frames
    def _handle(self, alias: str, m: dict[str, Any] | None) -> None:
        h = self.hosts[alias]
        now = time.monotonic() - self.t0
        if m is None:
            h.gone = True
            if not h.ended and h.error is None:
                h.error = failure_line(alias, "its bench session ended early", h.session.err)
            return
        t = m["t"]
        if t == "hello":
            h.hello_s = now
            self._ping(h, 0)
        elif t == "pong":
            h.pings.append((h.ping_sent_ns, int(m["now_ns"]), time.time_ns()))
            if len(h.pings) < PINGS:
                self._ping(h, len(h.pings))
        elif t == "ready":
            h.ready, h.ready_s = m, now
        elif t == "done":
            h.done = m
        elif t == "file":
            name = m["name"]
            if name == "samples":
                (self.samples_dir / f"{alias}.jsonl").write_bytes(m["data"])
                h.samples = True
            elif name == "metrics":
                (self.metrics_dir / f"{alias}.jsonl").write_bytes(m["data"])
        elif t == "end":
            h.ended = True
        elif t == "error":
            h.error = f"{alias}: {m.get('text')}"

    def _ping(self, h: _Host, n: int) -> None:
        h.ping_sent_ns = time.time_ns()
        h.session.send({"t": "ping", "n": n})

    def pump(self, until: Callable[[], bool], deadline: float) -> bool:
        """Handle frames until `until()` or the deadline (monotonic): whether it holds."""
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                alias, m = self.q.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self._handle(alias, m)
        return True

    def failures(self) -> list[str]:
        return [h.error for h in self.hosts.values() if h.error]

    def raise_failures(self) -> None:
        if errs := self.failures():
            raise BenchError("; ".join(errs))

    def agents(self) -> list[_Host]:
        return [h for h in self.hosts.values() if h.work.spec is not None]

    # -- the phases of a bench
    def wait_ready(self, timeout_s: float) -> None:
        def settled() -> bool:
            return all(h.ready or h.error for h in self.hosts.values())

        if not self.pump(settled, self.t0 + timeout_s):
            late = [a for a, h in self.hosts.items() if not (h.ready or h.error)]
            for a in late:
                self.hosts[a].error = failure_line(
                    a, f"not ready within {timeout_s:.0f} s (the load agent's setup, or a "
                    "hung host)", self.hosts[a].session.err)
        # the clock exchanges go on beside the setup; a host ready first may lag a ping
        self.pump(lambda: all(len(h.pings) >= PINGS or h.gone for h in self.hosts.values()),
                  time.monotonic() + 2.0)
        self.raise_failures()

    def go(self, start_ns: int) -> None:
        for h in self.agents():
            h.session.send({"t": "go", "start_ns": start_ns})

    def wait_done(self, deadline: float, what: str) -> None:
        agents = self.agents()
        if not self.pump(lambda: all((h.done and h.samples) or h.error for h in agents),
                         deadline):
            for h in agents:
                if not ((h.done and h.samples) or h.error):
                    h.error = failure_line(h.work.host.alias, what, h.session.err)

    def finish(self, wait_s: float = FINISH_WAIT_S) -> None:
        for h in self.hosts.values():
            if not h.gone:
                h.session.send({"t": "finish"})
        self.pump(lambda: all(h.ended or h.gone or h.error for h in self.hosts.values()),
                  time.monotonic() + wait_s)

    def stop(self) -> None:
        """Every agent stopped as on SIGTERM; what they measured comes back."""
        waiting = [h for h in self.agents()
                   if not (h.gone or h.error or (h.done and h.samples))]
        for h in waiting:
            h.session.send({"t": "stop"})
        self.pump(lambda: all((h.done and h.samples) or h.gone for h in waiting),
                  time.monotonic() + STOP_WAIT_S)

    def close(self) -> None:
        for h in self.hosts.values():  # every session told at once, then each waited for
            h.session.close(wait_s=0)
        deadline = time.monotonic() + 5.0
        for h in self.hosts.values():
            h.session.close(wait_s=max(0.01, deadline - time.monotonic()))

    def write_summaries(self) -> dict[str, dict[str, Any]]:
        out = {}
        for alias, h in self.hosts.items():
            summary = (h.done or {}).get("summary")
            if summary is not None:
                (self.samples_dir / f"{alias}.summary.json").write_text(
                    json.dumps(summary, sort_keys=True))
                out[alias] = summary
        return out

    def timings(self) -> dict[str, Any]:
        hosts = {}
        for a, h in self.hosts.items():
            r = h.ready or {}
            hosts[a] = {"hello_s": _r(h.hello_s), "ready_s": _r(h.ready_s),
                        "setup_s": r.get("setup_s"), "daemon": r.get("daemon"),
                        "daemon_s": r.get("daemon_s"), "sampler_s": r.get("sampler_s"),
                        "zip_sent": h.session.zip_sent, "via": h.session.via}
            if h.session.direct_error:
                hosts[a]["direct_error"] = h.session.direct_error
            if h.pings:
                o = best_offset(h.pings)
                hosts[a].update(rtt_ms=round(2 * o.uncertainty_ms, 3),
                                offset_ms=round(o.offset_ms, 3))
        return {"sessions_s": _r(max((h.hello_s or 0.0) for h in self.hosts.values())),
                "ready_s": _r(max((h.ready_s or 0.0) for h in self.hosts.values())),
                "hosts": hosts}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def run_bench(work: list[HostWork], *, python: str, zip_path: Path, samples_dir: Path,
              metrics_dir: Path, control_dir: Path, timeout_s: float,
              on_start: Callable[[int, float, dict[str, Any]], None],
              before_go: Callable[[], None] | None = None,
              progress: Callable[[str], None] = lambda _: None, epoch: str = "") -> Outcome:
    """One bench on every host of `work` at once; see the module's docstring.

    `before_go` runs once every host is ready (a failure there stops everything before
    the load); `on_start(start_ns, margin_s, timings)` records the common start before
    any host gets it; `epoch` names the deployment as it is now (the bench daemons reuse
    a token and endpoints only within one epoch). Raises BenchError naming each host
    that failed (a session that ended, a host not ready or not done within `timeout_s`,
    an agent that exited non-zero) after every agent and sampler was stopped and what
    they measured was written to `samples_dir` (`<alias>.jsonl`, `<alias>.summary.json`)
    and `metrics_dir` (`<alias>.jsonl`)."""
    b = _Bench(work, python=python, zip_path=zip_path, samples_dir=samples_dir,
               metrics_dir=metrics_dir, control_dir=control_dir, epoch=epoch)
    try:
        try:
            progress(f"setting up the load on {len(b.agents())} host(s)")
            b.wait_ready(timeout_s)
            t_ready = time.monotonic()
            if before_go is not None:
                before_go()
            margin = start_margin_s({a: h.pings for a, h in b.hosts.items()})
            timings = {**b.timings(), "before_go_s": _r(time.monotonic() - t_ready),
                       "margin_s": margin}
            start_ns = time.time_ns() + int(margin * 1e9)
            on_start(start_ns, margin, timings)
            b.go(start_ns)
            progress("load running")
            b.wait_done(time.monotonic() + timeout_s,
                        f"the load did not end within {timeout_s:.0f} s (a hung host?)")
            if b.failures():
                b.stop()
        except BaseException:
            b.stop()  # Ctrl-C or a failure: the agents stop, their samples come back
            b.finish()
            b.write_summaries()
            raise
        b.finish()
        summaries = b.write_summaries()
        errs = b.failures() + [e for a, h in b.hosts.items() if h.done
                               and (e := agent_failure(a, h.done))]
        if errs:
            raise BenchError("; ".join(dict.fromkeys(errs)))
        return Outcome(start_ns=start_ns, summaries=summaries, timings=timings)
    finally:
        b.close()


# ---------------------------------------------------------------------------- stop, warm


def _one_shot(hosts: list[Host], header: dict[str, Any], *, zip_path: Path,
              control_dir: Path, files: dict[str, Path] | None = None,
              wait_s: float = OPEN_WAIT_S) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """A session per host with `header` (op stop or warm), all at once: each host's
    first non-file frame, and one line per host that did not answer."""
    zip_bytes = zip_path.read_bytes()
    sha = zip_sha(zip_bytes)
    q: queue.Queue[tuple[str, dict[str, Any] | None]] = queue.Queue()
    sessions = {h.alias: _Session(h, {**header, "workdir": h.workdir, "zip_sha": sha,
                                      "zip": host_zip_path(h.workdir, sha)},
                                  zip_bytes, control_dir, q) for h in hosts}
    first: dict[str, dict[str, Any]] = {}
    done: set[str] = set()
    errors: dict[str, str] = {}
    deadline = time.monotonic() + wait_s
    try:
        while len(done) < len(sessions) and time.monotonic() < deadline:
            try:
                alias, m = q.get(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                continue
            if m is None:
                done.add(alias)
                if alias not in first and alias not in errors:
                    errors[alias] = failure_line(alias, "no answer over ssh",
                                                 sessions[alias].err)
            elif m["t"] == "file":
                if files and m["name"] in files:
                    (files[m["name"]] / f"{alias}.jsonl").write_bytes(m["data"])
            elif m["t"] == "error":
                errors[alias] = f"{alias}: {m.get('text')}"
            elif m["t"] == "end" or header["op"] == "warm":
                first.setdefault(alias, m)
                done.add(alias)
            else:
                first.setdefault(alias, m)
        for alias in sessions:
            if alias not in done and alias not in errors:
                errors[alias] = failure_line(alias, f"no answer within {wait_s:.0f} s",
                                             sessions[alias].err)
    finally:
        for s in sessions.values():
            s.close(wait_s=2.0)
    return first, list(errors.values())


def stop_hosts(hosts: list[Host], *, zip_path: Path, control_dir: Path,
               samples_dir: Path | None = None, metrics_dir: Path | None = None,
               daemon: bool = False) -> list[str]:
    """Stop what a bench left on the hosts (a CLI that died, a destroy): each host's load
    agent and sampler (SIGTERM by pidfile, SIGKILL 10 s later), `daemon`: the bench
    daemon too; their files into `samples_dir` / `metrics_dir`. One line per host
    that could not be reached."""
    files = {k: v for k, v in (("samples", samples_dir), ("metrics", metrics_dir)) if v}
    _, errors = _one_shot(hosts, {"op": "stop", "daemon": daemon, "fetch": bool(files)},
                          zip_path=zip_path, control_dir=control_dir, files=files)
    return errors


def warm(hosts: list[Host], *, python: str, zip_path: Path, control_dir: Path
         ) -> tuple[dict[str, str], list[str]]:
    """Start the bench daemon on `hosts` (load hosts) unless it runs: alias -> "started"
    or "reused", and one line per host where it could not be."""
    first, errors = _one_shot(hosts, {"op": "warm", "python": python}, zip_path=zip_path,
                              control_dir=control_dir)
    return {a: str(m.get("daemon")) for a, m in first.items()}, errors
