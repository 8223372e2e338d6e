"""The one way femdc-bench touches hosts: Ansible over SSH, hosts described by EnOSlib.

EnOSlib's Static provider turns our Inventory into EnOSlib Roles (the same path as any
SSH-reachable testbed node) and writes the Ansible inventory; `ansible-playbook` then
runs as a child process whose output goes to the phase log, so that a long deploy
shows progress in the console, leaves a full log behind, and stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from femdc_bench.model import Host, Inventory

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS = PROJECT_ROOT / "playbooks"
COMMON_LIBRARY = PLAYBOOKS / "common" / "library"
if not PLAYBOOKS.is_dir():  # installed without its tree: playbooks/ lives beside the package
    raise ImportError(f"femdc-bench expects {PLAYBOOKS}: install it editable "
                      "(pip install -e .) from its source tree, as install.sh does")


# How every SSH connection of a run is opened (ansible's and clocks.py's): the hosts of
# a run are made for it (fresh host keys each time), so no known_hosts.
# ServerAlive: a host that vanished mid-session (a testbed node rebooted, a namespace
# deleted under a kept run) ends the session within a minute instead of hanging it for
# the TCP timeout (a `destroy` once waited > 6 min on vanished namespaces). Partitions
# and emulated WAN never touch the management path (controller <-> host), so a live host
# always answers the keepalives.
SSH_OPTIONS = ("-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
               "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=15",
               "-o", "ServerAliveCountMax=4")


def ssh_argv(h: Host, remote: str, *, control_dir: Path | None = None,
             become: bool = False) -> list[str]:
    """The ssh command line that runs `remote` (a fixed string: values go on stdin) on
    host `h` as ansible reaches it: its user, port and key, its jump hosts (EnOSlib's
    `gateway`/`internal_gateway` in Host.extra); `control_dir`: through a master
    connection of the run kept there for 10 minutes; `become`: as root with
    `sudo -n` where the playbooks become root (ansible_become)."""
    argv = ["ssh", *SSH_OPTIONS, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-p", str(h.ssh_port)]
    if control_dir is not None:
        argv += ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir}/s-%C",
                 "-o", "ControlPersist=600"]  # keepalives: SSH_OPTIONS
    if h.ssh_key:
        argv += ["-i", h.ssh_key]
    proxy = proxy_command(h)
    if proxy:
        argv += ["-o", f"ProxyCommand={proxy}"]
    if h.extra.get("forward_agent"):
        argv += ["-o", "ForwardAgent=yes"]
    if become and h.extra.get("ansible_become"):
        remote = f"sudo -n {remote}"
    return [*argv, f"{h.ssh_user}@{h.address}", remote]


def ssh_forward_argv(h: Host, local: Path, remote: str, control_dir: Path,
                     op: str = "forward") -> list[str]:
    """The command that asks the run's master connection to `h` (ssh_argv's, which must
    run) to forward the local socket `local` to the host's socket `remote` (op
    "cancel": to stop): a connection to `local` then reaches `remote` as the ssh user,
    with no process started on the host. Fails when no master runs."""
    argv = ssh_argv(h, "", control_dir=control_dir)[:-1]  # without the remote command
    return [*argv[:-1], "-O", op, "-L", f"{local}:{remote}", argv[-1]]


def proxy_command(h: Host) -> str | None:
    """EnOSlib's ProxyCommand for a host behind one or two jump hosts (outermost
    first), its parts quoted; None without a gateway."""
    gws = [(str(h.extra[k]), str(h.extra.get(f"{k}_user") or h.ssh_user),
            h.extra.get(f"{k}_port")) for k in ("gateway", "internal_gateway")
           if h.extra.get(k)]
    if not gws:
        return None
    opts = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes"]

    def hop(gw: tuple[str, str, Any], target: str, inner: str | None) -> str:
        host, user, port = gw
        parts = ["ssh", "-W", target, *opts, "-l", shlex.quote(user)]
        if port:
            parts += ["-p", str(int(port))]
        if inner:
            parts += ["-o", shlex.quote(f"ProxyCommand={inner}")]
        return " ".join([*parts, shlex.quote(host)])

    if len(gws) == 1:
        return hop(gws[0], "%h:%p", None)
    # the outer hop's command is expanded once more by the inner ssh: %% escapes it
    return hop(gws[1], "%h:%p", hop(gws[0], "%%h:%%p", None))


class AnsibleError(RuntimeError):
    def __init__(self, playbook: str, log: Path, summary: str) -> None:
        self.log = log
        super().__init__(f"{playbook} failed: {summary} (full log: {log})")


def enoslib_roles(inv: Inventory) -> Any:
    """Inventory -> EnOSlib Roles, through EnOSlib's Static provider."""
    import enoslib as en  # heavy import, only when hosts are touched

    conf = en.StaticConf()
    for h in inv.hosts:
        groups = list(h.roles) + [f"site_{h.site}"]
        extra = {
            "femdc_address": h.address,
            "femdc_site": h.site,
            "femdc_workdir": h.workdir,
            "ansible_python_interpreter": "/usr/bin/python3",
            **h.extra,
        }
        conf.add_machine(roles=groups, address=h.address, alias=h.alias, user=h.ssh_user,
                         keyfile=h.ssh_key, port=h.ssh_port, extra=extra)
    conf.add_network(roles=["femdc"], cidr="0.0.0.0/0", gateway="0.0.0.0", dns="0.0.0.0")
    roles, networks = en.Static(conf.finalize()).init()
    return roles, networks


