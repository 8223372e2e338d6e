"""The WAN plan (pure) and the tc/netem commands generated from it."""

from __future__ import annotations

from typing import Any

from femdc_bench.experiment import parse
from femdc_bench.model import Host, Inventory
from femdc_bench.wan import netem
from femdc_bench.wan.plan import Rule, plan, site_matrix


def three_sites(**wan: Any) -> dict[str, Any]:
    return {
        "name": "wan",
        "sites": [
            {"name": "a", "hosts": [{"name": "h", "roles": ["database", "keystone", "load"]}]},
            {"name": "b", "hosts": [{"name": "h", "roles": ["load"]}]},
            {"name": "c", "hosts": [{"name": "h", "roles": ["load"]},
                                    {"name": "mon", "roles": []}]},
        ],
        "deployment": {"method": "native", "keystone": {"centralized": "a"}},
        "wan": wan,
        "workload": {"scenarios": [{"name": "keystone.list_users",
                                    "runner": {"type": "times", "times": 1}}]},
    }


def inventory(exp: Any) -> Inventory:
    hosts = [Host(alias=h.name, address=f"10.0.0.{i + 2}", site=s.name, roles=h.roles)
             for i, (s, h) in enumerate((s, h) for s in exp.sites for h in s.hosts)]
    return Inventory(provider="local", hosts=tuple(hosts))


WAN = {
    "default": {"delay": "10ms"},
    "overrides": [
        {"src": "a", "dst": "b", "delay": "50ms", "symmetric": False},
        {"src": "c", "dst": "a", "delay": "20ms", "rate": "100mbit", "loss": "1%"},
    ],
    "exclude": ["c-mon"],
}


def test_plan_asymmetric_and_excluded() -> None:
    exp = parse(three_sites(**WAN))
    p = plan(exp.wan, inventory(exp))
    assert [h.host for h in p.hosts] == ["a-h", "b-h", "c-h"]  # c-mon excluded
    rules = {h.host: h.rules for h in p.hosts}
    assert rules["a-h"] == (Rule("b-h", "10.0.0.3", 50.0, None, 0.0),
                            Rule("c-h", "10.0.0.4", 20.0, 100_000.0, 1.0))
    assert rules["b-h"] == (Rule("a-h", "10.0.0.2", 10.0, None, 0.0),
                            Rule("c-h", "10.0.0.4", 10.0, None, 0.0))
    assert rules["c-h"] == (Rule("a-h", "10.0.0.2", 20.0, 100_000.0, 1.0),
                            Rule("b-h", "10.0.0.3", 10.0, None, 0.0))
    inbound = p.inbound()
    assert [(i.src_host, i.delay_ms) for i in inbound["b-h"]] == [("a-h", 50.0), ("c-h", 10.0)]
    assert site_matrix(exp.wan, ["a", "b", "c"]) == {
        ("a", "b"): 60.0, ("b", "a"): 60.0, ("a", "c"): 40.0, ("c", "a"): 40.0,
        ("b", "c"): 20.0, ("c", "b"): 20.0}


def test_excluded_network_and_intra_site() -> None:
    exp = parse(three_sites(default={"delay": "10ms"}, intra_site={"delay": "1ms"},
                            exclude=["10.0.0.2/32"]))
    p = plan(exp.wan, inventory(exp))
    assert [h.host for h in p.hosts] == ["b-h", "c-h", "c-mon"]
    c_h = p.for_host("c-h")
    assert [(r.dst_host, r.delay_ms) for r in c_h.rules] == [("b-h", 10.0), ("c-mon", 1.0)]


def test_unshaped_links_have_no_rules() -> None:
    exp = parse(three_sites(default={"delay": "0ms"}))
    assert plan(exp.wan, inventory(exp)).rule_count == 0


def test_netem_commands_for_three_sites() -> None:
    exp = parse(three_sites(**WAN))
    cmds = netem.commands(plan(exp.wan, inventory(exp)), "run1")
    assert netem.root_handle("run1") == "f1c3"
    a = cmds["a-h"]
    assert [" ".join(c) for c in a.add] == [
        "tc qdisc add dev eth0 root handle f1c3: htb",
        "tc class add dev eth0 parent f1c3: classid f1c3:1 htb rate 10000000kbit quantum 200000",
        "tc qdisc add dev eth0 parent f1c3:1 handle 101: netem limit 83334 delay 50ms",
        "tc filter add dev eth0 parent f1c3: protocol ip prio 1 u32 match ip dst 10.0.0.3/32 "
        "flowid f1c3:1",
        "tc class add dev eth0 parent f1c3: classid f1c3:2 htb rate 100000kbit quantum 200000",
        "tc qdisc add dev eth0 parent f1c3:2 handle 102: netem limit 1000 delay 20ms loss 1%",
        "tc filter add dev eth0 parent f1c3: protocol ip prio 1 u32 match ip dst 10.0.0.4/32 "
        "flowid f1c3:2",
    ]
    assert [" ".join(c) for c in a.remove] == ["tc qdisc del dev eth0 root handle f1c3:"]
    b = cmds["b-h"]
    assert [" ".join(c) for c in b.add if "netem" in c] == [
        "tc qdisc add dev eth0 parent f1c3:1 handle 101: netem limit 16667 delay 10ms",
        "tc qdisc add dev eth0 parent f1c3:2 handle 102: netem limit 16667 delay 10ms",
    ]
    assert "c-mon" not in cmds
    assert all(isinstance(arg, str) for c in cmds.values() for cmd in c.add for arg in cmd)


def test_netem_nothing_to_add_still_removes() -> None:
    exp = parse(three_sites(default={"delay": "0ms"}))
    cmds = netem.commands(plan(exp.wan, inventory(exp)), "run1")
    assert cmds["a-h"].add == ()
    assert cmds["a-h"].remove


def test_partition_cut_commands() -> None:
    from femdc_bench.wan.apply import cut_commands

    exp = parse(three_sites(**WAN))
    inv = inventory(exp)
    on = cut_commands(inv, "b", "t1", on=True)
    assert list(on) == ["b-h"]  # only the cut site's hosts carry the rules
    add = [" ".join(c) for c in on["b-h"].add]
    assert add[0] == "iptables -w -N FEMDC-t1-CUT"
    assert "iptables -w -A FEMDC-t1-CUT -s 10.0.0.2 -j DROP" in add
    assert "iptables -w -A FEMDC-t1-CUT -d 10.0.0.5 -j DROP" in add  # c-mon too
    assert add[-2:] == ["iptables -w -I INPUT -j FEMDC-t1-CUT",
                        "iptables -w -I OUTPUT -j FEMDC-t1-CUT"]
    off = cut_commands(inv, "b", "t1", on=False)["b-h"]
    assert off.add == () and off.remove == on["b-h"].remove
    assert [" ".join(c) for c in off.remove] == [
        "iptables -w -D INPUT -j FEMDC-t1-CUT", "iptables -w -D OUTPUT -j FEMDC-t1-CUT",
        "iptables -w -F FEMDC-t1-CUT", "iptables -w -X FEMDC-t1-CUT"]
