"""playbooks/wan/library/femdc_wan_daemon.py: start, SIGHUP, restart and stop decided in
one call. A real start-stop-daemon starts a real Python process that keeps the daemon's
file contract (pidfile once ready, CONF.applied = sha256 of the config after every
(re)load, exit on SIGTERM); the real nfqdelay daemon is the e2e test's
(tests/e2e/test_wan_userspace.py)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.unit.playbook_files import load

MODULE = "wan/library/femdc_wan_daemon.py"  # under playbooks/

STANDIN = '''
import argparse, hashlib, os, signal, sys, time
ap = argparse.ArgumentParser()
ap.add_argument("--config"); ap.add_argument("--pidfile")
a = ap.parse_args()
flags = {"hup": False, "stop": False}
signal.signal(signal.SIGHUP, lambda *_: flags.update(hup=True))
signal.signal(signal.SIGTERM, lambda *_: flags.update(stop=True))
def load():
    data = open(a.config, "rb").read()
    if b"refuse" in data:
        print("reload_failed", flush=True)
        return
    with open(a.config + ".applied", "w") as f:
        f.write(hashlib.sha256(data).hexdigest() + "\\n")
    print("loaded", flush=True)
with open(a.pidfile, "w") as f:
    f.write(f"{os.getpid()}\\n")
load()
while not flags["stop"]:
    time.sleep(0.02)
    if flags["hup"]:
        flags["hup"] = False
        load()
'''


@pytest.fixture
def params(tmp_path: Path) -> dict[str, Any]:
    z = tmp_path / "code.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("standin_daemon.py", STANDIN)
    return {"state": "present", "config": {"queue": 7, "delays": {"10.0.0.2": 0.025}},
            "conf": str(tmp_path / "d.json"), "pidfile": str(tmp_path / "d.pid"),
            "digest_file": str(tmp_path / "d.digest"), "log": str(tmp_path / "d.log"),
            "chdir": str(tmp_path), "python": sys.executable, "module": "standin_daemon",
            "zip": str(z), "start_timeout": 10, "stop_timeout": 5}


def _reloads(p: dict[str, Any]) -> int:
    return Path(p["log"]).read_text().count("loaded")


def _wait_reloads(p: dict[str, Any], n: int) -> int:
    for _ in range(200):
        if _reloads(p) >= n:
            break
        time.sleep(0.02)
    return _reloads(p)


def test_start_reload_restart_stop(params: dict[str, Any]) -> None:
    mod = load(MODULE)
    pids: list[int] = []
    try:
        first = mod.ensure(params)
        assert first["action"] == "started" and first["changed"]
        pids.append(first["pid"])
        conf = Path(params["conf"]).read_bytes()
        assert Path(params["conf"] + ".applied").read_text().strip() == \
            hashlib.sha256(conf).hexdigest()

        same = mod.ensure(params)  # nothing changed: no signal, same process
        assert same == {"changed": False, "action": "none", "pid": pids[0]}
        assert _reloads(params) == 1

        params["config"]["delays"]["10.0.0.2"] = 0.010  # delay only: SIGHUP
        hup = mod.ensure(params)
        assert hup["action"] == "reloaded" and hup["pid"] == pids[0]
        assert _wait_reloads(params, 2) == 2

        params["config"]["queue"] = 8  # the queue changed: a new process
        new = mod.ensure(params)
        assert new["action"] == "restarted" and new["pid"] != pids[0]
        pids.append(new["pid"])
        assert mod._gone(pids[0])

        gone = mod.ensure({**params, "state": "absent"})
        assert gone["action"] == "stopped" and not gone["killed"]
        for f in ("conf", "pidfile", "digest_file"):
            assert not Path(params[f]).exists(), f
        assert not Path(params["conf"] + ".applied").exists()
        assert Path(params["log"]).exists()  # the log stays
        again = mod.ensure({**params, "state": "absent"})  # already gone: fine
        assert again["action"] == "none" and not again["changed"]
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_config_the_daemon_refuses_fails_with_its_log(params: dict[str, Any]) -> None:
    mod = load(MODULE)
    pid = None
    try:
        pid = mod.ensure(params)["pid"]
        params["config"]["refuse"] = True
        params["start_timeout"] = 0.5
        with pytest.raises(RuntimeError, match=r"did not load .*d\.json.*reload_failed"):
            mod.ensure(params)
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_pidfile_naming_another_process_is_not_ours(params: dict[str, Any]) -> None:
    mod = load(MODULE)
    Path(params["pidfile"]).write_text(f"{os.getpid()}\n")  # this pytest process
    assert mod.running_pid(params) is None
    out = mod.ensure({**params, "state": "absent"})
    assert out["action"] == "none"  # never signalled
