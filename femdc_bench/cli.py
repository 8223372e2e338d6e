"""Command line: parse, call run.py, print. No logic worth testing lives here."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from femdc_bench import __version__
from femdc_bench.experiment import ExperimentError
from femdc_bench.experiment import load as load_experiment
from femdc_bench.rundir import RESULTS, Run, RunError, list_runs

console = Console(stderr=True)
# Tables stay readable when the output goes to a file or a CI log (rich assumes 80 columns).
out = Console(width=None if sys.stdout.isatty() else 200)
DEFAULT_EXPERIMENT = Path(__file__).resolve().parent.parent / "topologies" / "default.yaml"

EXIT_SLA = 1
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int = EXIT_FAILED) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn errors into one line and an exit code (exit_code_for)."""
    try:
        yield
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException:
        raise  # click prints its usage errors itself (exit 2)
    except Exception as e:  # noqa: BLE001 - every error ends as one line
        message, code = exit_code_for(e)
        if code == EXIT_FAILED and not _expected(e):
            message += f" (traceback in {_log_exception(e)})"
        _fail(message, code)


def exit_code_for(e: BaseException) -> tuple[str, int]:
    """The line and the exit code of an error: 2 for bad input (an experiment file, a
    run reference, an option, an archive that is not one), 1 for everything else."""
    from femdc_bench.backup import BackupError
    from femdc_bench.metrics.client import InfluxError

    if isinstance(e, ExperimentError | BackupError | RunError):
        return str(e), EXIT_USAGE
    if isinstance(e, InfluxError):
        return f"InfluxDB: {e}", EXIT_FAILED
    if _expected(e):
        return str(e), EXIT_FAILED
    return f"{type(e).__name__}: {e}", EXIT_FAILED


def _expected(e: BaseException) -> bool:
    """A failure the project raises on purpose (its message says it all)."""
    from femdc_bench.ansible import AnsibleError
    from femdc_bench.metrics.client import InfluxError

    return isinstance(e, AnsibleError | InfluxError) or (
        type(e).__module__.startswith("femdc_bench.") and isinstance(e, RuntimeError))


def _log_exception(e: BaseException) -> Path:
    """The traceback of `e` appended to this invocation's run log (results/<run>/logs/
    femdc-bench.log) or, with no run open, to <results>/femdc-bench.log; returns it."""
    import traceback

    path = _LOG[-1] if _LOG else _results() / "femdc-bench.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR femdc_bench.cli: "
                    f"unexpected error\n{''.join(traceback.format_exception(e))}")
    except OSError:
        pass
    return path


@contextmanager
def _progress(title: str) -> Iterator[Callable[[str], None]]:
    t0 = time.monotonic()
    with console.status(title) as status:
        def update(msg: str) -> None:
            status.update(f"{title} [dim]({time.monotonic() - t0:.0f}s)[/] {msg}")
        yield update
    console.print(f"[green]✓[/] {title} [dim]{time.monotonic() - t0:.1f}s[/]")


def _open(ref: str) -> Run:
    from femdc_bench.rundir import attach_log

    run = Run.open(ref, _results())
    attach_log(run)
    return _opened(run)


def _opened(run: Run) -> Run:
    """`run` is this invocation's: an unexpected error's traceback goes to its log."""
    _LOG[:] = [run.log("femdc-bench")]
    return run


_RESULTS: list[Path] = []
_LOG: list[Path] = []


def _results() -> Path:
    return _RESULTS[0] if _RESULTS else RESULTS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="femdc-bench")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path),
              help=f"Results directory (default: {RESULTS}; env FEMDC_RESULTS).")
def main(results: Path | None) -> None:
    """Benchmark OpenStack across emulated fog/edge sites.

    A run goes up (hosts), deploy (OpenStack), bench (load + InfluxDB) and report;
    RUN arguments take a run id, a run directory or 'last'.
    """
    _LOG.clear()
    if results:
        _RESULTS[:] = [results]  # this invocation's (in-process callers invoke main often)


