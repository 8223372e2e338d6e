"""Every generated secret of a run, looked for where it must never be (issue 10, item 6):
the process table while the run works (argv, as `ps` shows it), every file of the run's
results except the two that are credentials by design (secrets.json, clouds.yaml) and
its SSH keys, every member of its backup archive, the service logs on its hosts, what
the CLI printed, and every point of the run in InfluxDB."""

from __future__ import annotations

import json
import os
import tarfile
import threading
from pathlib import Path

import requests

# Credentials by design (0600): the secrets themselves, and the users' clouds.yaml.
ALLOWED = {"secrets.json", "clouds.yaml"}
# The run's SSH keys and the raw InfluxDB data (binary; its points are queried instead).
SKIPPED_DIRS = {"ssh", "influxdb"}


def run_secrets(run_dir: Path) -> list[str]:
    """Every generated secret of the run (passwords, Keystone's fernet and credential
    keys): at least 16 characters, so a match is never chance."""
    values = json.loads((run_dir / "secrets.json").read_text()).values()
    out = [v for v in values if isinstance(v, str) and len(v) >= 16]
    assert out, "no secret found in secrets.json"
    # deployment.tls: each private key (the CA's, the hosts'), by its first base64 line
    for key in sorted((run_dir / "tls").glob("*.key")):
        out.append(key.read_text().splitlines()[1])
    return out


class ProcWatch:
    """Reads every process's argv (/proc/*/cmdline, what `ps` shows) every 50 ms on a
    thread, keeping each distinct one, until stopped."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ProcWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                    except OSError:
                        continue
                    self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            self.scans += 1
            self._stop.wait(0.05)

    def leaks(self, secrets: list[str]) -> list[str]:
        """The command lines holding a secret, each secret replaced by <secret> (a
        failing test prints them)."""
        out = []
        for cmd in self.seen:
            if any(s in cmd for s in secrets):
                for s in secrets:
                    cmd = cmd.replace(s, "<secret>")
                out.append(cmd[:300])
        return out


def file_leaks(run_dir: Path, secrets: list[str]) -> list[str]:
    """Files of the results directory (and members of its backup archives) holding a
    secret, except the credential files by design."""
    needles = [s.encode() for s in secrets]
    out = []
    for path in run_dir.rglob("*"):
        rel = path.relative_to(run_dir)
        if not path.is_file() or path.is_symlink() or rel.parts[0] in SKIPPED_DIRS:
            continue
        if rel.as_posix() in ALLOWED or (rel.parts[0] == "tls" and path.suffix == ".key"):
            continue
        data = path.read_bytes()
        if any(n in data for n in needles):
            out.append(rel.as_posix())
        if path.name.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                for m in tar.getmembers():
                    f = tar.extractfile(m) if m.isfile() else None
                    if f is not None and any(n in f.read() for n in needles):
                        out.append(f"{rel}!{m.name}")
    return out


def host_log_leaks(run_id: str, secrets: list[str]) -> list[str]:
    """Service logs on the run's hosts (while they still exist): no secret. Other files
    that hold one (service configuration: a database URL, a RabbitMQ transport URL) are
    readable by their owner only (group at most)."""
    root = Path("/var/lib/femdc-bench/runs") / run_id
    needles = [s.encode() for s in secrets]
    out = []
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 64 << 20:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if not any(n in data for n in needles):
            continue
        if path.suffix in (".log", ".out", ".err") or "/logs/" in str(path):
            out.append(f"log {path}")
        elif path.stat().st_mode & 0o007:
            out.append(f"world-readable {path} ({oct(path.stat().st_mode & 0o777)})")
    return out


def influx_leaks(url: str, run_id: str, secrets: list[str]) -> list[str]:
    """Every measurement's points of the run, tags and fields, as InfluxDB returns them."""
    r = requests.get(f"{url}/query", params={"db": "femdc", "q": "SHOW MEASUREMENTS"},
                     timeout=60).json()
    names = [v[0] for s in r["results"][0].get("series", []) for v in s["values"]]
    assert names, "no measurement in InfluxDB"
    out = []
    for name in names:
        body = requests.get(f"{url}/query", params={
            "db": "femdc", "q": f"SELECT * FROM \"{name}\" WHERE run='{run_id}'"},
            timeout=120).text
        out += [f"measurement {name}" for s in secrets if s in body]
    return out
