"""The WAN of a run on its hosts: which point's rules are applied (applied again only when
they changed), whether a passing check still holds (`wan_generation`: every change of
the rules, a fault's included, invalidates it), and the check itself (RTT between sites
against the point's targets, stored as `wan` points)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from typing import Any

from femdc_bench.metrics.store import delete_before_store, point_tags, spooling_writer
from femdc_bench.metrics.target import metrics_target
from femdc_bench.model import Experiment, Inventory, SweepPoint
from femdc_bench.rundir import Progress, Run, log, noop, run_tag
from femdc_bench.wan import apply as wan_apply
from femdc_bench.wan import check as wan_check
from femdc_bench.wan.check import WanCheck
from femdc_bench.wan.plan import WanPlan, site_matrix
from femdc_bench.wan.plan import plan as plan_wan


def choose_emulator(run: Run, exp: Experiment, inv: Inventory, sp: SweepPoint) -> str:
    """The emulator in use for this run, chosen once (auto: netem if a probe qdisc works)."""
    import json

    manifest = run.dir / "manifest.json"
    if manifest.exists():
        chosen = json.loads(manifest.read_text()).get("wan_emulator")
        if chosen:
            return str(chosen)
    chosen = wan_apply.choose(sp.wan.emulator, inv, run_dir=run.dir, log=run.log("emulate"))
    run.update_manifest(wan_emulator=chosen)
    return chosen


def plan_sha(p: WanPlan) -> str:
    import json

    return hashlib.sha256(json.dumps(asdict(p), sort_keys=True).encode()).hexdigest()


def emulate(run: Run, point: str = "p0", progress: Progress = noop,
            wan_plan: WanPlan | None = None, *, force: bool = True) -> WanPlan:
    """Apply the WAN of one sweep point on every host (replacing what was there).

    Not `force` (a bench of the point whose WAN is on the hosts): when the same plan was
    applied last and nothing touched the rules since (a fault marks them untouched only
    once it is undone), nothing is re-applied; the check measures it as always."""
    exp, inv = run.experiment(), run.inventory()
    sp = exp.point(point)
    with run.phase(f"emulate@{point}"):
        p = wan_plan or plan_wan(sp.wan, inv)
        sha = plan_sha(p)
        run.write_json(f"wan/{point}/plan.json", asdict(p))
        if not force and run.state.wan_point == point and run.state.wan_plan_sha == sha:
            progress(f"{p.rule_count} rules already applied ({sp.label()})")
        elif p.rule_count == 0 and run.state.wan_point is None:
            progress("no link is shaped at this point: nothing to apply")
        else:
            emulator = choose_emulator(run, exp, inv, sp)
            progress(f"applying {p.rule_count} rules with {emulator} ({sp.label()})")
            run.state.wan_point = None  # until it is done
            wan_touched(run)
            wan_apply.apply(p, emulator=emulator, tag=run_tag(run), inv=inv, run_dir=run.dir,
                            log=run.log("emulate"), on_task=lambda t: progress(f"emulate: {t}"))
            run.state.wan_point = point
            run.event("wan", f"emulate@{point}",
                      f"WAN of {point} applied: {sp.label()} ({emulator}, {p.rule_count} rules)")
        run.state.wan_plan_sha = sha if run.state.wan_point == point else None
    run.save()
    return p


def remove_wan(run: Run, progress: Progress = noop) -> None:
    """Remove what emulation put on the hosts (rules, qdiscs, daemons): only ours."""
    inv = run.inventory()
    progress("removing WAN emulation")
    wan_apply.remove(inv, tag=run_tag(run), run_dir=run.dir, log=run.log("emulate"))
    run.event("wan", "emulate", "WAN emulation removed")
    run.state.wan_point = run.state.wan_plan_sha = None
    wan_touched(run)


def wan_touched(run: Run) -> None:
    """The rules on the hosts change (or may have): a passing check no longer holds."""
    run.state.wan_generation += 1
    run.state.wan_checked = None
    run.save()


WAN_CHECK_REUSE_S = 600.0  # how long a passing check stands for rules nobody touched


def reusable_check(run: Run, point: str, max_age_s: float = WAN_CHECK_REUSE_S
                   ) -> float | None:
    """Seconds since the passing check of `point` when it still holds: the rules on the
    hosts are the ones it measured (nothing applied, removed or cut since) and it is
    younger than `max_age_s`. None: measure again."""
    c = run.state.wan_checked
    if not c or c.get("point") != point or c.get("generation") != run.state.wan_generation:
        return None
    age = time.time() - float(c.get("at", 0))
    return age if 0 <= age <= max_age_s else None


WAN_PROBES = 20


WAN_CHECK_ATTEMPTS = 3  # measurements of an off-target matrix before the check fails


class WanCheckError(RuntimeError):
    pass


def check_wan(run: Run, point: str = "p0", progress: Progress = noop) -> WanCheck:
    """Measure RTT between every pair of sites; fail if a pair is off its target."""
    exp, inv = run.experiment(), run.inventory()
    sp = exp.point(point)
    with run.phase(f"check@{point}"):
        probes = wan_check.probe_hosts(inv, tuple(sp.wan.exclude))
        targets = site_matrix(sp.wan, list(probes))
        base = None
        if sp.wan.compensate_base:
            base = run.read_json("wan/base.json")["medians"] if (
                run.dir / "wan" / "base.json").exists() else None
        # A busy host (a Galera state transfer, services starting) can hold packets in
        # the emulator for a moment: an off-target matrix is measured again, up to
        # WAN_CHECK_ATTEMPTS times, 5 then 10 s apart; check.json keeps the failed attempts.
        base_pairs = {tuple(k.split("->")): v for k, v in base.items()} if base else None
        failed: list[list[str]] = []
        for attempt in range(1, WAN_CHECK_ATTEMPTS + 1):
            progress(f"measuring RTT between {len(probes)} sites ({WAN_PROBES} probes)"
                     + (f", attempt {attempt}" if attempt > 1 else ""))
            out = wan_apply.measure(inv, probes, count=WAN_PROBES, run_dir=run.dir,
                                    out_dir=run.dir / "wan" / point, log=run.log("check"))
            chk = wan_check.compare(point, inv, probes, out, targets, count=WAN_PROBES,
                                    base=base_pairs)
            if chk.ok or attempt == WAN_CHECK_ATTEMPTS:
                break
            failed.append(chk.failures())
            log.warning("WAN at %s off target (attempt %d), measuring again: %s", point,
                        attempt, "; ".join(failed[-1]))
            time.sleep(5 * attempt)  # 5 s, then 10 s: a fresh deployment settles
        run.write_json(f"wan/{point}/check.json", {**chk.to_dict(), "failed_attempts": failed})
        target, _ = metrics_target(run, exp)
        store_wan(run, exp, target, point, chk)
        if not chk.ok:
            run.state.wan_checked = None
            run.save()
            raise WanCheckError(f"WAN at {point} is off target: " + "; ".join(chk.failures()))
        run.state.wan_checked = {"point": point, "generation": run.state.wan_generation,
                                 "at": time.time()}
        run.save()
    return chk


def measure_base(run: Run, progress: Progress = noop) -> None:
    """RTT between sites with no emulation, for wan.compensate_base."""
    exp, inv = run.experiment(), run.inventory()
    probes = wan_check.probe_hosts(inv, tuple(exp.wan.exclude))
    progress("measuring the base RTT before shaping")
    out = wan_apply.measure(inv, probes, count=WAN_PROBES, run_dir=run.dir,
                            out_dir=run.dir / "wan" / "base", log=run.log("check"))
    chk = wan_check.compare("base", inv, probes, out, {}, count=WAN_PROBES)
    run.write_json("wan/base.json", {
        "medians": {f"{a}->{b}": v for (a, b), v in wan_check.medians(chk).items()},
        "check": chk.to_dict()})


def store_wan(run: Run, exp: Experiment, target: Any, point: str, chk: WanCheck) -> None:
    """The check's measured pairs into InfluxDB (`wan`), replacing the point's earlier
    ones; spooled like every other point while InfluxDB does not answer."""
    from femdc_bench.metrics.names import WAN

    now = time.time_ns()
    with spooling_writer(run, target, point_tags(exp, point)) as (client, w):
        delete_before_store(run, client, point, (WAN,), "wan points")
        for p in chk.pairs:
            fields: dict[str, Any] = {"target_ms": p.expected_ms, "loss_pct": p.loss_pct,
                                      "tolerance_ms": p.tolerance_ms, "ok": int(p.ok)}
            if p.measured_ms is not None:
                fields["rtt_ms"] = p.measured_ms
            if p.p95_ms is not None:
                fields["rtt_p95_ms"] = p.p95_ms
            w.write(WAN, {"run": run.id, "experiment": exp.name, "point": point,
                          "site": p.src_site, "target_site": p.dst_site}, fields, now)