@main.command()
@click.argument("experiment", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--keep", is_flag=True, help="Leave the deployment up after the report.")
@click.option("--run-id", help="Name of the run directory (default: <name>-<timestamp>).")
@click.option("--resume", "resume", metavar="RUN",
              help="Continue an existing run from its first unfinished phase.")
def run(experiment: Path | None, keep: bool, run_id: str | None, resume: str | None) -> None:
    """Run EXPERIMENT end to end: up, deploy, bench, report (then destroy unless --keep).

    Without EXPERIMENT, runs the embedded default (topologies/default.yaml).
    Exits 1 when a phase fails or the SLA is not met, 2 on bad input, 130 on Ctrl-C.
    """
    from femdc_bench import run as pipeline

    _sigterm_is_interrupt()
    with _errors():
        if resume:
            r = pipeline.resume(_open(resume), _ui())
        else:
            r = _opened(pipeline.start(experiment or DEFAULT_EXPERIMENT, _results(), run_id))
        console.print(f"run [bold]{r.id}[/] → {r.dir}")
        try:
            outcome = pipeline.run_experiment(r, _ui(), keep=keep)
        except pipeline.Interrupted:
            sys.exit(EXIT_INTERRUPTED)
        if keep:
            console.print(f"kept: export OS_CLIENT_CONFIG_FILE={r.dir / 'clouds.yaml'}; "
                          f"openstack --os-cloud {r.experiment().site_names[0]} token issue")
            if grafana_url := pipeline.grafana_url(r):
                console.print(f"Grafana: {grafana_url}", highlight=False)
    if outcome.failed_points:
        _fail(f"point(s) failed: {'; '.join(outcome.failed_points)}; re-run one with "
              f"`femdc-bench bench {r.id} --point P` (after `run --keep`)")
    if not r.state.sla_ok:
        _fail("SLA not met: " + "; ".join(r.state.sla_violations), EXIT_SLA)


def _ui() -> Any:
    """The pipeline's Ui on this console."""
    from femdc_bench.run import Ui

    def say(head: str, rest: str, style: str) -> None:
        head = f"[{style}]{head}[/]" if style and head else head
        console.print(f"{head} {rest}" if rest else head, highlight=False)

    return Ui(step=_progress, say=say, wan_matrix=lambda r, p: out.print(_wan_matrix(r, p)),
              report=_print_report)


def _wan_matrix(r: Run, point: str) -> Any:
    from femdc_bench.report.render import wan_table

    doc = json.loads((r.dir / "wan" / point / "check.json").read_text())
    return wan_table(doc["pairs"], f"RTT between sites at {point} ({doc['probes']} probes each)")


def _sigterm_is_interrupt() -> None:
    """A nightly job killed by its scheduler (SIGTERM) cleans up like Ctrl-C does.

    SIGINT too, even when it was ignored at start: a shell without job control starts
    background commands with SIGINT ignored, and Python then installs no handler (seen:
    `run` started from a script with `&` went on loading for 5 minutes after SIGINT).
    """
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _destroy(r: Run) -> None:
    from femdc_bench import run as pipeline

    pipeline.destroy(r, _ui())


@main.command()
@click.argument("experiment", type=click.Path(dir_okay=False, path_type=Path))
def validate(experiment: Path) -> None:
    """Check an experiment file; touches nothing."""
    with _errors():
        exp = load_experiment(experiment)
    hosts = sum(len(s.hosts) for s in exp.sites)
    out.print(f"{experiment}: ok ({len(exp.sites)} sites, {hosts} hosts, "
              f"{len(exp.workload.scenarios)} scenarios)")


@main.command()
@click.argument("target")
@click.option("--run-id", help="Name of a new run's directory (default: <name>-<timestamp>).")
@click.option("--dry-run", is_flag=True,
              help="Print what would be reserved and the hosts, sites and roles it would "
                   "give; create nothing, contact nothing.")
def up(target: str, run_id: str | None, dry_run: bool) -> None:
    """Provision hosts: TARGET is an experiment file (new run) or an existing RUN."""
    from femdc_bench import providers
    from femdc_bench import run as pipeline
    from femdc_bench.rundir import attach_log

    if dry_run:
        with _errors():
            exp_file = Path(target) if Path(target).is_file() else \
                Run.open(target, _results()).dir / "experiment.yaml"
            plan = providers.dry_run(exp_file)
        _print_plan(plan)
        return
    with _errors():
        if Path(target).is_file():
            r = Run.create(Path(target), _results(), run_id=run_id)
        elif run_id:
            raise click.UsageError("--run-id names a new run: TARGET must be an experiment file")
        else:
            r = Run.open(target, _results())
        attach_log(_opened(r))
        with _progress("hosts up") as progress:
            inv = pipeline.up(r, progress)
    table = Table("host", "site", "address", "roles", title=f"run {r.id}")
    for h in inv.hosts:
        table.add_row(h.alias, h.site, h.address, ",".join(h.roles))
    out.print(table)


def _print_plan(plan: Any) -> None:
    out.print(f"provider {plan.provider} (dry run: nothing reserved, nothing contacted)",
              highlight=False)
    for line in plan.reserve:
        out.print(f"  {line}", highlight=False)
    table = Table("host", "site", "roles", "address", "machine")
    for h in plan.hosts:
        table.add_row(h.alias, h.site, ",".join(h.roles), h.address, h.machine)
    out.print(table)
    sites: dict[str, int] = {}
    for h in plan.hosts:
        sites[h.site] = sites.get(h.site, 0) + 1
    out.print(f"{len(sites)} sites: " + ", ".join(f"{s} ({n} host{'s' if n > 1 else ''})"
                                                  for s, n in sites.items()), highlight=False)
    for note in plan.notes:
        out.print(f"[dim]{note}[/]", highlight=False)


@main.command()
@click.argument("run_ref", metavar="RUN")
def deploy(run_ref: str) -> None:
    """Deploy OpenStack on the hosts of RUN."""
    from femdc_bench import run as pipeline

    with _errors():
        r = _open(run_ref)
        with _progress("OpenStack deployed") as progress:
            clouds = pipeline.deploy(r, progress)
    for c in clouds.clouds:
        out.print(f"  {c.site}: {c.auth_url} (region {c.region})")
    out.print(f"clouds.yaml: {clouds.clouds_yaml}")


@main.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--point", "points", multiple=True, metavar="P",
              help="Sweep point(s) to (re-)run, e.g. p2; default: every point.")
