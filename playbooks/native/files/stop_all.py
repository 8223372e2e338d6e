"""Stop every service this run started on this host, in stages, each stage at once.

    python3 stop_all.py RUNDIR UNIT_PREFIX STAGES_JSON

STAGES_JSON is a list of stages, each a list of [service name, process comm]: the
services of a stage are stopped together, a stage after the previous one is gone. For each
service, whatever its supervisor was:

- systemd: the unit UNIT_PREFIX<name>.service, if its unit file exists, is stopped and its
  unit file removed (one daemon-reload at the end);
- pidfile: RUNDIR/<name>.pid names a process; it is signalled only if its
  /proc/<pid>/comm is the expected one (a recycled PID is never touched): SIGTERM, up to
  TERM_S seconds for it to end, then SIGKILL, up to KILL_S seconds more.

The pidfile and digest of each service are removed. Prints one JSON line
{"stopped": [...], "killed": [...], "left": [...]} and exits 1 if a process is left.
Stopping what is already gone succeeds. (The service role's stop.yml does the same for
one service, with start-stop-daemon; this is the whole host's teardown in one task.)
"""

import json
import os
import signal
import subprocess
import sys
import time

TERM_S, KILL_S = 30.0, 5.0
UNIT_DIR = "/etc/systemd/system"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _pid_of(rundir: str, name: str, comm: str) -> int | None:
    try:
        with open(os.path.join(rundir, name + ".pid")) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() != comm[:15]:
                return None  # not ours (the PID was reused)
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _wait(pids: dict[str, int], seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while pids and time.monotonic() < deadline:
        pids = {n: p for n, p in pids.items() if _alive(p)}
        if pids:
            time.sleep(0.1)
    return {n: p for n, p in pids.items() if _alive(p)}


def main() -> int:
    rundir, prefix, stages = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    stopped: list[str] = []
    killed: list[str] = []
    left: list[str] = []
    reload = False
    for stage in stages:
        units = [f"{prefix}{name}.service" for name, _ in stage
                 if os.path.exists(os.path.join(UNIT_DIR, f"{prefix}{name}.service"))]
        if units:
            subprocess.run(["systemctl", "stop", *units], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for unit in units:
                os.unlink(os.path.join(UNIT_DIR, unit))
            stopped += units
            reload = True
        pids = {}
        for name, comm in stage:
            pid = _pid_of(rundir, name, comm)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                    pids[name] = pid
                except ProcessLookupError:
                    pass
        survivors = _wait(dict(pids), TERM_S)
        stopped += [n for n in pids if n not in survivors]
        for name, pid in survivors.items():
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(name)
            except ProcessLookupError:
                pass
        left += list(_wait(survivors, KILL_S))
        for name, _ in stage:
            for suffix in (".pid", ".digest"):
                try:
                    os.unlink(os.path.join(rundir, name + suffix))
                except OSError:
                    pass
    if reload:
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    print(json.dumps({"stopped": stopped, "killed": killed, "left": left}))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
