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
