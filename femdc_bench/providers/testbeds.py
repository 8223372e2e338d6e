"""Providers `g5k`, `vagrant` and `chameleon`: hosts reserved through EnOSlib 10.9.0.

Each experiment host is one machine of EnOSlib's configuration (one node, one VM, one
instance), whose EnOSlib roles are its alias (`<site>-<host>`), `site_<site>` and its
roles: the alias role is how a machine EnOSlib returns is matched back to the host.

The configuration is built and checked by EnOSlib's own classes (`.finalize()`) without
the network (`conf(exp)`): `up --dry-run` and every `up` start there, and EnOSlib's
refusals become one-line ExperimentErrors naming provider.*. Only `up` and `destroy`
reach the testbed (OAR jobs, Vagrant VMs, Blazar leases and Nova instances).

Offline, Grid'5000 needs the site of every cluster (`provider.clusters` names it): a
ClusterConfiguration without `site` asks the API which site the cluster is on, and
EnOSlib's add_machine asks the API whether the cluster is "exotic" (~45 s of retries
offline). The offline configuration therefore adds machines without that question;
`up` asks it (the job must then carry the `exotic` type).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from femdc_bench.errors import ExperimentError
from femdc_bench.model import Experiment, Host, HostSpec, Inventory, flavour_for
from femdc_bench.providers.local import HOST_ROOT, ProviderError, short_id
from femdc_bench.providers.plan import Plan, PlannedHost

log = logging.getLogger(__name__)

# Host vars of EnOSlib's hosts that say how to reach them (SSH jump hosts: Grid'5000 from
# outside, Chameleon's gateway instance): kept in our Host.extra, the inventory that
# ansible.py writes through EnOSlib turns them into SSH options again.
GATEWAY_KEYS = ("gateway", "gateway_user", "gateway_port", "internal_gateway",
                "internal_gateway_user", "internal_gateway_port", "forward_agent")
NETWORK_ROLE = "femdc"  # the EnOSlib network role of the experiment network (vagrant)
# What `pip install` brings each provider's live path (the configurations need nothing).
INSTALL_HINT = {
    "vagrant": "the Vagrant provider needs python-vagrant (pip install 'enoslib[vagrant]"
               "==10.9.0' in femdc-bench's venv) and the vagrant command",
    "chameleon": "the Chameleon providers need EnOSlib's chameleon extra "
                 "(enoslib[chameleon]==10.9.0: python-blazarclient, python-glanceclient, ...)",
}


def machine_roles(site: str, host: HostSpec) -> list[str]:
    """The EnOSlib roles of one experiment host."""
    return [host.name, f"site_{site}", *host.roles]


def to_inventory(exp: Experiment, roles: Any, *, run_id: str,
                 address_of: Callable[[Any], str]) -> Inventory:
    """EnOSlib Roles -> our Inventory: one EnOSlib host per alias role, its address on
    the experiment network from `address_of` (services bind to it, WAN rules match it:
    an IP address), SSH user/port/key as EnOSlib gives them, jump hosts kept."""
    hosts = []
    for site in exp.sites:
        for spec in site.hosts:
            found = list(roles[spec.name]) if spec.name in roles else []
            if len(found) != 1:
                raise ProviderError(f"EnOSlib returned {len(found)} machines with role "
                                    f"{spec.name!r}; expected one per host")
            eh = found[0]
            extra = {k: v for k, v in eh.extra.items() if k in GATEWAY_KEYS}
            if (eh.user or "root") != "root":
                extra["ansible_become"] = True  # the playbooks work as root (sudo)
            hosts.append(Host(
                alias=spec.name, address=address_of(eh), site=site.name, roles=spec.roles,
                ssh_user=eh.user or "root", ssh_port=int(eh.port or 22), ssh_key=eh.keyfile,
                workdir=str(HOST_ROOT / run_id / spec.name),
                extra=extra))
    return Inventory(provider=exp.provider.type, hosts=tuple(hosts), shared_filesystem=False)


def device_of(h: Any, address: str) -> str | None:
    """The interface of an EnOSlib host (after enoslib.sync_info) that holds `address`:
    the WAN rules go on it (`femdc_device`; eth0 is only the local namespaces')."""
    for dev in sorted(h.net_devices, key=lambda d: d.name):
        if any(str(a.ip.ip) == address for a in dev.addresses):
            return str(dev.name)
    return None


def with_devices(inv: Inventory, roles: Any) -> Inventory:
    """Each host's `femdc_device` from the EnOSlib host of its alias (synced)."""
    hosts = []
    for h in inv.hosts:
        dev = device_of(list(roles[h.alias])[0], h.address)
        if dev is None:
            raise ProviderError(f"{h.alias}: no interface holds {h.address} (enoslib "
                                "sync_info): the WAN rules would have nowhere to go")
        hosts.append(dataclasses.replace(h, extra={**h.extra, "femdc_device": dev}))
    return dataclasses.replace(inv, hosts=tuple(hosts))


def resolve_ipv4(name: str) -> str:
    """An address for services and WAN rules: the name's IPv4 address."""
    try:
        return str(socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0])
    except OSError as e:
        raise ProviderError(f"cannot resolve {name}: {e}") from None


