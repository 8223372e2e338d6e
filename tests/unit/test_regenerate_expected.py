"""tests/regenerate_expected.py writes exactly the expected files the golden tests read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.regenerate_expected import DATA, main


def tree(base: Path) -> dict[str, str]:
    return {p.relative_to(base).as_posix(): p.read_text()
            for p in sorted(base.rglob("*")) if p.is_file()}


def test_regenerated_files_equal_the_committed_ones(tmp_path: Path) -> None:
    (tmp_path / "kolla" / "stale").mkdir(parents=True)
    (tmp_path / "kolla" / "stale" / "old.yml").write_text("gone")
    assert main(["--into", str(tmp_path)]) == 0
    assert tree(tmp_path) == tree(DATA)  # and the stale file is gone


def test_unknown_set_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["glance", "--into", "/nonexistent"])
    assert e.value.code == 2
    assert "unknown set 'glance'" in capsys.readouterr().err
