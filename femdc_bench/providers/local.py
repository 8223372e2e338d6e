"""Provider `local`: every host is a network namespace on this machine.

Each namespace gets a veth into a per-run bridge in the root namespace, an address on
a private subnet, and its own sshd bound to that address, so that Ansible reaches it
over real SSH exactly as it reaches a testbed node.

Everything this provider creates is named from the run's short id and recorded in
``<run>/provider/state.json``; ``destroy`` removes exactly that (processes running
inside our namespaces are ours: they are ended before the namespace is deleted).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from femdc_bench.model import Experiment, Host, Inventory

log = logging.getLogger(__name__)

HOST_ROOT = Path("/var/lib/femdc-bench/runs")
SUBNET_POOL = ipaddress.IPv4Network("10.231.0.0/16")
SSHD = "/usr/sbin/sshd"
LOCK_FILE = Path("/var/lib/femdc-bench/local-provider.lock")


class ProviderError(RuntimeError):
    pass


@dataclass
class LocalHostState:
    alias: str
    site: str
    roles: list[str]
    netns: str
    veth: str
    address: str
    sshd_pid: int | None = None


@dataclass
class LocalState:
    run_id: str
    short: str
    bridge: str
    subnet: str
    gateway: str
    hosts: list[LocalHostState] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LocalState:
        d = json.loads(path.read_text())
        d["hosts"] = [LocalHostState(**h) for h in d["hosts"]]
        return cls(**d)


def short_id(run_id: str) -> str:
    return hashlib.sha1(run_id.encode()).hexdigest()[:5]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ProviderError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _del_link(name: str) -> bool:
    """Delete a link if it is there; True if this call removed it. Deleting a namespace
    takes its end of a veth pair with it and the kernel drops the peer asynchronously,
    so the link may vanish between the check and the delete: that is not an error."""
    if not _link_exists(name):
        return False
    proc = _ip("link", "del", name, check=False)
    if proc.returncode != 0 and _link_exists(name):
        raise ProviderError(f"ip link del {name}: {proc.stderr.strip()}")
    return proc.returncode == 0


def _used_networks(but: str | None = None) -> list[ipaddress.IPv4Network]:
    """The IPv4 networks of this machine's links (the root namespace's), `but` one."""
    out = json.loads(_ip("-j", "-4", "addr").stdout or "[]")
    nets = []
    for link in out:
        if link.get("ifname") == but:
            continue
        for a in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def route_device(address: str) -> str | None:
    """The link the root namespace sends `address`'s packets out of (`ip route get`)."""
    proc = _ip("-j", "route", "get", address, check=False)
    try:
        routes = json.loads(proc.stdout or "[]")
    except ValueError:
        return None
    return routes[0].get("dev") if routes else None


def check_routes(st: LocalState, device: Callable[[str], str | None] = route_device) -> None:
    """Every host's address is reached through the run's bridge. Anything else (the
    bridge lost its address: the route falls back to the default gateway) would send
    ssh, and everything after it, off this machine: an error before any packet goes."""
    for h in st.hosts:
        dev = device(h.address)
        if dev != st.bridge:
            raise ProviderError(
                f"{h.alias} ({h.address}) is routed through {dev or 'no link'}, not the "
                f"run's bridge {st.bridge}: another route or address on this machine "
                f"covers {st.subnet}")