# ------------------------------------------------------------------ configurations

# EnOSlib's configuration key -> ours, for its errors
_KEYS = {"walltime": "walltime", "reservation": "reservation", "queue": "queue",
         "job_name": "job_name", "env_name": "env_name", "job_type": "env_name",
         "box": "box", "backend": "backend", "flavour": "flavours", "flavour_desc": "flavours",
         "image": "image", "key_name": "key_name", "user": "user", "rc_file": "rc_file",
         "lease_name": "lease_name", "cluster": "clusters", "site": "clusters",
         "cidr": "cidr"}


def enos_error(exp: Experiment, exc: Exception, default: str) -> ExperimentError:
    """One of EnOSlib's configuration errors as our one-line error naming provider.*."""
    import jsonschema

    key = default
    if isinstance(exc, jsonschema.ValidationError):
        for part in reversed([str(p) for p in exc.absolute_path]):
            if part in _KEYS:
                key = _KEYS[part]
                break
        text = exc.message
    else:
        text = str(exc) or type(exc).__name__
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return ExperimentError(exp.path, f"provider.{key}",
                           f"EnOSlib {exp.provider.type} configuration refused it: {first}")


def _add_g5k_machine(conf: Any, machine: Any, online: bool) -> None:
    if online:  # asks the API whether the cluster is exotic (adds the job type)
        conf.add_machine_conf(machine)
        return
    # Offline: what Configuration.add_machine_conf does but the exotic question.
    conf._set_default_primary_network(machine)
    conf.machines.append(machine)


def g5k_conf(exp: Experiment, *, online: bool = False) -> Any:
    """G5kConf: one OAR job, one machine group of one node per host, on the cluster of
    its site; `env_name` deploys that environment (no env_name: the standard one)."""
    from enoslib.infra.enos_g5k.configuration import ClusterConfiguration, Configuration

    spec = exp.provider.g5k
    assert spec is not None
    conf = Configuration()
    conf.job_name = spec.job_name
    conf.walltime = spec.walltime
    conf.queue = spec.queue
    if spec.reservation:
        conf.reservation = spec.reservation
    if spec.env_name:
        conf.env_name = spec.env_name
        conf.job_type = ["deploy"]
    for site in exp.sites:
        g5k_site, cluster = spec.cluster_of(site.name)
        for h in site.hosts:
            machine = ClusterConfiguration(roles=machine_roles(site.name, h), cluster=cluster,
                                           site=g5k_site, nodes=1)
            _add_g5k_machine(conf, machine, online)
    return conf


def vagrant_conf(exp: Experiment, *, name_prefix: str) -> Any:
    """VagrantConf: one VM per host, named after its alias, flavour by role; one
    private network (provider.cidr) between them, the experiment network."""
    from enoslib.infra.enos_vagrant.configuration import Configuration

    spec = exp.provider.vagrant
    assert spec is not None
    conf = Configuration()
    conf.backend, conf.box, conf.user, conf.name_prefix = spec.backend, spec.box, "root", \
        name_prefix
    for site in exp.sites:
        for h in site.hosts:
            flavour = flavour_for(spec.flavours, h.name, h.roles)
            try:
                conf.add_machine(roles=machine_roles(site.name, h), flavour=flavour, number=1,
                                 backend=spec.backend, box=spec.box, user="root",
                                 name_prefix=h.name)
            except KeyError:
                from enoslib.infra.enos_vagrant.constants import FLAVOURS

                raise ExperimentError(exp.path, "provider.flavours", f"{flavour!r} is not "
                                      "one of EnOSlib's Vagrant flavours ("
                                      f"{', '.join(FLAVOURS)})") from None
    conf.add_network(roles=[NETWORK_ROLE], cidr=spec.cidr)
    return conf


