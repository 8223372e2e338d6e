"""Our workload driver against Rally: throughput and client CPU, side by side in one run.

    python tests/benchmarks/driver_vs_rally.py --venv SERVICE_VENV [--iterations 200]
        [--rally-venv /var/cache/femdc-bench/venvs/rally-5.1.1] [--concurrency 1 8]
        [--parts keystone http] [--http-concurrency 8]
        [--cache memcached|memory] [--json results.json]

Part "keystone" (a) loads one real local Keystone; part "http" (b) loads a tiny local
HTTP endpoint (tests/benchmarks/tiny_http.py: its own asyncio process, one fixed answer)
with Rally's HttpRequests.check_request, both tools under the same name and arguments
(GET, status_code 200), where the client is the only limit. For (b) the table also gives
the TCP connections per iteration: ours keeps one per worker, Rally's requests.request
opens one per iteration.

It starts a Keystone from SERVICE_VENV (SQLite in a temporary directory, fernet tokens,
[cache] on memcached when /usr/bin/memcached exists, password_hash_rounds = 4, uwsgi with
2 processes on 127.0.0.1), installs rally==5.1.1 + rally-openstack==4.1.0 into their own
venv if missing, then runs, at each concurrency, both tools at N and 2N iterations of the
same operation: a password authentication of the admin (project-scoped, with catalog)
followed by a validation of that token with an admin token
(ours: keystone.authenticate_and_validate_token with use_admin=true; Rally:
KeystoneBasic.authenticate_user_and_validate_token, constant runner, an "existing@openstack"
environment with the admin also given as its existing user, so that no users context
creates a user per task). The admin logs in once before anything is measured (see
_warm_up).

Measured per tool and concurrency:
- iterations/s from the tool's own per-iteration timings: iterations / (last end - first
  start), which is Rally's load_duration (ours: the Samples), over the N and 2N runs;
- client CPU per iteration: user+sys from wait4() rusage of the tool's process (children
  it reaped included: Rally's runner processes), as (CPU(2N) - CPU(N)) / N so that start-up,
  validation and context setup cancel out;
- HTTP requests per iteration and Keystone CPU per iteration, the same difference, from
  uwsgi's request log and /proc of the uwsgi processes.

Every process started (memcached, uwsgi, the tools) is stopped by PID on exit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from femdc_bench.workload.percentile import percentile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_keystone import LocalKeystone  # noqa: E402
from tiny_http import TinyHttp  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RALLY_VERSION = "5.1.1"
RALLY_OPENSTACK_VERSION = "4.1.0"
DEFAULT_RALLY_VENV = f"/var/cache/femdc-bench/venvs/rally-{RALLY_VERSION}"
RALLY_SCENARIO = "KeystoneBasic.authenticate_user_and_validate_token"
OUR_SCENARIO = "keystone.authenticate_and_validate_token"
HTTP_SCENARIO = "HttpRequests.check_request"
READY_MARK = ".femdc-ready"

_children: list[subprocess.Popen[bytes]] = []  # tool runs in flight, for cleanup


@dataclass
class Run:
    tool: str
    concurrency: int
    iterations: int
    cpu_s: float  # client user+sys (wait4 rusage)
    elapsed_s: float  # whole process, start-up included
    load_s: float  # first iteration start -> last iteration end
    ok: int
    failed: int
    requests: int  # HTTP requests Keystone served during the run
    server_cpu_s: float
    durations_ms: list[float]
    first_error: str = ""
    mix: dict[str, int] = field(default_factory=dict)  # requests by "METHOD /path STATUS"
    connections: int = -1  # TCP connections the server accepted (-1: not counted)


@dataclass
class Workload:
    """One operation, named for each tool, and the server it loads."""

    part: str  # "keystone" or "http"
    ours: str
    ours_args: dict[str, object]
    rally: str
    rally_args: dict[str, object]
    server: Any  # request_mix() -> Counter, server_cpu_s() -> float[, connections()]

    def connections(self) -> int:
        f = getattr(self.server, "connections", None)
        return f() if f else -1


@dataclass
class Row:
    tool: str
    concurrency: int
    iterations_per_s: float
    client_cpu_ms_per_it: float
    requests_per_it: float
    server_cpu_ms_per_it: float
    p50_ms: float
    p95_ms: float
    failed: int
    mix_per_it: dict[str, float] = field(default_factory=dict)
    part: str = "keystone"
    connections_per_it: float = float("nan")


# --------------------------------------------------------------------------- processes


def run_measured(
    cmd: list[str], *, env: dict[str, str], cwd: Path, log: Path
) -> tuple[int, float, float]:
    """Run `cmd`; return (exit code, user+sys CPU seconds from wait4, elapsed seconds)."""
    t0 = time.monotonic()
    with open(log, "wb") as out:
        p = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    _children.append(p)
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        _children.remove(p)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, ru.ru_utime + ru.ru_stime, time.monotonic() - t0


def stop_children() -> None:
    for p in list(_children):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# --------------------------------------------------------------------------- rally


def ensure_rally(venv: Path) -> Path:
    """The rally executable of `venv`, installing Rally there first if missing."""
    rally = venv / "bin" / "rally"
    if rally.exists() and (venv / READY_MARK).exists():
        return rally
    print(
        f"installing rally=={RALLY_VERSION} rally-openstack=={RALLY_OPENSTACK_VERSION} "
        f"into {venv} (about a minute)",
        flush=True,
    )
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log = venv / "install.log"
    with open(log, "wb") as out:
        r = subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                f"rally=={RALLY_VERSION}",
                f"rally-openstack=={RALLY_OPENSTACK_VERSION}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if r.returncode != 0:
        raise RuntimeError(f"pip install failed ({r.returncode}):\n{tail(log)}")
    (venv / READY_MARK).write_text(
        f"rally=={RALLY_VERSION} rally-openstack=={RALLY_OPENSTACK_VERSION}\n"
    )
    return rally


class RallyTool:
    name = "rally"

    def __init__(self, rally: Path, ks: LocalKeystone | None, work: Path) -> None:
        """`ks` None: an environment without OpenStack (enough for HttpRequests)."""
        self.rally = rally
        self.dir = work / "rally"
        (self.dir / "home").mkdir(parents=True)
        self.conf = self.dir / "rally.conf"
        self.conf.write_text(
            f"[database]\nconnection = sqlite:///{self.dir / 'rally.sqlite'}\n"
            f"[DEFAULT]\nlog_file = {self.dir / 'rally.log'}\n"
        )
        # HOME: Rally keeps ~/.rally/globals; never touch the user's
        self.env = dict(os.environ, HOME=str(self.dir / "home"))
        self.env.pop("RALLY_ENV", None)
        self.env.pop("RALLY_TASK", None)
        self._cli(["db", "create"], "db-create")
        if ks is None:
            self._cli(["env", "create", "--name", "bench"], "env-create")
            return
        env_spec = self.dir / "env.json"
        admin = {
            "username": "admin",
            "password": ks.admin_password,
            "project_name": "admin",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        }
        _write_private(
            env_spec,
            {
                "existing@openstack": {
                    "auth_url": ks.auth_url,
                    "region_name": ks.region,
                    "https_insecure": False,
                    "admin": admin,
                    # existing users: no users context creating a fresh user per task,
                    # whose concurrent first logins collide on SQLite (see _warm_up)
                    "users": [admin],
                }
            },
        )
        self._cli(["env", "create", "--name", "bench", "--spec", str(env_spec)], "env-create")

    def _cli(self, args: list[str], logname: str) -> Path:
        log = self.dir / f"{logname}.out"  # may hold the password: stays in the temp dir
        with open(log, "wb") as out:
            r = subprocess.run(
                [str(self.rally), "--config-file", str(self.conf), *args],
                env=self.env,
                cwd=self.dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if r.returncode != 0:
            raise RuntimeError(f"rally {' '.join(args[:2])} failed ({r.returncode}), see {log}")
        return log

    def run(self, iterations: int, concurrency: int, wl: Workload) -> Run:
        tag = f"{wl.part}-c{concurrency}-n{iterations}-{time.monotonic_ns()}"
        task = self.dir / f"task-{tag}.json"
        task.write_text(
            json.dumps(
                {
                    "version": 2,
                    "title": tag,
                    "subtasks": [
                        {
                            "title": tag,
                            "workloads": [
                                {
                                    "scenario": {wl.rally: wl.rally_args},
                                    "runner": {
                                        "constant": {
                                            "times": iterations,
                                            "concurrency": concurrency,
                                        }
                                    },
                                    "contexts": {},
                                    "sla": {},
                                }
                            ],
                        }
                    ],
                }
            )
        )
        log = self.dir / f"task-{tag}.out"
        mix0, srv0, con0 = wl.server.request_mix(), wl.server.server_cpu_s(), wl.connections()
        code, cpu, elapsed = run_measured(
            [
                str(self.rally),
                "--config-file",
                str(self.conf),
                "task",
                "start",
                str(task),
                "--env",
                "bench",
            ],
            env=self.env,
            cwd=self.dir,
            log=log,
        )
        mix1, srv1, con1 = wl.server.request_mix(), wl.server.server_cpu_s(), wl.connections()
        m = re.search(r"Task +([0-9a-f-]{36})", tail(log, 10**7))
        if code not in (0, 2) or m is None:  # 2: an SLA failed (none is set)
            raise RuntimeError(f"rally task start failed ({code}):\n{tail(log)}")
        report = self.dir / f"report-{tag}.json"
        self._cli(["task", "report", m.group(1), "--json", "--out", str(report)], f"report-{tag}")
        w = json.loads(report.read_text())["tasks"][0]["subtasks"][0]["workloads"][0]
        data = w["data"]
        failed = sum(1 for it in data if it["error"])
        return Run(
            tool=self.name,
            concurrency=concurrency,
            iterations=iterations,
            cpu_s=cpu,
            elapsed_s=elapsed,
            load_s=float(w["load_duration"]),
            ok=len(data) - failed,
            failed=failed,
            requests=(mix1 - mix0).total(),
            mix=dict(mix1 - mix0),
            server_cpu_s=srv1 - srv0,
            durations_ms=[it["duration"] * 1000 for it in data if not it["error"]],
            first_error=next((": ".join(it["error"][:2]) for it in data if it["error"]), ""),
            connections=con1 - con0 if con0 >= 0 else -1,
        )


# --------------------------------------------------------------------------- ours


class OurTool:
    name = "femdc"

    def __init__(self, venv: Path, ks: LocalKeystone | None, work: Path) -> None:
        """`ks` None: jobs whose auth is never used (HttpRequests needs no OpenStack)."""
        self.python = venv / "bin" / "python"
        self.auth = {
            "auth_url": ks.auth_url if ks else "http://127.0.0.1:9/v3",
            "username": "admin",
            "password": ks.admin_password if ks else "unused",
            "project_name": "admin",
            "region_name": ks.region if ks else "RegionOne",
        }
        self.dir = work / "femdc"
        self.dir.mkdir(parents=True)
        self.env = dict(os.environ, PYTHONPATH=str(REPO))

    def run(self, iterations: int, concurrency: int, wl: Workload) -> Run:
        tag = f"{wl.part}-c{concurrency}-n{iterations}-{time.monotonic_ns()}"
        spec = self.dir / f"spec-{tag}.json"
        _write_private(
            spec,
            {
                "version": 1,
                "site": "local",
                "host": "local",
                "jobs": [
                    {
                        "scenario": wl.ours,
                        "args": wl.ours_args,
                        "runner": {
                            "type": "times",
                            "times": iterations,
                            "concurrency": concurrency,
                        },
                        "target_site": "local",
                        "auth": self.auth,
                        "name_prefix": "femdc-bench-",
                    }
                ],
            },
        )
        out = self.dir / f"samples-{tag}.jsonl"
        log = self.dir / f"agent-{tag}.out"
        mix0, srv0, con0 = wl.server.request_mix(), wl.server.server_cpu_s(), wl.connections()
        code, cpu, elapsed = run_measured(
            [
                str(self.python),
                "-m",
                "femdc_bench.workload.agent",
                "--spec",
                str(spec),
                "--out",
                str(out),
            ],
            env=self.env,
            cwd=self.dir,
            log=log,
        )
        mix1, srv1, con1 = wl.server.request_mix(), wl.server.server_cpu_s(), wl.connections()
        if code != 0:
            raise RuntimeError(f"agent failed ({code}):\n{tail(log)}")
        rows = [json.loads(line) for line in out.read_text().splitlines() if line]
        rows = [r for r in rows if not r.get("action")]  # iterations, not atomic actions
        ok = [r for r in rows if r["status"] == "ok"]
        start = min(r["t0_ns"] for r in rows)
        end = max(r["t0_ns"] + r["duration_ms"] * 1e6 for r in rows)
        return Run(
            tool=self.name,
            concurrency=concurrency,
            iterations=iterations,
            cpu_s=cpu,
            elapsed_s=elapsed,
            load_s=(end - start) / 1e9,
            ok=len(ok),
            failed=len(rows) - len(ok),
            requests=(mix1 - mix0).total(),
            mix=dict(mix1 - mix0),
            server_cpu_s=srv1 - srv0,
            durations_ms=[r["duration_ms"] for r in ok],
            first_error=next((r["error"] for r in rows if r["status"] != "ok"), ""),
            connections=con1 - con0 if con0 >= 0 else -1,
        )


def _write_private(path: Path, data: object) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)


# --------------------------------------------------------------------------- analysis


def pct(values: list[float], p: float) -> float:
    """Rally's percentile (femdc_bench.workload.percentile, as the report and SLA use)."""
    return percentile(values, p) if values else float("nan")


