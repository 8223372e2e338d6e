"""Workload faults beside the load: a site partitioned, a service killed, a site's links
degraded, each a timed step with its `event` points; and undoing them all after a
crash."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from femdc_bench.ansible import PLAYBOOKS, run_playbook
from femdc_bench.metrics.store import point_tags, spooling_writer
from femdc_bench.model import KILLABLE_SERVICES, Experiment, FaultSpec, Inventory
from femdc_bench.rundir import Run, log, run_tag
from femdc_bench.wan import apply as wan_apply
from femdc_bench.wan.plan import degraded
from femdc_bench.wan.plan import plan as plan_wan
from femdc_bench.wan.state import choose_emulator, wan_touched


def service_fault(run: Run, inv: Inventory, f: FaultSpec, state: str, *, run_dir: Path,
                  log: Path) -> None:
    """A `kill` fault's service `killed` or `restored` (playbooks/native/fault.yml) on the
    hosts of its site that run it (their roles: model.KILLABLE_SERVICES)."""
    hosts = [h.alias for h in inv.hosts if h.site == f.site
             and set(h.roles) & set(KILLABLE_SERVICES[f.service or ""])]
    run_playbook(PLAYBOOKS / "native" / "fault.yml", inv, limit=",".join(hosts),
                 run_dir=run_dir, log=log,
                 extra_vars={"femdc_run": run.id, "femdc_fault_service": f.service,
                             "femdc_fault_state": state})


class FaultInjector:
    """Workload faults on a timer beside the load, each an `event` point when it starts
    and ends: `partition` (a site cut off), `kill` (a service of a site crashed, then
    restarted as it was started), `degrade` (a site's links get worse).

    Each fault has its own thread, so that one fault's steps (an ansible run of seconds)
    do not delay another's; the steps that change WAN rules (partition, degrade) take
    turns. Each start and end is an event stamped when its step began, with the step's
    duration (`step_s`): the fault is surely in place from the end of its start step to
    the beginning of its end step, and surely undone after the end step; the report
    leaves the moments in between out of before/during/after. Whatever is still active
    when the load ends is undone then."""

    def __init__(self, run: Run, exp: Experiment, inv: Inventory, point: str) -> None:
        self.run, self.exp, self.inv, self.point = run, exp, inv, point
        self.faults = list(exp.workload.faults)
        # (ts when its step began, kind, site, phase, label, seconds the step took)
        self.events: list[tuple[int, str, str, str, str, float]] = []
        self._active: list[int] = []  # indices of faults started and not yet ended
        self._lock = threading.Lock()  # events and _active
        self._wan_lock = threading.Lock()  # one change of the WAN rules at a time
        self._stop = threading.Event()
        self._started = threading.Event()
        self._threads = [threading.Thread(target=self._main, args=(i,), daemon=True,
                                          name=f"fault-{f.label}")
                         for i, f in enumerate(self.faults)]
        self._waiter = threading.Thread(target=self._wait_start, name="faults", daemon=True)
        self.errors: list[BaseException] = []

    def start(self, start_file: Path) -> None:
        """Faults are timed from the load's common start, which the bench playbook writes
        to `start_file` once every agent is set up (setup and ansible take seconds to
        minutes: timing from here would cut a site before its load begins)."""
        self._start_file = start_file
        if any(f.kind in ("partition", "degrade") for f in self.faults):
            self.run.state.wan_plan_sha = None  # the rules change: re-apply next time
            wan_touched(self.run)
        self._waiter.start()
        for t in self._threads:
            t.start()

    def _wait_until(self, t: float) -> bool:
        return not self._stop.wait(max(0.0, self._t0 + t - time.monotonic()))

    def _wait_start(self) -> None:
        import json

        while not self._stop.is_set():
            try:
                start_ns = int(json.loads(self._start_file.read_text())["start_ns"])
            except (OSError, ValueError, KeyError):
                self._stop.wait(0.1)
                continue
            self._t0 = time.monotonic() + (start_ns - time.time_ns()) / 1e9
            self._started.set()
            return

    def timeline(self) -> list[tuple[float, int, str]]:
        """(seconds after the load's start, fault index, "start" | "end"), in order; at
        the same instant an end comes before a start."""
        steps = [(f.at_s, i, "start") for i, f in enumerate(self.faults)]
        steps += [(f.at_s + f.duration_s, i, "end") for i, f in enumerate(self.faults)
                  if f.duration_s is not None]
        return sorted(steps, key=lambda s: (s[0], s[2] == "start", s[1]))

    def _main(self, i: int) -> None:
        f = self.faults[i]
        try:
            while not self._started.wait(0.1):
                if self._stop.is_set():
                    return
            if not self._wait_until(f.at_s):
                return
            self._step(i, "start")
            if f.duration_s is not None and self._wait_until(f.at_s + f.duration_s):
                self._step(i, "end")
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.errors.append(e)

    def _step(self, i: int, what: str) -> None:
        f = self.faults[i]
        on = what == "start"
        with self._lock:
            if on:
                self._active.append(i)
            else:
                self._active.remove(i)
        begin, t0 = time.time_ns(), time.monotonic()
        kw = {"run_dir": self.run.dir, "log": self.run.log(f"faults-{f.label}")}
        if f.kind == "partition":
            with self._wan_lock:
                wan_apply.cut(self.inv, f.site, on=on, tag=run_tag(self.run), **kw)
        elif f.kind == "kill":
            service_fault(self.run, self.inv, f, "killed" if on else "restored", **kw)
        else:  # degrade: the point's plan with every active degradation on top
            sp = self.exp.point(self.point)
            with self._wan_lock:
                with self._lock:
                    active = [self.faults[j] for j in self._active
                              if self.faults[j].kind == "degrade"]
                wan = degraded(sp.wan, active, [s.name for s in self.exp.sites])
                wan_apply.apply(plan_wan(wan, self.inv), emulator=choose_emulator(
                    self.run, self.exp, self.inv, sp), tag=run_tag(self.run), inv=self.inv,
                    **kw)
        step_s = round(time.monotonic() - t0, 3)
        with self._lock:
            self.events.append((begin, f.kind, f.site, what, f.label, step_s))
        log.info("fault: %s %s (%.1f s)", f.label, "started" if on else "ended", step_s)

    def stop(self) -> None:
        self._stop.set()
        for t in (self._waiter, *self._threads):
            t.join()
        for i in reversed(list(self._active)):  # the load ended first: undo
            try:
                self._step(i, "end")
            except BaseException as e:  # noqa: BLE001
                self.errors.append(e)
        self.events.sort()
        if self.errors:
            raise RuntimeError(f"fault injection failed: {self.errors[0]}") from self.errors[0]

    def store(self, target: Any) -> None:
        from femdc_bench.metrics.names import EVENT

        with spooling_writer(self.run, target, point_tags(self.exp, self.point)) as (_, w):
            for ts, kind, site, phase, label, step_s in self.events:
                w.write(EVENT, {"run": self.run.id, "experiment": self.exp.name,
                                "point": self.point, "kind": kind, "site": site,
                                "phase": phase, "fault": label},
                        {"active": int(phase == "start"), "step_s": float(step_s),
                         "text": f"{label}: {phase} ({step_s:.1f} s to take effect)"}, ts)
        self.run.write_json(f"wan/{self.point}/events.json", self.events)


def undo_faults(run: Run, exp: Experiment, inv: Inventory) -> list[str]:
    """Every fault of the workload undone, whether it was in place or not (each undo is
    harmless when there is nothing to undo); the WAN is re-applied by the next emulate."""
    out = []
    kw = {"run_dir": run.dir, "log": run.log("faults")}
    for f in exp.workload.faults:
        if f.kind == "partition":
            wan_apply.cut(inv, f.site, on=False, tag=run_tag(run), **kw)
        elif f.kind == "kill":
            service_fault(run, inv, f, "restored", **kw)
        out.append(f"{f.label}: undone")
    run.state.wan_plan_sha = None  # a degrade may have left other rules: re-apply
    wan_touched(run)
    run.save()
    return out