def chameleon_conf(exp: Experiment, *, rc_file: str, prefix: str) -> Any:
    """Chameleon KVM (Nova instances) or bare metal (a Blazar lease of node types): one
    machine per host, flavour (KVM) or node type (bare metal) by role."""
    spec = exp.provider.chameleon
    assert spec is not None
    if spec.kind == "kvm":
        from enoslib.infra.enos_chameleonkvm.configuration import Configuration
    else:
        from enoslib.infra.enos_chameleonbaremetal.configuration import (  # type: ignore[assignment]
            Configuration,
        )
    conf = Configuration()
    conf.key_name, conf.image, conf.user, conf.rc_file = spec.key_name, spec.image, \
        spec.user, rc_file
    conf.gateway_user = spec.user
    conf.prefix = prefix
    if spec.kind == "baremetal":
        conf.lease_name, conf.walltime = spec.lease_name, spec.walltime
    for site in exp.sites:
        for h in site.hosts:
            conf.add_machine(roles=machine_roles(site.name, h), number=1,
                             flavour=flavour_for(spec.flavours, h.name, h.roles))
    conf.networks = [NETWORK_ROLE]
    return conf


def conf(exp: Experiment, *, run_id: str = "dry-run", online: bool = False,
         rc_file: str = "<OS_* environment>") -> Any:
    """The provider's EnOSlib configuration, finalized (validated by EnOSlib)."""
    kind = exp.provider.type
    try:
        if kind == "g5k":
            c = g5k_conf(exp, online=online)
            default = "walltime"
        elif kind == "vagrant":
            c = vagrant_conf(exp, name_prefix=f"femdc-{short_id(run_id)}")
            default = "flavours"
        elif kind == "chameleon":
            c = chameleon_conf(exp, rc_file=rc_file, prefix=f"femdc-{short_id(run_id)}")
            default = "flavours"
        else:
            raise ValueError(f"provider {kind!r} is not an EnOSlib testbed")
        return c.finalize()
    except ExperimentError:
        raise
    except ValueError as e:
        if kind not in ("g5k", "vagrant", "chameleon"):
            raise
        raise enos_error(exp, e, default) from None
    except Exception as e:  # noqa: BLE001 - jsonschema's and EnOSlib's own errors
        import jsonschema

        if isinstance(e, jsonschema.ValidationError | KeyError | TypeError):
            raise enos_error(exp, e, default) from None
        raise


# ------------------------------------------------------------------ dry run


