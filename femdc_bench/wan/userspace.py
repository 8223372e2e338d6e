"""The userspace WAN emulator, for kernels without sch_netem: commands from a WanPlan.

Same semantics per destination as netem, split where each part is cheap and exact:

* delay: on the RECEIVER, in mangle PREROUTING, packets from each shaped source go to an
  NFQUEUE (`--queue-bypass`: they pass undelayed while no daemon listens) where
  `femdc_bench.wan.nfqdelay` holds each one until arrival + the delay of its source.
  Holding packets on the sender (OUTPUT) would keep them charged to the sending socket
  (TCP small queues) and collapse TCP throughput.
* loss: on the receiver too, `-m statistic --mode random --probability P -j DROP` per
  source (100 % is a plain DROP: a partition).
* rate: on the SENDER's egress, an HTB root with our handle, one class per destination
  at that rate and a u32 filter on the destination; no `default` class, so unclassified
  traffic (management, excluded hosts) is not shaped.

Everything lives in one run-named chain `FEMDC-<tag>` jumped to from mangle PREROUTING
(`-i <device>`), and one root qdisc whose handle is derived from the tag (the same
handle as the netem emulator's: one root qdisc per run, whichever emulator made it).
Removal deletes the jump, flushes and deletes the chain, deletes the root qdisc by
handle (the kernel refuses if the root qdisc is not ours), and nothing else.

This module is pure (no I/O) apart from the few helpers at the end that name and build
what is shipped to the hosts (the daemon zip, the venv lock).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from femdc_bench import ship
from femdc_bench.ship import PACKAGE
from femdc_bench.wan.commands import Argv, HostCommands, htb_quantum
from femdc_bench.wan.netem import root_handle
from femdc_bench.wan.plan import Inbound, WanPlan

IPTABLES = "iptables"
TABLE = "mangle"
HOOK = "PREROUTING"
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,22}$")  # chain names are at most 28 characters


def chain_name(tag: str) -> str:
    if not _TAG.match(tag):
        raise ValueError(f"WAN tag {tag!r}: expected 1-22 characters of [A-Za-z0-9_-]")
    return f"FEMDC-{tag}"


def queue_num(tag: str) -> int:
    """A run-specific NFQUEUE number in 32768..65534 (queues are per network namespace)."""
    chain_name(tag)
    return 0x8000 + int(hashlib.sha256(tag.encode()).hexdigest()[:8], 16) % 0x7FFF


def _num(x: float) -> str:
    """Plain decimal, no exponent: 25, 2.5, 0.001."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.9f}".rstrip("0").rstrip(".")


def _ipt(*args: str) -> Argv:
    return (IPTABLES, "-w", "-t", TABLE, *args)


def _rate(kbit: float) -> str:
    return f"{_num(kbit)}kbit"


def remove_commands(device: str, tag: str) -> tuple[Argv, ...]:
    """What `add` may have created on a host with this device, whatever the plan was."""
    chain = chain_name(tag)
    return (
        _ipt("-D", HOOK, "-i", device, "-j", chain),
        _ipt("-F", chain),
        _ipt("-X", chain),
        ("tc", "qdisc", "del", "dev", device, "root", "handle", f"{root_handle(tag)}:"),
    )


def inbound_commands(device: str, tag: str, inbound: list[Inbound], queue: int) -> list[Argv]:
    """The receiver's chain: per source, loss (DROP) then delay (NFQUEUE)."""
    shaped = [i for i in inbound if i.loss_pct > 0 or i.delay_ms > 0]
    if not shaped:
        return []
    chain = chain_name(tag)
    out = [_ipt("-N", chain)]
    for i in shaped:
        src = f"{i.src}/32"
        if i.loss_pct >= 100:
            out.append(_ipt("-A", chain, "-s", src, "-j", "DROP"))
            continue
        if i.loss_pct > 0:
            out.append(_ipt("-A", chain, "-s", src, "-m", "statistic", "--mode", "random",
                            "--probability", _num(i.loss_pct / 100), "-j", "DROP"))
        if i.delay_ms > 0:
            out.append(_ipt("-A", chain, "-s", src, "-j", "NFQUEUE", "--queue-num", str(queue),
                            "--queue-bypass"))
    # The jump last: the chain is complete before any packet enters it.
    out.append(_ipt("-A", HOOK, "-i", device, "-j", chain))
    return out


