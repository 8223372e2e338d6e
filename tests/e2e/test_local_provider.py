"""The local provider's `up` after a CLI killed in the middle of it (kill -9 between two
`ip` commands): every half-made piece is finished or made again, and no packet for a
host's address leaves this machine.

Real parts only: namespaces, veth pairs, the bridge, sshd. Found by the crash test in
CI: a bridge created but not yet given its address sent ssh to 10.231.0.x out of the
default route, where something accepted the TCP connection and never spoke SSH
("Connection timed out during banner exchange", on every host)."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from femdc_bench import experiment
from femdc_bench.providers import local
from femdc_bench.providers.local import LocalProvider, LocalState, ProviderError

pytestmark = pytest.mark.e2e

DOC = {
    "name": "e2e-halfup",
    "provider": {"type": "local"},
    "sites": [{"name": "core", "hosts": [{"name": "ctl", "roles": ["database", "keystone",
                                                                  "load"]}]},
              {"name": "edge", "hosts": [{"name": "node", "roles": ["load"]},
                                         {"name": "node2", "roles": ["load"]}]}],
    "deployment": {"method": "native", "keystone": {"centralized": "core"}},
    "workload": {"scenarios": [{"name": "keystone.authenticate_and_validate_token",
                                "runner": {"type": "times", "times": 1}}]},
}


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _banner(address: str) -> bytes:
    with socket.create_connection((address, 22), timeout=5) as s:
        s.settimeout(5)
        return s.recv(64)


@pytest.fixture()
def provider(tmp_path: Path) -> Iterator[tuple[LocalProvider, experiment.Experiment]]:
    exp = experiment.parse(DOC, "halfup.yaml")
    p = LocalProvider(run_id="e2e-halfup", run_dir=tmp_path / "e2e-halfup")
    try:
        yield p, exp
    finally:
        p.destroy()


def test_up_finishes_what_a_killed_up_left(provider: tuple[LocalProvider,
                                                           experiment.Experiment]) -> None:
    p, exp = provider
    # What a CLI killed at three different points of `up` leaves, all at once:
    with local._machine_lock():
        st = p._plan(exp)
    _ip("link", "add", st.bridge, "type", "bridge")  # killed before the address
    _ip("link", "set", st.bridge, "up")
    # the bridge has no address: the hosts' subnet goes out of the default route
    assert local.route_device(st.hosts[0].address) != st.bridge
    ctl, node, node2 = st.hosts
    _ip("netns", "add", ctl.netns)  # a pair whose peer is still here
    _ip("link", "add", ctl.veth, "type", "veth", "peer", "name", f"fp{st.short}0")
    _ip("netns", "add", node.netns)  # a peer moved into its namespace, not renamed
    _ip("link", "add", node.veth, "type", "veth", "peer", "name", f"fp{st.short}1")
    _ip("link", "set", f"fp{st.short}1", "netns", node.netns)
    _ip("netns", "add", node2.netns)  # a namespace and nothing in it

    inv = p.up(exp)

    assert [h.address for h in inv.hosts] == [h.address for h in st.hosts]
    gateway = json.loads(_ip("-j", "-4", "addr", "show", "dev", st.bridge))[0]["addr_info"]
    assert [a["local"] for a in gateway] == [st.gateway]
    for h in st.hosts:
        assert local.route_device(h.address) == st.bridge
        assert _ip("-n", h.netns, "-o", "link", "show").count("eth0") == 1
        assert f"fp{st.short}" not in _ip("-n", h.netns, "-o", "link", "show")
        assert _banner(h.address).startswith(b"SSH-2.0-")
    assert f"fp{st.short}" not in _ip("-o", "link", "show")  # no stray peer here
    # and a second `up` changes nothing
    before = LocalState.load(p.state_file)
    p.up(exp)
    assert LocalState.load(p.state_file) == before


def test_routes_not_through_the_bridge_are_refused() -> None:
    st = LocalState(run_id="r", short="abcde", bridge="fbabcde", subnet="10.231.9.0/24",
                    gateway="10.231.9.1",
                    hosts=[local.LocalHostState(alias="core-ctl", site="core", roles=[],
                                                netns="n", veth="v", address="10.231.9.2")])
    local.check_routes(st, device=lambda a: "fbabcde")
    with pytest.raises(ProviderError, match=r"^core-ctl \(10\.231\.9\.2\) is routed through "
                                            r"eth0, not the run's bridge fbabcde"):
        local.check_routes(st, device=lambda a: "eth0")
