"""What collect.yml brings back from a host, in one run of one script: the versions of
the host's software, the memory of the run's processes, and one archive of its logs.

    python3 host_facts.py WORKDIR ARCHIVE

Prints JSON {"versions": {name: version line}, "memory": {...}, "logs": n}; ARCHIVE
(a .tar.gz) holds WORKDIR/log/*.log (n files), or is not written when there are none.

Memory: the resident memory of the processes a run's services run as on this host.

Every service of the native method is started in the host's work directory
(start-stop-daemon --chdir / systemd WorkingDirectory) and its children inherit it, so
"the processes whose cwd is WORKDIR" are exactly the deployment's processes here.
Prints JSON: {"pss_mb", "rss_mb", "processes", "by_name": {comm: {"pss_mb", "count"}}}.
PSS (proportional set size) counts a page shared by n processes as 1/n: the sum is what
the deployment really occupies (uwsgi workers and forked computes share most pages).

"""

import json
import os
import subprocess
import sys
import tarfile

VERSION_COMMANDS = {
    "kernel": ["uname", "-r"],
    "python": ["/usr/bin/python3", "--version"],
    "mariadb": ["mariadbd", "--version"],
    "memcached": ["memcached", "-V"],
}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def kb(path: str, key: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def versions() -> dict:
    out = {}
    for name, argv in VERSION_COMMANDS.items():
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                               env={"PATH": PATH, "LC_ALL": "C"})
            out[name] = p.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out[name] = ""
    return out


def logs(workdir: str, archive: str) -> int:
    logdir = os.path.join(workdir, "log")
    names = sorted(n for n in os.listdir(logdir) if n.endswith(".log")) \
        if os.path.isdir(logdir) else []
    if os.path.exists(archive):
        os.unlink(archive)
    if names:
        with tarfile.open(archive + ".tmp", "w:gz", compresslevel=1) as tar:
            for n in names:
                tar.add(os.path.join(logdir, n), arcname=n, recursive=False)
        os.replace(archive + ".tmp", archive)
    return len(names)


def memory(workdir: str) -> dict:
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
    return out


def main() -> None:
    workdir, archive = os.path.realpath(sys.argv[1]), sys.argv[2]
    print(json.dumps({"versions": versions(), "memory": memory(workdir),
                      "logs": logs(workdir, archive)}))


if __name__ == "__main__":
    main()
