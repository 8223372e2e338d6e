"""The pipeline: the phase order of a run, in the order of the diagram in
docs/architecture.md.

    up ─▶ deploy ─┬─ per sweep point: emulate ─▶ check ─▶ bench (store) ─┐
                  └────────────────────────────────────────────────────┘
       ─▶ report ─▶ backup ─▶ destroy (unless kept)

Each step lives in a module named by its job (providers/, deploy/, wan/state.py,
bench/controller.py, metrics/store.py, report/assemble.py, backup.py, recovery.py,
teardown.py); this module only orders them, decides what is already done, and tells the
user through a `Ui` (cli.py's console; `Ui.quiet()` for callers that print nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from femdc_bench import __version__, backup, recovery, teardown
from femdc_bench import deploy as methods
from femdc_bench.bench import controller
from femdc_bench.clocks import record_clocks
from femdc_bench.collect import collect, deployment_memory, host_versions
from femdc_bench.experiment import load as load_experiment
from femdc_bench.metrics import store
from femdc_bench.metrics.target import check_metrics_target
from femdc_bench.model import Clouds, Inventory
from femdc_bench.providers import provider_for
from femdc_bench.report import assemble
from femdc_bench.rundir import Progress, Run, attach_log, noop
from femdc_bench.wan import state as wan

if TYPE_CHECKING:
    from femdc_bench.providers.plan import Plan

# Imported where they are used: the providers (providers.provider_for) and deploy.native
# (deploy; it imports cryptography, ~30 ms), so that `bench` and the other commands on a
# deployed run do not pay for them.

# ---------------------------------------------------------------------------- telling


@dataclass
class Ui:
    """How the pipeline tells the user: `step(title)` a context around one step that
    yields its progress callback; `say(head, rest, style)` one line (`style` a rich
    style for `head`); `wan_matrix(run, point)` the point's measured RTT matrix;
    `report(run, report)` the report's tables."""

    step: Callable[[str], AbstractContextManager[Progress]]
    say: Callable[[str, str, str], None]
    wan_matrix: Callable[[Run, str], None] = field(default=lambda r, p: None)
    report: Callable[[Run, assemble.Report], None] = field(default=lambda r, rep: None)

    @staticmethod
    def quiet() -> Ui:
        @contextmanager
        def step(_: str) -> Iterator[Progress]:
            yield noop

        return Ui(step=step, say=lambda head, rest, style: None)


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) during a run: the load was stopped, its samples kept."""


@dataclass
class Outcome:
    """What a run or a bench ended with: the points that failed, and the report."""

    failed_points: list[str]
    report: assemble.Report | None = None


# ---------------------------------------------------------------------------- up, deploy


def dry_run(exp_file: Path) -> Plan:
    """What `up` would reserve or reach and the hosts it would give, from the experiment
    and EnOSlib's configuration classes alone: no run directory, no network."""
    from femdc_bench import providers

    exp = load_experiment(exp_file)
    return providers.get(exp.provider.type).plan(exp)


def up(run: Run, progress: Progress = noop) -> Inventory:
    import platform

    exp = run.experiment()
    with run.phase("up"):
        progress(f"creating {sum(len(s.hosts) for s in exp.sites)} hosts ({exp.provider.type})")
        inv = provider_for(run, exp).up(exp)
        run.save_inventory(inv)
        run.update_manifest(
            femdc_bench=__version__, provider=exp.provider.type,
            controller={"kernel": platform.release(), "python": platform.python_version(),
                        "hostname": platform.node()})
        record_clocks(run, inv, "up")
    return inv


