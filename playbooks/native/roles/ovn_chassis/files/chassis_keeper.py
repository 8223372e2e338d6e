"""Keep one OVN chassis per fake compute host alive, as ovn-controller would.

A fake compute runs no ovn-controller, so nothing would register its chassis in the
OVN southbound database, and Neutron's ML2/OVN driver refuses to bind a port to a host
without a live chassis (PortBindingFailed). This keeper, one per compute host, does
what ovn-controller does for liveness and nothing else: it registers a Chassis
(`hostname` = the nova-compute host name, one geneve encap) and its
Chassis_Private row, then every `--interval` seconds copies SB_Global.nb_cfg into each
Chassis_Private (nb_cfg, nb_cfg_timestamp), which is how Neutron judges an OVN agent
alive. It talks to the SB database over the network, as ovn-controller does. On
SIGTERM it deletes its chassis (as ovn-controller does on a clean exit).

The SB schema makes an encap's (type, ip) unique, so the computes of one host cannot
all carry the host's address: the i-th gets 127.<last octet of the host>.<i / 256>.<i % 256>,
an address nothing is ever sent to (no ovn-controller, no tunnel is ever built).

    python3 chassis_keeper.py --db tcp:10.0.0.2:6642 --ip 10.0.0.3 --hosts h1,h2 [--interval 15]

Standard library only; runs ovn-sbctl with argument lists.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time


# ssl:... databases (deployment.tls): this host's key, certificate and the run's CA,
# which ovsdb-server requires of every client (--private-key, --certificate, --ca-cert).
SSL_ARGS: list[str] = []


def sbctl(db: str, *args: str, timeout: float = 30) -> str:
    out = subprocess.run(["ovn-sbctl", f"--db={db}", *SSL_ARGS, f"--timeout={int(timeout)}",
                          *args],
                         check=True, capture_output=True, text=True, timeout=timeout + 5)
    return out.stdout.strip()


def log(msg: str) -> None:
    print(time.strftime("%Y-%m-%d %H:%M:%S"), "chassis-keeper:", msg, file=sys.stderr,
          flush=True)


def encap_ip(host_ip: str, i: int) -> str:
    last = int(host_ip.rsplit(".", 1)[-1]) if "." in host_ip else 0
    return f"127.{last}.{i // 256}.{i % 256}"


def register(db: str, ip: str, hosts: list[str]) -> None:
    existing = set(sbctl(db, "--bare", "--columns=name", "list", "Chassis").split())
    private = set(sbctl(db, "--bare", "--columns=name", "list", "Chassis_Private").split())
    for i, h in enumerate(hosts, start=1):
        if h not in existing:
            sbctl(db, "chassis-add", h, "geneve", encap_ip(ip, i))
        sbctl(db, "set", "Chassis", h, f"hostname={h}",
              "external_ids:ovn-bridge-mappings=\"\"", "other_config:ovn-cms-options=\"\"")
        if h not in private:
            uuid = sbctl(db, "--bare", "--columns=_uuid", "find", "Chassis", f"name={h}")
            sbctl(db, "create", "Chassis_Private", f"name={h}", f"chassis={uuid}")


def refresh(db: str, hosts: list[str]) -> None:
    nb_cfg = sbctl(db, "get", "SB_Global", ".", "nb_cfg")
    now_ms = int(time.time() * 1000)
    cmd: list[str] = []
    for h in hosts:
        cmd += ["--", "set", "Chassis_Private", h, f"nb_cfg={nb_cfg}",
                f"nb_cfg_timestamp={now_ms}"]
    sbctl(db, *cmd[1:])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--ip", required=True)
    ap.add_argument("--hosts", required=True, help="comma-separated nova-compute host names")
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--private-key")
    ap.add_argument("--certificate")
    ap.add_argument("--ca-cert")
    a = ap.parse_args()
    if a.private_key:
        SSL_ARGS[:] = [f"--private-key={a.private_key}", f"--certificate={a.certificate}",
                       f"--ca-cert={a.ca_cert}"]
    hosts = [h for h in a.hosts.split(",") if h]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    registered = False
    while not stop.is_set():
        try:
            if not registered:
                register(a.db, a.ip, hosts)
                registered = True
                log(f"{len(hosts)} chassis registered at {a.db}")
            refresh(a.db, hosts)
        except (subprocess.SubprocessError, OSError) as e:  # SB away (WAN cut): retry
            detail = getattr(e, "stderr", "") or ""
            log(f"{type(e).__name__}: {str(detail).strip() or e}")
            registered = registered and not isinstance(e, FileNotFoundError)
        stop.wait(a.interval)
    if registered:
        for h in hosts:
            try:
                sbctl(a.db, "--if-exists", "chassis-del", h, timeout=5)
            except (subprocess.SubprocessError, OSError):
                pass
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
