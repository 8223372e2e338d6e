"""What `up` would do, without doing it (`femdc-bench up --dry-run`): the same shape for
every provider, filled by each provider module without touching anything."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from femdc_bench.model import Experiment


@dataclass(frozen=True)
class PlannedHost:
    alias: str
    site: str
    roles: tuple[str, ...]
    address: str  # known, or a placeholder in <...>
    machine: str  # what it is: namespace, node, VM, instance, SSH host


@dataclass
class Plan:
    provider: str
    reserve: list[str]  # what would be reserved or reached, one line each
    hosts: list[PlannedHost] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what this dry run could not check


def local_plan(exp: Experiment) -> Plan:
    """provider local: namespaces on this machine. Without provider.subnet the subnet is
    the first free one of 10.231.0.0/16 at `up` time: a placeholder here."""
    hosts = [(s.name, h) for s in exp.sites for h in s.hosts]
    if exp.provider.subnet:
        net = ipaddress.IPv4Network(exp.provider.subnet)
        addrs = [str(a) for a in list(net.hosts())[1:len(hosts) + 1]]
        where = f"subnet {net}"
    else:
        addrs = [f"<10.231.x.{i + 2}>" for i in range(len(hosts))]
        where = "the first free subnet of 10.231.0.0/16 (chosen at up)"
    return Plan(
        provider="local",
        reserve=[f"{len(hosts)} network namespace(s) on this machine, each with a veth into "
                 f"a run bridge and its own sshd, on {where} (root needed)"],
        hosts=[PlannedHost(h.name, site, h.roles, addr, "network namespace")
               for (site, h), addr in zip(hosts, addrs, strict=True)])