def row(small: Run, big: Run, part: str) -> Row:
    n = big.iterations - small.iterations
    its = small.ok + small.failed + big.ok + big.failed
    return Row(
        part=part,
        connections_per_it=(big.connections - small.connections) / n
        if big.connections >= 0 else float("nan"),
        tool=big.tool,
        concurrency=big.concurrency,
        iterations_per_s=its / (small.load_s + big.load_s),
        client_cpu_ms_per_it=1000 * (big.cpu_s - small.cpu_s) / n,
        requests_per_it=(big.requests - small.requests) / n,
        server_cpu_ms_per_it=1000 * (big.server_cpu_s - small.server_cpu_s) / n,
        p50_ms=statistics.median(big.durations_ms) if big.durations_ms else float("nan"),
        p95_ms=pct(big.durations_ms, 95),
        failed=small.failed + big.failed,
        mix_per_it={
            k: (big.mix.get(k, 0) - small.mix.get(k, 0)) / n
            for k in sorted(set(big.mix) | set(small.mix))
            if abs(big.mix.get(k, 0) - small.mix.get(k, 0)) / n >= 0.05
        },
    )


def median_row(rows: list[Row]) -> Row:
    """Field-wise median of the repeats of one (tool, concurrency) point."""
    first = rows[0]
    med = {
        f: statistics.median(getattr(r, f) for r in rows)
        for f in (
            "iterations_per_s",
            "client_cpu_ms_per_it",
            "requests_per_it",
            "server_cpu_ms_per_it",
            "p50_ms",
            "p95_ms",
            "connections_per_it",
        )
    }
    return Row(
        part=first.part,
        tool=first.tool,
        concurrency=first.concurrency,
        failed=sum(r.failed for r in rows),
        mix_per_it=first.mix_per_it,
        **med,
    )


