#!/usr/bin/python3
# Start one supervised service process with start-stop-daemon, in one module call: the
# digest of its definition (supervisor, command line, environment, content of its config
# files), the digest it was started with, whether it runs (pidfile + process name), a
# stop when its definition changed, the start, the new digest. As five ansible tasks
# this cost ~5 s per service on a busy host, ~1-2 minutes of a control-plane deploy.
# With `supervisor: systemd` it only computes the digest and whether the definition
# changed (roles/service/tasks/start.yml then handles the unit). Runs with the host's
# /usr/bin/python3, stdlib only.
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
from typing import Any

DOCUMENTATION = r"""
module: femdc_service
short_description: start a service with start-stop-daemon unless it runs with the same definition
options:
  name: {type: str, required: true}
  supervisor: {type: str, required: true, choices: [daemon, systemd]}
  argv: {type: list, elements: str, required: true}
  env: {type: dict, default: {}}
  config_files: {type: list, elements: str, default: []}
  pidfile: {type: str, required: true}
  comm: {type: str, required: true, description: "process name (/proc/<pid>/comm)"}
  log: {type: str, required: true}
  chdir: {type: str, required: true}
  digest_file: {type: str, required: true}
  stop_retry: {type: str, default: TERM/30/KILL/5}
"""


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return ""  # a missing file is part of the definition too
    return h.hexdigest()


def digest(p: dict[str, Any]) -> str:
    doc = [p["supervisor"], list(p["argv"]), dict(p.get("env") or {}),
           [_sha256_file(f) for f in p.get("config_files") or []]]
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()


def _ssd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["start-stop-daemon", *args], capture_output=True, text=True,
                          env=env, check=False)


def _start(p: dict[str, Any], argv: list[str], what: str) -> None:
    """start-stop-daemon --start of `argv` as `p` defines it (pidfile, log, chdir, name,
    environment on top of ours)."""
    env = {**os.environ, **{k: str(v) for k, v in (p.get("env") or {}).items()}}
    start = _ssd("--start", "--background", "--make-pidfile", "--pidfile", p["pidfile"],
                 "--output", p["log"], "--chdir", p["chdir"], "--name", p["comm"],
                 "--startas", argv[0], "--", *argv[1:], env=env)
    if start.returncode != 0:
        raise RuntimeError(f"could not {what} {p['name']}: rc {start.returncode}: "
                           f"{start.stderr.strip()}")


def ensure(p: dict[str, Any]) -> dict[str, Any]:
    """What the module does; returns its result (raises RuntimeError on failure)."""
    new = digest(p)
    try:
        with open(p["digest_file"], encoding="utf-8") as f:
            old = f.read().strip()
    except OSError:
        old = ""
    definition_changed = old not in ("", new)
    out: dict[str, Any] = {"changed": False, "digest": new,
                           "definition_changed": definition_changed, "action": "none"}
    if p["supervisor"] != "daemon":
        return out
    status = _ssd("--status", "--pidfile", p["pidfile"], "--name", p["comm"])
    if status.returncode not in (0, 1, 3):
        raise RuntimeError(f"start-stop-daemon --status: rc {status.returncode}: "
                           f"{status.stderr.strip()}")
    running = status.returncode == 0
    if running and definition_changed:
        stop = _ssd("--stop", "--pidfile", p["pidfile"], "--name", p["comm"],
                    "--retry", p.get("stop_retry") or "TERM/30/KILL/5", "--oknodo",
                    "--remove-pidfile")
        if stop.returncode != 0:
            raise RuntimeError(f"could not stop {p['name']}: {stop.stderr.strip()}")
    if not running or definition_changed:
        _start(p, list(p["argv"]), "start")
        out.update(changed=True, action="restarted" if running else "started")
    _save_start(p)
    tmp = f"{p['digest_file']}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(new + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, p["digest_file"])
    return out


# --------------------------------------------------------------------------- faults
# A service fault (femdc-bench's `kill` workload fault) kills a service like a crash
# would (SIGKILL to its whole process tree: a uwsgi master and its workers, the compute
# pool and its forks) and later restores it exactly as it was started: start-stop-daemon
# with the command line and environment saved at its last start (`<digest_file>.start.json`,
# 0600), or `systemctl start` of its run-named unit (Restart=no: it stays down meanwhile).


def _start_file(p: dict[str, Any]) -> str:
    return f"{p['digest_file']}.start.json"


