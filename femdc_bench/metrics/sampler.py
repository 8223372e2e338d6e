"""Per-service sampler: runs on every host during a bench, one JSON record per line.

    python3 -m femdc_bench.metrics.sampler --config CONF.json --out OUT.jsonl --pidfile P

Standard library only (it runs with the host's /usr/bin/python3, also on a host without
the service venv) and reads /proc itself: a sample of a host with 200 fake computes is a
few hundred small reads. Every period (CONF `period_s`) it appends, timestamped by this
host's clock (ns):

- `proc`, per service: the services are what the deployment started on this host, one
  per pidfile in WORKDIR/run/*.pid (a service's process and all its descendants: uwsgi
  workers and forked nova-computes are grouped under it), or per systemd unit
  UNIT_PREFIX<name>.service (its cgroup's processes). Fields: procs, cpu_pct (sum over the
  processes, % of one core since the last sample), cpu_pct_max (its busiest process),
  rss_mb (sum), rss_mb_max, threads, tcp_established; for a uwsgi API (keystone,
  nova-api, placement, glance-api, neutron-server) also requests (served so far, the
  sum over its workers, from its stats socket WORKDIR/run/<name>.stats) and
  requests_per_s;
  the sampler itself is service `femdc-sampler` (its own overhead).
- `tcp`, per (service, peer_site): established TCP connections of the service by the
  site of the remote address (`local` for this host, `other` for an address of no host).
- `host`: cpu_pct (all cores, % of one core x cores), mem_used_mb, mem_available_mb,
  load1; and per interface (tag iface) rx_bytes, tx_bytes (counters) and rx_bps, tx_bps.
- `db`, when CONF names a MariaDB client options file: from SHOW GLOBAL STATUS through
  the `mariadb` client: queries_per_s, connections (Threads_connected), slow_queries,
  row_lock_waits, and for Galera wsrep_cluster_size, wsrep_local_recv_queue_avg,
  wsrep_flow_control_paused, wsrep_local_cert_failures, repl_latency_ms (the average of
  wsrep_evs_repl_latency).
- `mq`, when CONF names RabbitMQ's Prometheus endpoint: connections, channels, queues,
  messages_ready, messages_unacked, published_per_s, delivered_per_s.

SIGTERM: one last sample, then exit 0. A failing source (the database being killed by a
fault, say) costs that source's record of that period, never the sampler.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from femdc_bench import catalog  # standard library only, in the agent zip

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1e6
SELF = "femdc-sampler"
#: The measurements written (metrics/names.py SAMPLED: this file imports nothing of ours
#: but the service catalog).
MEASUREMENTS = ("proc", "tcp", "host", "db", "mq")
TCP_ESTABLISHED = "01"


@dataclass
class ProcInfo:
    ppid: int
    ticks: int  # utime + stime
    threads: int
    rss_mb: float


def read_procs() -> dict[int, ProcInfo]:
    """Every process of the machine (its PID namespace): parent, CPU ticks, threads, RSS."""
    out: dict[int, ProcInfo] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # rest[0] is field 3 (state): ppid 4, utime 14, stime 15, threads 20, rss 24
        out[int(name)] = ProcInfo(ppid=int(rest[1]), ticks=int(rest[11]) + int(rest[12]),
                                  threads=int(rest[17]), rss_mb=int(rest[21]) * PAGE_MB)
    return out


def descendants(roots: set[int], procs: dict[int, ProcInfo]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, p in procs.items():
        children.setdefault(p.ppid, []).append(pid)
    seen, todo = set(), [r for r in roots if r in procs]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return seen


def service_roots(workdir: str, unit_prefix: str) -> dict[str, set[int]]:
    """service -> its root PIDs: WORKDIR/run/<name>.pid, else the systemd unit's cgroup."""
    out: dict[str, set[int]] = {}
    rundir = os.path.join(workdir, "run")
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(rundir)):
            if not name.endswith(".pid") or name == SELF + ".pid":
                continue
            with contextlib.suppress(OSError, ValueError), \
                    open(os.path.join(rundir, name)) as f:
                out[name[:-4]] = {int(f.read().strip())}
    cg = "/sys/fs/cgroup/system.slice"
    with contextlib.suppress(OSError):
        for unit in os.listdir(cg):
            if unit.startswith(unit_prefix) and unit.endswith(".service"):
                svc = unit[len(unit_prefix):-len(".service")]
                if svc in out:
                    continue
                with contextlib.suppress(OSError, ValueError), \
                        open(os.path.join(cg, unit, "cgroup.procs")) as f:
                    out[svc] = {int(x) for x in f.read().split()}
    return out


