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


# --------------------------------------------------------------------------- uv or pip

UV = Path(sys.executable).parent / "uv"  # pyproject's uv, in the tool's venv


def _wheel(where: Path) -> Path:
    """A one-module wheel (femdc_probe 1.0): installable offline by pip and uv alike."""
    import base64
    import zipfile

    files = {"femdc_probe.py": b"VALUE = 42\n",
             "femdc_probe-1.0.dist-info/METADATA":
                 b"Metadata-Version: 2.1\nName: femdc-probe\nVersion: 1.0\n",
             "femdc_probe-1.0.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = [f"{name},sha256={digest(data)},{len(data)}" for name, data in files.items()]
    files["femdc_probe-1.0.dist-info/RECORD"] = (
        "\n".join([*record, "femdc_probe-1.0.dist-info/RECORD,,"]) + "\n").encode()
    path = where / "femdc_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def _fake_uv(tmp_path: Path, script: str) -> str:
    path = tmp_path / "fake-uv"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def test_only_a_uv_that_runs_is_used(tmp_path: Path) -> None:
    mod = load(MODULE)
    assert mod.usable_uv(str(UV))
    assert not mod.usable_uv("")
    assert not mod.usable_uv(str(tmp_path / "absent"))
    assert not mod.usable_uv(_fake_uv(tmp_path, "exit 1"))  # e.g. another libc
    assert not mod.usable_uv(_fake_uv(tmp_path, "echo 'something else 1.0'"))


@pytest.mark.parametrize("uv", ["uv", "broken"])
def test_uv_installs_when_it_runs_else_pip(tmp_path: Path, uv: str) -> None:
    mod = load(MODULE)
    wheel = _wheel(tmp_path)
    p = _params(tmp_path, f"{wheel}\n")
    venv = p["venv"]
    p["selftest"] = [f"{venv}/bin/python", "-c",
                     "import femdc_probe; print('ok', femdc_probe.VALUE)"]
    p["expect"] = "ok 42"
    given = str(UV) if uv == "uv" else _fake_uv(tmp_path, "exit 1")
    res = mod.build({**p, "uv": given})
    assert res["changed"] and res["installer"] == ("uv" if uv == "uv" else "pip")


def test_install_commands_take_no_cache() -> None:
    mod = load(MODULE)
    pip = mod.install_argv("pip", "/v", "/l.lock")
    assert pip[:2] == ["/v/bin/pip", "install"] and "--no-cache-dir" in pip
    assert pip[-2:] == ["-r", "/l.lock"]
    uv = mod.install_argv("uv", "/v", "/l.lock", "/bin/uv")
    assert uv[:3] == ["/bin/uv", "pip", "install"] and "--no-cache" in uv
    assert uv[uv.index("--python") + 1] == "/v/bin/python" and uv[-2:] == ["-r", "/l.lock"]
