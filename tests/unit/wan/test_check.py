"""Parsing ping output and checking a measured RTT matrix against its targets."""

from __future__ import annotations

import pytest

from femdc_bench.model import Host, Inventory
from femdc_bench.wan.check import compare, parse_ping, probe_hosts, tolerance

PING = """PING 10.0.0.3 (10.0.0.3) 56(84) bytes of data.
64 bytes from 10.0.0.3: icmp_seq=1 ttl=64 time=100.4 ms
64 bytes from 10.0.0.3: icmp_seq=2 ttl=64 time=101 ms
64 bytes from 10.0.0.3: icmp_seq=4 ttl=64 time=99.8 ms

--- 10.0.0.3 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 150ms
PING 10.0.0.4 (10.0.0.4) 56(84) bytes of data.

--- 10.0.0.4 ping statistics ---
4 packets transmitted, 0 received, 100% packet loss, time 150ms
"""


def inv() -> Inventory:
    return Inventory(provider="local", hosts=(
        Host("a-h", "10.0.0.2", "a", ()), Host("a-x", "10.0.0.9", "a", ()),
        Host("b-h", "10.0.0.3", "b", ()), Host("c-h", "10.0.0.4", "c", ())))


def test_parse_ping_marks_lost_probes() -> None:
    assert parse_ping(PING, 4) == {"10.0.0.3": [100.4, 101.0, None, 99.8],
                                   "10.0.0.4": [None, None, None, None]}


def test_probe_hosts_one_per_site_skipping_excluded() -> None:
    assert probe_hosts(inv(), ("a-h",)) == {"a": "a-x", "b": "b-h", "c": "c-h"}


def test_compare_tolerance_and_loss() -> None:
    probes = {"a": "a-h", "b": "b-h", "c": "c-h"}
    targets = {("a", "b"): 100.0, ("a", "c"): 50.0}
    chk = compare("p1", inv(), probes, {"a-h": PING}, targets, count=4)
    pairs = {(p.src_site, p.dst_site): p for p in chk.pairs}
    ab = pairs[("a", "b")]
    assert ab.measured_ms == 100.4 and ab.loss_pct == 25.0 and ab.ok
    assert ab.tolerance_ms == 5.0
    assert ab.p95_ms == pytest.approx(100.94)  # Rally's: 100.4 * 0.1 + 101.0 * 0.9
    ac = pairs[("a", "c")]
    assert ac.measured_ms is None and ac.loss_pct == 100.0 and not ac.ok
    assert not pairs[("b", "a")].ok  # no output from b at all
    assert not chk.ok
    assert chk.failures()[0] == "a->c: RTT no reply, expected 50.00 ± 2.50 ms"


def test_tolerance_is_max_of_1ms_and_5pct() -> None:
    assert tolerance(0.0) == 1.0
    assert tolerance(10.0) == 1.0
    assert tolerance(300.0) == 15.0


def test_compensation_adds_the_base() -> None:
    out = "PING 10.0.0.3 (10.0.0.3)\n64 bytes from 10.0.0.3: icmp_seq=1 ttl=64 time=52.0 ms\n"
    chk = compare("p0", inv(), {"a": "a-h", "b": "b-h"}, {"a-h": out}, {("a", "b"): 50.0},
                  count=1, base={("a", "b"): 1.5})
    ab = [p for p in chk.pairs if p.src_site == "a"][0]
    assert ab.expected_ms == 51.5 and ab.ok
    assert chk.compensated