@click.option("--task", "task_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A Rally task file (v1 or v2, YAML or JSON): it becomes the run's "
                   "workload (the previous experiment.yaml is kept beside it).")
@click.option("--task-args", metavar="JSON", help="Task args, JSON or YAML (over "
              "--task-args-file's).")
@click.option("--task-args-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Task args from a JSON or YAML file.")
@click.option("--from", "from_sites", metavar="SITES",
              help="Only these sites run the load: comma-separated names or ranges "
                   "(edge[1-3]); default: every site with a load host.")
@click.option("--recheck", is_flag=True,
              help="Measure the WAN even when the point's last check still holds "
                   "(passed within 10 minutes, rules untouched since).")
def bench(run_ref: str, points: tuple[str, ...], task_file: Path | None,
          task_args: str | None, task_args_file: Path | None, from_sites: str | None,
          recheck: bool) -> None:
    """Apply the WAN, check it, run the workload and store every iteration, per point.

    A point that was run before is run again and its samples replaced. Then the report:
    exits 1 when a point failed or the SLA is not met, 2 on bad input.
    """
    from femdc_bench import run as pipeline

    _sigterm_is_interrupt()
    with _errors():
        r = _open(run_ref)
        if task_file is None and (task_args is not None or task_args_file is not None):
            raise click.UsageError("--task-args and --task-args-file go with --task")
        if task_file is not None:
            args = _task_args(task_args, task_args_file)
            r.use_task(task_file, args)
        exp = r.experiment()
        known = [p.id for p in exp.points]
        for p in points:
            if p not in known:
                raise RunError(f"no sweep point {p!r} in {r.id} (points: {', '.join(known)})")
        only = _from_sites(exp, from_sites) if from_sites else None
        outcome = pipeline.bench_points(r, points, _ui(), only_from=only, recheck=recheck)
    if outcome.failed_points:
        _fail("point(s) failed: " + "; ".join(outcome.failed_points))
    if not r.state.sla_ok:
        _fail("SLA not met: " + "; ".join(r.state.sla_violations), EXIT_SLA)