def plan(exp: Experiment) -> Plan:
    c = conf(exp)  # EnOSlib's check, offline
    kind = exp.provider.type
    hosts: list[PlannedHost] = []
    reserve: list[str] = []
    notes: list[str] = []
    if kind == "g5k":
        g = exp.provider.g5k
        assert g is not None
        by_site: dict[str, list[str]] = {}
        for name, g5k_site, cluster in g.placement:
            n = len(exp.site(name).hosts)
            by_site.setdefault(g5k_site, []).append(f"{n} {cluster} node(s) for {name}")
        when = f"at {g.reservation}" if g.reservation else "as soon as possible"
        reserve.append(f"OAR job {g.job_name!r}, walltime {g.walltime}, queue {g.queue}, "
                       f"{when}; job types {', '.join(c.job_type)}")
        for g5k_site, parts in by_site.items():
            reserve.append(f"  {g5k_site}: {', '.join(parts)}")
        reserve.append(f"  deploy environment {g.env_name}" if g.env_name else
                       "  no deployment: the nodes' standard environment (root via sudo-g5k)")
        for s in exp.sites:
            g5k_site, cluster = g.cluster_of(s.name)
            for h in s.hosts:
                hosts.append(PlannedHost(h.name, s.name, h.roles,
                                         f"<{cluster}-N.{g5k_site}.grid5000.fr>",
                                         f"{cluster} node ({g5k_site})"))
        notes.append("not checked offline: that each cluster exists on its site and has "
                     "free nodes, exotic clusters (up adds the job type)")
    elif kind == "vagrant":
        v = exp.provider.vagrant
        assert v is not None
        reserve.append(f"{len(c.machines)} Vagrant VM(s), {v.backend}, box {v.box}, "
                       f"network {v.cidr}")
        for m in c.machines:
            alias = m.name_prefix
            spec = next(h for s in exp.sites for h in s.hosts if h.name == alias)
            site = next(s.name for s in exp.sites if spec in s.hosts)
            flavour = flavour_for(v.flavours, alias, spec.roles)
            hosts.append(PlannedHost(alias, site, spec.roles, f"<address on {v.cidr}>",
                                     f"VM {flavour} ({m.flavour_desc['core']} vCPU, "
                                     f"{m.flavour_desc['mem']} MB)"))
        notes.append("not checked offline: the box exists for the backend, host resources")
    else:
        ch = exp.provider.chameleon
        assert ch is not None
        if ch.kind == "baremetal":
            reserve.append(f"Blazar lease {ch.lease_name!r} for {ch.walltime}, then bare-metal "
                           f"nodes, image {ch.image}, key pair {ch.key_name}")
        else:
            reserve.append(f"KVM instances, image {ch.image}, key pair {ch.key_name}")
        reserve.append("  credentials: " + (ch.rc_file or "the OS_* environment"))
        for s in exp.sites:
            for h in s.hosts:
                what = "node type" if ch.kind == "baremetal" else "flavour"
                hosts.append(PlannedHost(h.name, s.name, h.roles, "<fixed IP, via gateway>",
                                         f"{what} {flavour_for(ch.flavours, h.name, h.roles)}"))
        notes.append("not checked offline: flavour/node type and image names, quotas")
    return Plan(provider=kind, reserve=reserve, hosts=hosts, notes=notes)


# ------------------------------------------------------------------ provider


