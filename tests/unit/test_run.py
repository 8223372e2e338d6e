"""run.py, the pipeline: the phase order, what is skipped when done, the teardown after
a failure or Ctrl-C, and a failed point that does not stop the others. The steps are
replaced by recorders (each has its own tests and the e2e tests run them for real)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from femdc_bench import run as pipeline
from femdc_bench.report.assemble import Report
from femdc_bench.rundir import Progress, Run
from femdc_bench.teardown import DestroyReport
from tests.one_host import one_host_experiment


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lines: list[str] = []

    def ui(self) -> pipeline.Ui:
        @contextmanager
        def step(title: str) -> Iterator[Progress]:
            self.lines.append(f"step {title}")
            yield lambda msg: None

        return pipeline.Ui(step=step, say=lambda h, r, s: self.lines.append(f"{h} {r}".strip()),
                           wan_matrix=lambda run, p: self.calls.append(f"matrix {p}"),
                           report=lambda run, rep: self.calls.append("shown"))


@pytest.fixture
def rec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Run, Recorder]:
    doc = one_host_experiment({"influxdb": "local"})
    doc["wan"] = {"default": {"delay": ["0ms", "10ms"]}}
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(doc))
    run = Run.create(f, tmp_path / "results", run_id="r1")
    r = Recorder()

    def step(name: str, result: Any = None) -> Any:
        def call(run: Run, *args: Any, **kw: Any) -> Any:
            point = next((a for a in args if isinstance(a, str) and a.startswith("p")), "")
            r.calls.append(f"{name} {point}".strip())
            if name == "bench":
                with run.phase(f"bench@{point}"):
                    pass
            return result
        return call

    monkeypatch.setattr(pipeline, "up", step("up"))
    monkeypatch.setattr(pipeline, "deploy", step("deploy"))
    monkeypatch.setattr(pipeline.wan, "emulate", step("emulate"))
    monkeypatch.setattr(pipeline.wan, "check_wan", step("check"))
    monkeypatch.setattr(pipeline.wan, "reusable_check", lambda run, p: None)
    monkeypatch.setattr(pipeline.controller, "bench", step("bench", 2))
    monkeypatch.setattr(pipeline.store, "spool_waiting", lambda run: 0)
    monkeypatch.setattr(pipeline.assemble, "report", step("report", Report([], {}, [])))
    monkeypatch.setattr(pipeline.backup, "backup", step(
        "backup", SimpleNamespace(path="b.tar.gz", points={"api": 2}, files=3)))
    monkeypatch.setattr(pipeline.teardown, "destroy", step("destroy", DestroyReport()))
    monkeypatch.setattr(pipeline.recovery, "interrupt", step("interrupt"))
    return run, r


POINTS = ["emulate p0", "check p0", "bench p0", "emulate p1", "check p1", "bench p1"]


def test_a_run_goes_through_the_phases_in_order(rec: tuple[Run, Recorder]) -> None:
    run, r = rec
    out = pipeline.run_experiment(run, r.ui(), keep=False)
    assert r.calls == ["up", "deploy", *POINTS, "report", "shown", "backup", "destroy"]
    assert out.failed_points == [] and out.report is not None
    assert "b.tar.gz: 2 points, 3 files" in r.lines


def test_kept_runs_stay_and_done_phases_are_skipped(rec: tuple[Run, Recorder]) -> None:
    run, r = rec
    for name in ("up", "deploy", "bench@p0"):
        with run.phase(name):
            pass
    pipeline.run_experiment(run, r.ui(), keep=True)
    assert r.calls == [*POINTS[3:], "report", "shown", "backup"]
    assert "- up: already done" in r.lines and "- p0: already done" in r.lines


def test_a_failed_phase_tears_down_unless_kept(rec: tuple[Run, Recorder],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run, r = rec

    def broken(run: Run, progress: Progress) -> None:
        r.calls.append("deploy")
        raise OSError("no space left")

    monkeypatch.setattr(pipeline, "deploy", broken)
    with pytest.raises(OSError, match="no space left"):
        pipeline.run_experiment(run, r.ui(), keep=False)
    assert r.calls == ["up", "deploy", "destroy"]
    r.calls.clear()
    with pytest.raises(OSError):
        pipeline.run_experiment(run, r.ui(), keep=True)
    assert r.calls == ["up", "deploy"]


def test_ctrl_c_stops_the_load_keeps_its_samples_then_tears_down(
        rec: tuple[Run, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    run, r = rec

    def interrupted(run: Run, *a: Any, **kw: Any) -> None:
        r.calls.append("bench")
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.controller, "bench", interrupted)
    with pytest.raises(pipeline.Interrupted):
        pipeline.run_experiment(run, r.ui(), keep=False)
    assert r.calls == ["up", "deploy", "emulate p0", "check p0", "bench", "interrupt",
                       "destroy"]
    assert f"results kept in {run.dir}" in r.lines
    r.calls.clear()
    with pytest.raises(KeyboardInterrupt):  # `bench`: the deployment stays
        pipeline.bench_points(run, ["p1"], r.ui())
    assert r.calls == ["emulate p1", "check p1", "matrix p1", "bench", "interrupt"]


def test_a_failed_point_does_not_stop_the_others(rec: tuple[Run, Recorder],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run, r = rec

    def off_target(run: Run, point: str, progress: Progress) -> None:
        r.calls.append(f"check {point}")
        if point == "p0":
            raise pipeline.wan.WanCheckError("WAN at p0 is off target: s1->s1 12 ms")

    monkeypatch.setattr(pipeline.wan, "check_wan", off_target)
    out = pipeline.bench_points(run, [], r.ui())
    assert r.calls == ["emulate p0", "check p0", "matrix p0", "emulate p1", "check p1",
                       "matrix p1", "bench p1", "report", "shown"]
    assert out.failed_points == ["p0: WAN at p0 is off target: s1->s1 12 ms"]
    assert "point p0 failed: WAN at p0 is off target: s1->s1 12 ms" in r.lines


def test_a_check_that_still_holds_is_reused(rec: tuple[Run, Recorder],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    run, r = rec
    monkeypatch.setattr(pipeline.wan, "reusable_check", lambda run, p: 42.0)
    pipeline.run_points(run, ["p1"], r.ui(), show_matrix=False)
    assert r.calls == ["emulate p1", "bench p1"]
    assert any(line.startswith("✓ WAN check of p1 reused: passed 42 s ago") for line in r.lines)
    pipeline.run_points(run, ["p1"], r.ui(), redo=True, show_matrix=False, recheck=True)
    assert r.calls[2:] == ["emulate p1", "check p1", "bench p1"]