def deploy(run: Run, progress: Progress = noop) -> Clouds:
    exp = run.experiment()
    inv = run.inventory()
    with run.phase("deploy"):
        method = exp.deployment.method
        progress(f"deploying OpenStack ({method})")
        t0 = time.monotonic()
        m = methods.get(method)
        clouds = m.deploy(exp, inv, run_id=run.id, run_dir=run.dir, log=run.log("deploy"),
                          on_task=lambda t: progress(f"deploy: {t}"), phase=run.phase)
        deploy_s = round(time.monotonic() - t0, 1)
        run.save_clouds(clouds)
        progress("starting the bench daemons on the load hosts")
        controller.warm_bench(run, inv, clouds)
        progress("collecting versions, memory and logs")
        collect(run, inv)
        memory = deployment_memory(run)
        previous = run.read_json("manifest.json").get("deployment", {}) if (
            run.dir / "manifest.json").exists() else {}
        record = {"first_deploy_s": previous.get("first_deploy_s", deploy_s),
                  "last_deploy_s": deploy_s, "deploys": previous.get("deploys", 0) + 1,
                  "services": list(exp.deployment.services), **memory}
        run.update_manifest(openstack=clouds.versions, hosts=host_versions(run),
                            deployment=record, method=method, **m.manifest(exp))
        progress(f"deployed in {deploy_s:.0f} s; the deployment's processes hold "
                 f"{memory['memory_mb']:.0f} MB (PSS) on {len(memory['by_host'])} hosts")
        if exp.metrics.grafana is not None:  # beside the run's InfluxDB (metrics.grafana)
            from femdc_bench.grafana import service as grafana

            progress(f"deploying Grafana on {exp.metrics.grafana.host}")
            url = grafana.deploy(exp, inv, run_id=run.id, run_dir=run.dir,
                                 log=run.log("deploy"),
                                 on_task=lambda t: progress(f"grafana: {t}"))
            run.update_manifest(grafana={"url": url, "image": exp.metrics.grafana.image})
    return clouds


def grafana_url(run: Run) -> str | None:
    """The URL of the run's Grafana (metrics.grafana), once deployed."""
    p = run.dir / "manifest.json"
    return run.read_json("manifest.json").get("grafana", {}).get("url") if p.exists() \
        else None


# ---------------------------------------------------------------------------- the run


def start(exp_file: Path, results: Path, run_id: str | None = None) -> Run:
    """A new run of `exp_file` (its remote InfluxDB checked first: nothing exists yet
    when it does not answer)."""
    check_metrics_target(load_experiment(exp_file))
    run = Run.create(exp_file, results, run_id)
    attach_log(run)
    return run


def resume(run: Run, ui: Ui) -> Run:
    """An existing run made ready to go on from its first unfinished phase: what a dead
    CLI left is ended first; a destroyed run comes up and is deployed again."""
    for line in recovery.recover(run):
        ui.say("recovered:", line, "yellow")
    if run.state.status == "destroyed":  # hosts are gone: bring them back first
        for name in ("up", "deploy"):
            run.state.phases.pop(name, None)
    return run


def run_experiment(run: Run, ui: Ui, *, keep: bool) -> Outcome:
    """up, deploy, every sweep point (emulate, check, bench), report, backup, then
    destroy unless `keep`. A phase already done is skipped (`run --resume`). Ctrl-C
    stops the load, keeps its samples and raises Interrupted; a failed phase tears
    down (unless `keep`) and raises."""
    try:
        for name, title in (("up", "hosts up"), ("deploy", "OpenStack deployed")):
            if run.done(name):
                ui.say(f"- {name}: already done", "", "dim")
                continue
            with ui.step(title) as progress:
                (up if name == "up" else deploy)(run, progress)
        # the report prints every point's matrix, read back from InfluxDB
        failed = run_points(run, [p.id for p in run.experiment().points], ui,
                            show_matrix=False)
        rep = report(run, ui, html=True)
        with ui.step("backup written") as progress:
            res = backup.backup(run, progress=progress)
        ui.say(f"{res.path}: {sum(res.points.values())} points, {res.files} files", "", "dim")
    except KeyboardInterrupt:
        ui.say("interrupted: stopping the load", "", "yellow")
        recovery.interrupt(run)
        if not keep:
            teardown.destroy(run)
        ui.say(f"results kept in {run.dir}", "", "")
        raise Interrupted from None
    except BaseException:
        if not keep:
            ui.say("a phase failed: tearing down (use --keep to keep it)", "", "yellow")
            destroy(run, ui)
        raise
    if not keep:
        destroy(run, ui)
    if times := run.state.phase_times():
        ui.say("phase times:", times, "dim")
    return Outcome(failed, rep)