def uwsgi_requests(stats_socket: str, timeout_s: float = 1.0) -> int | None:
    """Requests served so far by a uwsgi server (the sum over its workers), from its
    stats server (`stats = RUN/<service>.stats`: it writes its JSON and closes). None
    when the service has no stats socket or it does not answer."""
    if not os.path.exists(stats_socket):
        return None
    chunks = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(stats_socket)
            while chunk := s.recv(65536):
                chunks.append(chunk)
        doc = json.loads(b"".join(chunks))
        return sum(int(w.get("requests", 0)) for w in doc.get("workers", ()))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def _hex_addr(h: str) -> str:
    """The address of a /proc/net/tcp{,6} entry (network byte order in host-order words)."""
    raw = bytes.fromhex(h)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
    b = b"".join(words)
    if b[:12] == b"\0" * 10 + b"\xff\xff":  # IPv4-mapped
        return ".".join(str(x) for x in b[12:])
    import ipaddress
    return str(ipaddress.IPv6Address(b))


def established_sockets() -> dict[int, str]:
    """inode -> remote address of every established TCP socket of this network namespace."""
    out: dict[int, str] = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(path) as f:
            next(f, None)
            for line in f:
                parts = line.split()
                if len(parts) > 9 and parts[3] == TCP_ESTABLISHED:
                    out[int(parts[9])] = _hex_addr(parts[2].split(":")[0])
    return out


def socket_inodes(pid: int) -> list[int]:
    out = []
    fd_dir = f"/proc/{pid}/fd"
    with contextlib.suppress(OSError):
        for fd in os.listdir(fd_dir):
            with contextlib.suppress(OSError):
                link = os.readlink(f"{fd_dir}/{fd}")
                if link.startswith("socket:["):
                    out.append(int(link[8:-1]))
    return out


def read_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def read_meminfo() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def read_netdev() -> dict[str, tuple[int, int]]:
    out = {}
    with open("/proc/net/dev") as f:
        for line in list(f)[2:]:
            name, data = line.split(":", 1)
            v = data.split()
            out[name.strip()] = (int(v[0]), int(v[8]))
    return out


def mariadb_status(cnf: str) -> dict[str, str]:
    p = subprocess.run(["mariadb", f"--defaults-file={cnf}", "-N", "-B", "-e",
                        "SHOW GLOBAL STATUS"], capture_output=True, text=True, timeout=10,
                       check=True)
    return dict(line.split("\t", 1) for line in p.stdout.splitlines() if "\t" in line)


def prometheus(url: str) -> dict[str, float]:
    """Sum of each metric over its labels, from a Prometheus text page."""
    import urllib.request  # only where RabbitMQ is sampled: the sampler starts faster

    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - our own endpoint
        return parse_prometheus(r.read().decode())


