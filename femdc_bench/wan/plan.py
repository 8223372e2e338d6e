"""The WAN plan: experiment (one concrete WanSpec) + inventory -> per-host rules.

Pure and fast. Rules are sender-centric: on host `host`, traffic to `dst` gets `delay_ms`
one way, at most `rate_kbit`, and loses `loss_pct` percent of its packets. Emulators
translate: netem puts them on the sender's egress, the userspace fallback delays on the
receiver (keyed by source address) because that is where holding packets is cheap.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace

from femdc_bench.model import FaultSpec, Inventory, LinkSpec, WanOverride, WanSpec


@dataclass(frozen=True)
class Rule:
    dst_host: str
    dst: str  # IPv4 address of dst_host
    delay_ms: float
    rate_kbit: float | None
    loss_pct: float


@dataclass(frozen=True)
class HostRules:
    host: str  # alias of the sender, where the rules apply
    site: str
    address: str
    device: str  # interface on the experiment network
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Inbound:
    """A rule seen from the receiver: packets from `src` to this host."""

    src_host: str
    src: str
    delay_ms: float
    rate_kbit: float | None
    loss_pct: float


@dataclass(frozen=True)
class WanPlan:
    hosts: tuple[HostRules, ...]

    def for_host(self, alias: str) -> HostRules:
        for h in self.hosts:
            if h.host == alias:
                return h
        raise KeyError(alias)

    def inbound(self) -> dict[str, list[Inbound]]:
        """Receiver -> rules of the packets it receives (for the userspace emulator)."""
        out: dict[str, list[Inbound]] = {h.host: [] for h in self.hosts}
        for h in self.hosts:
            for r in h.rules:
                out.setdefault(r.dst_host, []).append(
                    Inbound(h.host, h.address, r.delay_ms, r.rate_kbit, r.loss_pct))
        return out

    @property
    def rule_count(self) -> int:
        return sum(len(h.rules) for h in self.hosts)


def _shaped(link: LinkSpec | None) -> bool:
    return link is not None and (link.delay_ms > 0 or link.loss_pct > 0
                                 or link.rate_kbit is not None)


def link_between(wan: WanSpec, src_site: str, dst_site: str) -> LinkSpec | None:
    """The one-way link from src_site to dst_site; None when not shaped."""
    if src_site == dst_site:
        return wan.intra_site if _shaped(wan.intra_site) else None
    link = wan.default
    for o in wan.overrides:  # later overrides win
        if (src_site in o.src and dst_site in o.dst) or (
                o.symmetric and src_site in o.dst and dst_site in o.src):
            link = o.link
    return link if _shaped(link) else None


def plan(wan: WanSpec, inv: Inventory) -> WanPlan:
    """Per-host rules for every ordered pair of hosts whose link is shaped.

    Hosts named in `wan.exclude`, or whose address is in an excluded network, get no
    rules and no rules point at them.
    """
    nets = []
    aliases = set()
    for x in wan.exclude:
        try:
            nets.append(ipaddress.IPv4Network(x))
        except ValueError:
            aliases.add(x)

    def excluded(alias: str, address: str) -> bool:
        if alias in aliases:
            return True
        ip = ipaddress.IPv4Address(address)
        return any(ip in n for n in nets)

    hosts = [h for h in inv.hosts if not excluded(h.alias, h.address)]
    sites = sorted({h.site for h in hosts})
    links = {(a, b): link_between(wan, a, b) for a in sites for b in sites}
    out = []
    for h in hosts:
        rules = []
        for d in hosts:
            if d.alias == h.alias:
                continue
            link = links[(h.site, d.site)]
            if link is not None:
                rules.append(Rule(dst_host=d.alias, dst=d.address, delay_ms=link.delay_ms,
                                  rate_kbit=link.rate_kbit, loss_pct=link.loss_pct))
        out.append(HostRules(host=h.alias, site=h.site, address=h.address,
                             device=str(h.extra.get("femdc_device", "eth0")),
                             rules=tuple(rules)))
    return WanPlan(hosts=tuple(out))


def site_matrix(wan: WanSpec, sites: list[str]) -> dict[tuple[str, str], float]:
    """Target round-trip time (ms) added between every ordered pair of distinct sites."""
    def one_way(a: str, b: str) -> float:
        link = link_between(wan, a, b)
        return link.delay_ms if link else 0.0

    return {(a, b): one_way(a, b) + one_way(b, a) for a in sites for b in sites if a != b}



def partition(base: WanPlan, inv: Inventory, site: str) -> WanPlan:
    """`base` with `site` cut off: 100 % loss on every link to and from its hosts, as a
    plan (the emulators' loss rules). The partition fault itself uses the lighter
    `wan.apply.cut`, which leaves the point's emulation in place."""
    addresses = {h.alias: h.address for h in inv.hosts}
    sites = {h.alias: h.site for h in inv.hosts}
    members = {h.host for h in base.hosts}
    order = [h.alias for h in inv.hosts]
    out = []
    for h in base.hosts:
        rules = {r.dst_host: r for r in h.rules}
        for d in sorted(members - {h.host}):
            if (h.site == site) != (sites[d] == site):  # one end inside, the other outside
                r = rules.get(d)
                rules[d] = Rule(dst_host=d, dst=addresses[d], delay_ms=r.delay_ms if r else 0.0,
                                rate_kbit=r.rate_kbit if r else None, loss_pct=100.0)
        ordered = tuple(rules[a] for a in order if a in rules)
        out.append(HostRules(host=h.host, site=h.site, address=h.address, device=h.device,
                             rules=ordered))
    return WanPlan(hosts=tuple(out))


def degraded(wan: WanSpec, faults: Sequence[FaultSpec], sites: Sequence[str]) -> WanSpec:
    """`wan` with the `degrade` faults on top: every link between a fault's site and any
    other site takes the fault's given values (delay, rate, loss; the others stay as
    `wan` has them for that direction). Later faults win where they overlap."""
    extra = []
    for f in faults:
        assert f.kind == "degrade" and f.link is not None
        given = {k: getattr(f.link, k) for k in f.link_keys}
        for other in sites:
            if other == f.site:
                continue
            for src, dst in ((f.site, other), (other, f.site)):
                base = link_between(wan, src, dst) or LinkSpec()
                extra.append(WanOverride(src=(src,), dst=(dst,), symmetric=False,
                                         link=replace(base, **given)))
    return replace(wan, overrides=(*wan.overrides, *extra))
