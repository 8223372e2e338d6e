#!/usr/bin/python3
# A venv built from a pinned lock, once per lock, in one module call: the service venv
# (native), the WAN daemon's and the workload agent's. The build runs under an
# exclusive flock on `<venv>.build-lock`: a second run on the same host (two runs at
# once on one machine share /var/cache/femdc-bench/venvs) waits for the first and then
# finds the venv built instead of building it twice over the same directory. The marker
# `<venv>/.femdc-lock.sha256` is written last and atomically: a venv without it (an
# interrupted build) is removed and built again.
# The requirements are installed by uv when a working `uv` is given (the controller's,
# shipped to testbed hosts: several times faster than pip on the same lock, cold), by
# the venv's pip otherwise (no uv, or one this host cannot run).
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: femdc_locked_venv
short_description: build a venv from a pinned lock once per lock, under a lock file
options:
  venv: {type: path, required: true, description: the venv; ends with -<sha256[:12]>}
  lock: {type: path, required: true, description: the pinned requirements on this host}
  sha256: {type: str, required: true, description: the lock's sha256 (the marker's content)}
  python: {type: path, required: true, description: interpreter that creates the venv}
  selftest: {type: list, elements: str, required: true, description: argv run once built}
  expect: {type: str, required: true, description: text the self-test prints (stdout or stderr)}
  wait: {type: int, default: 1800, description: seconds to wait for another build}
  uv: {type: str, default: "", description: a uv binary; pip installs when empty or not runnable}
"""

MARKER = ".femdc-lock.sha256"


def _marker(venv: str) -> str:
    with contextlib.suppress(OSError), open(os.path.join(venv, MARKER)) as f:
        return f.read().strip()
    return ""


class VenvError(Exception):
    def __init__(self, msg: str, output: str = "") -> None:
        super().__init__(msg)
        self.output = output


def _run(argv: list[str], what: str) -> str:
    p = subprocess.run(argv, capture_output=True, text=True)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        last = (out.strip().splitlines() or ["no output"])[-1]
        raise VenvError(f"{what} failed (exit {p.returncode}): {last}"[:600], out[-4000:])
    return out


def usable_uv(uv: str) -> bool:
    """`uv` names a uv this host can run (a binary of another architecture or libc, or
    none at all, leaves the install to pip)."""
    if not uv or not os.access(uv, os.X_OK):
        return False
    try:
        p = subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and p.stdout.startswith("uv ")


def install_argv(installer: str, venv: str, lock: str, uv: str = "") -> list[str]:
    """The command that installs `lock` into `venv`. No cache either way: pip's wheel
    cache is keyed by wheel tag only, and a wheel compiled by another CPython of the same
    version (pyenv's) must not be reused here; uv's no-cache mode builds in a temporary
    cache removed afterwards."""
    if installer == "uv":
        # --native-tls: the system's certificates, as pip (through certifi or PIP_CERT)
        # trusts what the host's administrator set up.
        # --compile-bytecode: as pip does; without it every process that imports from
        # the venv compiles its modules again (or at every start where bytecode is not
        # written, PYTHONDONTWRITEBYTECODE).
        return [uv, "pip", "install", "--python", f"{venv}/bin/python", "--no-cache",
                "--native-tls", "--no-progress", "--compile-bytecode", "-r", lock]
    return [f"{venv}/bin/pip", "install", "--no-input", "--disable-pip-version-check",
            "--no-cache-dir", "--progress-bar", "off", "-r", lock]


def build(p: dict[str, Any]) -> dict[str, Any]:
    """Build the venv unless its marker holds the lock's sha256; wait for another build
    of it first. {changed, waited_s[, build_s]}; VenvError on failure."""
    venv, sha = p["venv"].rstrip("/"), p["sha256"].strip()
    if not venv.endswith("-" + sha[:12]):
        raise VenvError(f"venv {venv} must end with -<the lock's sha256[:12]> ({sha[:12]})")
    if _marker(venv) == sha:  # the common case: no lock needed to see a finished build
        return {"changed": False, "waited_s": 0.0}
    os.makedirs(os.path.dirname(venv), mode=0o755, exist_ok=True)
    t0 = time.monotonic()
    with open(venv + ".build-lock", "a") as lockf:
        while True:
            try:
                fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 > p.get("wait", 1800):
                    raise VenvError(f"another build of {venv} held its lock for "
                                    f"{p.get('wait', 1800)} s") from None
                time.sleep(0.5)
        waited = round(time.monotonic() - t0, 1)
        if _marker(venv) == sha:  # built by the run we waited for
            return {"changed": False, "waited_s": waited}
        t1 = time.monotonic()
        shutil.rmtree(venv, ignore_errors=True)
        _run([p["python"], "-m", "venv", venv], "python -m venv")
        installer = "uv" if usable_uv(p.get("uv") or "") else "pip"
        _run(install_argv(installer, venv, p["lock"], p.get("uv") or ""),
             f"{installer} install -r {p['lock']}")
        out = _run(list(p["selftest"]), "self-test")
        if p["expect"] not in out:
            raise VenvError(f"self-test did not print {p['expect']!r}", out[-4000:])
        tmp = os.path.join(venv, MARKER + ".tmp")
        with open(tmp, "w") as f:
            f.write(sha + "\n")
        os.replace(tmp, os.path.join(venv, MARKER))
    return {"changed": True, "waited_s": waited, "build_s": round(time.monotonic() - t1, 1),
            "installer": installer}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "venv": {"type": "path", "required": True},
            "lock": {"type": "path", "required": True},
            "sha256": {"type": "str", "required": True},
            "python": {"type": "path", "required": True},
            "selftest": {"type": "list", "elements": "str", "required": True},
            "expect": {"type": "str", "required": True},
            "wait": {"type": "int", "default": 1800},
            "uv": {"type": "str", "default": ""},
        },
        supports_check_mode=False,
    )
    try:
        module.exit_json(**build(module.params))
    except VenvError as e:
        module.fail_json(msg=str(e), output=e.output)


if __name__ == "__main__":
    main()