def _save_start(p: dict[str, Any]) -> None:
    keys = ("name", "argv", "env", "pidfile", "comm", "log", "chdir")
    doc = {k: p.get(k) for k in keys}
    tmp = _start_file(p) + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    os.replace(tmp, _start_file(p))


def _pid_of(pidfile: str, comm: str) -> int | None:
    """The pidfile's process if it runs under the expected name, else None."""
    try:
        with open(pidfile, encoding="utf-8") as f:
            pid = int(f.read().split()[0])
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            name = f.read().strip()
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return pid if name == comm[:15] and state != "Z" else None


def _tree(root: int) -> list[int]:
    """`root` and every descendant, parents before children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)


def fault(p: dict[str, Any]) -> dict[str, Any]:
    """state=killed: SIGKILL the service's process tree; state=restored: start it again
    as it was last started (without `drop_args`, e.g. Galera's --wsrep-new-cluster: a
    node that rejoins must not bootstrap a second cluster). Idempotent."""
    import signal
    import time

    if p["supervisor"] == "systemd":
        unit = p["unit"]
        active = _systemctl("is-active", "--quiet", unit).returncode == 0
        if p["state"] == "killed":
            if not active:
                return {"changed": False, "action": "none"}
            r = _systemctl("kill", "--signal=SIGKILL", unit)
            if r.returncode != 0:
                raise RuntimeError(f"systemctl kill {unit}: {r.stderr.strip()}")
            for _ in range(100):
                if _systemctl("is-active", "--quiet", unit).returncode != 0:
                    return {"changed": True, "action": "killed"}
                time.sleep(0.1)
            raise RuntimeError(f"{unit} still active 10 s after SIGKILL")
        if active:
            return {"changed": False, "action": "none"}
        _systemctl("reset-failed", unit)
        r = _systemctl("start", unit)
        if r.returncode != 0:
            raise RuntimeError(f"systemctl start {unit}: {r.stderr.strip()}")
        return {"changed": True, "action": "restored"}

    try:
        with open(_start_file(p), encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise RuntimeError(f"{p['name']}: no saved start definition ({e})") from None
    pid = _pid_of(saved["pidfile"], saved["comm"])
    if p["state"] == "killed":
        if pid is None:
            return {"changed": False, "action": "none"}
        pids = _tree(pid)
        for q in pids:  # the parent first: it cannot start new workers after
            with contextlib.suppress(ProcessLookupError):
                os.kill(q, signal.SIGKILL)
        for _ in range(100):
            if all(_gone(q) for q in pids):
                return {"changed": True, "action": "killed", "pids": pids}
            time.sleep(0.1)
        raise RuntimeError(f"{p['name']}: processes {pids} still there 10 s after SIGKILL")
    if pid is not None:
        return {"changed": False, "action": "none", "pid": pid}
    # The pidfile names a dead process (or a zombie that init has not reaped yet, which
    # start-stop-daemon would take for the service still running): forget it.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(saved["pidfile"])
    drop = set(p.get("drop_args") or [])
    _start({**saved, "name": p["name"]}, [a for a in saved["argv"] if a not in drop], "restore")
    return {"changed": True, "action": "restored"}


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "supervisor": {"type": "str", "required": True, "choices": ["daemon", "systemd"]},
            "state": {"type": "str", "default": "started",
                      "choices": ["started", "killed", "restored"]},
            "unit": {"type": "str"},
            "drop_args": {"type": "list", "elements": "str", "default": []},
            "argv": {"type": "list", "elements": "str"},
            "env": {"type": "dict", "default": {}},
            "config_files": {"type": "list", "elements": "str", "default": []},
            "pidfile": {"type": "str"},
            "comm": {"type": "str"},
            "log": {"type": "str"},
            "chdir": {"type": "str"},
            "digest_file": {"type": "str", "required": True},
            "stop_retry": {"type": "str", "default": "TERM/30/KILL/5"},
        },
    )
    p = module.params
    if p["state"] == "started":
        missing = [k for k in ("argv", "pidfile", "comm", "log", "chdir") if not p.get(k)]
        if missing:
            module.fail_json(msg=f"state=started needs {', '.join(missing)}")
    try:
        module.exit_json(**(ensure(p) if p["state"] == "started" else fault(p)))
    except RuntimeError as e:
        module.fail_json(msg=str(e))


if __name__ == "__main__":
    main()
