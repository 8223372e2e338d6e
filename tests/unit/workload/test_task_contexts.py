"""Rally's users/roles contexts: validation and which user an iteration runs as."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from femdc_bench.workload.rally_task import TaskError, load
from femdc_bench.workload.task_contexts import (
    ContextError,
    ContextUser,
    ContextUsers,
    validate,
)


def test_defaults_as_rally() -> None:
    assert validate({"users": {}}) == {"users": {
        "tenants": 1, "users_per_tenant": 1, "resource_management_workers": 1,
        "user_choice_method": "random"}}
    got = validate({"users": {"tenants": 3, "users_per_tenant": 2,
                              "user_choice_method": "round_robin"}, "roles": ["reader"]})
    assert got["users"]["tenants"] == 3 and got["roles"] == ["reader"]


@pytest.mark.parametrize(("contexts", "path"), [
    ({"users": {"tenants": 0}}, "users.tenants"),
    ({"users": {"tennants": 2}}, "users.tennants"),
    ({"users": {"user_choice_method": "first"}}, "users.user_choice_method"),
    ({"users": {"project_domain": "other"}}, "users.project_domain"),
    ({"roles": ["reader"]}, "roles"),
    ({"users": {}, "roles": "reader"}, "roles"),
    ({"quotas": {}}, "quotas"),
])
def test_bad_contexts(contexts: dict, path: str) -> None:
    with pytest.raises(ContextError) as e:
        validate(contexts)
    assert e.value.path == path


def _users(t: int, u: int, method: str) -> ContextUsers:
    by = {f"p{i}": [ContextUser(f"u{i}{j}", f"n{i}{j}", f"p{i}", "pw") for j in range(u)]
          for i in range(t)}
    return ContextUsers(by, method)


def test_round_robin_is_rallys_formula() -> None:
    users = _users(3, 2, "round_robin")
    picked = [users.pick(i).id for i in range(7)]
    # iteration i: project i % 3, its user (i // 3) % 2
    assert picked == ["u00", "u10", "u20", "u01", "u11", "u21", "u00"]


def test_random_uses_every_user() -> None:
    users = _users(2, 2, "random")
    counts = Counter(users.pick(i).id for i in range(400))
    assert set(counts) == {"u00", "u01", "u10", "u11"}


def test_task_contexts_are_checked_with_their_path(tmp_path: Path) -> None:
    doc = {"version": 2, "subtasks": [{
        "scenario": {"KeystoneBasic.add_and_remove_user_role": {}},
        "contexts": {"users": {"tenants": 2, "users_per_tenant": "two"}}}]}
    (tmp_path / "t.json").write_text(json.dumps(doc))
    with pytest.raises(TaskError) as e:
        load(tmp_path / "t.json")
    assert e.value.path == "subtasks[0].contexts.users.users_per_tenant"
    doc["subtasks"][0]["contexts"] = {"admin_cleanup": ["keystone"]}
    (tmp_path / "t.json").write_text(json.dumps(doc))
    with pytest.raises(TaskError) as e:
        load(tmp_path / "t.json")
    assert e.value.path == "subtasks[0].contexts"
    assert "needs the users context" in e.value.message
    doc["subtasks"][0]["contexts"] = {"users": {"tenants": 3, "users_per_tenant": 2}}
    (tmp_path / "t.json").write_text(json.dumps(doc))
    (w,) = load(tmp_path / "t.json").workloads
    assert w.contexts["users"]["tenants"] == 3


@pytest.mark.parametrize(("contexts", "path"), [
    ({"users": {}, "quotas": {"manila": {"shares": 1}}}, "quotas.manila"),
    ({"users": {}, "quotas": {"nova": {"instance": -1}}}, "quotas.nova.instance"),
    ({"users": {}, "quotas": {"neutron": {"network": -2}}}, "quotas.neutron.network"),
    ({"users": {}, "quotas": {"neutron": {"network": "-1"}}}, "quotas.neutron.network"),
    ({"users": {}, "quotas": {"nova": [1]}}, "quotas.nova"),
    ({"quotas": {"nova": {"instances": -1}}}, "quotas"),
])
def test_bad_quotas(contexts: dict, path: str) -> None:
    with pytest.raises(ContextError) as e:
        validate(contexts)
    assert e.value.path == path


class _Api:
    """Records admin requests (the quotas context's PUTs)."""

    def __init__(self, service: str, log: list) -> None:
        self.service, self.log = service, log

    def put(self, path: str, json: dict, raise_exc: bool = True) -> object:
        self.log.append((self.service, path, json))
        return type("R", (), {"status_code": 200, "text": ""})()


class _Job:
    def __init__(self) -> None:
        self.log: list = []
        self.tracked: list = []

    def admin(self, service: str) -> _Api:
        return _Api(service, self.log)

    def track(self, collection: str, rid: str, service: str) -> None:
        self.tracked.append((service, collection, rid))


def test_quotas_are_set_per_project_and_tracked_for_teardown() -> None:
    from femdc_bench.workload.context import TEARDOWN_ORDER
    from femdc_bench.workload.task_contexts import set_quotas

    job = _Job()
    q = validate({"users": {}, "quotas": {"nova": {"instances": -1, "cores": 8},
                                          "neutron": {"network": -1}}})["quotas"]
    set_quotas(job, q, ["p1", "p2"])
    assert job.log == [
        ("compute", "/os-quota-sets/p1", {"quota_set": {"instances": -1, "cores": 8}}),
        ("compute", "/os-quota-sets/p2", {"quota_set": {"instances": -1, "cores": 8}}),
        ("network", "/quotas/p1", {"quota": {"network": -1}}),
        ("network", "/quotas/p2", {"quota": {"network": -1}})]
    # deleted (back to the defaults) at teardown, after the resources, before projects
    assert ("compute", "/os-quota-sets", "p1") in job.tracked
    order = [k for k in TEARDOWN_ORDER]
    assert order.index(("compute", "/os-quota-sets")) > order.index(("compute", "/servers"))


@pytest.mark.parametrize(("contexts", "path"), [
    ({"users": {}, "network": {"router": {"external": True}}}, "network.router"),
    ({"users": {}, "network": {"start_cidr": "10.2.0.0/30"}}, "network.start_cidr"),
    ({"users": {}, "network": {"start_cidr": "fd00::/64"}}, "network.start_cidr"),
    ({"users": {}, "network": {"networks_per_tenant": 0}}, "network.networks_per_tenant"),
    ({"network": {}}, "network"),
])
def test_bad_network_context(contexts: dict, path: str) -> None:
    with pytest.raises(ContextError) as e:
        validate(contexts)
    assert e.value.path == path


class _NetApi:
    def __init__(self, log: list) -> None:
        self.log, self.n = log, 0

    def post(self, path: str, json: dict) -> object:
        self.n += 1
        self.log.append((path, json))
        kind = path.strip("/")[:-1]
        body = {kind: {"id": f"{kind}{self.n}"}}
        return type("R", (), {"json": lambda _self: body})()


class _NetJob(_Job):
    def __init__(self) -> None:
        super().__init__()
        self.api = _NetApi(self.log)
        self.names = 0

    def admin(self, service: str) -> _NetApi:  # type: ignore[override]
        assert service == "network"
        return self.api

    def new_name(self) -> str:
        self.names += 1
        return f"femdc-t-{self.names}"


def test_network_context_gives_each_project_its_networks_and_subnets() -> None:
    from femdc_bench.workload.task_contexts import make_networks, subnet_cidrs

    assert subnet_cidrs("10.2.0.0/24", 3) == ["10.2.0.0/24", "10.2.1.0/24", "10.2.2.0/24"]
    cfg = validate({"users": {}, "network": {"networks_per_tenant": 1,
                                             "subnets_per_network": 2,
                                             "network_create_args": {"mtu": 1400}}})
    job = _NetJob()
    nets = make_networks(job, cfg["network"], ["pa", "pb"])
    assert list(nets) == ["pa", "pb"] and all(len(v) == 1 for v in nets.values())
    subnets = [b["subnet"] for p, b in job.log if p == "/subnets"]
    assert [s["cidr"] for s in subnets] == [
        "10.2.0.0/24", "10.2.1.0/24", "10.2.2.0/24", "10.2.3.0/24"]
    assert [s["project_id"] for s in subnets] == ["pa", "pa", "pb", "pb"]
    networks = [b["network"] for p, b in job.log if p == "/networks"]
    assert all(n["mtu"] == 1400 for n in networks)
    assert [n["project_id"] for n in networks] == ["pa", "pb"]
    # everything tracked: deleted at teardown (subnets, then networks: TEARDOWN_ORDER)
    assert sorted(c for _, c, _ in job.tracked) == ["/networks"] * 2 + ["/subnets"] * 4
    users = ContextUsers({"pa": [ContextUser("u", "n", "pa", "pw")]}, networks=nets)
    assert users.network_of(users.by_project["pa"][0]) == nets["pa"][0]
    assert users.network_of(ContextUser("v", "m", "other", "pw")) is None
