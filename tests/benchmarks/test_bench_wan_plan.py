"""Benchmark (prints figures, run by hand): WAN plan and tc commands for 1,000 sites.

    .venv/bin/python -m pytest -s -m bench tests/benchmarks/test_bench_wan_plan.py
"""

from __future__ import annotations

import time

import pytest

from femdc_bench.experiment import parse
from femdc_bench.model import Host, Inventory
from femdc_bench.wan import netem
from femdc_bench.wan.plan import plan
from tests.unit.wan.test_plan import three_sites


@pytest.mark.bench
def test_plan_for_1000_sites() -> None:
    """Benchmark (prints the figure): 1,000 sites of one host each."""
    doc = three_sites(default={"delay": "25ms"})
    doc["sites"] = [{"name": "s[1-1000]", "hosts": [{"name": "h", "roles": ["load"]}]}]
    doc["sites"][0]["hosts"][0]["roles"] = ["load"]
    doc["sites"].insert(0, {"name": "a", "hosts": [{"name": "h",
                                                    "roles": ["database", "keystone"]}]})
    exp = parse(doc)
    hosts = tuple(Host(alias=h.name, address=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                       site=s.name, roles=h.roles)
                  for i, (s, h) in enumerate((s, h) for s in exp.sites for h in s.hosts))
    t0 = time.perf_counter()
    p = plan(exp.wan, Inventory(provider="local", hosts=hosts))
    t_plan = time.perf_counter() - t0
    t0 = time.perf_counter()
    netem.commands(p, "bench")
    t_cmds = time.perf_counter() - t0
    print(f"\nplan for {len(hosts)} hosts: {t_plan:.2f}s, {p.rule_count} rules; "
          f"tc commands: {t_cmds:.2f}s")
    assert p.rule_count == len(hosts) * (len(hosts) - 1)


