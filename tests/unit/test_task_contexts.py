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
