"""Measure the WAN: RTT between every pair of sites with `ping -U`, against the target.

Pure parts here (parsing `ping -U`, building the matrix, tolerance); the probes themselves
run on the hosts through playbooks/wan/check.yml (one probing host per site).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from femdc_bench.model import Inventory
from femdc_bench.workload.percentile import percentile_sorted

TOLERANCE_MS = 1.0
TOLERANCE_PCT = 5.0


@dataclass(frozen=True)
class PairCheck:
    src_site: str
    dst_site: str
    src_host: str
    dst_host: str
    target_ms: float  # RTT the WAN should add (plus the base RTT when compensating)
    measured_ms: float | None  # median RTT over the probes that came back
    p95_ms: float | None
    loss_pct: float
    base_ms: float | None  # median RTT before shaping, when measured
    tolerance_ms: float
    ok: bool

    @property
    def error_ms(self) -> float | None:
        if self.measured_ms is None:
            return None
        return self.measured_ms - self.expected_ms

    @property
    def expected_ms(self) -> float:
        return self.target_ms + (self.base_ms or 0.0)


@dataclass(frozen=True)
class WanCheck:
    point: str
    probes: int
    compensated: bool
    pairs: tuple[PairCheck, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.pairs)

    def failures(self) -> list[str]:
        out = []
        for p in self.pairs:
            if p.ok:
                continue
            got = "no reply" if p.measured_ms is None else f"{p.measured_ms:.2f} ms"
            out.append(f"{p.src_site}->{p.dst_site}: RTT {got}, expected "
                       f"{p.expected_ms:.2f} ± {p.tolerance_ms:.2f} ms")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"point": self.point, "probes": self.probes, "compensated": self.compensated,
                "ok": self.ok, "pairs": [asdict(p) for p in self.pairs]}


def probe_hosts(inv: Inventory, excluded: tuple[str, ...] = ()) -> dict[str, str]:
    """One probing host per site (its first host not excluded): site -> alias."""
    out: dict[str, str] = {}
    for h in inv.hosts:
        if h.site not in out and h.alias not in excluded:
            out[h.site] = h.alias
    return out


_PING_HEAD = re.compile(r"^PING (\S+) ")
_PING_REPLY = re.compile(r"from ([0-9.]+): icmp_seq=(\d+) .*time=([0-9.]+) ms")


def parse_ping(text: str, count: int) -> dict[str, list[float | None]]:
    """iputils `ping -n -c N` outputs, one after the other -> address -> RTT per probe
    (None = no reply). Duplicate replies are ignored."""
    out: dict[str, list[float | None]] = {}
    for line in text.splitlines():
        head = _PING_HEAD.match(line)
        if head:
            out.setdefault(head.group(1), [None] * count)
            continue
        m = _PING_REPLY.search(line)
        if m:
            addr, seq, ms = m.group(1), int(m.group(2)), float(m.group(3))
            values = out.setdefault(addr, [None] * count)
            if 1 <= seq <= count and values[seq - 1] is None:
                values[seq - 1] = ms
    return out


def tolerance(expected_ms: float) -> float:
    return max(TOLERANCE_MS, expected_ms * TOLERANCE_PCT / 100)


def compare(
    point: str,
    inv: Inventory,
    probes: dict[str, str],
    outputs: dict[str, str],
    targets: dict[tuple[str, str], float],
    *,
    count: int,
    base: dict[tuple[str, str], float] | None = None,
) -> WanCheck:
    """Build the checked matrix from each probing host's ping output (alias -> text)."""
    pairs = []
    for src_site, src in probes.items():
        rtts = parse_ping(outputs.get(src, ""), count)
        for dst_site, dst in probes.items():
            if dst_site == src_site:
                continue
            values = rtts.get(inv.host(dst).address, [])
            got = sorted(v for v in values if v is not None)
            lost = count - len(got)
            median = percentile_sorted(got, 50) if got else None
            p95 = percentile_sorted(got, 95) if got else None
            target = targets.get((src_site, dst_site), 0.0)
            b = base.get((src_site, dst_site)) if base else None
            expected = target + (b or 0.0)
            tol = tolerance(expected)
            ok = median is not None and abs(median - expected) <= tol
            pairs.append(PairCheck(
                src_site=src_site, dst_site=dst_site, src_host=src, dst_host=dst,
                target_ms=target, measured_ms=median, p95_ms=p95,
                loss_pct=100.0 * lost / count if count else 0.0, base_ms=b,
                tolerance_ms=tol, ok=ok))
    return WanCheck(point=point, probes=count, compensated=base is not None, pairs=tuple(pairs))


def medians(check: WanCheck) -> dict[tuple[str, str], float]:
    """Measured medians by site pair (used as the base RTT before shaping)."""
    return {(p.src_site, p.dst_site): p.measured_ms for p in check.pairs
            if p.measured_ms is not None}
