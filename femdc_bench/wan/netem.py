"""tc/netem commands for kernels that have netem (every testbed).

Per sender host, as EnOSlib's NetemHTB lays it out: an HTB root, one class per
destination carrying a netem qdisc (delay, loss; the class carries the rate) and a u32
filter on the destination address. Unclassified traffic (no `default` class) is not
shaped, so management and excluded traffic passes untouched.

We generate the commands ourselves instead of calling EnOSlib's NetemHTB because it
builds shell strings run through `raw`, and its removal deletes the root qdisc of every
interface (`tc qdisc del dev X root || true`), including qdiscs we did not create. Ours
are argument lists, and removal names our root handle, which the kernel refuses to
delete if the root qdisc is not ours.
"""

from __future__ import annotations

import hashlib
import math

from femdc_bench.wan.commands import HostCommands, htb_quantum
from femdc_bench.wan.plan import HostRules, WanPlan

UNSHAPED_RATE_KBIT = 10_000_000  # 10 gbit: "no rate limit" for an HTB class
MTU_BITS = 1500 * 8


def root_handle(tag: str) -> str:
    """A run-specific HTB root handle in f000..fffe (children use 100 + i)."""
    n = int(hashlib.sha1(tag.encode()).hexdigest()[:4], 16) % 0xFFF
    return f"{0xF000 + n:x}"


def _num(x: float) -> str:
    """Plain decimal (tc does not read exponents): 10000000, 2.5."""
    return str(int(x)) if float(x).is_integer() else f"{x:.6f}".rstrip("0")


def netem_limit(delay_ms: float, rate_kbit: float | None) -> int:
    """Queue length (packets) that holds twice the bandwidth-delay product."""
    rate = rate_kbit if rate_kbit is not None else UNSHAPED_RATE_KBIT
    bdp = rate * 1000 * (delay_ms / 1000) / MTU_BITS
    return max(1000, math.ceil(2 * bdp))


def host_commands(h: HostRules, tag: str) -> HostCommands:
    dev, root = h.device, root_handle(tag)
    remove = (("tc", "qdisc", "del", "dev", dev, "root", "handle", f"{root}:"),)
    if not h.rules:
        return HostCommands(host=h.host, add=(), remove=remove, daemon=None)
    add: list[tuple[str, ...]] = [("tc", "qdisc", "add", "dev", dev, "root", "handle",
                                   f"{root}:", "htb")]
    for i, r in enumerate(h.rules, start=1):
        cls = f"{root}:{i:x}"
        rate = r.rate_kbit if r.rate_kbit is not None else UNSHAPED_RATE_KBIT
        add.append(("tc", "class", "add", "dev", dev, "parent", f"{root}:", "classid", cls,
                    "htb", "rate", f"{_num(rate)}kbit", "quantum", str(htb_quantum(rate))))
        netem = ["tc", "qdisc", "add", "dev", dev, "parent", cls, "handle",
                 f"{0x100 + i:x}:", "netem", "limit", str(netem_limit(r.delay_ms, r.rate_kbit)),
                 "delay", f"{_num(r.delay_ms)}ms"]
        if r.loss_pct > 0:
            netem += ["loss", f"{_num(r.loss_pct)}%"]
        add.append(tuple(netem))
        add.append(("tc", "filter", "add", "dev", dev, "parent", f"{root}:", "protocol", "ip",
                    "prio", "1", "u32", "match", "ip", "dst", f"{r.dst}/32", "flowid", cls))
    return HostCommands(host=h.host, add=tuple(add), remove=remove, daemon=None)


def commands(plan: WanPlan, tag: str) -> dict[str, HostCommands]:
    return {h.host: host_commands(h, tag) for h in plan.hosts}