def parse_prometheus(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            out[name] = out.get(name, 0.0) + float(value)
    return out


def _num(s: str | None) -> float | None:
    try:
        return float(s) if s is not None else None
    except ValueError:
        return None


@dataclass
class Sampler:
    conf: dict[str, Any]
    out: Any  # text file
    last_ticks: dict[int, int] = field(default_factory=dict)
    last_t: float = 0.0
    last_cpu: tuple[int, int] | None = None
    last_net: dict[str, tuple[int, int]] = field(default_factory=dict)
    last_counters: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def emit(self, m: str, tags: dict[str, str], fields: dict[str, Any], ts: int) -> None:
        assert m in MEASUREMENTS, m
        fields = {k: v for k, v in fields.items() if v is not None}
        if fields:
            self.out.write(json.dumps({"m": m, "tags": tags, "fields": fields, "t": ts},
                                      separators=(",", ":")) + "\n")

    def rate(self, key: str, value: float | None, dt: float) -> float | None:
        if value is None:
            return None
        last = self.last_counters.get(key)
        self.last_counters[key] = value
        if last is None or dt <= 0 or value < last:
            return None
        return round((value - last) / dt, 3)

    def sample(self) -> None:
        ts = time.time_ns()
        now = time.monotonic()
        dt = now - self.last_t if self.last_t else 0.0
        self.last_t = now
        procs = read_procs()
        roots = service_roots(self.conf["workdir"], self.conf.get("unit_prefix", ""))
        roots[SELF] = {os.getpid()}
        socks = established_sockets()
        sites: dict[str, str] = self.conf.get("sites_by_address", {})
        own = set(self.conf.get("own_addresses", ())) | {"127.0.0.1", "::1"}
        ticks: dict[int, int] = {}
        base = {"host": self.conf["host"], "site": self.conf["site"]}
        for svc, pids in sorted(roots.items()):
            members = descendants(pids, procs) if svc != SELF else pids & procs.keys()
            if not members:
                continue
            cpus, rss, threads, est = [], [], 0, 0
            by_site: dict[str, int] = {}
            for pid in members:
                p = procs[pid]
                ticks[pid] = p.ticks
                prev = self.last_ticks.get(pid)
                if prev is not None and dt > 0:
                    cpus.append((p.ticks - prev) / CLK_TCK / dt * 100)
                rss.append(p.rss_mb)
                threads += p.threads
                for inode in socket_inodes(pid):
                    remote = socks.get(inode)
                    if remote is None:
                        continue
                    est += 1
                    peer = "local" if remote in own else sites.get(remote, "other")
                    by_site[peer] = by_site.get(peer, 0) + 1
            tags = {**base, "service": svc}
            served = uwsgi_requests(os.path.join(self.conf["workdir"], "run", svc + ".stats"))
            self.emit("proc", tags, {
                "procs": len(members),
                "cpu_pct": round(sum(cpus), 2) if cpus else None,
                "cpu_pct_max": round(max(cpus), 2) if cpus else None,
                "rss_mb": round(sum(rss), 1), "rss_mb_max": round(max(rss), 1),
                "threads": threads, "tcp_established": est,
                "requests": served,
                "requests_per_s": self.rate(f"requests/{svc}", served, dt)}, ts)
            for peer, n in sorted(by_site.items()):
                self.emit("tcp", {**tags, "peer_site": peer}, {"established": n}, ts)
        self.last_ticks = ticks
        self.sample_host(ts, dt, base)
        if self.conf.get("mariadb_cnf"):
            self.guarded("db", lambda: self.sample_db(ts, dt, base))
        if self.conf.get("rabbitmq_metrics_url"):
            self.guarded("mq", lambda: self.sample_mq(ts, dt, base))
        self.out.flush()

    def guarded(self, what: str, fn: Any) -> None:
        try:
            fn()
            self.errors.pop(what, None)
        except Exception as e:  # noqa: BLE001 - a source may be down (a fault): go on
            msg = f"{type(e).__name__}: {e}"
            if self.errors.get(what) != msg:
                print(f"{what}: {msg}", file=sys.stderr, flush=True)
            self.errors[what] = msg

    def sample_host(self, ts: int, dt: float, base: dict[str, str]) -> None:
        cpu = read_cpu()
        cpu_pct = None
        if self.last_cpu and cpu[1] > self.last_cpu[1]:
            cpu_pct = round((cpu[0] - self.last_cpu[0]) / (cpu[1] - self.last_cpu[1])
                            * 100 * (os.cpu_count() or 1), 2)
        self.last_cpu = cpu
        mem = read_meminfo()
        with open("/proc/loadavg") as f:
            load1 = float(f.read().split()[0])
        self.emit("host", base, {
            "cpu_pct": cpu_pct, "cpus": os.cpu_count() or 1,
            "mem_used_mb": round((mem["MemTotal"] - mem.get("MemAvailable", 0)) / 1024, 1),
            "mem_available_mb": round(mem.get("MemAvailable", 0) / 1024, 1),
            "load1": load1}, ts)
        net = read_netdev()
        for iface, (rx, tx) in sorted(net.items()):
            if iface == "lo":
                continue
            last = self.last_net.get(iface)
            rates: dict[str, Any] = {}
            if last and dt > 0 and rx >= last[0] and tx >= last[1]:
                rates = {"rx_bps": round((rx - last[0]) * 8 / dt, 1),
                         "tx_bps": round((tx - last[1]) * 8 / dt, 1)}
            self.emit("host", {**base, "iface": iface},
                      {"rx_bytes": rx, "tx_bytes": tx, **rates}, ts)
        self.last_net = net

    def sample_db(self, ts: int, dt: float, base: dict[str, str]) -> None:
        st = mariadb_status(self.conf["mariadb_cnf"])
        fields: dict[str, Any] = {
            "queries_per_s": self.rate("db.questions", _num(st.get("Questions")), dt),
            "connections": _num(st.get("Threads_connected")),
            "threads_running": _num(st.get("Threads_running")),
            "slow_queries": _num(st.get("Slow_queries")),
            "row_lock_waits": _num(st.get("Innodb_row_lock_waits")),
        }
        if (_num(st.get("wsrep_cluster_size")) or 0) > 0:  # a Galera node
            lat = (st.get("wsrep_evs_repl_latency") or "").split("/")
            fields.update({
                "wsrep_cluster_size": _num(st.get("wsrep_cluster_size")),
                "wsrep_local_recv_queue_avg": _num(st.get("wsrep_local_recv_queue_avg")),
                "wsrep_flow_control_paused": _num(st.get("wsrep_flow_control_paused")),
                "wsrep_local_cert_failures": _num(st.get("wsrep_local_cert_failures")),
                "repl_latency_ms": (round(v * 1000, 3) if (v := _num(lat[1])) is not None
                                    else None) if len(lat) > 1 else None,
            })
        self.emit("db", {**base, "service": catalog.MARIADB.name}, fields, ts)

    def sample_mq(self, ts: int, dt: float, base: dict[str, str]) -> None:
        m = prometheus(self.conf["rabbitmq_metrics_url"])
        self.emit("mq", {**base, "service": catalog.RABBITMQ.name}, {
            "connections": m.get("rabbitmq_connections"),
            "channels": m.get("rabbitmq_channels"),
            "queues": m.get("rabbitmq_queues"),
            "messages_ready": m.get("rabbitmq_queue_messages_ready"),
            "messages_unacked": m.get("rabbitmq_queue_messages_unacked"),
            "published_per_s": self.rate(
                "mq.pub", m.get("rabbitmq_global_messages_received_total"), dt),
            "delivered_per_s": self.rate(
                "mq.del", m.get("rabbitmq_global_messages_delivered_total"), dt),
        }, ts)


def detect_sources(conf: dict[str, Any]) -> None:
    """The database and message bus of this host, from what the deployment left in its
    work directory: MariaDB's client options file (0600, root over the socket) and
    RabbitMQ's plugin list naming rabbitmq_prometheus."""
    wd = conf["workdir"]
    cnf = os.path.join(wd, catalog.MARIADB.role, "root.cnf")
    if "mariadb_cnf" not in conf and os.path.exists(cnf):
        conf["mariadb_cnf"] = cnf
    try:
        with open(os.path.join(wd, catalog.RABBITMQ.role, "enabled_plugins")) as f:
            prom = "rabbitmq_prometheus" in f.read()
    except OSError:
        prom = False
    if "rabbitmq_metrics_url" not in conf and prom and conf.get("address"):
        a = conf["address"]
        a = f"[{a}]" if ":" in a else a
        conf["rabbitmq_metrics_url"] = f"http://{a}:{conf.get('rabbitmq_port', 15692)}/metrics"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="femdc-sampler")
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile", required=True)
    a = ap.parse_args(argv)
    with open(a.config) as f:
        conf = json.load(f)
    detect_sources(conf)
    period = float(conf.get("period_s", 5.0))
    stop = {"now": False}

    def on_term(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    with open(a.pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(a.pidfile + ".tmp", a.pidfile)
    deadline = time.monotonic() + float(conf.get("max_s", 86400))
    try:
        with open(a.out, "a", encoding="utf-8") as out:
            s = Sampler(conf, out)
            nxt = time.monotonic()
            while True:
                s.sample()
                if stop["now"] or time.monotonic() > deadline:
                    break
                nxt += period
                while not stop["now"] and time.monotonic() < nxt:
                    time.sleep(min(0.2, max(0.0, nxt - time.monotonic())))
                if stop["now"]:
                    s.sample()  # the last one, at the stop
                    break
    finally:
        with contextlib.suppress(OSError):
            os.unlink(a.pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
