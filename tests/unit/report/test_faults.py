"""Workload faults (issue 10, item 4): kill and degrade beside partition in the experiment
file, their timeline (overlapping faults run in time order), the degraded WAN plan, and
the report's before/during/after attribution per site."""

from __future__ import annotations

from typing import Any

import pytest

from femdc_bench.experiment import ExperimentError, parse
from femdc_bench.model import FaultSpec, LinkSpec, Sample, WanSpec
from femdc_bench.report import faults as rf
from femdc_bench.wan.plan import degraded, link_between
from tests.unit.test_experiment_layouts import central_control, keystone_per_site


def with_faults(doc: dict[str, Any], *faults: dict[str, Any]) -> dict[str, Any]:
    doc["workload"]["faults"] = list(faults)
    return doc


def err(doc: dict[str, Any]) -> str:
    with pytest.raises(ExperimentError) as e:
        parse(doc, "exp.yaml")
    assert "\n" not in str(e.value)
    return str(e.value)


def test_kill_degrade_and_partition_parse() -> None:
    exp = parse(with_faults(
        keystone_per_site("galera"),
        {"kill": "keystone", "site": "site3", "at": "10s", "restart_after": "15s"},
        {"kill": "mariadb", "site": "site2", "at": "5s"},
        {"degrade": "site1", "at": "1s", "duration": "20s", "delay": "100ms", "loss": "2%"},
        {"partition": "site2", "at": "30s", "duration": "5s"}), "exp.yaml")
    k, m, d, p = exp.workload.faults
    assert (k.kind, k.service, k.site, k.at_s, k.duration_s) == ("kill", "keystone", "site3",
                                                                 10.0, 15.0)
    assert m.duration_s is None and m.label == "mariadb@site2"  # down until the load ends
    assert d.link == LinkSpec(delay_ms=100.0, loss_pct=2.0) and d.link_keys == (
        "delay_ms", "loss_pct")
    assert (p.kind, p.site, p.duration_s, p.label) == ("partition", "site2", 5.0,
                                                       "partition@site2")


@pytest.mark.parametrize(("fault", "message"), [
    ({"kill": "keystone", "at": "1s"}, "workload.faults[0]: a kill fault needs 'site'"),
    ({"kill": "nova-conductor", "site": "site1", "at": "1s"},
     "workload.faults[0].kill: site 'site1' runs no nova-conductor (it runs on hosts with "
     "role control)"),
    ({"kill": "keystone", "site": "site9", "at": "1s"},
     "workload.faults[0].site: expected one of the sites (site1, site2, site3), got 'site9'"),
    ({"kill": "keystone", "site": "site1", "at": "1s", "duration": "3s"},
     "workload.faults[0].duration: not a key of a kill fault; expected kill, at, site, "
     "restart_after"),
    ({"kill": "httpd", "site": "site1", "at": "1s"}, "workload.faults[0].kill: expected one "
     "of memcached, keystone, mariadb"),
    ({"degrade": "site1", "at": "1s", "duration": "3s"},
     "a degrade fault needs delay, rate or loss"),
    ({"partition": "site1", "degrade": "site2", "at": "1s", "duration": "3s"},
     "expected exactly one of partition, kill, degrade, got partition and degrade"),
    ({"at": "1s"}, "expected exactly one of partition, kill, degrade"),
    ({"kill": "keystone", "site": "site1", "at": "1s", "restart_after": "0s"},
     "workload.faults[0].restart_after: expected a duration above 0"),
])
def test_bad_faults_are_one_line(fault: dict[str, Any], message: str) -> None:
    assert message in err(with_faults(keystone_per_site(), fault))


def test_control_services_can_be_killed_where_they_run() -> None:
    exp = parse(with_faults(central_control(),
                            {"kill": "nova-conductor", "site": "core", "at": "1s"},
                            {"kill": "nova-compute", "site": "edge1", "at": "1s"},
                            {"kill": "rabbitmq", "site": "core", "at": "2s",
                             "restart_after": "1s"}), "exp.yaml")
    assert [f.label for f in exp.workload.faults] == [
        "nova-conductor@core", "nova-compute@edge1", "rabbitmq@core"]
    assert "site 'edge1' runs no rabbitmq" in err(with_faults(
        central_control(), {"kill": "rabbitmq", "site": "edge1", "at": "1s"}))


def test_timeline_orders_overlapping_faults() -> None:
    from femdc_bench.faults import FaultInjector

    fi = FaultInjector.__new__(FaultInjector)
    fi.faults = [FaultSpec("kill", "a", 10, 10, service="keystone"),
                 FaultSpec("degrade", "b", 5, 5, link=LinkSpec(delay_ms=5),
                           link_keys=("delay_ms",)),
                 FaultSpec("partition", "c", 12, None)]
    assert fi.timeline() == [(5, 1, "start"), (10, 1, "end"), (10, 0, "start"),
                             (12, 2, "start"), (20, 0, "end")]


