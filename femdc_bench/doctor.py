"""`femdc-bench doctor`: does this machine have what the local provider needs?"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _which(name: str, package: str, what: str) -> Check:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}")
                                  else None)
    return Check(what, path is not None, path or "not found",
                 f"apt-get install -y {package}")


def _file(path: str, package: str, what: str) -> Check:
    return Check(what, os.path.exists(path), path if os.path.exists(path) else "not found",
                 f"apt-get install -y {package}")


def netem_supported() -> tuple[bool, str]:
    """Create a probe qdisc on a throwaway dummy link; True when netem exists."""
    ns = f"femdc-probe-{uuid.uuid4().hex[:6]}"
    try:
        r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
        if r.returncode != 0:
            return False, f"cannot create a probe namespace: {r.stderr.strip()}"
        r = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo",
                            "root", "netem", "delay", "1ms"], capture_output=True, text=True)
        if r.returncode == 0:
            return True, "tc qdisc netem works"
        return False, r.stderr.strip() or "netem refused"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def checks() -> list[Check]:
    out = [Check("running as root", os.geteuid() == 0,
                 "uid 0" if os.geteuid() == 0 else f"uid {os.geteuid()}",
                 "run femdc-bench as root (namespaces, sshd, tc)")]
    out += [
        _which("ip", "iproute2", "iproute2 (ip netns, veth, bridge)"),
        _which("tc", "iproute2", "tc"),
        _which("sshd", "openssh-server", "OpenSSH server (sshd per host)"),
        _which("ssh", "openssh-client", "OpenSSH client"),
        _which("ssh-keygen", "openssh-client", "ssh-keygen"),
        _which("mariadbd", "mariadb-server", "MariaDB server"),
        _which("mariadb-install-db", "mariadb-server", "mariadb-install-db"),
        _which("memcached", "memcached", "memcached (Keystone cache)"),
        _which("rabbitmq-server", "rabbitmq-server", "RabbitMQ (control plane message bus)"),
        _which("ovsdb-server", "ovn-central", "OVN central (ovsdb-server, ovn-northd: Neutron)"),
        _which("ovn-northd", "ovn-central", "ovn-northd"),
        _which("ovn-sbctl", "ovn-common", "ovn-sbctl (fake compute chassis)"),
        _file("/usr/lib/galera/libgalera_smm.so", "galera-4", "Galera 4 (database: galera)"),
        _which("rsync", "rsync", "rsync (Galera state transfer)"),
        _which("stunnel", "stunnel4", "stunnel (Galera state transfer under deployment.tls)"),
        _which("influxd", "influxdb", "InfluxDB server (metrics: local)"),
        _which("start-stop-daemon", "dpkg", "start-stop-daemon (no-systemd hosts)"),
        _which("ping", "iputils-ping", "iputils ping (WAN checks: ping -U, user-to-user RTT)"),
        _which("iptables", "iptables", "iptables (userspace WAN fallback)"),
    ]
    venv_ok = os.path.exists("/usr/lib/python3/dist-packages") and subprocess.run(
        ["/usr/bin/python3", "-c", "import venv, ensurepip"], capture_output=True).returncode == 0
    out.append(Check("python3-venv (service venvs)", venv_ok,
                     "/usr/bin/python3 -m venv works" if venv_ok else "missing",
                     "apt-get install -y python3-venv python3-dev gcc"))
    if os.geteuid() == 0 and shutil.which("tc"):
        ok, detail = netem_supported()
        out.append(Check("kernel netem (tc qdisc netem)", ok, detail,
                         "no netem in this kernel: WAN emulation needs the userspace "
                         "fallback (wan.emulator: userspace)", required=False))
    return out
