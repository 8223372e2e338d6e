"""What collect.yml brings back from a host, in one run of one script: the versions of
the host's software, the memory of the run's processes, and one archive of its logs.

    python3 host_facts.py WORKDIR ARCHIVE

Prints JSON {"versions": {name: version line}, "memory": {...}, "logs": n,
"configs": m}; ARCHIVE (a .tar.gz) holds WORKDIR/log/*.log (n files) and the rendered
configuration of the host's services as config-<service>-<file> (m files: WORKDIR/*/etc/*,
my.cnf, rabbitmq.conf, enabled_plugins), every password, secret, token, key or cookie
value and URL password in them replaced by <redacted>; it is not written when there is
nothing.

Memory: the resident memory of the processes a run's services run as on this host.

Every service of the native method is started in the host's work directory
(start-stop-daemon --chdir / systemd WorkingDirectory) and its children inherit it, so
"the processes whose cwd is WORKDIR" are exactly the deployment's processes here.
Prints JSON: {"pss_mb", "rss_mb", "processes", "by_name": {comm: {"pss_mb", "count"}}}.
PSS (proportional set size) counts a page shared by n processes as 1/n: the sum is what
the deployment really occupies (uwsgi workers and forked computes share most pages).

"""

import io
import json
import os
import re
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


SECRET_KEY = re.compile(r"password|secret|token|key|cookie|credential", re.I)
KV = re.compile(r"^(\s*[A-Za-z0-9_.\-]+\s*[=:]\s*)(\S.*)$")
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
CONFIG_FILES = ("mariadb/my.cnf", "rabbitmq/rabbitmq.conf", "rabbitmq/enabled_plugins")


def redact(text: str) -> str:
    out = []
    for line in text.splitlines():
        m = KV.match(line)
        if m and SECRET_KEY.search(m.group(1)) and not line.lstrip().startswith(("#", ";")):
            line = m.group(1) + "<redacted>"
        out.append(URL_PASSWORD.sub(r"\1<redacted>@", line))
    return "\n".join(out) + "\n"


def configs(workdir: str) -> list[tuple[str, str]]:
    """(archive name, path) of the rendered configuration files of the host's services."""
    found = []
    for svc in sorted(os.listdir(workdir)) if os.path.isdir(workdir) else []:
        etc = os.path.join(workdir, svc, "etc")
        if os.path.isdir(etc):
            found += [(f"config-{svc}-{n}", os.path.join(etc, n)) for n in sorted(os.listdir(etc))
                      if os.path.isfile(os.path.join(etc, n))]
    for rel in CONFIG_FILES:
        path = os.path.join(workdir, rel)
        if os.path.isfile(path):
            found.append(("config-" + rel.replace("/", "-"), path))
    return found


def logs(workdir: str, archive: str) -> tuple[int, int]:
    logdir = os.path.join(workdir, "log")
    names = sorted(n for n in os.listdir(logdir) if n.endswith(".log")) \
        if os.path.isdir(logdir) else []
    confs = configs(workdir)
    if os.path.exists(archive):
        os.unlink(archive)
    if names or confs:
        with tarfile.open(archive + ".tmp", "w:gz", compresslevel=1) as tar:
            for n in names:
                tar.add(os.path.join(logdir, n), arcname=n, recursive=False)
            for arcname, path in confs:
                with open(path, encoding="utf-8", errors="replace") as f:
                    data = redact(f.read()).encode()
                info = tarfile.TarInfo(arcname)
                info.size, info.mode = len(data), 0o644
                info.mtime = int(os.stat(path).st_mtime)
                tar.addfile(info, io.BytesIO(data))
        os.replace(archive + ".tmp", archive)
    return len(names), len(confs)


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
    n_logs, n_configs = logs(workdir, archive)
    print(json.dumps({"versions": versions(), "memory": memory(workdir),
                      "logs": n_logs, "configs": n_configs}))


if __name__ == "__main__":
    main()
