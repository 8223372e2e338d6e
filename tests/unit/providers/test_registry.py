"""providers/__init__.py: every provider type the schema accepts has its entry, named
as the registry names it, with the ProviderType interface, and the hosts it opens have
the Hosts interface (up, exists, destroy)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from femdc_bench import providers
from femdc_bench.experiment import parse, schema
from tests.one_host import one_host_experiment


def test_the_schema_takes_the_registry_names() -> None:
    enum = schema.SCHEMA["properties"]["provider"]["properties"]["type"]["enum"]
    assert tuple(enum) == providers.NAMES == ("local", "static", "g5k", "vagrant", "chameleon")


@pytest.mark.parametrize("name", providers.NAMES)
def test_every_type_has_its_entry(name: str) -> None:
    kind = providers.get(name)
    assert kind.name == name
    for method in ("check", "plan", "open"):
        assert callable(getattr(kind, method))
    params = list(inspect.signature(kind.open).parameters)
    assert params == ["exp", "run_id", "run_dir"]


def test_only_the_local_hosts_cannot_run_docker() -> None:
    assert [n for n in providers.NAMES if not providers.get(n).docker_hosts] == ["local"]


def test_an_unknown_type_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        providers.get("openstack")


def test_local_opens_hosts_and_plans(tmp_path: Path) -> None:
    exp = parse(one_host_experiment())
    kind = providers.get(exp.provider.type)
    hosts = kind.open(exp, run_id="r1", run_dir=tmp_path)
    assert not hosts.exists()
    assert callable(hosts.up) and callable(hosts.destroy)
    plan = kind.plan(exp)
    assert plan.provider == "local" and [h.alias for h in plan.hosts] == [
        h.name for s in exp.sites for h in s.hosts]
