"""Resident memory of the processes a run's services run as on this host.

Every service of the native method is started in the host's work directory
(start-stop-daemon --chdir / systemd WorkingDirectory) and its children inherit it, so
"the processes whose cwd is WORKDIR" are exactly the deployment's processes here.
Prints JSON: {"pss_mb", "rss_mb", "processes", "by_name": {comm: {"pss_mb", "count"}}}.
PSS (proportional set size) counts a page shared by n processes as 1/n: the sum is what
the deployment really occupies (uwsgi workers and forked computes share most pages).

    python3 memory.py WORKDIR
"""

import json
import os
import sys


def kb(path: str, key: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def main() -> None:
    workdir = os.path.realpath(sys.argv[1])
    out = {"pss_mb": 0.0, "rss_mb": 0.0, "processes": 0, "by_name": {}}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if cwd != workdir and not cwd.startswith(workdir + "/"):
                continue
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            pss = kb(f"/proc/{pid}/smaps_rollup", "Pss:") / 1024
            rss = kb(f"/proc/{pid}/status", "VmRSS:") / 1024
        except OSError:
            continue
        out["pss_mb"] += pss
        out["rss_mb"] += rss
        out["processes"] += 1
        g = out["by_name"].setdefault(comm, {"pss_mb": 0.0, "count": 0})
        g["pss_mb"] = round(g["pss_mb"] + pss, 1)
        g["count"] += 1
    out["pss_mb"] = round(out["pss_mb"], 1)
    out["rss_mb"] = round(out["rss_mb"], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
