"""The userspace WAN emulator: commands from a plan (pure) and the delay daemon's logic."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from femdc_bench.experiment import parse
from femdc_bench.model import Host, Inventory
from femdc_bench.wan import nfqdelay, userspace
from femdc_bench.wan.commands import GONE_RE, HostCommands, htb_quantum, is_gone, wan_vars
from femdc_bench.wan.plan import partition, plan
from tests.unit.wan.test_plan import WAN, inventory, three_sites

TAG = "run1"
Q = userspace.queue_num(TAG)
IPT = "iptables -w -t mangle"
REMOVE = [f"{IPT} -D PREROUTING -i eth0 -j FEMDC-run1",
          f"{IPT} -F FEMDC-run1",
          f"{IPT} -X FEMDC-run1",
          "tc qdisc del dev eth0 root handle f1c3:"]


def lines(argvs: tuple[tuple[str, ...], ...]) -> list[str]:
    return [" ".join(a) for a in argvs]


def test_three_sites_asymmetric_and_excluded() -> None:
    exp = parse(three_sites(**WAN))
    cmds = userspace.commands(plan(exp.wan, inventory(exp)), TAG)
    assert sorted(cmds) == ["a-h", "b-h", "c-h"]  # c-mon excluded: untouched
    assert Q == 39090 and 0x8000 <= Q <= 0xFFFE

    # a receives: from b 10 ms; from c 20 ms + 1 % loss. a sends: to c at 100 mbit.
    a = cmds["a-h"]
    assert lines(a.add) == [
        f"{IPT} -N FEMDC-run1",
        f"{IPT} -A FEMDC-run1 -s 10.0.0.3/32 -j NFQUEUE --queue-num {Q} --queue-bypass",
        f"{IPT} -A FEMDC-run1 -s 10.0.0.4/32 -m statistic --mode random --probability 0.01 "
        "-j DROP",
        f"{IPT} -A FEMDC-run1 -s 10.0.0.4/32 -j NFQUEUE --queue-num {Q} --queue-bypass",
        f"{IPT} -A PREROUTING -i eth0 -j FEMDC-run1",
        "tc qdisc add dev eth0 root handle f1c3: htb",
        "tc class add dev eth0 parent f1c3: classid f1c3:1 htb rate 100000kbit ceil 100000kbit "
        "quantum 200000",
        "tc filter add dev eth0 parent f1c3: protocol ip prio 1 u32 match ip dst 10.0.0.4/32 "
        "flowid f1c3:1",
    ]
    assert lines(a.remove) == REMOVE
    assert a.daemon == {"queue": Q, "device": "eth0",
                        "delays": {"10.0.0.3": 10.0, "10.0.0.4": 20.0}}

    # b receives a->b at 50 ms (asymmetric: b->a is 10 ms, seen on a) and c->b at 10 ms;
    # b limits no rate: no qdisc.
    b = cmds["b-h"]
    assert lines(b.add) == [
        f"{IPT} -N FEMDC-run1",
        f"{IPT} -A FEMDC-run1 -s 10.0.0.2/32 -j NFQUEUE --queue-num {Q} --queue-bypass",
        f"{IPT} -A FEMDC-run1 -s 10.0.0.4/32 -j NFQUEUE --queue-num {Q} --queue-bypass",
        f"{IPT} -A PREROUTING -i eth0 -j FEMDC-run1",
    ]
    assert b.daemon == {"queue": Q, "device": "eth0",
                        "delays": {"10.0.0.2": 50.0, "10.0.0.4": 10.0}}

    # c receives a->c (symmetric override): 20 ms + 1 % loss; c sends to a at 100 mbit.
    c = cmds["c-h"]
    assert c.daemon == {"queue": Q, "device": "eth0",
                        "delays": {"10.0.0.2": 20.0, "10.0.0.3": 10.0}}
    assert f"{IPT} -A FEMDC-run1 -s 10.0.0.2/32 -m statistic --mode random --probability " \
           "0.01 -j DROP" in lines(c.add)
    assert "tc filter add dev eth0 parent f1c3: protocol ip prio 1 u32 match ip dst " \
           "10.0.0.2/32 flowid f1c3:1" in lines(c.add)
    # the excluded host's address appears nowhere
    assert not any("10.0.0.5" in arg for h in cmds.values() for cmd in h.add for arg in cmd)
    # no `default` class: unclassified traffic is not shaped
    assert not any("default" in cmd for h in cmds.values() for cmd in h.add)


def test_the_jump_comes_after_the_chain_is_complete() -> None:
    exp = parse(three_sites(**WAN))
    for c in userspace.commands(plan(exp.wan, inventory(exp)), TAG).values():
        ipt = [a for a in c.add if a[0] == "iptables"]
        assert ipt[0][4:] == ("-N", "FEMDC-run1")
        assert ipt[-1][4:] == ("-A", "PREROUTING", "-i", "eth0", "-j", "FEMDC-run1")


def test_nothing_shaped_still_removes() -> None:
    exp = parse(three_sites(default={"delay": "0ms"}))
    cmds = userspace.commands(plan(exp.wan, inventory(exp)), TAG)
    for c in cmds.values():
        assert c.add == () and c.daemon is None
        assert lines(c.remove) == REMOVE


def test_partition_is_a_plain_drop_without_delay() -> None:
    exp = parse(three_sites(**WAN))
    inv = inventory(exp)
    cmds = userspace.commands(partition(plan(exp.wan, inv), inv, "b"), TAG)
    b = cmds["b-h"]
    assert lines(b.add) == [
        f"{IPT} -N FEMDC-run1",
        f"{IPT} -A FEMDC-run1 -s 10.0.0.2/32 -j DROP",
        f"{IPT} -A FEMDC-run1 -s 10.0.0.4/32 -j DROP",
        f"{IPT} -A PREROUTING -i eth0 -j FEMDC-run1",
    ]
    assert b.daemon is None
    assert cmds["a-h"].daemon is not None
    assert "10.0.0.3" not in cmds["a-h"].daemon["delays"]
    assert f"{IPT} -A FEMDC-run1 -s 10.0.0.3/32 -j DROP" in lines(cmds["a-h"].add)


def test_htb_quantum_stays_in_bounds() -> None:
    assert htb_quantum(100) == 1_600
    assert htb_quantum(1_000) == 12_500
    assert htb_quantum(10_000_000) == 200_000


def test_other_device_and_explicit_queue() -> None:
    exp = parse(three_sites(default={"delay": "5ms", "loss": "0.05%"}))
    inv = inventory(exp)
    inv = Inventory(provider="x", hosts=tuple(
        Host(alias=h.alias, address=h.address, site=h.site, roles=h.roles,
             extra={"femdc_device": "ens3"}) for h in inv.hosts))
    cmds = userspace.commands(plan(exp.wan, inv), "ab12c", queue=7)
    a = cmds["a-h"]
    assert a.daemon == {"queue": 7, "device": "ens3",
                        "delays": {"10.0.0.3": 5.0, "10.0.0.4": 5.0, "10.0.0.5": 5.0}}
    assert ("iptables", "-w", "-t", "mangle", "-A", "FEMDC-ab12c", "-s", "10.0.0.3/32", "-m",
            "statistic", "--mode", "random", "--probability", "0.0005", "-j", "DROP") in a.add
    assert a.remove[0] == ("iptables", "-w", "-t", "mangle", "-D", "PREROUTING", "-i", "ens3",
                           "-j", "FEMDC-ab12c")


@pytest.mark.parametrize("tag", ["", "a b", "x" * 23, "a;rm", "é"])
def test_bad_tags_are_refused(tag: str) -> None:
    with pytest.raises(ValueError):
        userspace.chain_name(tag)


def test_queue_out_of_range() -> None:
    exp = parse(three_sites(**WAN))
    with pytest.raises(ValueError):
        userspace.commands(plan(exp.wan, inventory(exp)), TAG, queue=70000)


def test_gone_messages() -> None:
    assert is_gone("iptables: No chain/target/match by that name.")
    assert is_gone("iptables v1.8.9 (nf_tables): Chain 'FEMDC-abc' does not exist")
    assert is_gone("Error: Invalid handle.")
    assert is_gone('Cannot find device "eth0"')
    assert not is_gone("Error: Exclusivity flag on, cannot modify.")
    assert not is_gone("iptables v1.8.9 (nf_tables): CHAIN_DEL failed (Device or resource busy)")
    assert not is_gone("Permission denied (you must be root)")


def test_vars_are_plain_json() -> None:
    exp = parse(three_sites(**WAN))
    cmds = userspace.commands(plan(exp.wan, inventory(exp)), TAG)
    v = json.loads(json.dumps(wan_vars(cmds)))
    assert v["femdc_wan_gone"] == GONE_RE
    assert v["femdc_wan"]["b-h"]["add"][0] == ["iptables", "-w", "-t", "mangle", "-N",
                                               "FEMDC-run1"]
    assert v["femdc_wan"]["b-h"]["daemon"]["delays"] == {"10.0.0.2": 50.0, "10.0.0.4": 10.0}
    with pytest.raises(ValueError):
        wan_vars({"x": cmds["a-h"]})
    with pytest.raises(ValueError):
        HostCommands(host="x", add=(("tc", ""),), remove=())


# --------------------------------------------------------------------------- daemon logic


class FakePacket:
    def __init__(self, src: str, log: list[tuple[str, int]], n: int) -> None:
        self.head = bytes([0x45]) + bytes(11) + socket.inet_aton(src) + socket.inet_aton(
            "10.0.0.9") + bytes(20)
        self.src, self.n, self.log = src, n, log

    def get_payload(self) -> bytes:
        return self.head

    def accept(self) -> None:
        self.log.append((self.src, self.n))


def packed(d: dict[str, float]) -> dict[bytes, float]:
    return {socket.inet_aton(k): v / 1000 for k, v in d.items()}


def test_delayer_holds_each_source_for_its_delay() -> None:
    out: list[tuple[str, int]] = []
    d = nfqdelay.Delayer(packed({"10.0.0.2": 25, "10.0.0.3": 50}))
    d.on_packet(FakePacket("10.0.0.3", out, 1), 0.000)
    d.on_packet(FakePacket("10.0.0.2", out, 2), 0.001)
    d.on_packet(FakePacket("10.0.0.7", out, 3), 0.002)  # unknown source: at once
    assert out == [("10.0.0.7", 3)]
    assert d.next_due() == pytest.approx(0.026)
    assert d.release_due(0.0259) == 0
    assert d.release_due(0.0262) == 1 and out[-1] == ("10.0.0.2", 2)
    assert d.release_due(0.0505) == 1 and out[-1] == ("10.0.0.3", 1)
    assert d.total.count == 2 and d.total.percentile_ms(99) == pytest.approx(0.5, abs=0.02)
    assert d.immediate == 1 and d.received == 3 and d.released == 2


def test_delayer_keeps_per_peer_order_when_the_delay_shrinks() -> None:
    out: list[tuple[str, int]] = []
    d = nfqdelay.Delayer(packed({"10.0.0.2": 75}))
    d.on_packet(FakePacket("10.0.0.2", out, 1), 0.0)
    d.set_delays(packed({"10.0.0.2": 25}))  # SIGHUP
    d.on_packet(FakePacket("10.0.0.2", out, 2), 0.010)  # would be due at 35 ms
    assert d.release_due(0.040) == 0  # not before packet 1
    assert d.release_due(0.075) == 2
    assert out == [("10.0.0.2", 1), ("10.0.0.2", 2)]


def test_delayer_release_all_and_passthrough() -> None:
    out: list[tuple[str, int]] = []
    d = nfqdelay.Delayer(packed({"10.0.0.2": 50}))
    for i in range(5):
        d.on_packet(FakePacket("10.0.0.2", out, i), i / 1000)
    assert d.release_all() == 5 and [n for _, n in out] == [0, 1, 2, 3, 4]
    d.passthrough = True
    d.on_packet(FakePacket("10.0.0.2", out, 9), 1.0)
    assert out[-1] == ("10.0.0.2", 9) and not d.heap


def test_delayer_never_raises_from_the_callback() -> None:
    class Broken:
        accepted = False

        def get_payload(self) -> bytes:
            raise RuntimeError("boom")

        def accept(self) -> None:
            self.accepted = True

    d = nfqdelay.Delayer({})
    pkt = Broken()
    d.on_packet(pkt, 0.0)
    assert pkt.accepted and d.errors == 1


def test_config_parsing() -> None:
    raw = json.dumps({"queue": 40000, "device": "eth0",
                      "delays": {"10.0.0.2": 25, "10.0.0.3": 2.5}}).encode()
    cfg = nfqdelay.parse_config(raw)
    assert cfg.queue == 40000 and cfg.stats_interval_s == nfqdelay.STATS_INTERVAL_S
    assert cfg.delays == {socket.inet_aton("10.0.0.2"): 0.025,
                          socket.inet_aton("10.0.0.3"): 0.0025}
    for bad in ({"queue": 70000, "delays": {}}, {"queue": 1, "delays": {"x": 1}},
                {"queue": 1, "delays": {"10.0.0.2": -1}}, {"queue": True, "delays": {}},
                {"queue": 1}, [1]):
        with pytest.raises(nfqdelay.ConfigError):
            nfqdelay.parse_config(json.dumps(bad).encode())


def test_fail_open_message_and_ack() -> None:
    msg = nfqdelay.fail_open_message(40000, seq=77)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", msg)
    assert length == len(msg) == 16 + 4 + 3 * 8
    assert kind == (3 << 8) | 2 and flags == 1 | 4 and seq == 77 and pid == 0
    assert struct.unpack_from("!H", msg, 18)[0] == 40000  # res_id, big endian
    assert msg[20:] == (struct.pack("=HH", 8, 3) + struct.pack(">I", 0)
                        + struct.pack("=HH", 8, 4) + struct.pack(">I", 1)
                        + struct.pack("=HH", 8, 5) + struct.pack(">I", 1))
    # an ack (NLMSG_ERROR, code 0) after some other message in the same datagram
    other = struct.pack("=IHHII", 20, 0x0300, 0, 5, 0) + bytes(4)
    ack = struct.pack("=IHHII", 36, 2, 0, 77, 0) + struct.pack("=i", 0) + msg[:16]
    assert nfqdelay.find_ack(other + ack, 77) == 0
    nack = struct.pack("=IHHII", 36, 2, 0, 77, 0) + struct.pack("=i", -95) + msg[:16]
    assert nfqdelay.find_ack(nack, 77) == 95
    assert nfqdelay.find_ack(other, 77) is None


def test_histogram_percentiles() -> None:
    h = nfqdelay.Histogram()
    for us in range(100):
        h.add(us / 1_000_000 * 10)  # 0 .. 990 us
    s = h.summary()
    assert s["n"] == 100 and s["p50_ms"] == pytest.approx(0.5, abs=0.011)
    assert s["p99_ms"] == pytest.approx(0.99, abs=0.011) and s["max_ms"] == 0.99


def test_daemon_zip_is_self_contained_and_reproducible(tmp_path: Path) -> None:
    z1 = userspace.build_daemon_zip(tmp_path / "a.zip")
    z2 = userspace.build_daemon_zip(tmp_path / "b.zip")
    assert z1.read_bytes() == z2.read_bytes()
    assert sorted(zipfile.ZipFile(z1).namelist()) == [
        "femdc_bench/__init__.py", "femdc_bench/wan/__init__.py", "femdc_bench/wan/nfqdelay.py"]
    # importable from the zip alone (netfilterqueue is imported only when it runs)
    proc = subprocess.run(
        [sys.executable, "-c", "import femdc_bench.wan.nfqdelay as m; print(m.__file__)"],
        capture_output=True, text=True, cwd=tmp_path,
        env={"PYTHONPATH": str(z1), "PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stderr
    assert ".zip" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "femdc_bench.wan.nfqdelay", "--config",
                           str(tmp_path / "missing.json")], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(z1)})
    assert proc.returncode == 2 and json.loads(proc.stdout)["event"] == "error"


def test_venv_is_named_by_the_lock() -> None:
    assert userspace.LOCK.read_text().count("netfilterqueue==1.1.0") == 1
    assert userspace.venv_dir() == ("/var/cache/femdc-bench/venvs/wan-"
                                    + userspace.lock_sha256()[:12])


def test_arrival_uses_the_kernel_stamp_when_plausible() -> None:
    class Stamped:
        def __init__(self, ts: float) -> None:
            self.ts = ts

        def get_timestamp(self) -> float:
            return self.ts

    arrival = nfqdelay.Arrival(clock=lambda: 100.0, wall=lambda: 5000.0)
    assert arrival(Stamped(4999.9996)) == pytest.approx(99.9996)  # read 0.4 ms late
    assert arrival(Stamped(0.0)) == 100.0  # no stamp
    assert arrival(Stamped(5000.5)) == 100.0  # in the future: clock stepped
    assert arrival(Stamped(4990.0)) == 100.0  # too old to believe
    assert arrival.unstamped == 3 and arrival.intake.count == 1
