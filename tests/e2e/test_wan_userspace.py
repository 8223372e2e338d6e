"""End to end: the userspace WAN emulator on three local hosts (network namespaces).

Hosts come from the `femdc-bench up` CLI and are destroyed by it at the end. The rules
and the delay daemons are applied and removed by playbooks/wan over SSH, as in a run.
Traffic for the measurements (tests/e2e/wanload.py: UDP at 1,000 packets/s per host,
RTT probes echoed in user space) runs inside the namespaces with `ip netns exec`.

One-way delays: s1<->s2 25 ms, s1<->s3 50 ms (+100 mbit), s2->s3 75 ms but s3->s2 25 ms.
Checked: RTT (idle and loaded) and one-way delay (loaded) within max(1 ms, 5 %) of the
target in mean and p50 (the tolerance of `check`), p99 at most TAIL_MS over it; no loss
and no reordering under load; a daemon restart during traffic loses nothing; a delay-only
change is a SIGHUP (same daemons, rules untouched); removal leaves no rule, chain, qdisc or
daemon.

RTT is probed in user space: fping and plain ping take the kernel's receive timestamp,
taken before PREROUTING, so they miss the delay added to the reply on its way back and
show the forward one-way delay only (`ping -U`, used by `check`, does not).
Every RTT check takes at least 100 probes per pair, so that p99 is not just the maximum,
and measures again when timing is off, as `check` does (see measure()).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from femdc_bench.ansible import PLAYBOOKS, run_playbook
from femdc_bench.model import Inventory
from femdc_bench.providers.local import short_id
from femdc_bench.rundir import Run
from femdc_bench.wan import userspace
from femdc_bench.wan.commands import HostCommands, wan_vars
from femdc_bench.wan.plan import plan

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "femdc_bench.cli"]
WANLOAD = Path(__file__).with_name("wanload.py")
HOST_PYTHON = "/usr/bin/python3"
PPS = 1000
# The measuring processes run SCHED_FIFO (below the daemon's 10) so that what they
# measure is the emulator, not their own wake-up latency on a busy machine.
MEASURE_PRIORITY = ("chrt", "-f", "5")

EXPERIMENT: dict[str, Any] = {
    "name": "e2e-wan-userspace",
    "provider": {"type": "local"},
    "sites": [
        {"name": "s1", "hosts": [{"name": "h", "roles": ["database", "keystone", "load"]}]},
        {"name": "s2", "hosts": [{"name": "h", "roles": ["load"]}]},
        {"name": "s3", "hosts": [{"name": "h", "roles": ["load"]}]},
    ],
    "deployment": {"method": "native", "keystone": {"centralized": "s1"}},
    "wan": {
        "default": {"delay": "25ms"},
        "overrides": [
            {"src": "s1", "dst": "s3", "delay": "50ms", "rate": "100mbit"},
            {"src": "s2", "dst": "s3", "delay": "75ms", "symmetric": False},
        ],
    },
    "workload": {"scenarios": [{"name": "keystone.list_users",
                                "runner": {"type": "times", "times": 1}}]},
}
ONE_WAY = {("s1", "s2"): 25.0, ("s2", "s1"): 25.0, ("s1", "s3"): 50.0, ("s3", "s1"): 50.0,
           ("s2", "s3"): 75.0, ("s3", "s2"): 25.0}


def running(pid: int) -> bool:
    """True while the process runs. An exited daemon is a zombie until this machine's
    init reaps it (start-stop-daemon leaves it to init), which is not instant: the CI
    saw /proc/PID of an exited daemon still there right after the remove."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def tolerance(target_ms: float) -> float:
    return max(1.0, 0.05 * target_ms)


def rtt_target(a: str, b: str, one_way: dict[tuple[str, str], float] = ONE_WAY) -> float:
    return one_way[(a, b)] + one_way[(b, a)]


