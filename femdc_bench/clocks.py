"""Each host's clock offset from the controller's, measured over SSH.

Samples (`api`, `proc`, ...) are timestamped by the clock of the host that took them. On
the local provider every host shares the controller's clock; on a testbed each machine
has its own, and a plot that lines up `api` points of one host with `proc` points of
another is only as right as their clocks agree. The run records each host's offset in
the manifest (`clocks`, at `up` and after every bench point) so that it can be checked
or corrected later.

The method is NTP's on one SSH session per host: the controller sends a line, the host
answers with its `time.time_ns()`, the controller notes when it sent and received
(t0, t1). offset = remote - (t0 + t1) / 2, within +- (t1 - t0) / 2 whatever the path's
asymmetry; of several exchanges the one with the shortest round trip is kept. SSH
session set-up is outside the exchanges, so only the pipe's round trip (~1 ms here)
bounds the uncertainty. The session goes through the run's SSH master (`control_dir`),
the one the bench uses: no new connection, no login shell, per measurement.
"""

from __future__ import annotations

import logging
import select
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from femdc_bench.ansible import control_dir as run_control_dir
from femdc_bench.ansible import ssh_argv as ansible_ssh_argv
from femdc_bench.model import Host, Inventory

if TYPE_CHECKING:
    from femdc_bench.rundir import Run

log = logging.getLogger(__name__)

EXCHANGES = 8
# The host's side: one timestamp per line read (the host's python3, as the playbooks use).
REMOTE = ("/usr/bin/python3 -u -c 'import sys, time\n"
          "for _ in sys.stdin: print(time.time_ns(), flush=True)'")


@dataclass(frozen=True)
class ClockOffset:
    """Host clock minus controller clock, in ms (positive: the host is ahead)."""

    offset_ms: float
    uncertainty_ms: float  # half the round trip of the exchange kept
    exchanges: int
    measured_at_ns: int  # controller clock

    def to_dict(self) -> dict[str, float | int]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


class ClockError(RuntimeError):
    pass


def best_offset(exchanges: list[tuple[int, int, int]]) -> ClockOffset:
    """(t0 sent, remote time, t1 received) in ns -> the offset of the shortest exchange."""
    if not exchanges:
        raise ClockError("no exchange")
    for t0, _, t1 in exchanges:
        if t1 < t0:
            raise ClockError("an exchange ended before it started")
    t0, remote, t1 = min(exchanges, key=lambda e: e[2] - e[0])
    return ClockOffset(offset_ms=(remote - (t0 + t1) / 2) / 1e6,
                       uncertainty_ms=(t1 - t0) / 2e6, exchanges=len(exchanges),
                       measured_at_ns=t1)


def ssh_argv(h: Host, control_dir: Path | None = None) -> list[str]:
    return ansible_ssh_argv(h, REMOTE, control_dir=control_dir)


def measure_host(h: Host, exchanges: int = EXCHANGES, timeout_s: float = 20.0,
                 control_dir: Path | None = None) -> ClockOffset:
    """One SSH session, `exchanges` timestamps asked one after the other."""
    proc = subprocess.Popen(ssh_argv(h, control_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdin is not None and proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    got: list[tuple[int, int, int]] = []
    try:
        # The first answer also waits for the session (and python) to start: not kept.
        for i in range(exchanges + 1):
            t0 = time.time_ns()
            proc.stdin.write("t\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [],
                                        max(0.0, deadline - time.monotonic()))
            line = proc.stdout.readline() if ready else ""
            t1 = time.time_ns()
            if not line.strip():
                proc.kill()
                err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
                raise ClockError(f"{h.alias}: no timestamp over ssh"
                                 + (f": {err[-1]}" if err else " (timed out)"))
            if i:
                got.append((t0, int(line), t1))
    except ValueError as e:
        raise ClockError(f"{h.alias}: not a timestamp: {e}") from None
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return best_offset(got)


def measure(inv: Inventory, exchanges: int = EXCHANGES, control_dir: Path | None = None
            ) -> dict[str, dict[str, object]]:
    """Every host at once: alias -> ClockOffset as a dict, or {"error": one line}."""
    def one(h: Host) -> dict[str, object]:
        try:
            return dict(measure_host(h, exchanges, control_dir=control_dir).to_dict())
        except (ClockError, OSError) as e:
            log.warning("clock offset of %s not measured: %s", h.alias, e)
            return {"error": str(e)}

    if control_dir is not None:
        control_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(inv.hosts)))) as pool:
        return dict(zip((h.alias for h in inv.hosts), pool.map(one, inv.hosts), strict=True))


def record_clocks(run: Run, inv: Inventory, when: str) -> dict[str, Any]:
    """Each host's clock offset from the controller's into the manifest (`clocks`,
    keyed by when it was measured: `up`, `bench@<point>`). Not measured is a warning:
    the offsets explain a plot, they do not decide a run."""
    offsets = measure(inv, control_dir=run_control_dir(run.dir))
    run.update_manifest(clocks={when: offsets})
    worst = max((abs(float(o["offset_ms"])) for o in offsets.values() if "offset_ms" in o),
                default=0.0)
    log.info("clock offsets at %s: largest %.3f ms over %d hosts", when, worst, len(offsets))
    return offsets