def write_inventory(inv: Inventory, path: Path) -> Path:
    import enoslib as en

    roles, networks = enoslib_roles(inv)
    path.parent.mkdir(parents=True, exist_ok=True)
    en.generate_inventory(roles, networks, str(path))
    return path


def control_dir(run_dir: Path) -> Path:
    """Where ansible's SSH master connections of one run live (0700, short: a socket
    path must stay under 108 bytes). One per run: a later run that gets the same
    addresses never reaches a master connection left from an earlier one."""
    tag = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"femdc-cp-{os.getuid()}" / tag


def close_connections(run_dir: Path) -> int:
    """End this run's SSH master connections (at destroy); how many there were."""
    cp_dir = control_dir(run_dir)
    if not cp_dir.is_dir():
        return 0
    n = 0
    for sock in cp_dir.iterdir():
        # the masters (s-*); the bench's forwards (bench/hosts.py forward_path) go with them
        if sock.is_socket() and sock.name.startswith("s-"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "femdc"],
                           capture_output=True, timeout=10)
            n += 1
        sock.unlink(missing_ok=True)
    cp_dir.rmdir()
    return n


def _env(run_dir: Path) -> dict[str, str]:
    cp_dir = control_dir(run_dir)
    cp_dir.parent.mkdir(mode=0o700, exist_ok=True)
    cp_dir.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_FORKS": "50",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s "
                            + " ".join(SSH_OPTIONS),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp_dir),
        # A connection refused or reset (ssh exit 255) is retried 3 times, 1-4 s apart,
        # before the host counts as unreachable: a nightly job should not fail on one
        # dropped handshake.
        "ANSIBLE_SSH_RETRIES": "3",
        "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp" / "ansible"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        # Modules every playbook may use (femdc_locked_venv); each playbook directory's
        # own library/ is found by ansible beside it.
        "ANSIBLE_LIBRARY": str(COMMON_LIBRARY),
        "PYTHONUNBUFFERED": "1",
        # Per-task durations beside the phase's log (playbooks/callback_plugins).
        "ANSIBLE_CALLBACK_PLUGINS": str(PLAYBOOKS / "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "femdc_timings",
        # uv (pyproject's, in our venv) for the locked venvs (playbooks/common/tasks/
        # locked-venv.yml): used on the controller, shipped to testbed hosts; pip builds
        # them where it is absent or cannot run.
        "FEMDC_UV": uv_path(),
    })
    return env