def _task_args(text: str | None, file: Path | None) -> dict[str, Any]:
    """Rally's --task-args-file then --task-args over it: mappings, JSON or YAML."""
    import yaml

    args: dict[str, Any] = {}
    for what, raw in (("--task-args-file", file), ("--task-args", text)):
        if raw is None:
            continue
        try:
            value = yaml.safe_load(raw.read_text() if isinstance(raw, Path) else raw)
        except OSError as e:
            raise click.BadParameter(f"{raw}: {e.strerror}", param_hint=what) from None
        except yaml.YAMLError as e:
            raise click.BadParameter(f"not JSON or YAML: {str(e).splitlines()[0]}",
                                     param_hint=what) from None
        if not isinstance(value, dict):
            raise click.BadParameter("expected a mapping of task args", param_hint=what)
        args.update(value)
    return args


def _from_sites(exp: Any, text: str) -> list[str]:
    from femdc_bench.experiment import expand_range

    names = exp.site_names
    load = [s.name for s in exp.sites if s.hosts_with("load")]
    out: list[str] = []
    for ref in (x.strip() for x in text.split(",")):
        got = expand_range(ref) if ref else []
        for n in got:
            if n not in names:
                raise click.BadParameter(f"no site {n!r} (sites: {', '.join(names)})",
                                         param_hint="--from")
            if n not in load:
                raise click.BadParameter(f"site {n!r} has no host with role 'load'",
                                         param_hint="--from")
        out += got
    if not out:
        raise click.BadParameter("expected site names", param_hint="--from")
    return out


@main.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--show", "action", flag_value="show", help="Print the plan (per-host rules).")
@click.option("--apply", "action", flag_value="apply", help="Apply the point's WAN.")
@click.option("--remove", "action", flag_value="remove", help="Remove all WAN emulation.")
@click.option("--check", "action", flag_value="check", help="Measure RTT against targets.")
@click.option("--point", default="p0", show_default=True, help="Sweep point.")
def emulate(run_ref: str, action: str | None, point: str) -> None:
    """Hand tools for the WAN of RUN: show, apply, remove or check it."""
    from femdc_bench.wan import state as wan
    from femdc_bench.wan.plan import plan as plan_wan

    if action is None:
        _fail("choose one of --show, --apply, --remove, --check", EXIT_USAGE)
    with _errors():
        r = _open(run_ref)
        exp = r.experiment()
        try:
            sp = exp.point(point)
        except KeyError:
            raise RunError(f"no sweep point {point!r} in {r.id}") from None
        if action == "show":
            p = plan_wan(sp.wan, r.inventory())
            table = Table("host", "to", "address", "delay ms", "rate kbit", "loss %",
                          title=f"{r.id} {point}: {sp.label()} ({p.rule_count} rules)")
            for h in p.hosts:
                for rule in h.rules:
                    table.add_row(h.host, rule.dst_host, rule.dst, f"{rule.delay_ms:g}",
                                  "-" if rule.rate_kbit is None else f"{rule.rate_kbit:g}",
                                  f"{rule.loss_pct:g}")
            out.print(table)
        elif action == "apply":
            with _progress(f"WAN applied ({point})") as progress:
                wan.emulate(r, point, progress)
        elif action == "remove":
            with _progress("WAN removed") as progress:
                wan.remove_wan(r, progress)
        else:
            try:
                with _progress(f"WAN measured ({point})") as progress:
                    wan.check_wan(r, point, progress)
            finally:
                if (r.dir / "wan" / point / "check.json").exists():
                    out.print(_wan_matrix(r, point))