def femdc(results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"femdc-bench {' '.join(args)} exited {proc.returncode}:\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


@dataclass
class Env:
    results: Path
    run: Run
    inv: Inventory
    tag: str
    cmds: dict[str, HostCommands]
    zip: Path
    python: str  # femdc_wan_python of the last apply
    pids: dict[str, int] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)

    def site(self, address: str) -> str:
        return next(h.site for h in self.inv.hosts if h.address == address)

    def netns(self, alias: str) -> str:
        return str(self.inv.host(alias).extra["femdc_netns"])

    def wan_dir(self, alias: str) -> Path:
        return Path(self.inv.host(alias).workdir) / "wan"

    def playbook(self, name: str, **extra: Any) -> None:
        ev = {**wan_vars(self.cmds),
              **userspace.daemon_vars(self.zip, on_controller=self.inv.shared_filesystem,
                                      install_packages=False),
              "femdc_wan_python": self.python, **extra}
        run_playbook(PLAYBOOKS / "wan" / f"{name}.yml", self.inv, run_dir=self.run.dir,
                     log=self.run.log("wan"), extra_vars=ev)

    def daemon_pid(self, alias: str) -> int | None:
        """The pid of this host's delay daemon, if it runs (pidfile + command line)."""
        d = self.wan_dir(alias)
        try:
            pid = int((d / "nfqdelay.pid").read_text())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if str(d / "nfqdelay.json").encode() in cmd else None

    def daemon_log(self, alias: str) -> list[dict[str, Any]]:
        path = self.wan_dir(alias) / "nfqdelay.log"
        return [json.loads(line) for line in path.read_text().splitlines()
                if line.startswith("{")]

    def ns(self, alias: str, *argv: str) -> str:
        return subprocess.run(["ip", "netns", "exec", self.netns(alias), *argv],
                              capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root (network namespaces, iptables, sshd)")
    results = tmp_path_factory.mktemp("wanres")
    exp_file = results / "wan.yaml"
    exp_file.write_text(yaml.safe_dump(EXPERIMENT, sort_keys=False))
    femdc(results, "up", str(exp_file))
    run = Run.open("last", results)
    try:
        inv = run.inventory()
        check_clock_offsets(run.read_json("manifest.json"), [h.alias for h in inv.hosts])
        tag = short_id(run.id)
        cmds = userspace.commands(plan(run.experiment().wan, inv), tag)
        e = Env(results=results, run=run, inv=inv, tag=tag, cmds=cmds,
                zip=userspace.build_daemon_zip(run.dir / "tmp" / "femdc_wan.zip"),
                python=f"{userspace.venv_dir()}/bin/python")
        yield e
        print("\nuserspace WAN measurements:\n" + json.dumps(e.measured, indent=1))
        (results / "measurements.json").write_text(json.dumps(e.measured, indent=1))
    finally:
        femdc(results, "destroy", run.id)


def check_clock_offsets(manifest: dict[str, Any], aliases: list[str]) -> None:
    """`up` measured every host's clock over SSH: here every host shares the
    controller's clock, so each offset is zero within its uncertainty (+ 1 ms)."""
    offsets = manifest["clocks"]["up"]
    assert sorted(offsets) == sorted(aliases)
    for alias, o in offsets.items():
        assert "error" not in o, (alias, o)
        assert o["exchanges"] == 8
        assert 0 < o["uncertainty_ms"] < 50, (alias, o)
        assert abs(o["offset_ms"]) <= o["uncertainty_ms"] + 1.0, (alias, o)


# --------------------------------------------------------------------------- traffic


def start_load(env: Env, *, pps: float, duration: float, stop_file: Path | None = None,
               probe_ms: float = 50) -> list[subprocess.Popen[str]]:
    start = time.monotonic_ns() + 1_500_000_000  # every namespace shares CLOCK_MONOTONIC
    procs = []
    for h in env.inv.hosts:
        peers = ",".join(p.address for p in env.inv.hosts if p.alias != h.alias)
        argv = ["ip", "netns", "exec", env.netns(h.alias), *MEASURE_PRIORITY, HOST_PYTHON,
                str(WANLOAD),
                "--bind", h.address, "--peers", peers, "--pps", str(pps),
                "--probe-ms", str(probe_ms), "--start", str(start), "--duration", str(duration)]
        if stop_file:
            argv += ["--stop-file", str(stop_file)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    return procs


def collect(procs: list[subprocess.Popen[str]], timeout: float = 120) -> list[dict[str, Any]]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    return outs


def pairs(env: Env, outs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(a, b) -> RTT probed from a to b, one-way a->b, datagrams a sent to b / b got."""
    by_site = {env.site(o["host"]): o for o in outs}
    res: dict[tuple[str, str], dict[str, Any]] = {}
    for a, o in by_site.items():
        for addr, v in o["peers"].items():
            b = env.site(addr)
            back = by_site[b]["peers"][o["host"]]
            res[(a, b)] = {"rtt": v["rtt_ms"], "oneway": back["oneway_from_ms"],
                           "sent": v["sent"], "received": back["received_from"],
                           "reordered": back["reordered_from"],
                           "missing": back["missing_from"],
                           "start_ns": o["start_ns"], "gap_ns": o["gap_ns"]}
    return res


#: p99 may exceed the target by this much at most (a stuck or batching daemon is far
#: beyond it). Measured in full suite runs on this 2-core VM: p99 +0.5..+7.5 ms over the
#: target while mean and p50 stayed within +1.3 ms and the daemons' own release lateness
#: had p99 0.2-0.35 ms (their exit stats, recorded below): the tail is the machine's
#: scheduling (steal time, softirq, the echoing process), not the emulator.
TAIL_MS = 15.0


def check(kind: str, stats: dict[str, Any], target: float) -> list[str]:
    """Mean and p50 within the WAN check's tolerance of the target, p99 within
    TAIL_MS; returns the failures."""
    tol = tolerance(target)
    out = []
    if not stats["n"]:
        return [f"{kind}: no sample"]
    for k in ("mean", "p50"):
        if abs(stats[k] - target) > tol:
            out.append(f"{kind} {k} {stats[k]:.2f} ms, target {target:.1f} ± {tol:.2f}")
    if not target - tol <= stats["p99"] <= target + TAIL_MS:
        out.append(f"{kind} p99 {stats['p99']:.2f} ms, target {target:.1f} "
                   f"(-{tol:.2f}, +{TAIL_MS:g})")
    return out


#: Waits before each re-measurement (s): bursts of steal time on this VM shift whole
#: measurements (CI once saw +1.8 ms on every pair in 3 attempts 5 s apart).
REMEASURE_AFTER_S = (5, 10, 20)


def measure(env: Env, label: str, one_way: dict[tuple[str, str], float] = ONE_WAY, *,
            pps: float = 0, duration: float = 3.0, probe_ms: float = 25
            ) -> dict[tuple[str, str], dict[str, Any]]:
    """Probe every pair, check RTT (and one-way delay under load) against the targets.

    Timing that is off is measured again after each of REMEASURE_AFTER_S, as `check`
    does: this VM's scheduling noise (steal time) comes in bursts that shift a whole
    measurement by a few ms. Every attempt is kept in env.measured[label], with the
    daemons' own release lateness over their last stats window; the last attempt's
    failures fail the test. Loss or reordering fail at once, never re-measured.
    """
    tries: list[dict[str, Any]] = []
    for attempt in range(len(REMEASURE_AFTER_S) + 1):
        if attempt:
            time.sleep(REMEASURE_AFTER_S[attempt - 1])
        res = pairs(env, collect(start_load(env, pps=pps, duration=duration,
                                            probe_ms=probe_ms)))
        failures: list[str] = []
        for (a, b), r in res.items():
            assert r["rtt"]["n"] >= 0.9 * duration * 1000 / probe_ms, (a, b, r["rtt"])
            failures += [f"{a}->{b} {f}"
                         for f in check("RTT", r["rtt"], rtt_target(a, b, one_way))]
            if pps:
                failures += [f"{a}->{b} {f}"
                             for f in check("one-way", r["oneway"], one_way[(a, b)])]
        tries.append({"failures": failures, "pairs": {
            f"{a}->{b}": {"rtt_target": rtt_target(a, b, one_way), "rtt": r["rtt"],
                          **({"oneway_target": one_way[(a, b)], "oneway": r["oneway"],
                              "sent": r["sent"], "received": r["received"],
                              "reordered": r["reordered"]} if pps else {})}
            for (a, b), r in res.items()}, "daemon_lateness": daemon_lateness(env)})
        env.measured[label] = tries
        lossy = [f"{a}->{b}: sent {r['sent']}, received {r['received']}, reordered "
                 f"{r['reordered']}" for (a, b), r in res.items()
                 if pps and (r["received"] != r["sent"] or r["reordered"])]
        assert not lossy, lossy
        if not failures:
            return res
    pytest.fail(f"{label}: off target in {len(tries)} measurements: {failures}; "
                f"daemon lateness (last window) {tries[-1]['daemon_lateness']}")


def daemon_lateness(env: Env) -> dict[str, Any]:
    """Each daemon's release lateness in its last periodic stats window."""
    out: dict[str, Any] = {}
    for h in env.inv.hosts:
        with contextlib.suppress(OSError):
            stats = [e for e in env.daemon_log(h.alias) if e["event"] == "stats"]
            if stats:
                out[h.alias] = stats[-1].get("lateness")
    return out


def softnet_drops() -> int:
    """Packets dropped by full per-CPU backlogs (veth delivers through them)."""
    text = Path("/proc/net/softnet_stat").read_text()
    return sum(int(line.split()[1], 16) for line in text.splitlines())


def udp_errors(env: Env) -> int:
    """UDP InErrors (receive buffer overflows included) summed over the namespaces."""
    total = 0
    for h in env.inv.hosts:
        lines = [ln.split() for ln in env.ns(h.alias, "cat", "/proc/net/snmp").splitlines()
                 if ln.startswith("Udp:")]
        total += int(dict(zip(lines[0], lines[1], strict=True))["InErrors"])
    return total


def cpu_ticks(pid: int) -> int:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime + stime


# --------------------------------------------------------------------------- tests


def test_apply_creates_our_rules_and_daemons(env: Env) -> None:
    env.playbook("apply")
    chain = f"FEMDC-{env.tag}"
    for h in env.inv.hosts:
        rules = env.ns(h.alias, "iptables", "-w", "-t", "mangle", "-S")
        assert f"-A PREROUTING -i eth0 -j {chain}" in rules
        assert rules.count("-j NFQUEUE") == 2
        qdisc = env.ns(h.alias, "tc", "qdisc", "show", "dev", "eth0")
        # s1 and s3 limit their rate to each other; s2 limits nothing
        assert ("htb" in qdisc) == (h.site in ("s1", "s3")), qdisc
        pid = env.daemon_pid(h.alias)
        assert pid, f"no delay daemon on {h.alias}"
        ns = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True,
                            text=True).stdout.strip()
        assert ns == env.netns(h.alias)
        env.pids[h.alias] = pid


def test_idle_rtt_is_on_target(env: Env) -> None:
    measure(env, "idle_rtt_ms", duration=4.0)


def test_under_load_delay_is_on_target_without_loss(env: Env) -> None:
    duration = 8.0
    before = {a: cpu_ticks(p) for a, p in env.pids.items()}
    t0 = time.monotonic()
    res = measure(env, "load", pps=PPS, duration=duration, probe_ms=50)
    wall = time.monotonic() - t0
    hz = os.sysconf("SC_CLK_TCK")
    env.measured["load_daemon_cpu_pct"] = {
        a: round(100 * (cpu_ticks(p) - before[a]) / hz / wall, 1) for a, p in env.pids.items()}
    for r in res.values():
        assert r["sent"] >= 0.9 * duration * PPS / 2


def test_daemon_restart_during_traffic_loses_nothing(env: Env, tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    drops, udp = softnet_drops(), udp_errors(env)
    procs = start_load(env, pps=PPS, duration=90, stop_file=stop)
    try:
        time.sleep(3.0)
        # Another interpreter path for the same venv: apply.yml restarts every daemon
        # (SIGTERM, then start-stop-daemon) while the traffic flows.
        env.python = f"{userspace.venv_dir()}/bin/python3"
        t_apply = time.monotonic_ns()
        env.playbook("apply")
        t_applied = time.monotonic_ns()
        time.sleep(2.0)  # traffic through the new daemons
    finally:
        stop.touch()
        outs = collect(procs)
    res = pairs(env, outs)
    env.measured["restart_diagnosis"] = {
        "softnet_drops": softnet_drops() - drops,
        "udp_in_errors": udp_errors(env) - udp,
        "send_errors": sum(o["send_errors"] for o in outs),
        "apply_s": [0, round((t_applied - t_apply) / 1e9, 3)],
        "missing": {f"{a}->{b}": [round((r["start_ns"] + (2 * s - 1) * r["gap_ns"] - t_apply)
                                        / 1e9, 3) for s in r["missing"]]
                    for (a, b), r in res.items() if r["missing"]},
        "events": {h.alias: [(e["event"], e["ts"], e.get("held"), e.get("drained"))
                             for e in env.daemon_log(h.alias)
                             if e["event"] in ("ready", "released")] for h in env.inv.hosts}}
    lost = {f"{a}->{b}": r["sent"] - r["received"] for (a, b), r in res.items()}
    new = {h.alias: env.daemon_pid(h.alias) for h in env.inv.hosts}
    held = released_ok = 0
    kernel_drops = 0
    for h in env.inv.hosts:
        log = env.daemon_log(h.alias)
        for ev in log:
            if ev["event"] == "released":
                held += ev["held"] + ev["drained"]
                released_ok += ev["fail_open_ack"] == 0
            if ev["event"] == "exit" and ev.get("kernel"):
                kernel_drops += ev["kernel"]["queue_dropped"] + ev["kernel"]["user_dropped"]
    env.measured["restart"] = {
        "sent": sum(r["sent"] for r in res.values()), "lost": lost,
        "reordered": {f"{a}->{b}": r["reordered"] for (a, b), r in res.items()},
        "released_at_exit": held, "old_pids": env.pids, "new_pids": new}
    env.measured["restart_diagnosis"]["kernel_queue_drops"] = kernel_drops
    assert all(new[a] and new[a] != env.pids[a] for a in new), (env.pids, new)
    assert released_ok == len(env.inv.hosts)  # each old daemon switched to fail-open
    assert held > 0  # it did hold packets when it was stopped...
    assert not any(lost.values()), (lost, env.measured["restart_diagnosis"])  # ...none lost
    assert kernel_drops == 0
    env.pids = {a: p for a, p in new.items() if p}
    # the new daemons delay as before
    measure(env, "after_restart_rtt_ms")


def test_delay_change_is_a_reload(env: Env) -> None:
    wan = env.run.experiment().wan
    # 25 -> 20 ms one-way: RTT 40 ms (tolerance 2 ms) is far from the 50 ms before, so
    # the new table shows; 10 ms (RTT 20, tolerance 1 ms) tested the VM's scheduling more
    # than the reload (CI: +1.8 ms on every pair, unchanged ones too, 3 attempts in a row).
    faster = dataclasses.replace(wan, default=dataclasses.replace(wan.default, delay_ms=20.0))
    env.cmds = userspace.commands(plan(faster, env.inv), env.tag)
    rules_before = {h.alias: (env.wan_dir(h.alias) / "rules.json").stat().st_mtime_ns
                    for h in env.inv.hosts}
    env.playbook("apply")
    one_way = {**ONE_WAY, ("s1", "s2"): 20.0, ("s2", "s1"): 20.0, ("s3", "s2"): 20.0}
    for h in env.inv.hosts:
        assert env.daemon_pid(h.alias) == env.pids[h.alias]  # not restarted
        reloads = [e for e in env.daemon_log(h.alias) if e["event"] == "reload"]
        assert bool(reloads) == (h.site in ("s1", "s2")), h.alias  # s3's table is unchanged
        # iptables and tc carry no delay: untouched
        assert (env.wan_dir(h.alias) / "rules.json").stat().st_mtime_ns == rules_before[h.alias]
    measure(env, "after_sighup_rtt_ms", one_way)


def test_remove_leaves_nothing_and_is_idempotent(env: Env) -> None:
    pids = dict(env.pids)
    env.playbook("remove")
    env.playbook("remove")  # everything already gone: still fine
    for h in env.inv.hosts:
        rules = env.ns(h.alias, "iptables", "-w", "-t", "mangle", "-S")
        assert "FEMDC" not in rules and "NFQUEUE" not in rules, rules
        qdisc = env.ns(h.alias, "tc", "qdisc", "show", "dev", "eth0")
        assert "htb" not in qdisc, qdisc
        assert env.daemon_pid(h.alias) is None
        assert not running(pids[h.alias]), f"{h.alias}: delay daemon {pids[h.alias]} runs"
        assert not (env.wan_dir(h.alias) / "nfqdelay.pid").exists()
        exits = [e for e in env.daemon_log(h.alias) if e["event"] == "exit"]
        assert exits and exits[-1]["held"] == 0
        env.measured.setdefault("daemon_exit", {})[h.alias] = {
            k: exits[-1].get(k) for k in ("lateness_total", "intake", "unstamped", "cpu_pct")}
    # with no emulation, hosts answer at once
    res = pairs(env, collect(start_load(env, pps=0, duration=0.5)))
    assert all(r["rtt"]["n"] and r["rtt"]["p99"] < 5 for r in res.values()), res