def bench_points(run: Run, points: Sequence[str], ui: Ui, *,
                 only_from: Sequence[str] | None = None, recheck: bool = False) -> Outcome:
    """`bench`: the given points (or every point) again on a deployed run, then the
    report. Ctrl-C stops the load and keeps its samples (the deployment stays)."""
    try:
        failed = run_points(run, list(points) or [p.id for p in run.experiment().points],
                            ui, redo=True, only_from=only_from, recheck=recheck)
    except KeyboardInterrupt:
        recovery.interrupt(run)
        raise
    return Outcome(failed, report(run, ui, html=True))


def run_points(run: Run, points: list[str], ui: Ui, *, redo: bool = False,
               show_matrix: bool = True, only_from: Sequence[str] | None = None,
               recheck: bool = False) -> list[str]:
    """emulate, check, bench for each sweep point; a failed point does not stop the others.

    The check is skipped when the point's last one passed less than
    wan.WAN_CHECK_REUSE_S ago and nothing changed the rules since (unless `recheck`).

    Returns one line per failed point. A failed check always shows its matrix."""
    from femdc_bench.ansible import AnsibleError
    from femdc_bench.metrics.client import InfluxError

    exp = run.experiment()
    failed = []
    for pid in points:
        sp = exp.point(pid)
        if run.done(f"bench@{pid}") and not redo:
            ui.say(f"- {pid}: already done", "", "dim")
            continue
        ui.say(f"point {pid}", sp.label(), "bold")
        try:
            if sp.wan.compensate_base and not (run.dir / "wan" / "base.json").exists():
                with ui.step("base RTT measured") as progress:
                    wan.remove_wan(run, progress)
                    wan.measure_base(run, progress)
            with ui.step(f"WAN applied ({pid})") as progress:
                wan.emulate(run, pid, progress, force=False)
            age = None if recheck else wan.reusable_check(run, pid)
            if age is not None:
                ui.say("✓", f"WAN check of {pid} reused: passed {age:.0f} s ago and the "
                       "rules are untouched since (--recheck measures again)", "green")
                run.event("wan", f"check@{pid}",
                          f"WAN check of {pid} reused (passed {age:.0f} s before)")
            else:
                with ui.step(f"WAN measured ({pid})") as progress:
                    try:
                        wan.check_wan(run, pid, progress)
                    except wan.WanCheckError:
                        ui.wan_matrix(run, pid)
                        raise
            if show_matrix:
                ui.wan_matrix(run, pid)
            with ui.step(f"workload done ({pid})") as progress:
                controller.bench(run, pid, progress, only_from)
            if waiting := store.spool_waiting(run):
                ui.say("InfluxDB away:", f"{waiting} points of {run.id} wait in "
                       f"{store.spool_file(run)}: sent at the next write that reaches it, "
                       f"or by `femdc-bench store {run.id}`", "yellow")
        except InfluxError as e:
            # The load ran, its samples are files of the run: nothing is lost.
            ui.say(f"point {pid} not stored:", f"InfluxDB: {e}; its samples are kept: "
                   f"`femdc-bench store {run.id}` writes them once it is back", "red")
            failed.append(f"{pid}: not stored (InfluxDB: {str(e).splitlines()[0]})")
        except (wan.WanCheckError, AnsibleError, RuntimeError) as e:
            ui.say(f"point {pid} failed:", str(e), "red")
            failed.append(f"{pid}: {str(e).splitlines()[0]}")
    return failed


def report(run: Run, ui: Ui, *, html: bool = False) -> assemble.Report:
    """The report phase: report.json from what InfluxDB holds, shown to the user; with
    `html` (the end of `run` and `bench`) also results/<run>/report.html, whose path is
    told (a page that could not be written is a warning in the log: the run's outcome
    does not depend on it)."""
    rep = assemble.report(run)
    ui.report(run, rep)
    if html:
        from femdc_bench.results.report import after_report

        if (path := after_report(run, rep)) is not None:
            ui.say("HTML report:", str(path), "")
    return rep


def destroy(run: Run, ui: Ui) -> teardown.DestroyReport:
    with ui.step("destroyed") as progress:
        rep = teardown.destroy(run, progress)
    for w in rep.warnings:
        ui.say("warning:", w, "yellow")
    for item in rep.removed:
        ui.say(f"  removed {item}", "", "")
    return rep