@main.command()
@click.argument("run_ref", metavar="RUN", default="last")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(run_ref: str, as_json: bool) -> None:
    """Per site, target and operation: count, errors, mean, p50/p95/p99, iterations/s.

    Reads the points back from InfluxDB (restarting the run's local InfluxDB if needed).
    Exits 1 when the SLA is not met.
    """
    from femdc_bench import run as pipeline
    from femdc_bench.run import Ui

    with _errors():
        r = _open(run_ref)
        rep = pipeline.report(r, Ui.quiet())
    if as_json:
        click.echo(json.dumps(rep.doc, indent=2))
    else:
        _print_report(r, rep)
    if rep.violations:
        sys.exit(EXIT_SLA)


def _print_report(r: Run, rep: Any) -> None:
    from femdc_bench.report.render import (
        events_table,
        faults_table,
        stats_table,
        sweep_table,
        wan_table,
    )

    sla = r.experiment().workload.sla
    for pid, label in rep.labels.items():
        rows = [row for row in rep.rows if row.point == pid]
        if not rows:
            continue
        name = pid if label == "-" else f"{pid} ({label})"
        if pid in rep.wan:
            out.print(wan_table(rep.wan[pid], f"{name}: RTT between sites"))
        out.print(stats_table(rows, title=f"{r.id} {name}, read back from InfluxDB", sla=sla))
    if len([p for p in rep.labels if any(row.point == p for row in rep.rows)]) > 1:
        out.print(sweep_table(rep.rows, rep.labels))
    if rep.events:
        out.print(events_table(rep.events, f"{r.id}: events, from InfluxDB"), highlight=False)
    if rep.faults:
        out.print(faults_table(rep.faults, f"{r.id}: before, during and after each fault"),
                  highlight=False)
    if not rep.violations:
        out.print("[green]SLA met[/]")
    for v in rep.violations:
        out.print(f"[red]SLA violated:[/] {v}", highlight=False)


@main.command()
@click.argument("run_ref", metavar="RUN", default="last")
@click.option("--format", "fmt", type=click.Choice(["rally-json"]), required=True,
              help="rally-json: Rally's task results layout (`rally task import` reads it).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default: <run dir>/export.rally.json).")
def export(run_ref: str, fmt: str, out: Path | None) -> None:
    """Export RUN's results (read back from InfluxDB): one Rally workload per sweep
    point, workload, source site and target."""
    from femdc_bench.report import assemble

    with _errors():
        r = _open(run_ref)
        dest = out or r.dir / "export.rally.json"
        n = assemble.export_rally(r, dest)
    out_console = f"{dest}: {n['tasks']} task(s), {n['workloads']} workload(s), " \
        f"{n['iterations']} iteration(s)"
    console.print(out_console, highlight=False)


@main.command()
@click.argument("run_ref", metavar="RUN", default="last")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Archive path (default: <run dir>/backup/<run>.backup.tar.gz).")
def backup(run_ref: str, out: Path | None) -> None:
    """One archive of RUN: its InfluxDB points as line protocol, its files, every host's
    logs and configuration (secrets redacted), with SHA256SUMS. `run` ends with it."""
    from femdc_bench.backup import backup as backup_run

    with _errors():
        r = _open(run_ref)
        with _progress("backup written") as progress:
            res = backup_run(r, out, progress)
        points = ", ".join(f"{m} {n}" for m, n in sorted(res.points.items()))
        console.print(f"{res.path}: {points}; {res.files} files"
                      + (f"; {res.redactions} secrets redacted" if res.redactions else ""),
                      highlight=False)


@main.command()
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--influxdb", "influx_url", metavar="URL",
              help="Write the points to this InfluxDB 1.x or 2.x (default: the restored "
                   "run's own local InfluxDB, which `report` reads).")
@click.option("--database", default="femdc", show_default=True,
              help="The 1.x database, or the 2.x bucket.")
@click.option("--org", help="The 2.x organization.")
@click.option("--token-env", metavar="NAME", help="2.x: the environment variable holding "
              "the API token.")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="2.x: a file (0600) holding the API token.")
