"""The experiment schema: ranges, units, references, and one-line errors with key paths."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from femdc_bench.experiment import (
    ExperimentError,
    duration_ms,
    expand_range,
    load,
    parse,
    rate_kbit,
)
from femdc_bench.providers.local import choose_subnet, short_id

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


@pytest.fixture
def base() -> dict[str, Any]:
    return yaml.safe_load((TOPOLOGIES / "default.yaml").read_text())


def error_of(doc: dict[str, Any]) -> str:
    with pytest.raises(ExperimentError) as e:
        parse(doc, "exp.yaml")
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith("exp.yaml: ")
    return text


@pytest.mark.parametrize("path", sorted(TOPOLOGIES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_topologies_are_valid(path: Path) -> None:
    exp = load(path)
    assert exp.sites and exp.workload.scenarios


def test_default_topology_shape() -> None:
    exp = load(TOPOLOGIES / "default.yaml")
    assert exp.site_names == ["core", "edge1", "edge2"]
    assert [h.name for s in exp.sites for h in s.hosts] == ["core-ctl", "edge1-node", "edge2-node"]
    assert exp.deployment.keystone == "centralized"
    assert exp.deployment.keystone_site == "core"
    sc = exp.workload.scenarios[0]
    assert sc.sources == ("core", "edge1", "edge2")
    assert sc.targets == ("core",)
    assert exp.wan.default.delay_ms == 25.0


def test_ranges_expand_with_padding() -> None:
    assert expand_range("edge[1-3]") == ["edge1", "edge2", "edge3"]
    assert expand_range("n[08-10]") == ["n08", "n09", "n10"]
    assert expand_range("plain") == ["plain"]


def test_units() -> None:
    assert duration_ms("25ms") == 25.0
    assert duration_ms("1.5s") == 1500.0
    assert duration_ms("500us") == 0.5
    assert rate_kbit("100mbit") == 100_000
    assert rate_kbit("1Gbit") == 1_000_000
    with pytest.raises(ValueError):
        duration_ms("50")


def test_delay_without_unit(base: dict[str, Any]) -> None:
    base["wan"]["default"]["delay"] = 50
    assert error_of(base) == (
        "exp.yaml: wan.default.delay: expected a duration like '25ms' (units: us, ms, s) "
        "(or a list of them: a sweep), got 50"
    )


def test_misspelled_key_names_path_and_suggestion(base: dict[str, Any]) -> None:
    base["wan"]["overrides"] = [{"src": "edge1", "dst": "core", "symetric": True}]
    msg = error_of(base)
    assert "wan.overrides[0].symetric: unknown key 'symetric'" in msg
    assert "did you mean 'symmetric'?" in msg


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["sites"][0]["hosts"][0].update(roles=["databse"]),
            "sites[0].hosts[0].roles[0]: expected one of database, keystone, load",
        ),
        (lambda d: d.update(provder={}), "provder: unknown key 'provder' (did you mean"),
        (
            lambda d: d["workload"]["scenarios"][0]["runner"].update(times="10"),
            "workload.scenarios[0].runner.times: expected an integer, got '10'",
        ),
        (
            lambda d: d["deployment"].update(keystone={"centralized": "nowhere"}),
            "deployment.keystone.centralized: expected one of the sites",
        ),
        (
            lambda d: d["deployment"].update(keystone="per_site"),
            "sites[1].hosts: site 'edge1' runs a Keystone",
        ),
        (
            lambda d: d["workload"]["scenarios"][0].update(to="edge1"),
            "workload.scenarios[0].to: site 'edge1' runs no Keystone",
        ),
        (lambda d: d.pop("name"), "name: missing required key"),
        (
            lambda d: d["workload"]["sla"].update(failure_rate_max=0.5),
            "workload.sla.failure_rate_max: expected a percentage",
        ),
        (
            lambda d: d["wan"]["default"].update(rate="10mbps"),
            "wan.default.rate: expected a rate like '100mbit'",
        ),
        (
            lambda d: d["wan"].update(overrides=[{"src": "edge9", "dst": "core"}]),
            "wan.overrides[0].src: no site matches 'edge9' (did you mean",
        ),
        (
            lambda d: d["sites"].append({"name": "core", "hosts": [{"name": "x", "roles": []}]}),
            "sites[2].name: site 'core' is defined twice",
        ),
        (
            lambda d: d["workload"]["scenarios"][0]["runner"].update(type="duration"),
            "workload.scenarios[0].runner.duration: missing required key",
        ),
        (lambda d: d["provider"].update(type="openstack"),
         "provider.type: expected one of local, static, g5k, vagrant, chameleon"),
        (
            lambda d: d["provider"].update(subnet="10.0.0.0/30"),
            "provider.subnet: 10.0.0.0/30 has room for 1 hosts",
        ),
        (lambda d: d["wan"].update(exclude=["nohost"]), "wan.exclude[0]: expected a host alias"),
        (
            lambda d: d["sites"][1]["hosts"][0].update(roles=["keystone"]),
            "site 'edge1' has a 'keystone' host but deployment.keystone is {centralized: core}",
        ),
    ],
)
def test_bad_files(base: dict[str, Any], mutate: Any, expected: str) -> None:
    doc = copy.deepcopy(base)
    mutate(doc)
    assert expected in error_of(doc)


def test_yaml_syntax_error(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("name: x\nsites: [\n")
    with pytest.raises(ExperimentError) as e:
        load(f)
    assert str(e.value).startswith(f"{f}: line ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="cannot read"):
        load(tmp_path / "nope.yaml")


def test_per_site_local_targets(base: dict[str, Any]) -> None:
    base["deployment"]["keystone"] = "per_site"
    for s in base["sites"]:
        for h in s["hosts"]:
            h["roles"] = ["database", "keystone", "load"]
    base["workload"]["scenarios"][0]["to"] = "local"
    exp = parse(base)
    assert exp.workload.scenarios[0].targets is None
    assert exp.deployment.keystone_sites(exp.site_names) == ["core", "edge1", "edge2"]
    assert exp.deployment.keystone_site_for("edge2") == "edge2"


def test_overrides_resolve_patterns(base: dict[str, Any]) -> None:
    base["wan"]["overrides"] = [{"src": "edge*", "dst": "core", "delay": "5ms", "symmetric": False}]
    exp = parse(base)
    o = exp.wan.overrides[0]
    assert o.src == ("edge1", "edge2") and o.dst == ("core",)
    assert o.link.delay_ms == 5.0 and not o.symmetric


def test_subnet_choice_avoids_used_networks() -> None:
    used = [ipaddress.IPv4Network("10.231.0.0/24"), ipaddress.IPv4Network("10.231.1.7/32")]
    assert str(choose_subnet(3, used)) == "10.231.2.0/24"
    assert choose_subnet(600, []).num_addresses >= 603


def test_short_id_is_stable_and_fits_interface_names() -> None:
    s = short_id("keystone-3sites-20261123-212400")
    assert s == short_id("keystone-3sites-20261123-212400")
    assert len(f"fv{s}9999") <= 15


def test_sweep_is_the_cartesian_product(base: dict[str, Any]) -> None:
    base["wan"] = {"default": {"delay": ["0ms", "50ms", "150ms"], "loss": ["0%", "1%"]},
                   "overrides": [{"src": "edge1", "dst": "core", "rate": ["10mbit", "1gbit"]}]}
    exp = parse(base)
    assert len(exp.points) == 12
    p = exp.points[5]
    assert p.id == "p5"
    assert p.params == {"wan.default.delay": "50ms", "wan.default.loss": "0%",
                        "wan.overrides[0].rate": "1gbit"}
    assert p.wan.default.delay_ms == 50.0 and p.wan.default.loss_pct == 0.0
    assert exp.points[7].params["wan.default.loss"] == "1%"
    assert p.wan.overrides[0].link.rate_kbit == 1_000_000
    # the override inherits the point's default delay
    assert p.wan.overrides[0].link.delay_ms == 50.0
    assert exp.wan == exp.points[0].wan


def test_no_sweep_is_one_point(base: dict[str, Any]) -> None:
    exp = parse(base)
    assert [(p.id, p.params) for p in exp.points] == [("p0", {})]


def test_sweep_values_are_checked(base: dict[str, Any]) -> None:
    base["wan"] = {"default": {"delay": ["0ms", 50]}}
    assert "wan.default.delay: expected a duration like '25ms'" in error_of(base)


def test_partition_fault(base: dict[str, Any]) -> None:
    base["workload"]["faults"] = [{"partition": "edge1", "at": "10s", "duration": "20s"}]
    f = parse(base).workload.faults[0]
    assert (f.kind, f.site, f.at_s, f.duration_s) == ("partition", "edge1", 10.0, 20.0)
    base["workload"]["faults"] = [{"partition": "edge9", "at": "10s", "duration": "20s"}]
    assert "workload.faults[0].partition: expected one of the sites" in error_of(base)