def test_degraded_wan_changes_only_the_sites_links() -> None:
    wan = WanSpec(default=LinkSpec(delay_ms=25, rate_kbit=100_000))
    f = FaultSpec("degrade", "s1", 0, 10, link=LinkSpec(delay_ms=80, loss_pct=1),
                  link_keys=("delay_ms", "loss_pct"))
    w = degraded(wan, [f], ["s1", "s2", "s3"])
    for a, b in (("s1", "s2"), ("s2", "s1"), ("s1", "s3"), ("s3", "s1")):
        assert link_between(w, a, b) == LinkSpec(delay_ms=80, rate_kbit=100_000, loss_pct=1)
    assert link_between(w, "s2", "s3") == wan.default  # not the degraded site's
    only_rate = FaultSpec("degrade", "s3", 0, 10, link=LinkSpec(rate_kbit=1000),
                          link_keys=("rate_kbit",))
    w2 = degraded(wan, [f, only_rate], ["s1", "s2", "s3"])
    assert link_between(w2, "s2", "s3") == LinkSpec(delay_ms=25, rate_kbit=1000)
    assert link_between(w2, "s3", "s1") == LinkSpec(delay_ms=25, rate_kbit=1000)  # later wins


def _s(site: str, t_s: float, ok: bool, ms: float = 10.0) -> Sample:
    return Sample(site=site, target_site=site, service="identity", operation="auth",
                  t0_ns=int(t_s * 1e9), duration_ms=ms, status="ok" if ok else "error")


def test_attribution_before_during_after_per_site() -> None:
    events = [
        {"time": int(100e9), "kind": "kill", "site": "b", "phase": "start", "point": "p0",
         "fault": "keystone@b"},
        {"time": int(110e9), "kind": "kill", "site": "b", "phase": "end", "point": "p0",
         "fault": "keystone@b"},
        {"time": int(50e9), "kind": "phase", "site": None, "phase": "bench", "point": "p0"},
    ]
    wins = rf.windows(events)
    assert wins == [rf.FaultWindow("p0", "keystone@b", "kill", "b", int(100e9), int(110e9),
                                   in_ns=int(100e9), out_ns=int(110e9))]
    samples = ([_s("a", t, True) for t in range(90, 120)]
               + [_s("b", t, True) for t in range(90, 100)]
               + [_s("b", t, False) for t in range(100, 112)]  # two errors after the restart
               + [_s("b", t, True, 30.0) for t in range(112, 120)])
    rows = {r["site"]: r for r in rf.attribute({"p0": samples}, wins)}
    assert {r["target_site"] for r in rows.values()} == {"a", "b"}
    a, b = rows["a"], rows["b"]
    assert (a["before"]["count"], a["during"]["count"], a["after"]["count"]) == (10, 10, 10)
    assert a["during"]["errors"] == 0 and a["recovered_s"] is None
    assert b["before"] == {"count": 10, "errors": 0, "error_pct": 0.0, "p50_ms": 10.0,
                           "p95_ms": 10.0}
    assert b["during"]["errors"] == 10 and b["during"]["error_pct"] == 100.0
    assert b["during"]["p50_ms"] is None
    assert b["after"]["count"] == 10 and b["after"]["errors"] == 2
    assert b["after"]["p50_ms"] == 30.0
    assert b["recovered_s"] == 2.0  # first success after the last error: t=112
    assert b["duration_s"] == 10.0


def test_a_fault_without_an_end_lasts_to_the_end() -> None:
    wins = rf.windows([{"time": 5, "kind": "partition", "site": "x", "phase": "start",
                        "point": "p1"}])
    assert wins[0].end_ns is None and wins[0].label == "partition@x"
    rows = rf.attribute({"p1": [_s("x", 0, True), _s("x", 1e-8, False)]}, wins)
    assert rows[0]["during"]["errors"] == 1 and rows[0]["duration_s"] is None


def test_the_moments_a_fault_comes_and_goes_are_apart() -> None:
    """A start step of 3 s (the rules applied at its end) and an end step of 2 s: what
    started meanwhile is `changing`, neither before, during nor after."""
    events = [
        {"time": int(100e9), "kind": "degrade", "site": "x", "phase": "start", "point": "p0",
         "fault": "degrade@x", "step_s": 3.0},
        {"time": int(110e9), "kind": "degrade", "site": "x", "phase": "end", "point": "p0",
         "fault": "degrade@x", "step_s": 2.0},
    ]
    (w,) = rf.windows(events)
    assert (w.start_ns, w.in_ns, w.out_ns, w.end_ns) == (
        int(100e9), int(103e9), int(110e9), int(112e9))
    samples = [_s("y", t / 2, True, 50.0 if 206 <= t < 220 else 10.0) for t in range(190, 240)]
    (row,) = rf.attribute({"p0": samples}, [w])
    assert row["before"]["count"] == 10 and row["before"]["p50_ms"] == 10.0  # 95.0-99.5 s
    assert row["during"]["count"] == 14 and row["during"]["p50_ms"] == 50.0  # 103-109.5 s
    assert row["changing"] == {"count": 10, "errors": 0}  # 100-102.5 s and 110-111.5 s
    assert row["after"]["count"] == 16 and row["after"]["p50_ms"] == 10.0
    assert row["duration_s"] == 12.0