def uv_path() -> str:
    """The uv beside our interpreter (install.sh puts it in .venv), else one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv") or ""


_TASK = re.compile(r"^TASK \[(.*)\]")
_FAIL = re.compile(r"^(fatal|failed): \[([^\]]+)\]")
# a failure's stderr or msg in ansible's YAML output (folded lines indented 8 spaces)
_FIELD = re.compile(r"^    (stderr|msg): \S")
WHY_MAX_CHARS = 300
# msgs that say nothing: a loop's summary line (the failed item's own msg, printed
# before it, is the explanation) and a command's exit status
_GENERIC_MSGS = ("non-zero return code", "All items completed", "One or more items failed", "")


def _explain(failure: str, lines: list[str], why: dict[str, str]) -> None:
    """Keep the last line of a failure's stderr (or a msg other than the generic ones)."""
    block = re.match(r"^(\w+): [|>][-+]?$", lines[0])
    if block:  # a block scalar (`msg: |-`, e.g. UNREACHABLE): the lines below are the value
        key, value = block.group(1), "\n".join(lines[1:])
    else:
        try:
            key, value = next(iter(yaml.safe_load(" ".join(lines)).items()))
        except Exception:  # noqa: BLE001 - not what we expected: no explanation
            return
    text = [ln.strip() for ln in str(value).splitlines() if ln.strip()]
    if not text or (key == "msg" and text[-1] in _GENERIC_MSGS):
        return
    if key == "msg" and failure in why:
        return  # stderr says more than msg
    why[failure] = text[-1][:WHY_MAX_CHARS]


def run_playbook(
    playbook: Path,
    inv: Inventory,
    *,
    run_dir: Path,
    log: Path,
    extra_vars: dict[str, Any] | None = None,
    limit: str | None = None,
    on_task: Callable[[str], None] | None = None,
) -> None:
    """Run one playbook on the inventory; raise AnsibleError naming the failed task.

    Extra vars travel in a 0600 JSON file (they may hold passwords) that is removed
    afterwards; they never appear on a command line.
    """
    inventory = write_inventory(inv, run_dir / "ansible" / "hosts.ini")
    log.parent.mkdir(parents=True, exist_ok=True)
    (run_dir / "tmp" / "ansible").mkdir(parents=True, exist_ok=True)
    fd, vars_path = tempfile.mkstemp(prefix="vars-", suffix=".json", dir=run_dir / "tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(extra_vars or {}, f)
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
               "-e", f"@{vars_path}", str(playbook)]
        if limit:
            cmd += ["--limit", limit]
        env = _env(run_dir)
        env["FEMDC_TASK_TIMINGS"] = str(log.with_suffix(".tasks.tsv"))
        _run(cmd, playbook, log, env, on_task)
    finally:
        os.unlink(vars_path)


def _run(cmd: list[str], playbook: Path, log: Path, env: dict[str, str],
         on_task: Callable[[str], None] | None) -> None:
    last_task, failures = "", []
    field: list[str] | None = None  # the stderr (or msg) of the last failure, being read
    why: dict[str, str] = {}  # failure -> that text
    with open(log, "a") as out:
        out.write(f"\n### {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env, start_new_session=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                m = _TASK.match(line)
                if m:
                    last_task = m.group(1)
                    if on_task:
                        on_task(last_task)
                if field is not None:
                    if line.startswith("        ") and line.strip():
                        field.append(line.strip())
                        continue
                    _explain(failures[-1], field, why)
                    field = None
                if failures and _FIELD.match(line):
                    field = [line.strip()]
                    continue
                f = _FAIL.match(line)
                if f:
                    failures.append(f"{f.group(2)}: {last_task}")
            rc = proc.wait()
        except BaseException:
            # Ctrl-C or any error: stop ansible (and its ssh children) before going on.
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
    if rc != 0:
        summary = "; ".join(f"{f} ({why[f]})" if f in why else f
                            for f in dict.fromkeys(failures)) or f"exit code {rc}"
        raise AnsibleError(playbook.name, log, f"task failed on {summary}")
