"""Per-host delay daemon of the userspace WAN emulator (kernels without sch_netem).

    python -m femdc_bench.wan.nfqdelay --config CONF.json --pidfile P

Imports only the standard library and `netfilterqueue` (shipped in a zip, run from a
small venv). CONF.json: {"queue": N, "device": "eth0", "delays": {"<src IPv4>": ms},
"stats_interval_s": 10, "priority": "realtime" | "normal"} (the last two optional).

Priority: netem releases packets from the kernel's timers, ahead of every process; a
userspace delay is only as punctual as its wake-ups. By default the daemon runs
SCHED_FIFO (priority 10) so that busy services on the same host do not make it late
(on a loaded 2-core machine, p99 lateness went from ~3.5 ms to well under 1 ms). It
needs ~5 % of a core at 1,000 packets/s; the kernel's RT throttling keeps 5 % of each
period for other tasks, and HTB rates keep the packet rate bounded. "normal" keeps the
default policy. If the policy cannot be set, it says so in the log and goes on.

iptables sends packets from shaped sources to NFQUEUE N on the receiver (mangle
PREROUTING). The daemon copies only their first 40 bytes (the IP header gives the
source), keeps them in one heap ordered by release time, and accepts each one at its
release time: release = max(arrival + delay(source), last release of that source), so
that packets of one peer never overtake each other, even when a reload shortens the
delay. One thread: `select` on the queue's socket with a timeout up to the next release.

Arrival is the kernel's receive timestamp of the packet (the daemon keeps one socket
with SO_TIMESTAMP open, which makes the kernel stamp received packets), not the moment
the daemon reads it: the daemon's own wake-up latency does not add to the delay. A
missing or implausible stamp (clock step) falls back to the time of reading.

Signals:
  SIGHUP   reload the delay table from CONF.json (held packets keep their release time).
  SIGTERM  (and SIGINT) lossless exit: the queue is first switched to fail-open with a
           zero length (the kernel then accepts new packets itself), every held packet
           is accepted, what was already queued is drained and accepted, then the queue
           is unbound. With `--queue-bypass` traffic passes undelayed until the next
           daemon binds. (Unbinding a queue that still holds packets would drop them.)

Logs one JSON object per line on stdout: `ready`, `reload`, periodic `stats` (lateness
= actual minus intended release: p50/p99/max over the interval and since start, CPU,
held packets, kernel queue drops) and `exit`. After every successful (re)load it writes
sha256(CONF.json) to CONF.json.applied, so that a caller knows which config is live.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import heapq
import ipaddress
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

BIND_MAX_LEN = 65536  # packets the kernel queues for us
BIND_RANGE = 40  # bytes copied per packet: the IPv4 header is enough
BIND_SOCK_LEN = 16 * 1024 * 1024
STATS_INTERVAL_S = 10.0
BIN_US = 10  # lateness histogram resolution


class Packet(Protocol):
    def get_payload(self) -> bytes: ...
    def accept(self) -> None: ...


# --------------------------------------------------------------------------- config


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    queue: int
    device: str
    delays: dict[bytes, float]  # packed IPv4 source -> seconds
    stats_interval_s: float
    sha256: str
    priority: str = "realtime"


def parse_config(raw: bytes) -> Config:
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError("expected an object")
    queue = doc.get("queue")
    if not isinstance(queue, int) or isinstance(queue, bool) or not 0 <= queue <= 0xFFFF:
        raise ConfigError(f"queue: expected 0..65535, got {queue!r}")
    delays_in = doc.get("delays")
    if not isinstance(delays_in, dict):
        raise ConfigError("delays: expected an object {source address: milliseconds}")
    delays: dict[bytes, float] = {}
    for addr, ms in delays_in.items():
        try:
            packed = ipaddress.IPv4Address(addr).packed
        except ValueError:
            raise ConfigError(f"delays: {addr!r} is not an IPv4 address") from None
        if not isinstance(ms, int | float) or isinstance(ms, bool) or not 0 <= ms <= 60_000:
            raise ConfigError(f"delays[{addr}]: expected 0..60000 ms, got {ms!r}")
        delays[packed] = ms / 1000.0
    interval = doc.get("stats_interval_s", STATS_INTERVAL_S)
    if not isinstance(interval, int | float) or not 0.1 <= interval <= 3600:
        raise ConfigError(f"stats_interval_s: expected 0.1..3600, got {interval!r}")
    priority = doc.get("priority", "realtime")
    if priority not in ("realtime", "normal"):
        raise ConfigError(f"priority: expected 'realtime' or 'normal', got {priority!r}")
    return Config(queue=queue, device=str(doc.get("device", "")), delays=delays,
                  stats_interval_s=float(interval), sha256=hashlib.sha256(raw).hexdigest(),
                  priority=priority)


def load_config(path: Path) -> Config:
    return parse_config(path.read_bytes())


# --------------------------------------------------------------------------- lateness


@dataclass
class Histogram:
    """Lateness in BIN_US bins: cheap to update per packet, percentiles on demand."""

    bins: dict[int, int] = field(default_factory=dict)
    count: int = 0
    max_s: float = 0.0

    def add(self, seconds: float) -> None:
        b = int(seconds * 1_000_000) // BIN_US
        self.bins[b] = self.bins.get(b, 0) + 1
        self.count += 1
        if seconds > self.max_s:
            self.max_s = seconds

    def percentile_ms(self, p: float) -> float | None:
        if not self.count:
            return None
        rank = max(1, -(-self.count * p // 100))  # ceil
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen >= rank:
                return (b + 1) * BIN_US / 1000  # upper edge of the bin
        return self.max_s * 1000

    def summary(self) -> dict[str, Any]:
        return {"n": self.count, "p50_ms": self.percentile_ms(50),
                "p99_ms": self.percentile_ms(99), "max_ms": round(self.max_s * 1000, 3)}


# --------------------------------------------------------------------------- delayer


class Delayer:
    """The heap of held packets. Pure: the clock is passed in, packets are duck-typed."""

    def __init__(self, delays: dict[bytes, float]) -> None:
        self.delays = delays
        self.heap: list[tuple[float, int, Packet]] = []
        self.last: dict[bytes, float] = {}  # source -> release time of its last packet
        self.seq = 0
        self.passthrough = False  # shutting down: accept at once
        self.received = 0
        self.immediate = 0  # accepted at once (unknown source, no delay, passthrough)
        self.released = 0
        self.window = Histogram()
        self.total = Histogram()
        self.errors = 0

    def set_delays(self, delays: dict[bytes, float]) -> None:
        self.delays = delays

    def on_packet(self, pkt: Packet, now: float) -> None:
        """Queue callback: never raises (an exception would cross the C library)."""
        self.received += 1
        try:
            delay = None
            if not self.passthrough:
                head = pkt.get_payload()
                if len(head) >= 20 and head[0] >> 4 == 4:
                    delay = self.delays.get(head[12:16])
            if not delay:
                self.immediate += 1
                pkt.accept()
                return
            src = head[12:16]
            release = now + delay
            last = self.last.get(src, 0.0)
            if release < last:
                release = last
            self.last[src] = release
            self.seq += 1
            heapq.heappush(self.heap, (release, self.seq, pkt))
        except Exception:  # noqa: BLE001 - a packet must never be left without verdict
            self.errors += 1
            with contextlib.suppress(Exception):
                pkt.accept()

    def next_due(self) -> float | None:
        return self.heap[0][0] if self.heap else None

    def release_due(self, now: float) -> int:
        n = 0
        heap = self.heap
        while heap and heap[0][0] <= now:
            due, _, pkt = heapq.heappop(heap)
            try:
                pkt.accept()
            except Exception:  # noqa: BLE001
                self.errors += 1
            late = now - due
            self.window.add(late)
            self.total.add(late)
            n += 1
        self.released += n
        return n

    def release_all(self) -> int:
        """Accept every held packet now, in release order (shutdown)."""
        n = 0
        while self.heap:
            _, _, pkt = heapq.heappop(self.heap)
            try:
                pkt.accept()
            except Exception:  # noqa: BLE001
                self.errors += 1
            n += 1
        self.released += n
        return n


# --------------------------------------------------------------------------- netlink

NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_CONFIG = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQA_CFG_F_FAIL_OPEN = 1
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2


def _nla(kind: int, data: bytes) -> bytes:
    attr = struct.pack("=HH", 4 + len(data), kind) + data
    return attr + b"\0" * (-len(attr) % 4)


def fail_open_message(queue: int, seq: int) -> bytes:
    """NFQNL_MSG_CONFIG: queue length 0 + FAIL_OPEN, so the kernel accepts new packets
    itself instead of queueing them (libnetfilter_queue's nfq_set_queue_flags and
    nfq_set_queue_maxlen, which netfilterqueue does not expose)."""
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue))
    body += _nla(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", 0))
    body += _nla(NFQA_CFG_MASK, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN))
    body += _nla(NFQA_CFG_FLAGS, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN))
    kind = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG
    return struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def find_ack(buf: bytes, seq: int) -> int | None:
    """The errno (0 = success) of the NLMSG_ERROR answering `seq` in a datagram, if any."""
    off = 0
    while off + 20 <= len(buf):
        length, kind, _, mseq, _ = struct.unpack_from("=IHHII", buf, off)
        if length < 16:
            return None
        if kind == NLMSG_ERROR and mseq == seq:
            return -struct.unpack_from("=i", buf, off + 16)[0]
        off += (length + 3) & ~3
    return None


class _Tap:
    """A socket for NetfilterQueue.run_socket that also watches for our ack."""

    def __init__(self, fd: int, seq: int) -> None:
        self.sock = socket.socket(fileno=os.dup(fd))
        self.seq = seq
        self.ack: int | None = None

    def recv(self, n: int) -> bytes:
        buf = self.sock.recv(n, socket.MSG_DONTWAIT)  # BlockingIOError(EAGAIN) ends the run
        if self.ack is None:
            self.ack = find_ack(buf, self.seq)
        return buf

    def close(self) -> None:
        self.sock.close()


def kernel_queue_stats(queue: int) -> dict[str, int] | None:
    """This namespace's counters for our queue (/proc/net/netfilter/nfnetlink_queue)."""
    try:
        text = Path("/proc/net/netfilter/nfnetlink_queue").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == str(queue):
            return {"queue_total": int(f[2]), "queue_dropped": int(f[5]),
                    "user_dropped": int(f[6])}
    return None


