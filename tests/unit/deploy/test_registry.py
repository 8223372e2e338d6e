"""deploy/__init__.py: every method the schema accepts has its entry with the Method
interface; deploy and destroy take the same arguments for every method; the checks of
one method are its own (refuse_others for what belongs to another)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from femdc_bench import deploy
from femdc_bench.experiment import ExperimentError, schema


def test_the_schema_takes_the_registry_names() -> None:
    method = schema.SCHEMA["properties"]["deployment"]["properties"]["method"]
    assert tuple(method["enum"]) == deploy.NAMES == ("native", "devstack", "kolla")


@pytest.mark.parametrize("name", deploy.NAMES)
def test_every_method_has_its_entry(name: str) -> None:
    m = deploy.get(name)
    assert m.name == name
    assert isinstance(m.tls, bool) and isinstance(m.service_faults, bool)
    for attr in ("options", "validate", "validate_hosts", "deploy", "destroy"):
        assert callable(getattr(m, attr))


@pytest.mark.parametrize("step", ["deploy", "destroy", "options", "validate",
                                  "validate_hosts"])
def test_every_method_takes_the_same_arguments(step: str) -> None:
    signatures = {name: inspect.signature(getattr(deploy.get(name), step))
                  for name in deploy.NAMES}
    assert len({str(s) for s in signatures.values()}) == 1, signatures


def test_only_native_has_tls_and_service_faults() -> None:
    assert [n for n in deploy.NAMES if deploy.get(n).tls] == ["native"]
    assert [n for n in deploy.NAMES if deploy.get(n).service_faults] == ["native"]


@pytest.mark.parametrize(("method", "doc", "expected"), [
    ("native", {"devstack": {}}, "deployment.devstack: only with deployment.method "
                                 "devstack, got 'native'"),
    ("native", {"kolla": {}}, "deployment.kolla: only with method 'kolla'"),
    ("devstack", {"kolla": {}}, "deployment.kolla: only with method 'kolla'"),
    ("kolla", {"devstack": {}}, "deployment.devstack: only with deployment.method "
                                "devstack, got 'kolla'"),
    ("kolla", {"tls": True}, "deployment.tls: supported by method native only, got 'kolla'"),
])
def test_refuse_others(method: str, doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(ExperimentError) as e:
        deploy.refuse_others("x.yaml", doc, deploy.get(method))
    assert str(e.value).startswith(f"x.yaml: {expected}")


def test_refuse_others_lets_the_own_section_through() -> None:
    deploy.refuse_others("x.yaml", {"devstack": {}}, deploy.get("devstack"))
    deploy.refuse_others("x.yaml", {"kolla": {}, "tls": False}, deploy.get("kolla"))
    deploy.refuse_others("x.yaml", {"tls": True}, deploy.get("native"))