def egress_commands(device: str, tag: str, rates: list[tuple[str, float]]) -> list[Argv]:
    """The sender's HTB: one class per rate-limited destination, nothing else shaped."""
    if not rates:
        return []
    root = root_handle(tag)
    out: list[Argv] = [("tc", "qdisc", "add", "dev", device, "root", "handle", f"{root}:",
                        "htb")]
    for n, (dst, kbit) in enumerate(rates, start=1):
        cls = f"{root}:{n:x}"
        out.append(("tc", "class", "add", "dev", device, "parent", f"{root}:", "classid", cls,
                    "htb", "rate", _rate(kbit), "ceil", _rate(kbit), "quantum",
                    str(htb_quantum(kbit))))
        out.append(("tc", "filter", "add", "dev", device, "parent", f"{root}:", "protocol",
                    "ip", "prio", "1", "u32", "match", "ip", "dst", f"{dst}/32",
                    "flowid", cls))
    return out


def commands(plan: WanPlan, tag: str, *, queue: int | None = None) -> dict[str, HostCommands]:
    """One HostCommands per host of the plan (excluded hosts are not in the plan).

    Every host gets the full `remove` list, even when it needs nothing now, so that
    re-applying another plan (a sweep point, a partition) cleans what the last one left.
    """
    q = queue_num(tag) if queue is None else queue
    if not 0 <= q <= 0xFFFF:
        raise ValueError(f"NFQUEUE number {q} out of 0..65535")
    inbound = plan.inbound()
    out: dict[str, HostCommands] = {}
    for h in plan.hosts:
        mine = inbound.get(h.host, [])
        add = inbound_commands(h.device, tag, mine, q)
        add += egress_commands(h.device, tag, [(r.dst, r.rate_kbit) for r in h.rules
                                               if r.rate_kbit is not None])
        delays: dict[str, float] = {}
        for i in mine:
            if i.delay_ms > 0 and i.loss_pct < 100:
                delays[i.src] = i.delay_ms
        daemon = ({"queue": q, "device": h.device, "delays": delays} if delays else None)
        out[h.host] = HostCommands(host=h.host, add=tuple(add),
                                   remove=remove_commands(h.device, tag), daemon=daemon)
    return out


def summary(cmds: dict[str, HostCommands]) -> dict[str, dict[str, int]]:
    """Counts per host (for logs): delayed sources, iptables and tc commands."""
    return {alias: {"delayed_sources": len((c.daemon or {}).get("delays", {})),
                    "iptables": sum(1 for a in c.add if a[0] == IPTABLES),
                    "tc": sum(1 for a in c.add if a[0] == "tc")}
            for alias, c in cmds.items()}


# --------------------------------------------------------------------------- shipping
# What apply.yml needs to run the daemon on hosts. Not pure: reads the package files.

LOCK = PACKAGE.parent / "playbooks" / "wan" / "files" / "wan.lock"
DAEMON_MODULE = "femdc_bench.wan.nfqdelay"
_ZIP_FILES = ("__init__.py", "wan/__init__.py", "wan/nfqdelay.py")


def lock_sha256(lock: Path = LOCK) -> str:
    return ship.lock_sha256(lock)


def venv_dir(lock: Path = LOCK) -> str:
    """`/var/cache/femdc-bench/venvs/wan-<sha256(lock)[:12]>` (python + netfilterqueue)."""
    return ship.locked_venv("wan", lock)


def build_daemon_zip(path: Path) -> Path:
    """The daemon and the package markers it imports (stdlib + netfilterqueue only);
    reproducible, so apply.yml restarts the daemon only when the code changes."""
    return ship.package_zip(path, _ZIP_FILES)


def daemon_vars(zip_path: Path, *, on_controller: bool, install_packages: bool,
                python: str = "/usr/bin/python3", lock: Path = LOCK) -> dict[str, Any]:
    """Extra vars of playbooks/wan/apply.yml for the daemon (besides `wan_vars`)."""
    venv = venv_dir(lock)
    return {
        "femdc_wan_zip": str(zip_path),
        "femdc_wan_venv_dir": venv,
        "femdc_wan_lock_file": str(lock),
        "femdc_wan_python": f"{venv}/bin/python",
        "femdc_venv_on_controller": on_controller,
        "femdc_install_packages": install_packages,
        "femdc_python": python,
    }
