"""UDP load and RTT probes between namespaces, for measuring the WAN emulation only.

Run inside one host's namespace (`ip netns exec NS /usr/bin/python3 wanload.py ...`),
one process per host, all with the same --start (CLOCK_MONOTONIC, shared by every
namespace of a machine). Each process, from --start for --duration seconds:
  * sends --pps datagrams/s in total, round-robin to its peers, each with a per-peer
    sequence number and its send time: the receiver gets one-way delay, loss, reordering;
  * every --probe-ms sends a probe to each peer, which echoes it at once: RTT measured
    in user space (fping and ping without -U take the kernel's receive timestamp, which
    precedes PREROUTING, and so miss the delay added there on the way back);
and keeps receiving (and echoing) for --grace seconds after (--stop-file ends the sending
early). Prints one JSON object.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import socket
import statistics
import struct
import time

MAGIC = 0xFE3D
DATA, PROBE, ECHO = 1, 2, 3
FMT = "!HBxIQ"  # magic, kind, seq, send time (ns)
SIZE = struct.calcsize(FMT)


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "mean": None, "p50": None, "p99": None, "max": None}
    v = sorted(values)
    return {"n": len(v), "mean": round(statistics.fmean(v), 3),
            "p50": round(v[len(v) // 2], 3),
            # nearest rank: with fewer than 100 values this is the maximum
            "p99": round(v[math.ceil(0.99 * len(v)) - 1], 3),
            "max": round(v[-1], 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--peers", required=True, help="comma-separated addresses")
    ap.add_argument("--port", type=int, default=47001)
    ap.add_argument("--pps", type=float, default=1000)
    ap.add_argument("--probe-ms", type=float, default=50)
    ap.add_argument("--start", type=int, required=True, help="CLOCK_MONOTONIC ns")
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--grace", type=float, default=1.0)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--stop-file", help="stop sending early once this file exists")
    a = ap.parse_args()

    peers = a.peers.split(",")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    s.bind((a.bind, a.port))
    s.setblocking(False)
    pad = b"\0" * max(0, a.size - SIZE)

    sent = {p: 0 for p in peers}
    probes_sent = {p: 0 for p in peers}
    got: dict[str, int] = {p: 0 for p in peers}
    last_seq: dict[str, int] = {p: 0 for p in peers}
    reordered = {p: 0 for p in peers}
    seen: dict[str, set[int]] = {p: set() for p in peers}
    oneway: dict[str, list[float]] = {p: [] for p in peers}
    rtt: dict[str, list[float]] = {p: [] for p in peers}
    send_err = 0

    start_ns = a.start
    stop_ns = start_ns + int(a.duration * 1e9)
    end_ns = stop_ns + int(a.grace * 1e9)
    gap_ns = int(1e9 / a.pps) if a.pps > 0 else None
    probe_ns = int(a.probe_ms * 1e6)
    next_send = start_ns
    next_probe = start_ns + probe_ns // 2
    next_check = start_ns
    i = 0
    while True:
        now = time.monotonic_ns()
        if now >= end_ns:
            break
        if a.stop_file and start_ns <= now < stop_ns and now >= next_check:
            next_check = now + 50_000_000
            if os.path.exists(a.stop_file):
                stop_ns = now
                end_ns = now + int(a.grace * 1e9)
        sending = start_ns <= now < stop_ns
        while sending and gap_ns and now >= next_send and next_send < stop_ns:
            p = peers[i % len(peers)]
            i += 1
            try:  # a datagram the kernel refused is not counted as sent (nor its seq used)
                s.sendto(struct.pack(FMT, MAGIC, DATA, sent[p] + 1, time.monotonic_ns()) + pad,
                         (p, a.port))
                sent[p] += 1
            except OSError:
                send_err += 1
            next_send += gap_ns
        if sending and now >= next_probe:
            for p in peers:
                probes_sent[p] += 1
                try:
                    s.sendto(struct.pack(FMT, MAGIC, PROBE, probes_sent[p],
                                         time.monotonic_ns()), (p, a.port))
                except OSError:
                    send_err += 1
            next_probe += probe_ns
        if sending:
            deadline = min(x for x in (next_send, next_probe, end_ns) if x > now)
        else:
            deadline = start_ns if now < start_ns else end_ns
        r, _, _ = select.select([s], [], [], max(0, deadline - time.monotonic_ns()) / 1e9)
        if not r:
            continue
        while True:
            try:
                buf, (src, port) = s.recvfrom(65536)
            except BlockingIOError:
                break
            t = time.monotonic_ns()
            if len(buf) < SIZE:
                continue
            magic, kind, seq, ts = struct.unpack_from(FMT, buf)
            if magic != MAGIC or src not in got:
                continue
            if kind == DATA:
                got[src] += 1
                seen[src].add(seq)
                if seq < last_seq[src]:
                    reordered[src] += 1
                else:
                    last_seq[src] = seq
                oneway[src].append((t - ts) / 1e6)
            elif kind == PROBE:
                s.sendto(struct.pack(FMT, MAGIC, ECHO, seq, ts), (src, port))
            elif kind == ECHO:
                rtt[src].append((t - ts) / 1e6)

    print(json.dumps({
        "host": a.bind,
        "send_errors": send_err,
        "start_ns": start_ns, "gap_ns": gap_ns,
        "peers": {p: {"sent": sent[p], "received_from": got[p], "reordered_from": reordered[p],
                      "missing_from": sorted(set(range(1, max(seen[p], default=0) + 1))
                                             - seen[p])[:20],
                      "oneway_from_ms": summary(oneway[p]), "probes_sent": probes_sent[p],
                      "rtt_ms": summary(rtt[p])} for p in peers},
    }))


if __name__ == "__main__":
    main()
