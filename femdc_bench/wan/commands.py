"""What a WAN emulator does to one host, as data: argv lists to apply and to remove.

Both emulators (netem, and the userspace fallback for kernels without sch_netem) turn a
WanPlan into one HostCommands per host; `playbooks/wan/apply.yml` and `remove.yml` run
them over SSH. Commands are argv lists, never shell strings.

Contract of `remove`: it deletes precisely what `add` created (a run-named iptables
chain and the jump to it, a root qdisc with a run-specific handle, ...) and nothing
else, and every command of it may fail with an "already gone" message (`GONE_RE`),
which the playbooks tolerate. `apply` runs `remove` first, then `add`: applying twice
gives the same state as applying once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# stderr of a removal command whose object does not exist (any more). iptables 1.8
# (nft and legacy), tc/iproute2. "Invalid handle" is also the kernel's answer when the
# root qdisc is not ours: then ours is gone too, and the other one is left alone.
GONE_RE = (
    r"No chain/target/match by that name"
    r"|does not exist"
    r"|Bad rule \(does a matching rule exist"
    r"|Invalid handle"
    r"|Cannot find device"
    r"|Cannot delete qdisc with handle of zero"
    r"|No such file or directory"
)
_GONE = re.compile(GONE_RE)

Argv = tuple[str, ...]


def is_gone(stderr: str) -> bool:
    """True when a failed removal command only says its object is already gone."""
    return bool(_GONE.search(stderr))


@dataclass(frozen=True)
class HostCommands:
    """Everything an emulator does on one host.

    add: argv lists run in order to create the emulation (any failure is an error).
    remove: argv lists run in order to delete exactly what `add` creates; each may
        answer "already gone" (GONE_RE).
    daemon: configuration of a per-host helper process (the userspace delay daemon),
        or None when the host needs none.
    """

    host: str  # alias
    add: tuple[Argv, ...]
    remove: tuple[Argv, ...]
    daemon: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for argv in (*self.add, *self.remove):
            if not argv or not all(isinstance(a, str) and a for a in argv):
                raise ValueError(f"{self.host}: bad argv {argv!r}")

    def to_vars(self) -> dict[str, Any]:
        """The host's entry in the playbooks' `femdc_wan` extra var."""
        return {"add": [list(a) for a in self.add],
                "remove": [list(a) for a in self.remove],
                "daemon": self.daemon}


def wan_vars(cmds: dict[str, HostCommands]) -> dict[str, Any]:
    """Extra vars common to every emulator: `femdc_wan` and `femdc_wan_gone`."""
    for alias, c in cmds.items():
        if alias != c.host:
            raise ValueError(f"HostCommands for {c.host} filed under {alias}")
    return {"femdc_wan": {alias: c.to_vars() for alias, c in cmds.items()},
            "femdc_wan_gone": GONE_RE}


def htb_quantum(kbit: float) -> int:
    """rate/10 in bytes within HTB's bounds (the kernel warns and clamps outside them).

    Classes are leaves of the root with ceil = rate: they never borrow, so the quantum
    only has to be sane, and explicit, to keep the kernel quiet at 100mbit and above.
    """
    return int(min(200_000, max(1_600, kbit * 1000 / 8 / 10)))
