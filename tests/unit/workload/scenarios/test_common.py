"""Rally's resource-type arguments (image, flavor, network): checks and lookup rules."""

from __future__ import annotations

import pytest

from femdc_bench.workload.scenarios.common import check_resource_arg, match_resource

IMAGES = [
    {"id": "a", "name": "cirros-0.5.2-x86_64-disk", "created_at": "2026-01-01T00:00:00Z"},
    {"id": "b", "name": "cirros-0.6.2-x86_64-disk", "created_at": "2026-06-01T00:00:00Z"},
    {"id": "c", "name": "ubuntu", "created_at": "2026-03-01T00:00:00Z"},
    {"id": "d", "name": "twin"}, {"id": "e", "name": "twin"},
]


@pytest.mark.parametrize(("spec", "expected"), [
    ("c", "c"),                                   # an id
    ("ubuntu", "c"),                              # a name
    ({"id": "a"}, "a"),
    ({"name": "ubuntu"}, "c"),                    # exact
    ({"name": "^cirros.*-disk$"}, "b"),           # no exact match: regex, newest wins
    ({"regex": "0\\.5"}, "a"),
])
def test_match(spec: object, expected: str) -> None:
    assert match_resource("image", spec, IMAGES) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "twin"}, "ambiguous"),
    ({"name": "^cirros", "accurate": True}, "not found"),
    ({"regex": "^fedora"}, "no image matching"),
    ({"id": "zz"}, "not found"),
    ("fedora", "not found"),
])
def test_no_match(spec: object, message: str) -> None:
    with pytest.raises(LookupError, match=message):
        match_resource("image", spec, IMAGES)


@pytest.mark.parametrize("value", [None, "m1.tiny", {"name": "m1.tiny"}, {"id": "1"},
                                   {"regex": "^m1"}, {"name": "x", "accurate": True}])
def test_accepted(value: object) -> None:
    check_resource_arg("flavor", value)


@pytest.mark.parametrize("value", ["", 42, {}, {"name": "a", "id": "b"}, {"uuid": "x"},
                                   {"regex": "("}, {"name": 3}])
def test_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="arg 'flavor'"):
        check_resource_arg("flavor", value)


def test_a_task_with_a_bad_resource_arg_fails_at_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from femdc_bench.workload.rally_task import TaskError, load

    (tmp_path / "t.yaml").write_text(
        "version: 2\nsubtasks:\n- title: b\n  scenario:\n    NovaServers.boot_server:\n"
        "      flavor: {name: m1.tiny}\n      image: {uuid: x}\n")
    with pytest.raises(TaskError) as e:
        load(tmp_path / "t.yaml")
    assert e.value.path == "subtasks[0].scenario.NovaServers.boot_server.args"
    assert "arg 'image': unsupported key(s) uuid" in e.value.message


def test_rally_args_of_the_nova_and_neutron_samples_are_accepted() -> None:
    import femdc_bench.workload.scenarios  # noqa: F401  (registers)
    from femdc_bench.workload.registry import REGISTRY

    nova = REGISTRY.get("NovaServers.boot_and_delete_server").resolve_args(
        {"flavor": {"name": "m1.tiny"}, "image": {"name": "^cirros.*-disk$"},
         "force_delete": False, "auto_assign_nic": True})
    assert nova["force_delete"] is False
    ports = REGISTRY.get("NeutronNetworks.create_and_list_ports").resolve_args(
        {"network_create_args": {}, "port_create_args": {}, "ports_per_network": 10})
    assert ports["ports_per_network"] == 10
    with pytest.raises(ValueError, match="ports_per_network"):
        REGISTRY.get("NeutronNetworks.create_and_list_ports").resolve_args(
            {"ports_per_network": 0})
    with pytest.raises(ValueError, match="network_create_args"):
        REGISTRY.get("NeutronNetworks.create_and_list_networks").resolve_args(
            {"network_create_args": "vxlan"})
