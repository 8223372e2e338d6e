"""Phase order and composition: the only module that imports providers, deploy,
workload, metrics and report, and passes plain data (model.py) between them."""

from __future__ import annotations

import logging
import os
import platform
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from femdc_bench import __version__
from femdc_bench.ansible import PLAYBOOKS, AnsibleError, run_playbook
from femdc_bench.deploy import native
from femdc_bench.model import Clouds, Experiment, Inventory, Sample
from femdc_bench.providers.local import LocalProvider
from femdc_bench.rundir import Run

log = logging.getLogger("femdc_bench")

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


# ---------------------------------------------------------------------------- logging


def attach_log(run: Run) -> None:
    """Log to results/<run>/logs/femdc-bench.log (never to the console: rich owns it)."""
    path = run.log("femdc-bench")
    root = logging.getLogger("femdc_bench")
    if any(getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


# ---------------------------------------------------------------------------- up


def provider_for(run: Run, exp: Experiment) -> LocalProvider:
    if exp.provider.type == "local":
        return LocalProvider(run_id=run.id, run_dir=run.dir)
    raise ValueError(f"provider {exp.provider.type!r} is not supported yet")


def up(run: Run, progress: Progress = _noop) -> Inventory:
    exp = run.experiment()
    with run.phase("up"):
        progress(f"creating {sum(len(s.hosts) for s in exp.sites)} hosts ({exp.provider.type})")
        inv = provider_for(run, exp).up(exp)
        run.save_inventory(inv)
        run.update_manifest(
            femdc_bench=__version__, provider=exp.provider.type,
            controller={"kernel": platform.release(), "python": platform.python_version(),
                        "hostname": platform.node()})
    return inv


# ---------------------------------------------------------------------------- deploy


def deploy(run: Run, progress: Progress = _noop) -> Clouds:
    exp = run.experiment()
    inv = run.inventory()
    with run.phase("deploy"):
        progress("deploying OpenStack (native)")
        clouds = native.deploy(exp, inv, run_id=run.id, run_dir=run.dir, log=run.log("deploy"),
                               on_task=lambda t: progress(f"deploy: {t}"))
        run.save_clouds(clouds)
        progress("collecting versions and logs")
        collect(run, inv)
        run.update_manifest(openstack=clouds.versions, lock_sha256=native.lock_sha256(),
                            hosts=_host_versions(run))
    return clouds


def collect(run: Run, inv: Inventory) -> None:
    """Fetch versions (for the manifest) and service logs from every host."""
    (run.dir / "versions").mkdir(exist_ok=True)
    run_playbook(PLAYBOOKS / "common" / "collect.yml", inv, run_dir=run.dir,
                 log=run.log("collect"), extra_vars={"femdc_results_dir": str(run.dir)})


def _host_versions(run: Run) -> dict[str, Any]:
    import json

    out = {}
    for p in sorted((run.dir / "versions").glob("*.json")):
        out[p.stem] = json.loads(p.read_text())
    return out


# ---------------------------------------------------------------------------- metrics


def metrics_target(run: Run, exp: Experiment, *, start: bool = True) -> tuple[Any, bool]:
    """The run's InfluxDB target; for `influxdb: local`, starts the run's influxd.

    Returns (target, started_now) so that a caller that started it can stop it again.
    """
    from femdc_bench.metrics.influx import InfluxTarget, LocalInfluxd

    if exp.metrics.influxdb != "local":
        return InfluxTarget.from_spec(exp.metrics, exp.metrics.influxdb), False
    influxd = LocalInfluxd(run.influx_dir())
    running = influxd.is_running()
    if not running and not start:
        raise RuntimeError("the run's local InfluxDB is not running")
    url = influxd.url if running else influxd.start()
    assert url is not None
    if not running:
        from femdc_bench.metrics.influx import ping

        run.update_manifest(influxdb={"url": url, "version": ping(url), "local": True})
    run.state.metrics_url = url
    return InfluxTarget.from_spec(exp.metrics, url), not running


# ---------------------------------------------------------------------------- bench

AGENT_FILES = ("__init__.py", "model.py")


def build_agent_zip(path: Path) -> Path:
    """The subset of femdc_bench the hosts need: model + workload (stdlib + keystoneauth1)."""
    import zipfile

    pkg = Path(__file__).resolve().parent
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in AGENT_FILES:
            z.write(pkg / name, f"femdc_bench/{name}")
        for f in sorted((pkg / "workload").rglob("*.py")):
            z.write(f, f"femdc_bench/{f.relative_to(pkg)}")
    return path


def agent_specs(exp: Experiment, inv: Inventory, clouds: Clouds, admin_password: str,
                name_prefix: str) -> dict[str, Any]:
    """One AgentSpec per load host: (scenario x target) jobs in experiment order.

    A site's load runs on its first `load` host. `to: local` loads the cloud that serves
    the source site; target_site names the site whose Keystone is loaded.
    """
    from femdc_bench.workload.spec import AgentSpec, AuthSpec, JobSpec

    jobs: dict[str, list[Any]] = {}
    for sc in exp.workload.scenarios:
        for src in sc.sources:
            host = inv.with_role("load", src)[0]
            targets = sc.targets if sc.targets is not None else (
                exp.deployment.keystone_site_for(src),)
            for tgt in targets:
                cloud = clouds.for_site(tgt)
                auth = AuthSpec(auth_url=cloud.auth_url, username="admin",
                                password=admin_password, project_name="admin",
                                region_name=cloud.region)
                jobs.setdefault(host.alias, []).append(JobSpec.from_scenario(
                    sc, target_site=cloud.keystone_site, auth=auth, name_prefix=name_prefix,
                    sla=exp.workload.sla))
    return {alias: AgentSpec(site=inv.host(alias).site, host=alias, jobs=tuple(js))
            for alias, js in jobs.items()}


def _agent_timeout(exp: Experiment) -> int:
    seconds = 600.0
    for sc in exp.workload.scenarios:
        r = sc.runner
        per_target = r.duration_s if r.type == "duration" else (r.times or 0) / r.concurrency
        seconds += (per_target or 0) * (len(sc.targets) if sc.targets else 1) + 30
    return int(seconds)


def bench(run: Run, progress: Progress = _noop) -> int:
    """Run the workload from every site, then write every iteration to InfluxDB."""
    import json

    exp, inv, clouds = run.experiment(), run.inventory(), run.clouds()
    admin = json.loads(Path(clouds.secrets_file).read_text())["admin"]
    with run.phase("bench"):
        progress("starting InfluxDB")
        target, _ = metrics_target(run, exp)
        from femdc_bench.metrics.influx import connect

        connect(target).close()  # fail before the load if InfluxDB is not there
        specs = agent_specs(exp, inv, clouds, admin, f"femdc-{run.id}-")
        samples_dir = run.samples_dir()
        for old in samples_dir.glob("*"):
            old.unlink()
        progress(f"load from {len(specs)} host(s)")
        run_playbook(
            PLAYBOOKS / "common" / "bench.yml", inv, run_dir=run.dir, log=run.log("bench"),
            on_task=lambda t: progress(f"bench: {t}"),
            extra_vars={
                "femdc_agent_zip": str(build_agent_zip(run.dir / "tmp" / "femdc_agent.zip")),
                "femdc_agent_python": clouds.agent_python,
                "femdc_agent_specs": {a: s.to_dict() for a, s in specs.items()},
                "femdc_agent_timeout": _agent_timeout(exp),
                "femdc_samples_dir": str(samples_dir),
            })
        n = store_samples(run, exp, target)
        progress(f"{n} samples stored")
    return n


def read_samples(run: Run) -> list[Sample]:
    import json

    out = []
    for f in sorted(run.samples_dir().glob("*.jsonl")):
        for line in f.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(Sample.from_dict(json.loads(line)))
                except (ValueError, TypeError):
                    log.warning("%s: skipped a malformed sample line", f.name)
    return out


def store_samples(run: Run, exp: Experiment, target: Any) -> int:
    from femdc_bench.metrics.influx import InfluxWriter, connect

    samples = read_samples(run)
    client = connect(target)
    try:
        with InfluxWriter(client, spool_path=run.dir / "influx-spool.jsonl") as w:
            w.write_samples(samples, run=run.id, experiment=exp.name, point="p0")
    finally:
        client.close()
    run.update_manifest(samples={"count": len(samples)})
    return len(samples)


def interrupt(run: Run, *, keep: bool) -> None:
    """Ctrl-C: stop the agents, keep what they measured, tear down unless `keep`."""
    exp = run.experiment()
    ph = run.state.phases.get("bench")
    if ph and ph.status in ("running", "interrupted") and (run.dir / "inventory.json").exists():
        try:
            run_playbook(PLAYBOOKS / "common" / "bench-stop.yml", run.inventory(),
                         run_dir=run.dir, log=run.log("bench"),
                         extra_vars={"femdc_samples_dir": str(run.samples_dir())})
            target, _ = metrics_target(run, exp)
            store_samples(run, exp, target)
        except Exception as e:  # noqa: BLE001 - best effort, the teardown must still run
            log.warning("could not collect samples after the interrupt: %s", e)
    run.state.status = "interrupted"
    run.save()
    if not keep:
        destroy(run)


# ---------------------------------------------------------------------------- report


@dataclass
class Report:
    rows: list[Any]  # report.stats.StatsRow
    doc: dict[str, Any]  # the JSON document (also results/<run>/report.json)
    violations: list[str]


def report(run: Run) -> Report:
    """Read the run's points back from InfluxDB; stats per (site, target, operation)."""
    from femdc_bench.metrics.influx import InfluxReader, LocalInfluxd, connect
    from femdc_bench.report.render import stats_json
    from femdc_bench.report.stats import check_sla_spec, compute_stats_by_point

    exp = run.experiment()
    with run.phase("report"):
        target, started = metrics_target(run, exp)
        try:
            client = connect(target, create=False)
            try:
                by_point = InfluxReader(client).api_samples_by_point(run.id)
            finally:
                client.close()
        finally:
            if started:  # a destroyed run: leave its InfluxDB as we found it
                LocalInfluxd(run.influx_dir()).stop()
        rows = compute_stats_by_point(by_point)
        violations = check_sla_spec(rows, exp.workload.sla)
        if not rows:
            violations = ["no samples in InfluxDB for this run"]
        doc = stats_json(rows, run=run.id, sla=exp.workload.sla, violations=violations)
        run.write_json("report.json", doc)
        run.state.sla_ok = not violations
        run.state.sla_violations = violations
    run.save()
    return Report(rows=rows, doc=doc, violations=violations)


# ---------------------------------------------------------------------------- destroy


@dataclass
class DestroyReport:
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def destroy(run: Run, progress: Progress = _noop) -> DestroyReport:
    """Stop services, remove hosts, stop the local InfluxDB. Keeps results/<run>/."""
    report = DestroyReport()
    exp = run.experiment()
    provider = provider_for(run, exp)
    with run.phase("destroy"):
        if provider.exists() and (run.dir / "inventory.json").exists():
            inv = run.inventory()
            progress("collecting logs")
            try:
                collect(run, inv)
            except AnsibleError as e:
                report.warnings.append(f"logs not collected: {e}")
            if run.state.phases.get("deploy"):
                progress("stopping services on hosts")
                try:
                    native.destroy(inv, run_id=run.id, run_dir=run.dir, log=run.log("destroy"))
                    report.removed.append("OpenStack services and their data on every host")
                except AnsibleError as e:
                    # Hosts are namespaces we own: removing them below ends what is left.
                    report.warnings.append(str(e))
        progress("removing hosts")
        report.removed += provider.destroy()
        removed_influx = stop_local_influx(run)
        if removed_influx:
            report.removed.append(removed_influx)
        run.state.status = "destroyed"
    run.save()
    return report


def stop_local_influx(run: Run) -> str | None:
    from femdc_bench.metrics.influx import LocalInfluxd

    d = run.influx_dir()
    if not d.exists():
        return None
    influxd = LocalInfluxd(d)
    if influxd.is_running():
        influxd.stop()
        return f"influxd (data kept in {d})"
    return None


# ---------------------------------------------------------------------------- helpers


def stop_pid(pid: int, needle: str, timeout: float = 10.0) -> bool:
    """SIGTERM a process we started (checked by its command line), SIGKILL on timeout."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    if needle not in cmd:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    return True


def command_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


__all__ = ["up", "deploy", "destroy", "Sample", "PLAYBOOKS", "run_playbook"]