# --------------------------------------------------------------------------- daemon


def log(event: str, **fields: Any) -> None:
    rec = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "event": event, **fields}
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


RT_PRIORITY = 10
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)  # asm-generic value (x86, arm)
MAX_AGE_S = 1.0  # an older receive stamp is not believed


def enable_rx_timestamps() -> socket.socket | None:
    """A socket with SO_TIMESTAMP: while one exists, the kernel stamps received packets."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
    except OSError as e:
        log("timestamps_failed", error=str(e))
        return None
    return s


class Arrival:
    """Monotonic arrival time of a packet from its kernel receive stamp (realtime)."""

    def __init__(self, clock: Callable[[], float], wall: Callable[[], float] = time.time
                 ) -> None:
        self.clock, self.wall = clock, wall
        self.intake = Histogram()  # receive stamp -> read by the daemon
        self.unstamped = 0

    def __call__(self, pkt: Any) -> float:
        now = self.clock()
        try:
            ts = pkt.get_timestamp()
        except Exception:  # noqa: BLE001
            ts = 0.0
        if ts > 0:
            age = self.wall() - ts
            if 0 <= age < MAX_AGE_S:
                self.intake.add(age)
                return now - age
        self.unstamped += 1
        return now


def set_priority(priority: str) -> str:
    """Apply the configured scheduling policy; returns what is in effect."""
    if priority != "realtime":
        return "normal"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    except OSError as e:
        log("priority_failed", error=str(e))
        return "normal"
    return f"SCHED_FIFO {RT_PRIORITY}"


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Daemon:
    def __init__(self, config_path: Path, pidfile: Path | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config_path = config_path
        self.pidfile = pidfile
        self.clock = clock
        self.cfg = load_config(config_path)
        self.delayer = Delayer(self.cfg.delays)
        self.stop = False
        self.reload = False
        self.arrival = Arrival(clock)

    # -- signals: flags + a wakeup pipe in the select set
    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        else:
            self.stop = True

    def _applied(self) -> None:
        _write_atomic(self.config_path.with_name(self.config_path.name + ".applied"),
                      self.cfg.sha256 + "\n")

    def _reload(self) -> None:
        try:
            cfg = load_config(self.config_path)
        except (OSError, ConfigError) as e:
            log("reload_failed", error=str(e), kept=self.cfg.sha256)
            return
        if cfg.queue != self.cfg.queue:
            log("reload_failed", error=f"queue {cfg.queue} differs from the bound queue "
                f"{self.cfg.queue}: restart the daemon", kept=self.cfg.sha256)
            return
        self.cfg = cfg
        self.delayer.set_delays(cfg.delays)
        self._applied()
        log("reload", sources=len(cfg.delays), sha256=cfg.sha256,
            delays_ms={socket.inet_ntoa(k): v * 1000 for k, v in cfg.delays.items()})

    def run(self) -> int:
        from netfilterqueue import NetfilterQueue  # only on hosts, in the daemon's venv

        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        signal.set_wakeup_fd(wfd)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._on_signal)

        policy = set_priority(self.cfg.priority)
        stamps = enable_rx_timestamps()
        d, clock = self.delayer, self.clock
        self.arrival = arrival = Arrival(clock)
        nfq = NetfilterQueue()
        nfq.bind(self.cfg.queue, lambda pkt: d.on_packet(pkt, arrival(pkt)),
                 max_len=BIND_MAX_LEN, range=BIND_RANGE, sock_len=BIND_SOCK_LEN)
        fd = nfq.get_fd()
        if self.pidfile:
            _write_atomic(self.pidfile, f"{os.getpid()}\n")
        self._applied()
        log("ready", pid=os.getpid(), queue=self.cfg.queue, device=self.cfg.device,
            sha256=self.cfg.sha256, policy=policy,
            delays_ms={socket.inet_ntoa(k): v * 1000 for k, v in self.cfg.delays.items()})

        t0 = last_stats = clock()
        cpu0 = last_cpu = _cpu_s()
        try:
            while True:
                now = clock()
                d.release_due(now)
                if self.stop:
                    break
                if self.reload:
                    self.reload = False
                    self._reload()
                if now - last_stats >= self.cfg.stats_interval_s:
                    cpu = _cpu_s()
                    self._stats("stats", now - last_stats, cpu - last_cpu)
                    last_stats, last_cpu = now, cpu
                nxt = d.next_due()
                timeout = last_stats + self.cfg.stats_interval_s - now
                if nxt is not None:
                    timeout = min(timeout, nxt - now)
                ready, _, _ = select.select([fd, rfd], [], [], max(0.0, timeout))
                if rfd in ready:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(rfd, 64):
                            pass
                if fd in ready:
                    nfq.run(block=False)
        finally:
            self._shutdown(nfq, fd)
            self._stats("exit", clock() - t0, _cpu_s() - cpu0)
            if self.pidfile:
                with contextlib.suppress(OSError):
                    if self.pidfile.read_text().strip() == str(os.getpid()):
                        self.pidfile.unlink()
            if stamps:
                stamps.close()
        return 0

    def _shutdown(self, nfq: Any, fd: int) -> None:
        d = self.delayer
        seq = int(time.time()) & 0x7FFFFFFF
        tap = _Tap(fd, seq)
        fail_open = True
        try:
            os.write(fd, fail_open_message(self.cfg.queue, seq))
        except OSError as e:
            fail_open = False
            log("fail_open_failed", error=str(e))
        held = d.release_all()
        d.passthrough = True
        drained = d.received
        # Drain what was queued before the switch (all of it is in our socket by now).
        deadline = self.clock() + 1.0
        while True:
            try:
                nfq.run_socket(tap)
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    log("drain_error", error=str(e))
                    break
            if tap.ack is not None or not fail_open or self.clock() > deadline:
                break
            select.select([fd], [], [], 0.01)
        with contextlib.suppress(OSError):
            nfq.run_socket(tap)  # anything queued between the ack and now (none expected)
        tap.close()
        if tap.ack not in (None, 0):
            log("fail_open_failed", error=os.strerror(tap.ack))
        nfq.unbind()
        log("released", held=held, drained=d.received - drained, fail_open_ack=tap.ack)

    def _stats(self, event: str, wall_s: float, cpu_s: float) -> None:
        d, a = self.delayer, self.arrival
        log(event, held=len(d.heap), received=d.received, released=d.released,
            immediate=d.immediate, errors=d.errors,
            lateness=d.window.summary(), lateness_total=d.total.summary(),
            intake=a.intake.summary(), unstamped=a.unstamped,
            cpu_pct=round(100 * cpu_s / wall_s, 2) if wall_s > 0 else None,
            kernel=kernel_queue_stats(self.cfg.queue))
        d.window = Histogram()
        a.intake = Histogram()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nfqdelay", description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--pidfile", type=Path)
    args = ap.parse_args(argv)
    try:
        daemon = Daemon(args.config, args.pidfile)
    except (OSError, ConfigError) as e:
        log("error", error=f"{args.config}: {e}")
        return 2
    try:
        return daemon.run()
    except OSError as e:
        log("error", error=str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
