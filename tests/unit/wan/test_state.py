"""A bench of the point whose WAN is on the hosts does not re-apply the same plan; any
other change (another point, another plan, a removal, a fault, a forced apply) does.
The appliers are replaced by recorders: this is the bookkeeping only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from femdc_bench.model import Host, Inventory
from femdc_bench.rundir import Run
from femdc_bench.wan import state as wan_state

EXP = {
    "name": "t", "provider": {"type": "local"},
    "sites": [{"name": "s1", "hosts": [{"name": "h", "roles": ["database", "keystone",
                                                                "load"]}]},
              {"name": "s2", "hosts": [{"name": "h", "roles": ["load"]}]}],
    "deployment": {"method": "native", "keystone": {"centralized": "s1"}},
    "wan": {"default": {"delay": ["10ms", "20ms"]}},
    "workload": {"scenarios": [{"name": "keystone.list_users",
                                "runner": {"type": "times", "times": 2}}]},
}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Run, list[str]]:
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(EXP))
    r = Run.create(f, tmp_path / "results", run_id="r1")
    r.save_inventory(Inventory(provider="local", hosts=(
        Host("s1-h", "10.0.0.1", "s1", ("database", "keystone", "load")),
        Host("s2-h", "10.0.0.2", "s2", ("load",)))))
    calls: list[str] = []

    def apply(p: Any, **kw: Any) -> None:
        calls.append(f"apply {p.rule_count}")

    monkeypatch.setattr(wan_state.wan_apply, "apply", apply)
    monkeypatch.setattr(wan_state.wan_apply, "remove", lambda *a, **k: calls.append("remove"))
    monkeypatch.setattr(wan_state, "choose_emulator", lambda *a: "userspace")
    return r, calls


def test_the_same_plan_is_applied_once(run: tuple[Run, list[str]]) -> None:
    r, calls = run
    wan_state.emulate(r, "p0", force=False)
    wan_state.emulate(Run.open(str(r.dir)), "p0", force=False)  # from state.json, as a new CLI
    assert len(calls) == 1
    wan_state.emulate(r, "p1", force=False)  # another point
    wan_state.emulate(r, "p0", force=False)
    assert len(calls) == 3
    wan_state.emulate(r, "p0")  # `emulate --apply`
    assert len(calls) == 4


def test_a_removal_or_a_fault_means_applying_again(run: tuple[Run, list[str]]) -> None:
    r, calls = run
    wan_state.emulate(r, "p0", force=False)
    wan_state.remove_wan(r)
    wan_state.emulate(r, "p0", force=False)
    assert calls[1:] == ["remove", calls[0]]
    r.state.wan_plan_sha = None  # what FaultInjector.start records before cutting a link
    wan_state.emulate(r, "p0", force=False)
    assert len([c for c in calls if c.startswith("apply")]) == 3


def test_a_failed_apply_is_not_taken_as_applied(run: tuple[Run, list[str]],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    r, calls = run

    def broken(p: Any, **kw: Any) -> None:
        raise RuntimeError("ssh down")

    monkeypatch.setattr(wan_state.wan_apply, "apply", broken)
    with pytest.raises(RuntimeError):
        wan_state.emulate(r, "p0", force=False)
    assert Run.open(str(r.dir)).state.wan_point is None


def test_phases_and_wan_changes_are_events_in_time_order(run: tuple[Run, list[str]]) -> None:
    r, _ = run
    wan_state.emulate(r, "p1", force=False)
    wan_state.remove_wan(r)
    with pytest.raises(RuntimeError), r.phase("bench@p1"):
        raise RuntimeError("boom")
    with (r.dir / "events.jsonl").open("a") as f:
        f.write('{"t": 1, "kind": "pha')  # a torn last line (a crash): skipped
    evs = Run.open(str(r.dir)).events()
    assert [(e["kind"], e["phase"], e.get("point"), e["text"].split(":")[0]) for e in evs] == [
        ("phase", "emulate", "p1", "start"),
        ("wan", "emulate", "p1", "WAN of p1 applied"),
        ("phase", "emulate", "p1", "done"),
        ("wan", "emulate", None, "WAN emulation removed"),
        ("phase", "bench", "p1", "start"),
        ("phase", "bench", "p1", "failed"),
    ]
    assert [e["t"] for e in evs] == sorted(e["t"] for e in evs)
    assert isinstance(evs[2]["seconds"], float)


class _Passed:
    ok = True

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": []}

    def failures(self) -> list[str]:
        return []


def _passing_check(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    measured: list[str] = []
    monkeypatch.setattr(wan_state.wan_apply, "measure",
                        lambda *a, **k: measured.append("measure") or {})
    monkeypatch.setattr(wan_state.wan_check, "compare", lambda *a, **k: _Passed())
    monkeypatch.setattr(wan_state, "metrics_target", lambda *a: (None, None))
    monkeypatch.setattr(wan_state, "store_wan", lambda *a: None)
    return measured


def test_a_passing_check_holds_until_the_rules_change(run: tuple[Run, list[str]],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    r, _ = run
    _passing_check(monkeypatch)
    wan_state.emulate(r, "p0", force=False)
    assert wan_state.reusable_check(r, "p0") is None  # applied, never measured
    wan_state.check_wan(r, "p0")
    age = wan_state.reusable_check(Run.open(str(r.dir)), "p0")  # from state.json
    assert age is not None and 0 <= age < 5
    assert wan_state.reusable_check(r, "p1") is None  # another point's
    wan_state.emulate(r, "p0", force=False)  # same plan, nothing re-applied: still holds
    assert wan_state.reusable_check(r, "p0") is not None
    assert wan_state.reusable_check(r, "p0", max_age_s=-1) is None  # too old

    wan_state.remove_wan(r)
    assert wan_state.reusable_check(r, "p0") is None
    wan_state.emulate(r, "p0", force=False)
    wan_state.check_wan(r, "p0")
    wan_state.emulate(r, "p0")  # re-applied (`emulate --apply`): measured again
    assert wan_state.reusable_check(r, "p0") is None

    wan_state.check_wan(r, "p0")
    wan_state.wan_touched(r)  # what FaultInjector.start does before cutting a link
    assert wan_state.reusable_check(r, "p0") is None


def test_a_failed_check_is_not_reused(run: tuple[Run, list[str]],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    r, _ = run
    _passing_check(monkeypatch)
    wan_state.emulate(r, "p0", force=False)
    wan_state.check_wan(r, "p0")
    monkeypatch.setattr(_Passed, "ok", False)
    monkeypatch.setattr(wan_state, "WAN_CHECK_ATTEMPTS", 1)
    with pytest.raises(wan_state.WanCheckError):
        wan_state.check_wan(r, "p0")
    assert wan_state.reusable_check(r, "p0") is None
