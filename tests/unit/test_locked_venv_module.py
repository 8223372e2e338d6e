"""playbooks/common/library/femdc_locked_venv.py: a venv built once per lock; two runs
building the same venv at once (two runs on one machine share the venv cache) build it
once: the second waits on the lock file and finds it built. Real `python -m venv` and
pip on an empty lock (offline)."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.unit.playbook_files import load

MODULE = "common/library/femdc_locked_venv.py"


def _params(tmp_path: Path, lock_text: str = "# nothing\n") -> dict[str, Any]:
    lock = tmp_path / "x.lock"
    lock.write_text(lock_text)
    sha = hashlib.sha256(lock.read_bytes()).hexdigest()
    venv = tmp_path / "venvs" / f"x-{sha[:12]}"
    return {"venv": str(venv), "lock": str(lock), "sha256": sha, "python": sys.executable,
            "selftest": [f"{venv}/bin/python", "-c", "print('selftest ok')"],
            "expect": "selftest ok", "wait": 120}


def test_builds_once_then_finds_it(tmp_path: Path) -> None:
    mod = load(MODULE)
    p = _params(tmp_path)
    first = mod.build(p)
    assert first["changed"] and first["waited_s"] < 1
    marker = Path(p["venv"]) / ".femdc-lock.sha256"
    assert marker.read_text().strip() == p["sha256"]
    assert mod.build(p) == {"changed": False, "waited_s": 0.0}


def test_two_builds_at_once_build_once(tmp_path: Path) -> None:
    mod = load(MODULE)
    p = _params(tmp_path)
    # The first build's self-test takes 2 s, so the second surely starts while it holds
    # the lock.
    slow = {**p, "selftest": [sys.executable, "-c",
                              "import time; time.sleep(2); print('selftest ok')"]}
    results: dict[str, Any] = {}

    def go(name: str, params: dict[str, Any]) -> None:
        results[name] = mod.build(params)

    a = threading.Thread(target=go, args=("a", slow))
    a.start()
    time.sleep(0.5)
    b = threading.Thread(target=go, args=("b", p))
    b.start()
    a.join(60)
    b.join(60)
    assert results["a"]["changed"] is True
    assert results["b"]["changed"] is False and results["b"]["waited_s"] >= 1.0, results


def test_an_interrupted_build_is_redone(tmp_path: Path) -> None:
    mod = load(MODULE)
    p = _params(tmp_path)
    Path(p["venv"]).mkdir(parents=True)
    (Path(p["venv"]) / "leftover").write_text("half a build, no marker")
    assert mod.build(p)["changed"] is True
    assert not (Path(p["venv"]) / "leftover").exists()


def test_failures_say_what_failed(tmp_path: Path) -> None:
    mod = load(MODULE)
    p = _params(tmp_path)
    with pytest.raises(mod.VenvError, match="self-test did not print 'nope'"):
        mod.build({**p, "expect": "nope"})
    assert not (Path(p["venv"]) / ".femdc-lock.sha256").exists()  # not marked as built
    with pytest.raises(mod.VenvError, match=r"must end with -<the lock's sha256\[:12\]>"):
        mod.build({**p, "venv": str(tmp_path / "other")})
    (tmp_path / "b").mkdir()
    bad = _params(tmp_path / "b", "=== not a requirement\n")  # pip refuses it offline
    with pytest.raises(mod.VenvError, match="pip install -r .* failed"):
        mod.build({**bad, "python": sys.executable})
