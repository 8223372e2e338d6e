"""Put a WAN plan on the hosts, take it off, measure it: the Ansible side of wan/.

The emulators (netem.py, userspace.py) are pure: plan -> HostCommands. This module
chooses one, and runs playbooks/wan/{probe,apply,remove,check}.yml over SSH.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from femdc_bench.ansible import PLAYBOOKS, run_playbook
from femdc_bench.model import Inventory
from femdc_bench.wan import netem, userspace
from femdc_bench.wan.commands import HostCommands, wan_vars
from femdc_bench.wan.plan import HostRules, WanPlan

EMULATORS = ("netem", "userspace")


class EmulationError(RuntimeError):
    pass


def probe(inv: Inventory, *, run_dir: Path, log: Path) -> dict[str, dict[str, Any]]:
    """Ask every host what it supports: {alias: {"netem": bool, "nfqueue": bool, ...}}."""
    out_dir = run_dir / "wan" / "probe"
    out_dir.mkdir(parents=True, exist_ok=True)
    run_playbook(PLAYBOOKS / "wan" / "probe.yml", inv, run_dir=run_dir, log=log,
                 extra_vars={"femdc_wan_out_dir": str(out_dir)})
    return {p.stem: json.loads(p.read_text()) for p in out_dir.glob("*.json")}


def choose(requested: str, inv: Inventory, *, run_dir: Path, log: Path) -> str:
    """netem where every host has it; the userspace fallback otherwise; never nothing."""
    found = probe(inv, run_dir=run_dir, log=log)
    missing = [h.alias for h in inv.hosts if h.alias not in found]
    if missing:
        raise EmulationError(f"WAN probe did not answer on {', '.join(missing)}")
    netem_ok = all(f["netem"] for f in found.values())
    user_ok = all(f["nfqueue"] for f in found.values())
    if requested == "netem" and not netem_ok:
        bad = sorted(a for a, f in found.items() if not f["netem"])
        raise EmulationError(f"wan.emulator is netem but these hosts have no netem: "
                             f"{', '.join(bad)} ({found[bad[0]].get('netem_error', '')}); "
                             "use wan.emulator: userspace or auto")
    if requested == "userspace" and not user_ok:
        bad = sorted(a for a, f in found.items() if not f["nfqueue"])
        raise EmulationError(f"wan.emulator is userspace but iptables NFQUEUE does not work "
                             f"on {', '.join(bad)}")
    if requested in EMULATORS:
        return requested
    if netem_ok:
        return "netem"
    if user_ok:
        return "userspace"
    raise EmulationError("no WAN emulation possible: the hosts have neither tc netem nor "
                         "iptables NFQUEUE (see `femdc-bench doctor`)")


def _commands(plan: WanPlan, emulator: str, tag: str) -> dict[str, HostCommands]:
    if emulator == "netem":
        return netem.commands(plan, tag)
    if emulator == "userspace":
        return userspace.commands(plan, tag)
    raise ValueError(f"unknown emulator {emulator!r}")


def apply(plan: WanPlan, *, emulator: str, tag: str, inv: Inventory, run_dir: Path, log: Path,
          on_task: Callable[[str], None] | None = None) -> None:
    """Replace whatever emulation of ours is on the hosts by `plan`."""
    cmds = _commands(plan, emulator, tag)
    # A host may have carried the other emulator's rules (emulator changed): remove both.
    other = "userspace" if emulator == "netem" else "netem"
    stale = _commands(_empty(plan), other, tag)
    merged = {a: HostCommands(host=a, add=c.add, remove=stale[a].remove + c.remove,
                              daemon=c.daemon) for a, c in cmds.items()}
    extra = wan_vars(merged)
    if emulator == "userspace":
        zip_path = userspace.build_daemon_zip(run_dir / "tmp" / "femdc_wan.zip")
        extra.update(userspace.daemon_vars(zip_path, on_controller=inv.shared_filesystem,
                                           install_packages=inv.provider != "local"))
    run_playbook(PLAYBOOKS / "wan" / "apply.yml", inv, run_dir=run_dir, log=log,
                 extra_vars=extra, on_task=on_task)


def remove(inv: Inventory, *, tag: str, run_dir: Path, log: Path) -> None:
    """Remove both emulators' rules, qdiscs and daemons of this run (only ours)."""
    empty = WanPlan(hosts=tuple(HostRules(host=h.alias, site=h.site, address=h.address,
                                          device=str(h.extra.get("femdc_device", "eth0")),
                                          rules=()) for h in inv.hosts))
    a, b = netem.commands(empty, tag), userspace.commands(empty, tag)
    merged = {h: HostCommands(host=h, add=(), remove=a[h].remove + b[h].remove, daemon=None)
              for h in a}
    run_playbook(PLAYBOOKS / "wan" / "remove.yml", inv, run_dir=run_dir, log=log,
                 extra_vars=wan_vars(merged))


def cut_commands(inv: Inventory, site: str, tag: str, *, on: bool) -> dict[str, HostCommands]:
    """A partition of `site`: on its hosts, a run-named filter chain dropping everything
    to and from every other site's host (100 % loss both ways); `on=False` removes it."""
    chain = f"FEMDC-{tag}-CUT"
    ipt = ("iptables", "-w")
    remove = (ipt + ("-D", "INPUT", "-j", chain), ipt + ("-D", "OUTPUT", "-j", chain),
              ipt + ("-F", chain), ipt + ("-X", chain))
    others = [h.address for h in inv.hosts if h.site != site]
    out = {}
    for h in inv.hosts:
        if h.site != site:
            continue
        add: list[tuple[str, ...]] = []
        if on:
            add.append(ipt + ("-N", chain))
            for addr in others:
                add.append(ipt + ("-A", chain, "-s", addr, "-j", "DROP"))
                add.append(ipt + ("-A", chain, "-d", addr, "-j", "DROP"))
            add += [ipt + ("-I", "INPUT", "-j", chain), ipt + ("-I", "OUTPUT", "-j", chain)]
        out[h.alias] = HostCommands(host=h.alias, add=tuple(add), remove=remove)
    return out


def cut(inv: Inventory, site: str, *, on: bool, tag: str, run_dir: Path, log: Path) -> None:
    run_playbook(PLAYBOOKS / "wan" / "cut.yml", inv, run_dir=run_dir, log=log,
                 extra_vars=wan_vars(cut_commands(inv, site, tag, on=on)))


def _empty(plan: WanPlan) -> WanPlan:
    return WanPlan(hosts=tuple(HostRules(host=h.host, site=h.site, address=h.address,
                                         device=h.device, rules=()) for h in plan.hosts))


def measure(inv: Inventory, probes: dict[str, str], *, count: int, run_dir: Path,
            out_dir: Path, log: Path) -> dict[str, str]:
    """ping -U from each site's probing host to the others; raw output per probing host."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("ping-*.txt"):
        old.unlink()
    addresses = {site: inv.host(alias).address for site, alias in probes.items()}
    targets = {alias: [a for s, a in addresses.items() if s != site]
               for site, alias in probes.items()}
    run_playbook(PLAYBOOKS / "wan" / "check.yml", inv, run_dir=run_dir, log=log,
                 extra_vars={"femdc_wan_probes": targets, "femdc_wan_count": count,
                             "femdc_wan_out_dir": str(out_dir)})
    return {alias: (out_dir / f"ping-{alias}.txt").read_text()
            for alias in probes.values() if (out_dir / f"ping-{alias}.txt").exists()}