class TestbedProvider:
    """Hosts of a testbed through EnOSlib. `<run>/provider/state.json` is written before
    anything is reserved, so that `destroy` knows a job, lease or VM may exist."""

    def __init__(self, exp: Experiment, *, run_id: str, run_dir: Path) -> None:
        self.exp = exp
        self.kind = exp.provider.type
        self.run_id = run_id
        self.run_dir = run_dir
        self.dir = run_dir / "provider"
        self.state_file = self.dir / "state.json"
        self.inventory_file = self.dir / "inventory.json"

    def exists(self) -> bool:
        return self.state_file.exists()

    def _save_state(self, **kw: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        state.update(kw)
        self.state_file.write_text(json.dumps(state, indent=2))

    @contextlib.contextmanager
    def _enoslib(self, online: bool) -> Iterator[Any]:
        """The finalized configuration and the EnOSlib provider built on it, in the
        directory the provider needs (Vagrant writes its Vagrantfile to the cwd)."""
        with self._rc_file() as rc:
            c = conf(self.exp, run_id=self.run_id, online=online, rc_file=rc)
            try:
                if self.kind == "g5k":
                    from enoslib.infra.enos_g5k.provider import G5k as Cls
                elif self.kind == "vagrant":
                    from enoslib.infra.enos_vagrant.provider import (  # type: ignore[assignment]
                        Enos_vagrant as Cls,
                    )
                elif self.exp.provider.chameleon and self.exp.provider.chameleon.kind == "kvm":
                    from enoslib.infra.enos_chameleonkvm.provider import (  # type: ignore[assignment]
                        Chameleonkvm as Cls,
                    )
                else:
                    from enoslib.infra.enos_chameleonbaremetal.provider import (  # type: ignore[assignment]
                        Chameleonbaremetal as Cls,
                    )
            except ImportError as e:
                raise ProviderError(f"{INSTALL_HINT.get(self.kind, self.kind)} ({e})") from None
            cwd = os.getcwd()
            # Vagrant names libvirt domains after this directory: one name per run.
            work = self.dir / f"femdc-{short_id(self.run_id)}"
            work.mkdir(parents=True, exist_ok=True)
            os.chdir(work)
            try:
                yield Cls(c)
            finally:
                os.chdir(cwd)

    @contextlib.contextmanager
    def _rc_file(self) -> Iterator[str]:
        """Chameleon: provider.rc_file, or a 0600 file made from the OS_* environment for
        the time of the call (EnOSlib reads credentials from a file only)."""
        ch = self.exp.provider.chameleon
        if ch is None:
            yield ""
            return
        if ch.rc_file:
            path = Path(ch.rc_file).expanduser()
            if not path.is_file():
                raise ProviderError(f"provider.rc_file {ch.rc_file}: no such file")
            yield str(path)
            return
        env = {k: v for k, v in os.environ.items() if k.startswith("OS_")}
        if "OS_AUTH_URL" not in env:
            raise ProviderError("Chameleon credentials: set provider.rc_file or source your "
                                "project's OpenStack RC file (OS_AUTH_URL is not set)")
        tmp = self.run_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        path = tmp / "openrc.sh"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(f"export {k}={v}\n" for k, v in sorted(env.items()))
        try:
            yield str(path)
        finally:
            path.unlink(missing_ok=True)

    def up(self, exp: Experiment) -> Inventory:
        self.exp = exp
        conf(exp, run_id=self.run_id)  # EnOSlib's offline check, before anything exists
        self._save_state(type=self.kind, requested=time.time())
        import enoslib as en

        with self._enoslib(online=True) as provider:
            roles, networks = provider.init()
            # every host's addresses and interfaces (Ansible facts, over SSH)
            roles = en.sync_info(roles, networks)
            if self.kind == "vagrant":
                net = networks[NETWORK_ROLE]

                def address_of(h: Any) -> str:
                    found = h.filter_addresses(net)
                    if not found:
                        raise ProviderError(f"{h.alias}: no address on {NETWORK_ROLE}")
                    return str(found[0].ip.ip)
            elif self.kind == "g5k":
                # the node's IPv4 address on the production network, from its facts (its
                # FQDN does not resolve outside Grid'5000)
                prod = [n for n in networks["prod"] if n.network.version == 4]

                def address_of(h: Any) -> str:
                    found = h.filter_addresses(prod)
                    return str(found[0].ip.ip) if found else resolve_ipv4(h.address)
            else:
                def address_of(h: Any) -> str:
                    return str(h.address)
        inv = with_devices(to_inventory(exp, roles, run_id=self.run_id, address_of=address_of),
                           roles)
        self._save_state(up=time.time())
        return inv

    def destroy(self) -> list[str]:
        """Delete the job, the lease or instances, or the VMs."""
        if not self.state_file.exists():
            return []
        with self._enoslib(online=False) as provider:
            provider.destroy(wait=True)
        self.state_file.rename(self.state_file.with_name("state.destroyed.json"))
        what = {"g5k": f"Grid'5000 job(s) {self.exp.provider.g5k.job_name!r}"
                if self.exp.provider.g5k else "Grid'5000 job",
                "vagrant": "Vagrant VMs", "chameleon": "Chameleon lease/instances"}
        return [what.get(self.kind, self.kind)]


# ------------------------------------------------------------------ the registry's entries

import typing  # noqa: E402  (this section is appended: the top is another concern's)

if typing.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from femdc_bench.model import G5kSpec, ProviderSpec, SiteSpec


class Testbed:
    """provider.type g5k, vagrant or chameleon (providers/__init__.py: ProviderType):
    the checks EnOSlib's configuration classes leave to us (sites and hosts of the
    experiment, addresses, dates); EnOSlib checks the rest offline (`plan`, `up`)."""

    docker_hosts = True

    def __init__(self, name: str) -> None:
        self.name = name

    def check(self, file: str, p: Mapping[str, Any], sites: Sequence[SiteSpec]
              ) -> ProviderSpec:
        from femdc_bench.model import ChameleonSpec, ProviderSpec, VagrantSpec

        names = [s.name for s in sites]
        aliases = [h.name for s in sites for h in s.hosts]
        if self.name == "g5k":
            return ProviderSpec(type="g5k", g5k=check_g5k(file, p, names))
        flavours = check_flavours(file, p.get("flavours", {"default": "medium"}), aliases)
        if self.name == "vagrant":
            import ipaddress

            cidr = p.get("cidr", "192.168.42.0/24")
            try:
                net = ipaddress.IPv4Network(cidr)
            except ValueError:
                raise ExperimentError(file, "provider.cidr", "expected an IPv4 network like "
                                      f"'192.168.42.0/24', got {cidr!r}") from None
            # EnOSlib's Vagrant provider gives VMs the addresses of the network but its
            # first and last ten.
            if net.num_addresses - 20 < len(aliases):
                raise ExperimentError(file, "provider.cidr",
                                      f"{net} has room for {max(0, net.num_addresses - 20)} "
                                      "VMs (EnOSlib leaves out its first and last 10 "
                                      f"addresses), the experiment has {len(aliases)}")
            return ProviderSpec(type="vagrant", vagrant=VagrantSpec(
                backend=p.get("backend", "libvirt"), box=p.get("box", "generic/debian12"),
                flavours=flavours, cidr=str(net)))
        if p["kind"] == "kvm":
            for key in ("lease_name", "walltime"):
                if key in p:
                    raise ExperimentError(file, f"provider.{key}", "only with kind "
                                          "'baremetal' (KVM instances are not leased)")
        return ProviderSpec(type="chameleon", chameleon=ChameleonSpec(
            kind=p["kind"], image=p["image"], key_name=p["key_name"], flavours=flavours,
            rc_file=p.get("rc_file"), user=p.get("user", "cc"),
            lease_name=p.get("lease_name", "femdc-bench"),
            walltime=p.get("walltime", "02:00:00")))

    def plan(self, exp: Experiment) -> Plan:
        return plan(exp)

    def open(self, exp: Experiment, *, run_id: str, run_dir: Path) -> TestbedProvider:
        return TestbedProvider(exp, run_id=run_id, run_dir=run_dir)


def check_g5k(file: str, p: Mapping[str, Any], names: list[str]) -> G5kSpec:
    """provider.reservation a real date; provider.clusters: every site placed (keys are
    site names, ranges or patterns; the first key that names a site places it)."""
    import datetime
    import fnmatch

    from femdc_bench.errors import unknown
    from femdc_bench.model import G5kSpec
    from femdc_bench.units import expand_range

    if "reservation" in p:
        try:
            datetime.datetime.strptime(p["reservation"], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise ExperimentError(file, "provider.reservation", "expected a real date like "
                                  f"'2026-12-24 19:00:00', got {p['reservation']!r}") from None
    placement: dict[str, tuple[str, str]] = {}
    for pattern, where in p["clusters"].items():
        g5k_site, cluster = (where.split("/") if isinstance(where, str)
                             else (where["site"], where["cluster"]))
        try:
            matched = [n for c in expand_range(pattern) for n in fnmatch.filter(names, c)]
        except ValueError as e:
            raise ExperimentError(file, f"provider.clusters.{pattern}", str(e)) from None
        if not matched:
            raise ExperimentError(file, f"provider.clusters.{pattern}", "matches no site"
                                  f"{unknown(pattern, names)}; sites: {', '.join(names)}")
        for n in matched:
            placement.setdefault(n, (g5k_site, cluster))  # the first key that names it
    missing = [n for n in names if n not in placement]
    if missing:
        raise ExperimentError(file, "provider.clusters", f"no cluster for site(s) "
                              f"{', '.join(missing)} (keys are site names or patterns "
                              "like 'edge*')")
    return G5kSpec(job_name=p.get("job_name", "femdc-bench"), walltime=p["walltime"],
                   placement=tuple((n, *placement[n]) for n in names),
                   queue=p.get("queue", "default"), reservation=p.get("reservation"),
                   env_name=p.get("env_name"))


def check_flavours(file: str, d: Mapping[str, str], aliases: list[str]
                   ) -> tuple[tuple[str, str], ...]:
    """provider.flavours: keys 'default', a role or a host alias."""
    from femdc_bench.errors import unknown
    from femdc_bench.model import ROLES

    known = ["default", *ROLES, *aliases]
    for key in d:
        if key not in known:
            raise ExperimentError(
                file, f"provider.flavours.{key}", f"expected 'default', a role ("
                f"{', '.join(ROLES)}) or a host alias{unknown(key, known)}")
    return tuple(d.items())


PROVIDERS = {name: Testbed(name) for name in ("g5k", "vagrant", "chameleon")}
