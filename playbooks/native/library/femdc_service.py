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
        argv = list(p["argv"])
        env = {**os.environ, **{k: str(v) for k, v in (p.get("env") or {}).items()}}
        start = _ssd("--start", "--background", "--make-pidfile", "--pidfile", p["pidfile"],
                     "--output", p["log"], "--chdir", p["chdir"], "--name", p["comm"],
                     "--startas", argv[0], "--", *argv[1:], env=env)
        if start.returncode != 0:
            raise RuntimeError(f"could not start {p['name']}: rc {start.returncode}: "
                               f"{start.stderr.strip()}")
        out.update(changed=True, action="restarted" if running else "started")
    tmp = f"{p['digest_file']}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(new + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, p["digest_file"])
    return out


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "supervisor": {"type": "str", "required": True, "choices": ["daemon", "systemd"]},
            "argv": {"type": "list", "elements": "str", "required": True},
            "env": {"type": "dict", "default": {}},
            "config_files": {"type": "list", "elements": "str", "default": []},
            "pidfile": {"type": "str", "required": True},
            "comm": {"type": "str", "required": True},
            "log": {"type": "str", "required": True},
            "chdir": {"type": "str", "required": True},
            "digest_file": {"type": "str", "required": True},
            "stop_retry": {"type": "str", "default": "TERM/30/KILL/5"},
        },
    )
    try:
        module.exit_json(**ensure(module.params))
    except RuntimeError as e:
        module.fail_json(msg=str(e))


if __name__ == "__main__":
    main()