def print_table(all_rows: list[Row], title: str, n: int, repeat: int) -> None:
    groups: dict[tuple[str, int], list[Row]] = {}
    for r in all_rows:
        groups.setdefault((r.tool, r.concurrency), []).append(r)
    rows = [median_row(g) for g in groups.values()]
    conns = any(not math.isnan(r.connections_per_it) for r in rows)
    print()
    print(
        f"{title}; {os.cpu_count()} CPUs shared by client and server; "
        f"N={n} and 2N={2 * n} iterations per point"
        + (f", medians of {repeat} repeats" if repeat > 1 else "")
    )
    head = (
        f"{'conc':>4}  {'tool':<6} {'it/s':>8} {'client CPU':>11} {'HTTP req':>9} "
        f"{'server CPU':>11} {'p50':>8} {'p95':>8} {'failed':>6}"
        + (f" {'TCP conn':>9}" if conns else "")
    )
    print(head)
    print(
        f"{'':>4}  {'':<6} {'':>8} {'ms/it':>11} {'/it':>9} {'ms/it':>11} {'ms':>8} "
        f"{'ms':>8} {'':>6}" + (f" {'/it':>9}" if conns else "")
    )
    print("-" * len(head))
    by = {(r.tool, r.concurrency): r for r in rows}
    for c in sorted({r.concurrency for r in rows}):
        ours, rally = by.get(("femdc", c)), by.get(("rally", c))
        for r in (ours, rally):
            if r is not None:
                print(
                    f"{c:>4}  {r.tool:<6} {r.iterations_per_s:>8.1f} "
                    f"{r.client_cpu_ms_per_it:>11.2f} {r.requests_per_it:>9.2f} "
                    f"{r.server_cpu_ms_per_it:>11.2f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} "
                    f"{r.failed:>6}" + (f" {r.connections_per_it:>9.2f}" if conns else "")
                )
        if ours and rally:

            def ratio(a: float, b: float) -> str:
                return f"{a / b:.2f}x" if b else "n/a"

            print(
                f"{c:>4}  {'ratio':<6} {ratio(ours.iterations_per_s, rally.iterations_per_s):>8} "
                f"{ratio(ours.client_cpu_ms_per_it, rally.client_cpu_ms_per_it):>11} "
                f"{ratio(ours.requests_per_it, rally.requests_per_it):>9} "
                f"{ratio(ours.server_cpu_ms_per_it, rally.server_cpu_ms_per_it):>11} "
                f"{ratio(ours.p50_ms, rally.p50_ms):>8} {ratio(ours.p95_ms, rally.p95_ms):>8}"
            )
        print()
    if repeat > 1:
        for (tool, c), g in groups.items():
            its = " ".join(f"{r.iterations_per_s:.1f}" for r in g)
            cpu = " ".join(f"{r.client_cpu_ms_per_it:.2f}" for r in g)
            print(f"repeats, {tool} c={c}: it/s {its}; client CPU ms/it {cpu}")
        print()
    for r in rows:
        mix = ", ".join(
            f"{k} x{v:.2f}" for k, v in sorted(r.mix_per_it.items(), key=lambda kv: -kv[1])
        )
        print(f"requests per iteration, {r.tool} c={r.concurrency}: {mix}")
    print()
    print(
        "ratio = femdc / rally. it/s: iterations / (last end - first start), N and 2N runs "
        "pooled.\nclient CPU, HTTP req, server CPU: (value at 2N - value at N) / N. "
        "p50/p95: successful iterations of the 2N run."
    )


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=200, help="N (runs at N and 2N)")
    ap.add_argument(
        "--venv",
        default=os.environ.get("FEMDC_SERVICE_VENV"),
        help="service venv with keystone and uwsgi (or $FEMDC_SERVICE_VENV)",
    )
    ap.add_argument("--rally-venv", default=DEFAULT_RALLY_VENV)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8],
                    help="concurrencies of part keystone")
    ap.add_argument("--parts", nargs="+", choices=("keystone", "http"),
                    default=["keystone", "http"])
    ap.add_argument("--http-concurrency", type=int, nargs="+", default=[8],
                    help="concurrencies of part http")
    ap.add_argument(
        "--cache",
        choices=("memcached", "memory"),
        default=None,
        help="Keystone cache backend (default: memcached when installed)",
    )
    ap.add_argument("--json", help="also write every run and the table rows here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    ap.add_argument(
        "--repeat", type=int, default=1, help="repeat every point; the table shows medians"
    )
    a = ap.parse_args()
    if not a.venv or not (Path(a.venv) / "bin" / "keystone-manage").exists():
        ap.error("--venv must name a venv with keystone and uwsgi installed")
    if a.iterations < 1 or a.repeat < 1:
        ap.error("--iterations and --repeat must be >= 1")

    rally = ensure_rally(Path(a.rally_venv))
    work = Path(tempfile.mkdtemp(prefix="femdc-vs-rally-"))
    runs: list[Run] = []
    rows: list[Row] = []
    memcached = None if a.cache is None else a.cache == "memcached"

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)

    def measure(tools: list[Any], wl: Workload, concurrencies: list[int]) -> list[Row]:
        out: list[Row] = []
        for rep in range(a.repeat):
            for c in concurrencies:
                by_tool: dict[str, list[Run]] = {t.name: [] for t in tools}
                for n in (a.iterations, 2 * a.iterations):
                    for tool in tools:
                        r = tool.run(n, c, wl)
                        runs.append(r)
                        by_tool[tool.name].append(r)
                        if r.first_error:
                            print(f"    first error: {r.first_error[:300]}", flush=True)
                        print(
                            f"  {wl.part} #{rep + 1} {tool.name:<6} c={c:<3} n={n:<5} "
                            f"cpu={r.cpu_s:7.2f} s load={r.load_s:7.2f} s "
                            f"elapsed={r.elapsed_s:7.2f} s requests={r.requests:<6} "
                            f"failed={r.failed}",
                            flush=True,
                        )
                for small, big in by_tool.values():
                    out.append(row(small, big, wl.part))
        return out

    tables: list[tuple[list[Row], str]] = []
    try:
        if "keystone" in a.parts:
            with LocalKeystone(venv=a.venv, memcached=memcached, keep_dir=a.keep) as ks:
                print(f"keystone at {ks.auth_url} (cache: {ks.cache_backend}, dir {ks.dir})",
                      flush=True)
                _warm_up(ks)
                wl = Workload("keystone", OUR_SCENARIO, {"use_admin": True}, RALLY_SCENARIO,
                              {}, ks)
                part = measure([OurTool(Path(a.venv), ks, work / "keystone"),
                                RallyTool(rally, ks, work / "keystone")], wl, a.concurrency)
                rows += part
                tables.append((part, f"(a) Keystone 1 x uwsgi --processes {ks.workers}, "
                                     f"SQLite, fernet, cache: {ks.cache_backend}"))
        if "http" in a.parts:
            with TinyHttp() as srv:
                print(f"tiny HTTP endpoint at {srv.url}", flush=True)
                args = {"url": f"{srv.url}/ok", "method": "GET", "status_code": 200}
                wl = Workload("http", HTTP_SCENARIO, args, HTTP_SCENARIO, args, srv)
                part = measure([OurTool(Path(a.venv), None, work / "http"),
                                RallyTool(rally, None, work / "http")], wl,
                               a.http_concurrency)
                rows += part
                tables.append((part, f"(b) {HTTP_SCENARIO} on a tiny local HTTP endpoint "
                                     "(asyncio, 1 process)"))
        for part, title in tables:
            print_table(part, title, a.iterations, a.repeat)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stop_children()
        if a.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if a.json:
            Path(a.json).write_text(
                json.dumps(
                    {
                        "runs": [asdict(r) | {"durations_ms": None} for r in runs],
                        "rows": [asdict(r) for r in rows],
                    },
                    indent=2,
                )
            )
    return 0


def _warm_up(ks: LocalKeystone) -> None:
    """Authenticate the admin once before measuring.

    Keystone writes user.last_active_at at a user's first password login of each (UTC)
    day; on SQLite, concurrent such writes fail ("database is locked", HTTP 500 without
    headers), which uwsgi's HTTP router turns into a 60 s wait (--http-timeout) for the
    client. Hence this warm-up, and Rally configured with existing users.
    """
    body = json.dumps(
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"id": "default"},
                            "password": ks.admin_password,
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
    ).encode()
    req = urllib.request.Request(
        f"{ks.auth_url}/auth/tokens", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


if __name__ == "__main__":
    sys.exit(main())
