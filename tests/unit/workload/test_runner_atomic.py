"""Atomic actions: timed by the runner, one Sample each, never counted as iterations.

Fake scenario functions, no network.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from femdc_bench.model import RunnerSpec, Sample, SlaSpec
from femdc_bench.workload import runner
from femdc_bench.workload.registry import Registry
from femdc_bench.workload.runner import SampleTemplate, atomic, record, record_bytes, run_load
from femdc_bench.workload.scenarios.common import RepeatedBytes, pages
from femdc_bench.workload.sink import JsonlSink, iter_samples
from femdc_bench.workload.sla import evaluate

TEMPLATE = SampleTemplate(site="s1", target_site="s2", service="compute", operation="op", host="h")


class Collect:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.lock = threading.Lock()

    def __call__(self, s: Sample) -> None:
        with self.lock:
            self.samples.append(s)

    def iterations(self) -> list[Sample]:
        return [s for s in self.samples if not s.action]

    def actions(self, name: str | None = None) -> list[Sample]:
        return [s for s in self.samples if s.action and (name is None or s.action == name)]


def times(n: int, c: int = 1) -> RunnerSpec:
    return RunnerSpec(type="times", times=n, concurrency=c)


def two_steps(ctx: object) -> None:
    with atomic("x.first"):
        time.sleep(0.01)
    with atomic("x.second"):
        time.sleep(0.02)


def test_each_atomic_action_is_one_sample_of_its_iteration() -> None:
    out = Collect()
    r = run_load(two_steps, [None, None], times(6, 2), template=TEMPLATE, emit=out)
    assert r.count == 6 and r.errors == 0 and len(r.ok_durations_ms) == 6
    assert r.action_samples == 12 and len(out.samples) == 18
    assert sorted(s.iteration for s in out.iterations()) == list(range(6))
    by_it = {s.iteration: s for s in out.iterations()}
    for name, least_ms in (("x.first", 10.0), ("x.second", 20.0)):
        acts = out.actions(name)
        assert sorted(a.iteration for a in acts) == list(range(6))
        for a in acts:
            it = by_it[a.iteration]
            assert (a.site, a.target_site, a.service, a.operation, a.host, a.status) == (
                "s1",
                "s2",
                "compute",
                "op",
                "h",
                "ok",
            )
            assert a.duration_ms >= least_ms
            assert a.duration_ms <= it.duration_ms
            assert it.t0_ns <= a.t0_ns <= it.t0_ns + it.duration_ms * 1e6
    for i in range(6):
        first = next(a for a in out.actions("x.first") if a.iteration == i)
        second = next(a for a in out.actions("x.second") if a.iteration == i)
        assert first.t0_ns + first.duration_ms * 1e6 <= second.t0_ns + 1e6
        assert by_it[i].duration_ms >= first.duration_ms + second.duration_ms
        assert by_it[i].action == "" and by_it[i].fields == {}


def test_emit_order_iteration_then_actions_in_start_order() -> None:
    out = Collect()
    run_load(two_steps, [None], times(2), template=TEMPLATE, emit=out)
    assert [(s.iteration, s.action) for s in out.samples] == [
        (0, ""),
        (0, "x.first"),
        (0, "x.second"),
        (1, ""),
        (1, "x.first"),
        (1, "x.second"),
    ]


class Boom(Exception):
    http_status = 500


def test_failure_inside_an_action_marks_it_and_stops_the_iteration() -> None:
    def scenario(ctx: object) -> None:
        with atomic("x.ok"):
            pass
        with atomic("x.fails"):
            raise Boom("server said no")
        with atomic("x.never"):  # pragma: no cover - not reached
            pass

    out = Collect()
    r = run_load(scenario, [None], times(3), template=TEMPLATE, emit=out)
    assert (r.count, r.errors, r.action_samples) == (3, 3, 6)
    assert {s.action for s in out.samples} == {"", "x.ok", "x.fails"}  # never: not emitted
    assert all(s.status == "ok" for s in out.actions("x.ok"))
    for s in out.actions("x.fails") + out.iterations():
        assert s.status == "error" and s.error == "Boom (HTTP 500): server said no"


def test_failure_outside_actions_leaves_them_ok() -> None:
    def scenario(ctx: object) -> None:
        with atomic("x.step"):
            pass
        raise ValueError("check failed")

    out = Collect()
    run_load(scenario, [None], times(1), template=TEMPLATE, emit=out)
    (it,) = out.iterations()
    (act,) = out.actions()
    assert it.status == "error" and act.status == "ok" and act.error == ""


def test_nested_actions_record_fields_and_bytes() -> None:
    def scenario(ctx: object) -> None:
        record(tries=2)  # outside any action: the iteration's
        with atomic("glance.create_image"):
            with atomic("glance.upload_data"):
                time.sleep(0.02)
                record_bytes(500_000)
                record_bytes(500_000)
            record(polls=3)

    out = Collect()
    run_load(scenario, [None], times(1), template=TEMPLATE, emit=out)
    (it,) = out.iterations()
    (create,) = out.actions("glance.create_image")
    (upload,) = out.actions("glance.upload_data")
    assert it.fields == {"tries": 2.0}
    assert create.fields == {"polls": 3.0}
    assert create.t0_ns <= upload.t0_ns and upload.duration_ms <= create.duration_ms
    assert upload.fields["bytes"] == 1e6
    # 1 MB in upload.duration_ms: the rate comes from the runner's own measure
    assert upload.fields["mb_per_s"] == pytest.approx(1.0 / (upload.duration_ms / 1e3))
    assert upload.fields["mb_per_s"] < 1.0 / 0.02


def test_bytes_outside_actions_give_the_iteration_a_rate() -> None:
    def scenario(ctx: object) -> None:
        time.sleep(0.01)
        record_bytes(2_000_000)

    out = Collect()
    run_load(scenario, [None], times(1), template=TEMPLATE, emit=out)
    (it,) = out.samples
    assert it.fields["bytes"] == 2e6
    assert it.fields["mb_per_s"] == pytest.approx(2.0 / (it.duration_ms / 1e3))


@pytest.mark.parametrize(
    "fields",
    [{"Bad": 1.0}, {"duration_ms": 1.0}, {"action": 1.0}, {"x": "1"}, {"x": True},
     {"x": float("nan")}, {"mb_per_s": 3.0}],
)
def test_bad_fields_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        record(**fields)  # type: ignore[arg-type]


def test_bad_field_fails_the_iteration_not_the_load() -> None:
    def scenario(ctx: object) -> None:
        record(**{"status": 1.0})

    out = Collect()
    r = run_load(scenario, [None], times(2), template=TEMPLATE, emit=out)
    assert (r.count, r.errors) == (2, 2) and not r.worker_failures


def test_outside_the_load_everything_is_a_no_op() -> None:
    with atomic("x.setup") as a:
        record(n=1)
        record_bytes(10)
    assert a.name == "x.setup"
    with pytest.raises(ValueError):
        atomic("")
    with pytest.raises(RuntimeError), atomic("x.setup"):
        raise RuntimeError("propagates")


def test_atomic_actions_are_thread_local() -> None:
    """Concurrent workers: each iteration gets only its own actions."""

    def scenario(ctx: int) -> None:
        for k in range(3):
            with atomic(f"w{ctx}.step{k}"):
                time.sleep(0.001)

    out = Collect()
    r = run_load(scenario, [0, 1, 2, 3], times(40, 4), template=TEMPLATE, emit=out)
    assert r.count == 40 and r.action_samples == 120
    by_it: dict[int, set[str]] = {}
    for s in out.actions():
        by_it.setdefault(s.iteration, set()).add(s.action)
    for names in by_it.values():
        workers = {n.split(".")[0] for n in names}
        assert len(workers) == 1 and len(names) == 3


def test_context_forwards_to_the_runner() -> None:
    pytest.importorskip("keystoneauth1")
    from femdc_bench.workload.context import JobContext, WorkerContext

    assert WorkerContext.atomic is not None and JobContext.atomic is not None
    out = Collect()

    def scenario(ctx: object) -> None:
        with WorkerContext.atomic("x.via_ctx"):
            WorkerContext.record_bytes(100)
        JobContext.record(k=1)

    run_load(scenario, [None], times(1), template=TEMPLATE, emit=out)
    (it,) = out.iterations()
    (act,) = out.actions()
    assert act.action == "x.via_ctx" and act.fields["bytes"] == 100.0
    assert it.fields == {"k": 1.0}
    assert runner._running() is None  # cleared after the iteration


# --------------------------------------------------------------------------- counted once


def test_sla_counts_iterations_only() -> None:
    out = Collect()

    def scenario(ctx: object) -> None:
        with atomic("x.a"):
            pass
        with atomic("x.b"):
            pass

    run_load(scenario, [None], times(10), template=TEMPLATE, emit=out)
    assert len(out.samples) == 30
    v = evaluate(SlaSpec(failure_rate_max_pct=0), out.samples)
    assert v.passed and v.count == 10
    # a failed atomic action inside a successful iteration does not fail the SLA
    bad = Sample("s1", "s2", "compute", "op", 1, 1.0, "error", "x", "h", 0, "x.a")
    assert evaluate(SlaSpec(failure_rate_max_pct=0), [*out.samples, bad]).count == 10


def test_agent_summary_counts_iterations(tmp_path: object, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from femdc_bench.workload import agent, context
    from femdc_bench.workload.registry import REGISTRY

    class FakeJob:
        opened: tuple[str, ...] = ()

        def __init__(self, job: object) -> None:
            self.args: dict[str, object] = {}
            self.identity: object | None = None

        def open(self, services: tuple[str, ...] = ("identity",), cache: object = None) -> None:
            self.identity = object()
            FakeJob.opened = tuple(services)

        def worker(self, n: int) -> int:
            return n

        def close(self) -> None:
            pass

    monkeypatch.setattr(context, "JobContext", FakeJob)
    name = "test.atomic_agent"
    REGISTRY.scenario(name, service="compute", uses=("image",))(two_steps)
    try:
        spec = {
            "site": "s1",
            "host": "h1",
            "jobs": [
                {
                    "scenario": name,
                    "runner": {"type": "times", "times": 4, "concurrency": 2},
                    "target_site": "s1",
                    "auth": {
                        "auth_url": "http://127.0.0.1:9/v3",
                        "username": "admin",
                        "password": "pw",
                        "project_name": "admin",
                    },
                    "name_prefix": "femdc-t-",
                }
            ],
        }
        path = os.path.join(str(tmp_path), "SPEC.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        out = os.path.join(str(tmp_path), "SAMPLES.jsonl")
        assert agent.main(["--spec", path, "--out", out]) == agent.EXIT_OK
    finally:
        REGISTRY._scenarios.pop(name)
    assert FakeJob.opened == ("identity", "compute", "image")  # endpoints the job resolves
    summary = json.loads(capsys.readouterr().out)
    (j,) = summary["jobs"]
    assert (j["count"], j["errors"], j["action_samples"], summary["samples"]) == (4, 0, 8, 12)
    assert j["sla_local"]["passed"]
    samples = list(iter_samples(out, strict=True))
    assert sorted(s.action for s in samples) == [""] * 4 + ["x.first"] * 4 + ["x.second"] * 4


# --------------------------------------------------------------------------- sink


def test_sink_round_trips_actions_and_fields(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "out.jsonl")
    whole = Sample("s1", "s2", "image", "op", 10, 5.0, "ok", "", "h", 3)
    act = Sample(
        "s1", "s2", "image", "op", 11, 2.5, "ok", "", "h", 3, "glance.upload_data",
        {"bytes": 1e6, "mb_per_s": 400.0},
    )
    with JsonlSink(path) as sink:
        sink.emit(whole)
        sink.emit(act)
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    assert "action" not in lines[0] and "fields" not in lines[0]  # as before
    assert lines[1]["action"] == "glance.upload_data"
    assert list(iter_samples(path, strict=True)) == [whole, act]


def test_old_lines_without_action_still_load(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "old.jsonl")
    old = {
        "site": "s1", "target_site": "s1", "service": "identity",
        "operation": "authenticate_and_validate_token", "t0_ns": 1, "duration_ms": 2.0,
        "status": "ok", "error": "", "host": "h", "iteration": 0,
    }
    with open(path, "w") as f:
        f.write(json.dumps(old) + "\n")
    (s,) = iter_samples(path, strict=True)
    assert s.action == "" and s.fields == {} and s.operation == old["operation"]


# --------------------------------------------------------------------------- registry, helpers


def test_registry_services_and_qualified_operation() -> None:
    reg = Registry()

    @reg.scenario("Fam.do_it", service="compute", uses=("image", "compute"), qualified=True)
    def do_it(ctx: object) -> None:
        pass

    @reg.scenario("fam.plain", service="image")
    def plain(ctx: object) -> None:
        pass

    assert reg.get("Fam.do_it").services == ("identity", "compute", "image")
    assert reg.get("Fam.do_it").operation == "Fam.do_it"
    assert reg.get("fam.plain").operation == "plain"
    assert reg.get("fam.plain").services == ("identity", "image")


def test_all_scenarios_register_with_rally_names() -> None:
    pytest.importorskip("keystoneauth1")
    import femdc_bench.workload.scenarios  # noqa: F401
    from femdc_bench.workload.registry import REGISTRY

    for name in (
        "NovaServers.boot_server",
        "NovaServers.boot_and_delete_server",
        "NovaServers.boot_and_list_server",
        "GlanceImages.create_and_delete_image",
        "GlanceImages.create_and_list_image",
        "GlanceImages.create_and_download_image",
        "NeutronNetworks.create_and_list_networks",
        "NeutronNetworks.create_and_delete_networks",
        "NeutronNetworks.create_and_list_ports",
        "Placement.create_and_delete_resource_provider",
        "Placement.set_inventory_and_allocate",
        "KeystoneBasic.authenticate_user_and_validate_token",
        "KeystoneBasic.create_user",
        "KeystoneBasic.create_delete_user",
        "KeystoneBasic.create_and_list_tenants",
        "KeystoneBasic.create_and_list_users",
    ):
        sc = REGISTRY.get(name)
        assert sc.operation == name and sc.service in sc.services
    # the existing names keep their short operation (reports and e2e tests rely on it)
    assert REGISTRY.get("keystone.authenticate_and_validate_token").operation == (
        "authenticate_and_validate_token"
    )
    assert REGISTRY.get("NovaServers.boot_server").services == (
        "identity", "compute", "image", "network",
    )
    assert REGISTRY.get("NovaServers.boot_and_list_server").defaults["detailed"] is True


def test_repeated_bytes_body() -> None:
    block = bytes(range(256)) * 4
    body = RepeatedBytes(block, 2500)
    data = b"".join(body)
    assert len(body) == 2500 and len(data) == 2500
    assert data[:1024] == block and data[2048:] == block[:452]
    assert b"".join(body) == data  # iterable again (each upload)
    assert b"".join(RepeatedBytes(block, 2048)) == block * 2
    with pytest.raises(ValueError):
        RepeatedBytes(b"", 1)


class FakeResponse:
    def __init__(self, body: dict[str, object]) -> None:
        self.body = body

    def json(self) -> dict[str, object]:
        return self.body


class FakeAdapter:
    """Answers GETs from a dict of path -> body (pagination logic only)."""

    def __init__(self, bodies: dict[str, dict[str, object]]) -> None:
        self.bodies = bodies
        self.calls: list[str] = []

    def get(self, path: str, params: object = None) -> FakeResponse:
        self.calls.append(path)
        return FakeResponse(self.bodies[path])


def test_pages_follows_nova_and_glance_links() -> None:
    nova = FakeAdapter({
        "/servers": {"servers": [{"id": 1}], "servers_links": [
            {"rel": "next", "href": "http://n/v2.1/servers?marker=1"}]},
        "http://n/v2.1/servers?marker=1": {"servers": [{"id": 2}]},
    })
    assert [s["id"] for s in pages(nova, "/servers", "servers")] == [1, 2]  # type: ignore[arg-type]
    glance = FakeAdapter({
        "/images": {"images": [{"id": "a"}], "next": "/v2/images?marker=a"},
        "/images?marker=a": {"images": [{"id": "b"}]},
    })
    got = pages(glance, "/images", "images", strip_prefix="/v2")  # type: ignore[arg-type]
    assert [i["id"] for i in got] == ["a", "b"] and glance.calls[1] == "/images?marker=a"
