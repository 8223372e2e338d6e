"""JobContext logic that needs no cloud: endpoint errors, teardown order, waits."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("keystoneauth1")

from keystoneauth1 import access  # noqa: E402

from femdc_bench.model import RunnerSpec  # noqa: E402
from femdc_bench.workload.context import (  # noqa: E402
    MICROVERSIONS,
    JobContext,
    SetupError,
)
from femdc_bench.workload.errors import ResourceFailed, WaitTimeout, wait_for  # noqa: E402
from femdc_bench.workload.spec import AuthSpec, JobSpec  # noqa: E402


def job(region: str | None = "site1") -> JobContext:
    spec = JobSpec(
        scenario="NovaServers.boot_server",
        runner=RunnerSpec(type="times", times=1),
        target_site="site1",
        auth=AuthSpec(
            auth_url="http://127.0.0.1:9/v3",
            username="admin",
            password="pw",
            project_name="admin",
            region_name=region,
        ),
        name_prefix="femdc-t-",
    )
    return JobContext(spec)


def token_with_catalog(services: dict[str, str], region: str = "site1") -> access.AccessInfoV3:
    """A token body as Keystone returns it (the catalog is plain data)."""
    catalog = [
        {
            "type": t,
            "id": t,
            "endpoints": [
                {"interface": "public", "region": region, "region_id": region, "url": url,
                 "id": f"{t}-pub"}
            ],
        }
        for t, url in services.items()
    ]
    body = {
        "token": {
            "methods": ["password"],
            "expires_at": "2999-01-01T00:00:00.000000Z",
            "user": {"id": "u", "name": "admin", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p", "name": "admin",
                        "domain": {"id": "default", "name": "Default"}},
            "catalog": catalog,
        }
    }
    return access.create(body=body, auth_token="tok")


def test_missing_endpoint_names_service_type_and_region() -> None:
    jc = job()
    jc.access = token_with_catalog({"identity": "http://127.0.0.1:9/v3"})
    with pytest.raises(SetupError) as e:
        jc.resolve("compute")
    assert "no compute endpoint" in str(e.value) and "region site1" in str(e.value)
    # in another region it is missing too
    jc2 = job(region="site2")
    jc2.access = token_with_catalog({"compute": "http://127.0.0.1:9/v2.1"})
    with pytest.raises(SetupError, match="no compute endpoint.*region site2"):
        jc2.resolve("compute")


def test_adapters_need_a_resolved_endpoint_and_carry_microversions() -> None:
    jc = job()
    with pytest.raises(SetupError, match="network"):
        jc.adapter(jc.session, "network")
    jc.endpoints.update(identity="http://k/v3", compute="http://c/v2.1", placement="http://p",
                        image="http://i/v2")
    assert jc.adapter(jc.session, "compute").default_microversion == MICROVERSIONS["compute"]
    assert jc.adapter(jc.session, "placement").default_microversion == "1.39"
    assert jc.adapter(jc.session, "image").default_microversion is None
    w = jc.worker(0)
    assert w.api("compute") is w.api("compute")  # one adapter per worker and service type
    assert w.api("compute").endpoint_override == "http://c/v2.1"
    jc.close()


def test_microversions_are_explicit() -> None:
    for v in MICROVERSIONS.values():
        major, minor = v.split(".")
        assert major.isdigit() and minor.isdigit()


def test_teardown_order() -> None:
    jc = job()
    jc.track("/users", "u1")
    jc.track("/resource_providers", "rp1", "placement")
    jc.track("/networks", "n1", "network")
    jc.track("/images", "i1", "image")
    jc.track("/servers", "s1", "compute")
    jc.track("/subnets", "sn1", "network")
    jc.track("/flavors", "f1", "compute")
    jc.track("/ports", "p1", "network")
    jc.track("/servers", "s2", "compute")
    jc.track("/allocations", "c1", "placement")
    jc.track("/projects", "pr1")
    assert [r[2] for r in jc.teardown_plan()] == [
        "s2", "s1", "p1", "sn1", "n1", "i1", "f1", "c1", "rp1", "pr1", "u1",
    ]
    jc.untrack("/servers", "s1", "compute")
    assert ("compute", "/servers", "s1") not in jc.tracked()
    jc.close()


def test_wait_for_returns_fails_and_times_out() -> None:
    states = iter(["BUILD", "BUILD", "ACTIVE"])
    got = wait_for(lambda: {"status": next(states)}, lambda v: v["status"] == "ACTIVE",
                   what="server x", timeout_s=5, poll_s=0.001)
    assert got == {"status": "ACTIVE"}
    with pytest.raises(ResourceFailed, match="server x: fault here"):
        wait_for(lambda: {"status": "ERROR"}, lambda v: False,
                 failed=lambda v: "fault here", what="server x", timeout_s=5, poll_s=0.001)
    t = time.monotonic()
    with pytest.raises(WaitTimeout, match="still 'BUILD' after 0.05 s"):
        wait_for(lambda: {"status": "BUILD"}, lambda v: False, what="server x",
                 timeout_s=0.05, poll_s=0.01)
    assert time.monotonic() - t < 1.0
    calls: list[float] = []
    wait_for(lambda: calls.append(time.monotonic()) or True, lambda v: True, what="x",
             timeout_s=5, poll_s=10, delay_first=False)  # no sleep before the first look
    assert len(calls) == 1
