"""library/femdc_service.py: one call starts a process unless it runs with the same
definition (real start-stop-daemon on a real `sleep`, stopped by its PID afterwards)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from tests.unit.playbook_files import load

MODULE = "native/library/femdc_service.py"  # under playbooks/


def _pid(pidfile: Path, comm: str = "sleep") -> int:
    """The pidfile's PID once that process is `comm` (start-stop-daemon writes the
    pidfile before it execs the program)."""
    for _ in range(100):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text())
            if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no {comm} process in {pidfile}")


def test_started_once_restarted_when_a_config_changes(tmp_path: Path) -> None:
    svc = load(MODULE)
    conf = tmp_path / "svc.conf"
    conf.write_text("a = 1\n")
    params = {"name": "probe", "supervisor": "daemon", "argv": ["/bin/sleep", "300"],
              "env": {"FEMDC_PROBE": "1"}, "config_files": [str(conf)],
              "pidfile": str(tmp_path / "probe.pid"), "comm": "sleep",
              "log": str(tmp_path / "probe.log"), "chdir": str(tmp_path),
              "digest_file": str(tmp_path / "probe.digest"), "stop_retry": "TERM/5/KILL/1"}
    pids = []
    try:
        first = svc.ensure(params)
        assert first["changed"] and first["action"] == "started"
        pids.append(_pid(tmp_path / "probe.pid"))
        assert b"FEMDC_PROBE=1" in Path(f"/proc/{pids[0]}/environ").read_bytes()

        again = svc.ensure(params)  # same definition: left alone
        assert not again["changed"] and not again["definition_changed"]
        assert _pid(tmp_path / "probe.pid") == pids[0]

        conf.write_text("a = 2\n")  # a config file changed: restarted
        third = svc.ensure(params)
        assert third["changed"] and third["action"] == "restarted"
        pids.append(_pid(tmp_path / "probe.pid"))
        assert pids[1] != pids[0] and not Path(f"/proc/{pids[0]}").exists()
        assert (tmp_path / "probe.digest").read_text().strip() == third["digest"]

        os.kill(pids[1], signal.SIGTERM)  # died: the next call starts it again
        for _ in range(50):
            if not Path(f"/proc/{pids[1]}").exists():
                break
            time.sleep(0.05)
        fourth = svc.ensure(params)
        assert fourth["action"] == "started"
        pids.append(_pid(tmp_path / "probe.pid"))
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_systemd_only_reports_the_digest(tmp_path: Path) -> None:
    svc = load(MODULE)
    (tmp_path / "d").write_text("old\n")
    out = svc.ensure({"name": "x", "supervisor": "systemd", "argv": ["/bin/true"],
                      "env": {}, "config_files": [], "pidfile": str(tmp_path / "p"),
                      "comm": "true", "log": str(tmp_path / "l"), "chdir": str(tmp_path),
                      "digest_file": str(tmp_path / "d")})
    assert out["definition_changed"] and not out["changed"]
    assert (tmp_path / "d").read_text() == "old\n"  # written after the unit started


# A parent with two children, as a uwsgi master and its workers: `kill` must take all.
TREE = ("import os, subprocess, sys, time\n"
        "kids = [subprocess.Popen(['/bin/sleep', '300']) for _ in range(2)]\n"
        "open(sys.argv[1], 'w').write(' '.join(str(k.pid) for k in kids))\n"
        "time.sleep(300)\n")


def test_killed_like_a_crash_then_restored_as_started(tmp_path: Path) -> None:
    import sys

    svc = load(MODULE)
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    kids_file = tmp_path / "kids"
    params = {"name": "tree", "supervisor": "daemon",
              "argv": [sys.executable, str(script), str(kids_file), "--bootstrap"],
              "env": {"FEMDC_PROBE": "1"}, "config_files": [],
              "pidfile": str(tmp_path / "tree.pid"), "comm": Path(sys.executable).name,
              "log": str(tmp_path / "tree.log"), "chdir": str(tmp_path),
              "digest_file": str(tmp_path / "tree.digest"), "stop_retry": "TERM/5/KILL/1"}
    comm = Path(sys.executable).name[:15]  # the name execve was given, links unresolved
    pids: list[int] = []
    try:
        assert svc.ensure(params)["action"] == "started"
        pid = _pid(Path(params["pidfile"]), comm)
        for _ in range(100):
            if kids_file.exists() and kids_file.read_text():
                break
            time.sleep(0.05)
        kids = [int(k) for k in kids_file.read_text().split()]
        pids += [pid, *kids]
        saved = Path(params["digest_file"] + ".start.json")
        assert oct(saved.stat().st_mode & 0o777) == "0o600"

        fault = {k: params[k] for k in ("name", "supervisor", "digest_file")}
        killed = svc.fault({**fault, "state": "killed"})
        assert killed["action"] == "killed" and set(killed["pids"]) == {pid, *kids}
        assert all(svc._gone(q) for q in (pid, *kids))
        assert svc.fault({**fault, "state": "killed"})["action"] == "none"  # already down

        kids_file.unlink()
        restored = svc.fault({**fault, "state": "restored", "drop_args": ["--bootstrap"]})
        assert restored["action"] == "restored"
        new = _pid(Path(params["pidfile"]), comm)
        pids.append(new)
        assert new != pid
        cmdline = Path(f"/proc/{new}/cmdline").read_bytes().split(b"\0")
        assert b"--bootstrap" not in cmdline and str(kids_file).encode() in cmdline
        env = Path(f"/proc/{new}/environ").read_bytes().split(b"\0")
        assert b"FEMDC_PROBE=1" in env
        again = svc.fault({**fault, "state": "restored"})
        assert again == {"changed": False, "action": "none", "pid": new}
        for _ in range(100):
            if kids_file.exists() and kids_file.read_text():
                break
            time.sleep(0.05)
        pids += [int(k) for k in kids_file.read_text().split()]
    finally:
        for q in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(q, signal.SIGKILL)


def test_restore_without_a_saved_start_says_so(tmp_path: Path) -> None:
    import pytest

    svc = load(MODULE)
    with pytest.raises(RuntimeError, match="no saved start definition"):
        svc.fault({"name": "x", "supervisor": "daemon", "state": "killed",
                   "digest_file": str(tmp_path / "x.digest")})
