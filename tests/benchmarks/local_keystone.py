"""A throw-away Keystone on 127.0.0.1 for benchmarks: SQLite, fernet, cache, uwsgi.

    with LocalKeystone(venv="/opt/venv") as ks:
        print(ks.auth_url, ks.admin_password)

Everything lives in a temporary directory; every process started (memcached, uwsgi) is
stopped by PID on exit, failures included. Only 127.0.0.1 is bound.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

MEMCACHED = "/usr/bin/memcached"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout_s} s")


def descendants(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the live processes `pids` (children's times not included)."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLK_TCK


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


class LocalKeystone:
    def __init__(
        self,
        *,
        venv: str,
        workers: int = 2,
        memcached: bool | None = None,
        versioned_catalog: bool = True,
        keep_dir: bool = False,
    ) -> None:
        self.venv = Path(venv)
        self.workers = workers
        self.use_memcached = os.path.exists(MEMCACHED) if memcached is None else memcached
        self.versioned_catalog = versioned_catalog
        self.keep_dir = keep_dir
        self.dir = Path(tempfile.mkdtemp(prefix="femdc-keystone-"))
        self.port = 0
        self.admin_password = secrets.token_urlsafe(18)
        self.region = "RegionOne"
        self._procs: list[_Proc] = []
        self._known_pids: set[int] = set()

    # ---------------------------------------------------------------- properties

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/v3"

    @property
    def uwsgi(self) -> _Proc:
        return next(p for p in self._procs if p.name == "uwsgi")

    @property
    def cache_backend(self) -> str:
        return "memcached (oslo_cache.memcache_pool)" if self.use_memcached else "dogpile memory"

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> LocalKeystone:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.use_memcached:
            mport = free_port()
            cmd = [MEMCACHED, "-l", HOST, "-p", str(mport), "-U", "0", "-m", "64", "-t", "2"]
            if os.geteuid() == 0:
                cmd += ["-u", "root"]
            mc = self._spawn("memcached", cmd)
            wait_port(mport, 10, mc.popen)
            cache = f"backend = oslo_cache.memcache_pool\nmemcache_servers = {HOST}:{mport}\n"
        else:
            cache = "backend = dogpile.cache.memory\n"
        self.port = free_port()
        conf = self.dir / "keystone.conf"
        conf.write_text(
            "[DEFAULT]\n"
            f"log_file = {self.dir / 'keystone.log'}\n"
            "[database]\n"
            f"connection = sqlite:///{self.dir / 'keystone.db'}\n"
            "[token]\nprovider = fernet\n"
            "[fernet_tokens]\n"
            f"key_repository = {self.dir / 'fernet-keys'}\n"
            "[fernet_receipts]\n"
            f"key_repository = {self.dir / 'fernet-keys'}\n"
            "[credential]\n"
            f"key_repository = {self.dir / 'credential-keys'}\n"
            "[cache]\nenabled = true\n" + cache + "[identity]\npassword_hash_rounds = 4\n"
        )
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        manage = [str(self.venv / "bin" / "keystone-manage"), "--config-file", str(conf)]
        ids = ["--keystone-user", user, "--keystone-group", group]
        url = f"{self.base_url}/v3/" if self.versioned_catalog else self.base_url
        for step in (
            ["db_sync"],
            ["fernet_setup", *ids],
            ["credential_setup", *ids],
            [
                "bootstrap",
                "--bootstrap-password",
                self.admin_password,
                "--bootstrap-region-id",
                self.region,
                "--bootstrap-admin-url",
                url,
                "--bootstrap-internal-url",
                url,
                "--bootstrap-public-url",
                url,
            ],
        ):
            log = self.dir / f"manage-{step[0]}.log"
            with open(log, "wb") as out:
                r = subprocess.run(manage + step, stdout=out, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"keystone-manage {step[0]} failed ({r.returncode}):\n{tail}")
        env = dict(os.environ, OS_KEYSTONE_CONFIG_DIR=str(self.dir))
        uw = self._spawn(
            "uwsgi",
            [
                str(self.venv / "bin" / "uwsgi"),
                "--http",
                f"{HOST}:{self.port}",
                "--module",
                "keystone.wsgi.api:application",
                "--home",
                str(self.venv),
                "--http-keepalive",
                "--processes",
                str(self.workers),
                "--master",
                "--die-on-term",
                "--need-app",
                "--pidfile",
                str(self.dir / "uwsgi.pid"),
            ],
            env=env,
        )
        wait_port(self.port, 60, uw.popen)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.auth_url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or uw.popen.poll() is not None:
                    tail = uw.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(
                        f"keystone did not answer at {self.auth_url}:\n{tail}"
                    ) from None
                time.sleep(0.3)
        self._known_pids.update(descendants(uw.popen.pid))

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> _Proc:
        log = self.dir / f"{name}.out"
        with open(log, "wb") as out:
            p = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        proc = _Proc(name, p, log)
        self._procs.append(proc)
        return proc

    def stop(self) -> None:
        """SIGTERM every process started, by PID (then SIGKILL); remove the directory."""
        for proc in reversed(self._procs):
            pids = set(descendants(proc.popen.pid)) | (
                self._known_pids if proc.name == "uwsgi" else set()
            )
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
                try:
                    proc.popen.wait(15)
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
                    proc.popen.wait(5)
            for pid in pids - {proc.popen.pid}:  # workers the master left behind, if any
                if _is_alive_child_of_us(pid, proc):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        self._procs.clear()
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------------- measurements

    def server_cpu_s(self) -> float:
        """CPU seconds used so far by the uwsgi master, HTTP router and workers."""
        return cpu_seconds(descendants(self.uwsgi.popen.pid))

    def request_count(self) -> int:
        """Requests uwsgi has logged so far (one line per request)."""
        return sum(self.request_mix().values())

    def request_mix(self) -> Counter[str]:
        """Requests logged so far by "METHOD /path STATUS", ids replaced by {id}."""
        mix: Counter[str] = Counter()
        with open(self.uwsgi.log, "rb") as f:
            for line in f:
                if line.startswith(b"[pid: ") and b" => generated " in line:
                    m = _REQUEST.search(line.decode("utf-8", "replace"))
                    key = f"{m[1]} {_ID.sub('{id}', m[2])} {m[3]}" if m else "?"
                    mix[key] += 1
        return mix


_REQUEST = re.compile(r"\] ([A-Z]+) (\S+) => generated .*\(HTTP/[\d.]+ (\d+)\)")
_ID = re.compile(r"[0-9a-f]{32}")


def _is_alive_child_of_us(pid: int, proc: _Proc) -> bool:
    """Only kill a leftover PID if it still runs a program from our uwsgi command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
    except OSError:
        return False
    return bool(cmd) and cmd[0] == os.fsencode(proc.popen.args[0])  # type: ignore[index]
