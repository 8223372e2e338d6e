#!/usr/bin/python3
# The userspace delay daemon of one host, in one module call (it was ~20 ansible tasks,
# ~15 s of every WAN apply and ~7 s of every removal on a 3-host run).
#
# state=present: writes the daemon's configuration; when the daemon runs (pidfile + its
# command line names our module and our config file) with the same interpreter, code and
# queue, a changed configuration is a SIGHUP (a reload of the delay table: no packet
# lost, rules untouched); when one of those changed it is stopped and started again;
# when it does not run it is started with start-stop-daemon. Then it waits until the
# daemon reports this configuration as live (it writes sha256(config) to CONF.applied)
# and records what it runs with (interpreter, sha256 of the code zip, queue).
# state=absent: stops it (SIGTERM: it accepts every packet it holds, then exits;
# SIGKILL after stop_timeout seconds) and forgets its pidfile, digest and configuration;
# its log stays. A process is signalled only if its command line is ours.
# Runs with the host's /usr/bin/python3, stdlib only.
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from typing import Any

DOCUMENTATION = r"""
module: femdc_wan_daemon
short_description: start, reload, restart or stop the userspace WAN delay daemon
options:
  state: {type: str, default: present, choices: [present, absent]}
  config: {type: dict, description: "the daemon's configuration (state=present)"}
  conf: {type: str, required: true, description: "its path; CONF.applied beside it"}
  pidfile: {type: str, required: true}
  digest_file: {type: str, required: true}
  log: {type: str, required: true}
  chdir: {type: str, required: true}
  python: {type: str}
  module: {type: str, required: true}
  zip: {type: str, description: "the code, put on PYTHONPATH"}
  start_timeout: {type: float, default: 15}
  stop_timeout: {type: float, default: 15}
"""


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _rm(*paths: str) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


def running_pid(p: dict[str, Any]) -> int | None:
    """The daemon's PID if the pidfile names a live process running our module with our
    config file (a recycled PID is never ours)."""
    text = _read(p["pidfile"])
    if not text.isdigit():
        return None
    try:
        with open(f"/proc/{text}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        with open(f"/proc/{text}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return None
    except (OSError, IndexError):
        return None
    ours = p["module"].encode() in argv and p["conf"].encode() in argv
    return int(text) if ours else None


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def stop(p: dict[str, Any], pid: int) -> bool:
    """SIGTERM, wait, SIGKILL if needed; True if it had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + float(p.get("stop_timeout") or 15)
    while time.monotonic() < deadline:
        if _gone(pid):
            return False
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if _gone(pid):
            break
        time.sleep(0.05)
    return True


def _tail(path: str, n: int = 20) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()[-n:]
    except OSError:
        return []


def absent(p: dict[str, Any]) -> dict[str, Any]:
    pid = running_pid(p)
    killed = stop(p, pid) if pid else False
    _rm(p["pidfile"], p["digest_file"], p["conf"], p["conf"] + ".applied")
    return {"changed": pid is not None, "action": "stopped" if pid else "none",
            "pid": pid, "killed": killed}


def present(p: dict[str, Any]) -> dict[str, Any]:
    conf, applied = p["conf"], p["conf"] + ".applied"
    text = json.dumps(p["config"], indent=4, sort_keys=True) + "\n"
    conf_changed = _read(conf) != text.strip()
    if conf_changed:
        _write_atomic(conf, text)
    want = hashlib.sha256(text.encode()).hexdigest()
    digest = hashlib.sha256(json.dumps(
        [p["python"], _sha256_file(p["zip"]), p["config"].get("queue")]).encode()).hexdigest()

    action = "none"
    pid = running_pid(p)
    if pid and _read(p["digest_file"]) != digest:
        stop(p, pid)
        _rm(p["pidfile"], p["digest_file"])
        pid, action = None, "restarted"
    if pid and (conf_changed or _read(applied) != want):
        os.kill(pid, signal.SIGHUP)
        action = "reloaded"
    if not pid:
        _rm(p["pidfile"], applied)
        env = {**os.environ, "PYTHONPATH": p["zip"]}
        start = subprocess.run(
            ["start-stop-daemon", "--start", "--background", "--pidfile", p["pidfile"],
             "--output", p["log"], "--chdir", p["chdir"], "--startas", p["python"], "--",
             "-m", p["module"], "--config", conf, "--pidfile", p["pidfile"]],
            capture_output=True, text=True, env=env, check=False)
        if start.returncode != 0:
            raise RuntimeError(f"start-stop-daemon --start: rc {start.returncode}: "
                               f"{start.stderr.strip()}")
        action = "restarted" if action == "restarted" else "started"

    deadline = time.monotonic() + float(p.get("start_timeout") or 15)
    while _read(applied) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    if _read(applied) != want:
        raise RuntimeError(f"the delay daemon did not load {conf} within "
                           f"{p.get('start_timeout') or 15} s. Log {p['log']}: "
                           f"{_tail(p['log'])}")
    # the daemon writes its pidfile once its queue is bound, before it applies the config
    pid = running_pid(p)
    if not pid:
        raise RuntimeError(f"the delay daemon of {p['pidfile']} is not running. "
                           f"Log {p['log']}: {_tail(p['log'])}")
    if _read(p["digest_file"]) != digest:
        _write_atomic(p["digest_file"], digest + "\n")
    return {"changed": action != "none", "action": action, "pid": pid}


def ensure(p: dict[str, Any]) -> dict[str, Any]:
    """What the module does; returns its result (raises RuntimeError on failure)."""
    if p.get("state", "present") == "absent":
        return absent(p)
    for key in ("config", "python", "zip"):
        if not p.get(key):
            raise RuntimeError(f"state=present needs {key}")
    return present(p)


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "config": {"type": "dict"},
            "conf": {"type": "str", "required": True},
            "pidfile": {"type": "str", "required": True},
            "digest_file": {"type": "str", "required": True},
            "log": {"type": "str", "required": True},
            "chdir": {"type": "str", "required": True},
            "python": {"type": "str"},
            "module": {"type": "str", "required": True},
            "zip": {"type": "str"},
            "start_timeout": {"type": "float", "default": 15},
            "stop_timeout": {"type": "float", "default": 15},
        },
    )
    try:
        module.exit_json(**ensure(module.params))
    except RuntimeError as e:
        module.fail_json(msg=str(e))


if __name__ == "__main__":
    main()
