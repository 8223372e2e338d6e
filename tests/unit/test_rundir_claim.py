"""Run directories are claimed atomically: two runs of one experiment started in the same
second get two directories; an id asked for twice is refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from femdc_bench import rundir
from femdc_bench.rundir import RunError


def test_same_second_runs_get_suffixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rundir, "new_run_id", lambda name: f"{name}-20261207-000000")
    got: list[Path] = []
    threads = [threading.Thread(target=lambda: got.append(
        rundir._claim_run_dir(tmp_path / "results", None, "exp"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(p.name for p in got)
    assert names == sorted(["exp-20261207-000000"]
                           + [f"exp-20261207-000000-{n}" for n in range(2, 9)])


def test_an_id_asked_for_must_be_new(tmp_path: Path) -> None:
    assert rundir._claim_run_dir(tmp_path, "r1", "exp") == tmp_path / "r1"
    with pytest.raises(RunError, match="already exists"):
        rundir._claim_run_dir(tmp_path, "r1", "exp")