def choose_subnet(n_hosts: int, used: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """First free subnet of SUBNET_POOL large enough for the hosts, the gateway and spare."""
    prefix = 32 - max(8, (n_hosts + 3 - 1).bit_length())
    for net in SUBNET_POOL.subnets(new_prefix=prefix):
        if not any(net.overlaps(u) for u in used):
            return net
    raise ProviderError(f"no free subnet in {SUBNET_POOL} for {n_hosts} hosts; "
                        "set provider.subnet")


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    """An exclusive lock shared by every run of this machine (`LOCK_FILE`)."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _netns_exists(name: str) -> bool:
    return name in _ip("netns", "list").stdout.split()


def _link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def _pid_alive(pid: int | None, needle: str) -> bool:
    if not pid:
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return needle in cmd


def _keygen(path: Path, comment: str) -> None:
    """An ed25519 key pair at `path` and `path`.pub unless both are there. Made under
    another name and renamed, public half first: a CLI killed while ssh-keygen wrote
    leaves no half-written key that a later `up` would take as made."""
    pub = path.with_name(path.name + ".pub")
    if path.exists() and pub.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    for f in (tmp, tmp.with_name(tmp.name + ".pub")):
        f.unlink(missing_ok=True)
    proc = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                           "-f", str(tmp)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise ProviderError(f"ssh-keygen for {path} exited {proc.returncode}: "
                            f"{(proc.stderr or proc.stdout).strip() or 'no output'}")
    os.replace(tmp.with_name(tmp.name + ".pub"), pub)
    os.replace(tmp, path)


def _wait_sshd(address: str, port: int, timeout: float = 10.0) -> None:
    """sshd answers on address:port: its banner, not only a TCP accept (anything on the
    path may accept a connection)."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            with socket.create_connection((address, port), timeout=1) as s:
                s.settimeout(max(0.5, min(2.0, deadline - time.monotonic())))
                banner = s.recv(256)
            if banner.startswith(b"SSH-"):
                return
            last = f"it answered {banner[:40]!r}, not an SSH banner"
        except OSError as e:
            last = str(e) or type(e).__name__
        if time.monotonic() > deadline:
            raise ProviderError(f"sshd on {address}:{port} did not come up in "
                                f"{timeout:.0f}s ({last})")
        time.sleep(0.1)


class LocalProvider:
    """Hosts as network namespaces with sshd, on this machine (root required)."""

    def __init__(self, *, run_id: str, run_dir: Path) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.dir = run_dir / "provider"
        self.state_file = self.dir / "state.json"
        self.key = run_dir / "ssh" / "id_ed25519"

    # ------------------------------------------------------------------ up
    def up(self, exp: Experiment) -> Inventory:
        if os.geteuid() != 0:
            raise ProviderError("provider 'local' needs root (network namespaces, sshd)")
        # Two runs starting at once would both see the same subnet free: choosing one
        # and claiming it (the bridge's address) happen under a machine-wide lock.
        # Each step below checks what is there, not what the state file says was done:
        # a CLI killed between two of them (kill -9 in `up`) leaves any prefix of them,
        # and `run --resume` finishes the rest.
        with _machine_lock():
            state = self._plan(exp)
            self._ensure_bridge(state)
        check_routes(state)
        self._ensure_key()
        for idx, h in enumerate(state.hosts):
            self._ensure_host(state, idx, h)
            state.save(self.state_file)  # record as we go: destroy knows what exists
        for h in state.hosts:
            _wait_sshd(h.address, 22)
        return self.inventory(state)

    def _plan(self, exp: Experiment) -> LocalState:
        if self.state_file.exists():
            state = LocalState.load(self.state_file)
            known = {h.alias for h in state.hosts}
            wanted = {h.name for s in exp.sites for h in s.hosts}
            if known != wanted:
                raise ProviderError(
                    f"run {self.run_id} already has hosts {sorted(known)}; the experiment "
                    f"now names {sorted(wanted)}: destroy the run first")
            return state
        short = short_id(self.run_id)
        specs = [(s.name, h) for s in exp.sites for h in s.hosts]
        if exp.provider.subnet:
            net = ipaddress.IPv4Network(exp.provider.subnet)
            clash = [u for u in _used_networks() if net.overlaps(u)]
            if clash:
                raise ProviderError(f"provider.subnet {net} overlaps {clash[0]} on this machine")
        else:
            net = choose_subnet(len(specs), _used_networks())
        addrs = list(net.hosts())
        state = LocalState(run_id=self.run_id, short=short, bridge=f"fb{short}",
                           subnet=str(net), gateway=str(addrs[0]))
        for i, (site, h) in enumerate(specs):
            state.hosts.append(LocalHostState(
                alias=h.name, site=site, roles=list(h.roles),
                netns=f"femdc-{short}-{h.name}", veth=f"fv{short}{i}",
                address=str(addrs[i + 1])))
        state.save(self.state_file)
        return state

    def _ensure_key(self) -> None:
        self.key.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.key.parent, 0o700)
        _keygen(self.key, f"femdc-bench {self.run_id}")

    def _ensure_bridge(self, st: LocalState) -> None:
        """The run's bridge, up, holding the gateway address (which claims the subnet:
        a bridge without it, left by a CLI killed in between, gets it here)."""
        if not _link_exists(st.bridge):
            _ip("link", "add", st.bridge, "type", "bridge")
        net = ipaddress.IPv4Network(st.subnet)
        held = _ip("-4", "-o", "addr", "show", "dev", st.bridge).stdout
        if f" {st.gateway}/{net.prefixlen} " not in held:
            clash = [u for u in _used_networks(but=st.bridge) if net.overlaps(u)]
            if clash:
                raise ProviderError(f"the subnet {net} of run {self.run_id} now overlaps "
                                    f"{clash[0]} on this machine: destroy the run")
            _ip("addr", "add", f"{st.gateway}/{net.prefixlen}", "dev", st.bridge)
        _ip("link", "set", st.bridge, "up")

    def _ensure_host(self, st: LocalState, idx: int, h: LocalHostState) -> None:
        prefix = ipaddress.IPv4Network(st.subnet).prefixlen
        if not _netns_exists(h.netns):
            _ip("netns", "add", h.netns)
        if _ip("-n", h.netns, "link", "show", "eth0", check=False).returncode != 0:
            # No eth0 yet, or a pair half made (its peer not yet moved or renamed):
            # deleting our end deletes the peer wherever it is; made again whole.
            _del_link(h.veth)
            peer = f"fp{st.short}{idx}"
            _ip("link", "add", h.veth, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", h.netns)
            _ip("-n", h.netns, "link", "set", peer, "name", "eth0")
        _ip("link", "set", h.veth, "master", st.bridge)
        _ip("link", "set", h.veth, "up")
        _ip("-n", h.netns, "link", "set", "lo", "up")
        _ip("-n", h.netns, "link", "set", "eth0", "up")
        if f" {h.address}/{prefix} " not in _ip("-n", h.netns, "-4", "-o", "addr", "show",
                                                  "eth0").stdout:
            _ip("-n", h.netns, "addr", "add", f"{h.address}/{prefix}", "dev", "eth0")
        Path(HOST_ROOT / self.run_id / h.alias).mkdir(parents=True, exist_ok=True)
        self._ensure_sshd(h)

    def _ensure_sshd(self, h: LocalHostState) -> None:
        hdir = self.dir / h.alias
        conf = hdir / "sshd_config"
        if _pid_alive(h.sshd_pid, str(conf)):
            return
        hdir.mkdir(parents=True, exist_ok=True)
        hostkey = hdir / "ssh_host_ed25519_key"
        _keygen(hostkey, f"femdc-bench {self.run_id} {h.alias}")
        pidfile = hdir / "sshd.pid"
        conf.write_text("\n".join([
            f"ListenAddress {h.address}",
            "Port 22",
            f"HostKey {hostkey}",
            f"PidFile {pidfile}",
            f"AuthorizedKeysFile {self.key}.pub",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "MaxSessions 64",
            "MaxStartups 64:30:128",
            "Subsystem sftp internal-sftp",
            "",
        ]))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        proc = subprocess.run(["ip", "netns", "exec", h.netns, SSHD, "-f", str(conf),
                               "-E", str(hdir / "sshd.log")], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ProviderError(f"sshd for {h.alias} did not start: {proc.stderr.strip()}")
        for _ in range(50):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.05)
        h.sshd_pid = int(pidfile.read_text().strip())

    # ------------------------------------------------------------------ inventory
    def inventory(self, state: LocalState | None = None) -> Inventory:
        state = state or LocalState.load(self.state_file)
        hosts = tuple(
            Host(alias=h.alias, address=h.address, site=h.site, roles=tuple(h.roles),
                 ssh_key=str(self.key), workdir=str(HOST_ROOT / self.run_id / h.alias),
                 extra={"femdc_supervisor": "daemon", "femdc_netns": h.netns})
            for h in state.hosts)
        return Inventory(provider="local", hosts=hosts, shared_filesystem=True)

    def exists(self) -> bool:
        return self.state_file.exists()

    # ------------------------------------------------------------------ destroy
    def destroy(self) -> list[str]:
        """Remove every namespace, link, process and directory this run created."""
        if not self.state_file.exists():
            return []
        st = LocalState.load(self.state_file)
        removed: list[str] = []
        for h in st.hosts:
            if _netns_exists(h.netns):
                n = _kill_netns_processes(h.netns)
                if n:
                    removed.append(f"{n} process(es) in {h.netns}")
                _ip("netns", "del", h.netns)
                removed.append(f"namespace {h.netns}")
            if _del_link(h.veth):
                removed.append(f"veth {h.veth}")
        if _del_link(st.bridge):
            removed.append(f"bridge {st.bridge}")
        hostdir = HOST_ROOT / self.run_id
        if hostdir.exists():
            shutil.rmtree(hostdir)
            removed.append(f"host directories {hostdir}")
        self.state_file.rename(self.state_file.with_name("state.destroyed.json"))
        return removed


def _kill_netns_processes(netns: str, timeout: float = 10.0) -> int:
    """End every process inside one of our namespaces: SIGTERM, then SIGKILL."""
    pids = [int(p) for p in _ip("netns", "pids", netns, check=False).stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if not alive:
            break
        time.sleep(0.1)
    else:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return len(pids)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


# ------------------------------------------------------------------ the registry's entry

import typing  # noqa: E402  (this section is appended: the top is another concern's)

if typing.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from femdc_bench.model import ProviderSpec, SiteSpec
    from femdc_bench.providers.plan import Plan


class Local:
    """provider.type local (providers/__init__.py: ProviderType)."""

    name = "local"
    docker_hosts = False

    def check(self, file: str, p: Mapping[str, Any], sites: Sequence[SiteSpec]
              ) -> ProviderSpec:
        """provider.subnet: an IPv4 network with room for every host."""
        from femdc_bench.errors import ExperimentError
        from femdc_bench.model import ProviderSpec

        n_hosts = sum(len(s.hosts) for s in sites)
        if "subnet" in p:
            try:
                net = ipaddress.IPv4Network(p["subnet"])
            except ValueError:
                raise ExperimentError(file, "provider.subnet",
                                      f"expected an IPv4 network like '10.231.0.0/24', "
                                      f"got {p['subnet']!r}") from None
            if net.num_addresses - 3 < n_hosts:
                raise ExperimentError(file, "provider.subnet",
                                      f"{net} has room for {net.num_addresses - 3} hosts, "
                                      f"the experiment has {n_hosts}")
        return ProviderSpec(type="local", subnet=p.get("subnet"))

    def plan(self, exp: Experiment) -> Plan:
        from femdc_bench.providers.plan import local_plan

        return local_plan(exp)

    def open(self, exp: Experiment, *, run_id: str, run_dir: Path) -> LocalProvider:
        return LocalProvider(run_id=run_id, run_dir=run_dir)


PROVIDERS = {"local": Local()}