def restore(archive: Path, influx_url: str | None, database: str, org: str | None,
            token_env: str | None, token_file: Path | None) -> None:
    """Restore a backup into the results directory (checksums verified) and its points
    into InfluxDB; the point counts read back must equal the archive's."""
    from femdc_bench.backup import restore as restore_run
    from femdc_bench.metrics.client import read_token

    with _errors():
        try:
            token = read_token(token_env, token_file)
        except ValueError as e:
            raise RunError(str(e)) from None
        with _progress("restored") as progress:
            r, counts = restore_run(archive, _results(), influx_url, database, progress,
                                       org=org, token=token)
        console.print(f"{r.id} → {r.dir}: " + ", ".join(
            f"{m} {n}" for m, n in sorted(counts.items())), highlight=False)


@main.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--influxdb", "influx_url", metavar="URL", default="http://localhost:8086",
              show_default=True, help="The InfluxDB 1.x the datasource points at.")
@click.option("--database", default="femdc", show_default=True)
def grafana(dest: Path, influx_url: str, database: str) -> None:
    """Write Grafana provisioning files to DEST: a datasource, a dashboard provider and
    the dashboards (API latency, per-service metrics, database and bus, Galera)."""
    from femdc_bench import grafana as g

    with _errors():
        for p in g.write_provisioning(dest, influx_url, database):
            console.print(str(p), highlight=False)


@main.command()
@click.argument("run_ref", metavar="RUN")
def destroy(run_ref: str) -> None:
    """Stop services and remove RUN's hosts; keeps results/<run>/ (and InfluxDB data)."""
    with _errors():
        _destroy(_open(run_ref))


@main.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--point", "points", multiple=True, metavar="P",
              help="Only this sweep point (repeatable); default: every benched point.")
def store(run_ref: str, points: tuple[str, ...]) -> None:
    """Write the run's points into InfluxDB again: what waits in the spool (InfluxDB was
    away), then each point's samples, sampler records and the events, from the run's
    files. Exit 1 while InfluxDB is still unreachable (the spool keeps the points)."""
    from femdc_bench.metrics import store

    with _errors():
        r = _open(run_ref)
        with _progress("stored") as progress:
            counts = store.store(r, list(points), progress)
        for what, n in counts.items():
            out.print(f"  {what}: {n} points")
        if waiting := store.spool_waiting(r):
            _fail(f"{waiting} points still wait in {store.spool_file(r)}")


@main.command()
@click.argument("run_ref", metavar="RUN", required=False)
def status(run_ref: str | None) -> None:
    """List runs, or show one run's phases."""
    with _errors():
        if run_ref is None:
            table = Table("run", "experiment", "status", "phases")
            for r in list_runs(_results()):
                phases = " ".join(f"{k}:{v.status}" for k, v in r.state.phases.items())
                table.add_row(r.id, r.state.experiment, r.state.status, phases)
            out.print(table)
            return
        r = Run.open(run_ref, _results())
    table = Table("phase", "status", "seconds", "error", title=f"{r.id}: {r.state.status}")
    for name, ph in r.state.phases.items():
        table.add_row(name, ph.status, f"{ph.seconds:.1f}" if ph.seconds else "",
                      ph.error or "")
    out.print(table)
    from femdc_bench.metrics.store import spool_file, spool_waiting

    waiting = spool_waiting(r)
    out.print(f"InfluxDB spool: {waiting} points wait in {spool_file(r)}"
              + (f" (`femdc-bench store {r.id}` writes them)" if waiting else ""))


@main.command()
def doctor() -> None:
    """Check this machine's prerequisites and say how to install what is missing."""
    from femdc_bench.doctor import checks

    missing = 0
    table = Table("", "check", "found", "how to fix", show_lines=False)
    for c in checks():
        mark = "[green]ok[/]" if c.ok else ("[red]missing[/]" if c.required else "[yellow]no[/]")
        table.add_row(mark, c.name, c.detail, "" if c.ok else c.fix)
        missing += (not c.ok) and c.required
    out.print(table)
    if missing:
        _fail(f"{missing} prerequisite(s) missing")


if __name__ == "__main__":
    main()
