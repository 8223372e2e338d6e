#!/usr/bin/python3
"""Wait until a DevStack region has its nova-computes up and mapped (standard library).

    region_computes.py [--discover] REGION EXPECTED TIMEOUT_S [VENV]

Runs as the stack user on the region's controller, with DevStack's clouds.yaml
(/etc/openstack/clouds.yaml, cloud `devstack-admin`) and its global venv (VENV, default
/opt/stack/data/venv). With --discover, maps new compute hosts to the cell first
(`nova-manage cell_v2 discover_hosts`, what DevStack's tools/discover_hosts.sh does), on
every try: compute hosts register asynchronously. Prints one JSON line
{"region", "expected", "up", "hypervisors"}; exit 1, with one line on stderr, when
TIMEOUT_S passes before EXPECTED nova-computes are up and as many hypervisors listed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def count(venv: str, region: str) -> tuple[int, int]:
    """(nova-compute services enabled and up, hypervisors) in `region`; (0, 0) when the
    API does not answer yet."""
    base = [f"{venv}/bin/openstack", "--os-cloud", "devstack-admin", "--os-region-name",
            region]
    services = subprocess.run([*base, "compute", "service", "list", "--service",
                               "nova-compute", "-f", "json"], capture_output=True, text=True)
    hypervisors = subprocess.run([*base, "hypervisor", "list", "-f", "json"],
                                 capture_output=True, text=True)
    if services.returncode or hypervisors.returncode:
        return 0, 0
    try:
        up = [s for s in json.loads(services.stdout)
              if s.get("State") == "up" and s.get("Status") == "enabled"]
        return len(up), len(json.loads(hypervisors.stdout))
    except ValueError:
        return 0, 0


def main(argv: list[str]) -> int:
    discover = "--discover" in argv
    args = [a for a in argv if a != "--discover"]
    if len(args) not in (3, 4):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    region, expected, timeout_s = args[0], int(args[1]), float(args[2])
    venv = args[3] if len(args) == 4 else "/opt/stack/data/venv"
    deadline = time.monotonic() + timeout_s
    while True:
        if discover:
            subprocess.run([f"{venv}/bin/nova-manage", "cell_v2", "discover_hosts"],
                           capture_output=True)
        up, hypervisors = count(venv, region)
        if up >= expected and hypervisors >= expected:
            print(json.dumps({"region": region, "expected": expected, "up": up,
                              "hypervisors": hypervisors}))
            return 0
        if time.monotonic() >= deadline:
            print(f"region {region}: {up} of {expected} nova-computes up, {hypervisors} "
                  f"hypervisors, after {timeout_s:.0f} s", file=sys.stderr)
            return 1
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
