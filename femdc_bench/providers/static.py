"""Provider `static`: hosts that already exist, reached over SSH (any machines: bare
metal, VMs, a testbed's nodes reserved by hand).

Nothing is created or deleted: `up` checks that every host answers over SSH with
/usr/bin/python3 (Ansible's ping, the one way hosts are touched: ansible.py) and
returns the Inventory; `destroy` leaves the hosts alone (teardown.destroy has already
stopped the run's services and removed its work directories on them, with the
deployment's destroy playbook). The configuration goes through EnOSlib's StaticConf,
the same class ansible.py builds inventories with.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from femdc_bench.ansible import PLAYBOOKS, AnsibleError, run_playbook
from femdc_bench.errors import ExperimentError
from femdc_bench.model import Experiment, Host, Inventory
from femdc_bench.providers.local import HOST_ROOT, ProviderError
from femdc_bench.providers.plan import Plan, PlannedHost


def key_path(key: str | None) -> str | None:
    return str(Path(key).expanduser()) if key else None


def inventory(exp: Experiment, run_id: str) -> Inventory:
    by_alias = {h.alias: h for h in exp.provider.hosts}
    hosts = []
    for site in exp.sites:
        for spec in site.hosts:
            ssh = by_alias[spec.name]
            extra: dict[str, Any] = {"femdc_device": ssh.device}
            if ssh.user != "root":
                extra["ansible_become"] = True  # the playbooks work as root (sudo)
            hosts.append(Host(alias=spec.name, address=ssh.address, site=site.name,
                              roles=spec.roles, ssh_user=ssh.user, ssh_port=ssh.port,
                              ssh_key=key_path(ssh.key),
                              workdir=str(HOST_ROOT / run_id / spec.name), extra=extra))
    return Inventory(provider="static", hosts=tuple(hosts), shared_filesystem=False)


def conf(exp: Experiment) -> Any:
    """EnOSlib's StaticConf of the hosts, finalized (offline)."""
    from enoslib.infra.enos_static.configuration import Configuration

    c = Configuration()
    for site in exp.sites:
        for spec in site.hosts:
            ssh = next(h for h in exp.provider.hosts if h.alias == spec.name)
            c.add_machine(roles=[spec.name, f"site_{site.name}", *spec.roles],
                          address=ssh.address, alias=spec.name, user=ssh.user,
                          keyfile=key_path(ssh.key), port=ssh.port)
    c.add_network(roles=["femdc"], cidr="0.0.0.0/0", gateway="0.0.0.0", dns="0.0.0.0")
    try:
        return c.finalize()
    except Exception as e:  # noqa: BLE001 - jsonschema's ValidationError
        raise ExperimentError(exp.path, "provider.hosts", "EnOSlib static configuration "
                              f"refused it: {str(e).splitlines()[0]}") from None


def plan(exp: Experiment) -> Plan:
    conf(exp)
    hosts = []
    for site in exp.sites:
        for spec in site.hosts:
            ssh = next(h for h in exp.provider.hosts if h.alias == spec.name)
            key = ssh.key or "SSH agent/ssh config"
            hosts.append(PlannedHost(spec.name, site.name, spec.roles, ssh.address,
                                     f"{ssh.user}@{ssh.address}:{ssh.port} ({key})"))
    return Plan(provider="static",
                reserve=[f"nothing reserved: {len(hosts)} existing host(s) over SSH; up "
                         "checks that each answers with /usr/bin/python3"],
                hosts=hosts,
                notes=["not checked by a dry run: that the hosts answer (up does)"])


class StaticProvider:
    """Existing hosts over SSH: checked at up, left alone at destroy."""

    def __init__(self, exp: Experiment, *, run_id: str, run_dir: Path) -> None:
        self.exp = exp
        self.run_id = run_id
        self.run_dir = run_dir
        self.state_file = run_dir / "provider" / "state.json"

    def up(self, exp: Experiment) -> Inventory:
        self.exp = exp
        conf(exp)
        inv = inventory(exp, self.run_id)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(
            {"type": "static", "hosts": [h.alias for h in inv.hosts], "up": time.time()}))
        try:
            run_playbook(PLAYBOOKS / "common" / "reach.yml", inv, run_dir=self.run_dir,
                         log=self.run_dir / "logs" / "up.log")
        except AnsibleError as e:
            raise ProviderError(f"hosts not reachable over SSH: {e}") from None
        return inv

    def exists(self) -> bool:
        return self.state_file.exists()

    def destroy(self) -> list[str]:
        """The hosts are not ours: nothing to remove (services and work directories of
        the run were removed by the deployment's destroy)."""
        if self.state_file.exists():
            self.state_file.rename(self.state_file.with_name("state.destroyed.json"))
        return []


# ------------------------------------------------------------------ the registry's entry

import typing  # noqa: E402  (this section is appended: the top is another concern's)

if typing.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from femdc_bench.model import ProviderSpec, SiteSpec, SshHostSpec


class Static:
    """provider.type static (providers/__init__.py: ProviderType)."""

    name = "static"
    docker_hosts = True

    def check(self, file: str, p: Mapping[str, Any], sites: Sequence[SiteSpec]
              ) -> ProviderSpec:
        from femdc_bench.model import ProviderSpec

        aliases = [h.name for s in sites for h in s.hosts]
        return ProviderSpec(type="static", hosts=check_hosts(file, p["hosts"], aliases))

    def plan(self, exp: Experiment) -> Plan:
        return plan(exp)

    def open(self, exp: Experiment, *, run_id: str, run_dir: Path) -> StaticProvider:
        return StaticProvider(exp, run_id=run_id, run_dir=run_dir)


def check_hosts(file: str, d: Mapping[str, Any], aliases: list[str]
                ) -> tuple[SshHostSpec, ...]:
    """provider.hosts: one entry per host of the experiment, each its own address."""
    import ipaddress

    from femdc_bench.errors import unknown
    from femdc_bench.model import SshHostSpec

    for alias in d:
        if alias not in aliases:
            raise ExperimentError(
                file, f"provider.hosts.{alias}", f"not a host of the experiment"
                f"{unknown(alias, aliases)}; hosts: {', '.join(aliases)}")
    missing = [a for a in aliases if a not in d]
    if missing:
        raise ExperimentError(
            file, "provider.hosts", f"no entry for {', '.join(missing)}: every host of the "
            "experiment needs its address (keys are aliases '<site>-<host>')")
    out, seen = [], {}
    for alias in aliases:  # in the experiment's order
        h = d[alias]
        where = f"provider.hosts.{alias}"
        try:
            address = str(ipaddress.ip_address(h["address"]))
        except ValueError:
            raise ExperimentError(
                file, f"{where}.address", "expected an IP address (services bind to it and "
                f"the WAN rules match it), got {h['address']!r}") from None
        if address in seen:
            raise ExperimentError(file, f"{where}.address", f"{address} is also "
                                  f"{seen[address]}'s: every host needs its own address")
        seen[address] = alias
        key = h.get("key")
        if key is not None and ("\n" in key or "PRIVATE KEY" in key):
            raise ExperimentError(file, f"{where}.key", "expected the path of a private key "
                                  "file, not the key itself")
        out.append(SshHostSpec(alias=alias, address=address, user=h.get("user", "root"),
                               port=h.get("port", 22), key=key,
                               device=h.get("device", "eth0")))
    return tuple(out)


PROVIDERS = {"static": Static()}
