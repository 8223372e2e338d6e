"""Phase order and composition: the only module that imports providers, deploy,
workload, metrics and report, and passes plain data (model.py) between them."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from femdc_bench import __version__, benchrun, ship
from femdc_bench.ansible import (
    PLAYBOOKS,
    AnsibleError,
    close_connections,
    control_dir,
    run_playbook,
)
from femdc_bench.experiment import ExperimentError
from femdc_bench.model import (
    KILLABLE_SERVICES,
    Clouds,
    Experiment,
    FaultSpec,
    Inventory,
    Sample,
    SweepPoint,
)
from femdc_bench.rundir import Run, RunError, read_jsonl
from femdc_bench.wan import apply as wan_apply
from femdc_bench.wan import check as wan_check
from femdc_bench.wan.check import WanCheck
from femdc_bench.wan.plan import WanPlan, degraded, site_matrix
from femdc_bench.wan.plan import plan as plan_wan

if TYPE_CHECKING:
    from femdc_bench.deploy import Method
    from femdc_bench.providers import Hosts
    from femdc_bench.providers.plan import Plan

# Imported where they are used: the providers (up, dry_run) and deploy.native (deploy,
# destroy; it imports cryptography, ~30 ms), so that `bench` and the other commands on a
# deployed run do not pay for them.

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


def provider_for(run: Run, exp: Experiment) -> Hosts:
    """The run's hosts from the provider of provider.type (providers.get)."""
    from femdc_bench import providers

    return providers.get(exp.provider.type).open(exp, run_id=run.id, run_dir=run.dir)


def dry_run(exp_file: Path) -> Plan:
    """What `up` would reserve or reach and the hosts it would give, from the experiment
    and EnOSlib's configuration classes alone: no run directory, no network."""
    from femdc_bench import providers
    from femdc_bench.experiment import load

    exp = load(exp_file)
    return providers.get(exp.provider.type).plan(exp)


def up(run: Run, progress: Progress = _noop) -> Inventory:
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


def record_clocks(run: Run, inv: Inventory, when: str) -> dict[str, Any]:
    """Each host's clock offset from the controller's into the manifest (`clocks`,
    keyed by when it was measured: `up`, `bench@<point>`). Not measured is a warning:
    the offsets explain a plot, they do not decide a run."""
    from femdc_bench import clocks

    offsets = clocks.measure(inv, control_dir=control_dir(run.dir))
    run.update_manifest(clocks={when: offsets})
    worst = max((abs(float(o["offset_ms"])) for o in offsets.values() if "offset_ms" in o),
                default=0.0)
    log.info("clock offsets at %s: largest %.3f ms over %d hosts", when, worst, len(offsets))
    return offsets


# ---------------------------------------------------------------------------- deploy


def deploy(run: Run, progress: Progress = _noop) -> Clouds:
    from femdc_bench.deploy import native

    exp = run.experiment()
    inv = run.inventory()
    with run.phase("deploy"):
        method = exp.deployment.method
        progress(f"deploying OpenStack ({method})")
        t0 = time.monotonic()
        extra = {"phase": run.phase} if method == "kolla" else {}  # its steps are phases
        clouds = _method(method).deploy(exp, inv, run_id=run.id, run_dir=run.dir,
                                        log=run.log("deploy"),
                                        on_task=lambda t: progress(f"deploy: {t}"), **extra)
        deploy_s = round(time.monotonic() - t0, 1)
        run.save_clouds(clouds)
        progress("starting the bench daemons on the load hosts")
        warm_bench(run, inv, clouds)
        progress("collecting versions, memory and logs")
        collect(run, inv)
        memory = deployment_memory(run)
        previous = run.read_json("manifest.json").get("deployment", {}) if (
            run.dir / "manifest.json").exists() else {}
        record = {"first_deploy_s": previous.get("first_deploy_s", deploy_s),
                  "last_deploy_s": deploy_s, "deploys": previous.get("deploys", 0) + 1,
                  "services": list(exp.deployment.services), **memory}
        run.update_manifest(openstack=clouds.versions, hosts=_host_versions(run),
                            deployment=record, method=method,
                            **({"lock_sha256": native.lock_sha256()} if method == "native"
                               else {"release": exp.deployment.release}))
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


def _method(name: str) -> Method:
    """The deployment method `name` (deploy.get): validate, deploy, destroy."""
    from femdc_bench import deploy

    return deploy.get(name)


def deployment_memory(run: Run) -> dict[str, Any]:
    """PSS of the deployment's processes, per host and in all (from collect.yml)."""
    import json

    by_host: dict[str, Any] = {}
    for p in sorted((run.dir / "versions").glob("*.memory")):
        try:
            by_host[p.stem] = json.loads(p.read_text())
        except ValueError:
            continue
    total = round(sum(h.get("pss_mb", 0.0) for h in by_host.values()), 1)
    return {"memory_mb": total, "by_host": by_host}


def collect(run: Run, inv: Inventory) -> None:
    """Fetch versions (for the manifest) and service logs from every host."""
    (run.dir / "versions").mkdir(exist_ok=True)
    run_playbook(PLAYBOOKS / "common" / "collect.yml", inv, run_dir=run.dir,
                 log=run.log("collect"), extra_vars={"femdc_results_dir": str(run.dir)})
    unpack_logs(run.dir / "logs" / "hosts")


def unpack_logs(hosts_dir: Path) -> None:
    """Each host's fetched <alias>.tar.gz into <alias>/ (replacing what an earlier collect
    brought), then the archive is removed. Only plain files, by base name: an archive
    cannot write outside its host's directory."""
    import shutil
    import tarfile

    for archive in sorted(hosts_dir.glob("*.tar.gz")):
        dest = hosts_dir / archive.name.removesuffix(".tar.gz")
        tmp = dest.with_name(dest.name + ".new")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar.getmembers():
                name = Path(m.name).name
                if not m.isfile() or not name or name != m.name:
                    continue
                src = tar.extractfile(m)
                if src is not None:
                    with src, open(tmp / name, "wb") as out:
                        shutil.copyfileobj(src, out)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        archive.unlink()


def _host_versions(run: Run) -> dict[str, Any]:
    import json

    out = {}
    for p in sorted((run.dir / "versions").glob("*.json")):
        out[p.stem] = json.loads(p.read_text())
    return out


# ---------------------------------------------------------------------------- metrics


def check_metrics_target(exp: Experiment) -> None:
    """A remote InfluxDB (`metrics.influxdb`) must answer, accept the credentials and
    have (or let us create) the database before anything of the run exists: one line
    naming the experiment's key, not a failure after minutes of deployment."""
    if exp.metrics.influxdb == "local":
        return
    from femdc_bench.metrics.client import InfluxError, InfluxTarget, connect

    try:
        target = InfluxTarget.from_spec(exp.metrics, exp.metrics.influxdb)
        with connect(target, timeout_s=10):
            pass
    except (InfluxError, KeyError, ValueError) as e:
        raise ExperimentError(str(exp.path), "metrics.influxdb",
                              f"expected an InfluxDB that answers and accepts this run "
                              f"({exp.metrics.influxdb}): {e}") from None


def metrics_target(run: Run, exp: Experiment) -> tuple[Any, bool]:
    """The run's InfluxDB target; for `influxdb: local`, starts the run's influxd.

    Returns (target, started_now) so that a caller that started it can stop it again.
    """
    from femdc_bench.metrics.client import InfluxTarget
    from femdc_bench.metrics.server import LocalInfluxd

    if exp.metrics.influxdb != "local":
        return InfluxTarget.from_spec(exp.metrics, exp.metrics.influxdb), False
    influxd = LocalInfluxd(run.influx_dir())
    running = influxd.is_running()
    url = influxd.url if running else influxd.start()
    assert url is not None
    if not running:
        from femdc_bench.metrics.client import ping

        run.update_manifest(influxdb={"url": url, "version": ping(url), "local": True})
    run.state.metrics_url = url
    return InfluxTarget.from_spec(exp.metrics, url), not running


# ---------------------------------------------------------------------------- bench

def build_agent_zip(path: Path) -> Path:
    """The subset of femdc_bench the hosts need: model + workload (stdlib + keystoneauth1)."""
    pkg = Path(__file__).resolve().parent
    workload = sorted(str(f.relative_to(pkg)) for f in (pkg / "workload").rglob("*.py"))
    return ship.package_zip(path, ["__init__.py", "catalog.py", "model.py", *workload,
                                   "metrics/__init__.py", "metrics/sampler.py"])


def sampler_confs(exp: Experiment, inv: Inventory, run_id: str, max_s: int) -> dict[str, Any]:
    """One sampler configuration per host (metrics/sampler.py; the playbook adds its
    work directory): every host, since every host runs services."""
    if not exp.metrics.sampling:
        return {}
    sites = {h.address: h.site for h in inv.hosts}
    return {h.alias: {"host": h.alias, "site": h.site, "address": h.address,
                      "own_addresses": [h.address], "period_s": exp.metrics.period_s,
                      "sites_by_address": sites, "max_s": max_s,
                      "unit_prefix": f"femdc-{run_id}-"}
            for h in inv.hosts}


def agent_specs(exp: Experiment, inv: Inventory, clouds: Clouds, admin_password: str,
                name_prefix: str, only_from: Sequence[str] | None = None) -> dict[str, Any]:
    """One AgentSpec per load host: (scenario x target) jobs in experiment order.

    Each `load` host of a site takes its share of the scenario's concurrency (and of a
    `times` runner's iterations: `share_runner`). `to: local` loads the region that serves
    the source site; target_site names the site of the loaded region (its control
    plane, or its Keystone in a Keystone-only deployment). `only_from`: only these
    source sites run their share (`bench --from`).
    """
    from femdc_bench.workload.spec import AgentSpec, AuthSpec, JobSpec, share_runner

    jobs: dict[str, list[Any]] = {}
    for sc in exp.workload.scenarios:
        for src in sc.sources:
            if only_from is not None and src not in only_from:
                continue
            hosts = inv.with_role("load", src)
            shares = share_runner(sc.runner, len(hosts))
            targets = sc.targets if sc.targets is not None else (
                exp.deployment.region_for(src),)
            for tgt in targets:
                cloud = clouds.for_site(tgt)
                for host, share in zip(hosts, shares, strict=True):
                    if share is None:
                        continue
                    auth = AuthSpec(auth_url=cloud.auth_url, username="admin",
                                    password=admin_password, project_name="admin",
                                    region_name=cloud.region,
                                    verify=clouds.host_ca_file(host) or True)
                    jobs.setdefault(host.alias, []).append(JobSpec.from_scenario(
                        sc, target_site=cloud.region_site or cloud.keystone_site, auth=auth,
                        name_prefix=name_prefix, sla=exp.workload.sla, runner=share))
    return {alias: AgentSpec(site=inv.host(alias).site, host=alias, jobs=tuple(js))
            for alias, js in jobs.items()}


def _agent_timeout(exp: Experiment) -> int:
    seconds = 600.0
    for sc in exp.workload.scenarios:
        r = sc.runner
        if r.type == "duration":
            per_target = r.duration_s
        elif r.type == "rps":  # the schedule, then the last iterations' own time
            per_target = r.start_offset_s(r.times or 0) + (r.timeout_s or 60)
        else:
            per_target = (r.times or 0) / r.concurrency
        seconds += (per_target or 0) * (len(sc.targets) if sc.targets else 1) + 30
    return int(seconds)


def bench(run: Run, point: str = "p0", progress: Progress = _noop,
          only_from: Sequence[str] | None = None) -> int:
    """Run the workload from every site (or `only_from`) at one sweep point; every
    iteration to InfluxDB.

    Re-running a point replaces its samples (files and InfluxDB points).
    """
    import json

    exp, inv, clouds = run.experiment(), run.inventory(), run.clouds()
    sp = exp.point(point)
    admin = json.loads(Path(clouds.secrets_file).read_text())["admin"]
    run.state.current_point = point
    with run.phase(f"bench@{point}"):
        phase_ns, t_phase = time.time_ns(), time.monotonic()
        progress("starting InfluxDB")
        target, _ = metrics_target(run, exp)
        # The point's earlier points leave InfluxDB beside the hosts' setup; the load
        # starts only once that worked (InfluxDB not there, or refusing us: no load).
        clear = _Background(lambda: _clear_point(run, target, point))
        specs = agent_specs(exp, inv, clouds, admin, f"femdc-{run_tag(run)}-", only_from)
        if not specs:
            raise RunError(f"no load host runs anything at {point}"
                           + (f" from {', '.join(only_from)}" if only_from else ""))
        samples_dir = run.samples_dir(point)
        for old in samples_dir.glob("*"):
            old.unlink()
        progress(f"load from {len(specs)} host(s) at {point} ({sp.label()})")
        metrics_dir = run.metrics_dir(point)
        for old in metrics_dir.glob("*.jsonl"):
            old.unlink()
        faults = FaultInjector(run, exp, inv, point) if exp.workload.faults else None
        if faults:
            faults.start(samples_dir / "start.json")
        timeout = _agent_timeout(exp)
        confs = sampler_confs(exp, inv, run.id, timeout + 60)
        work = [benchrun.HostWork(h, spec=specs[h.alias].to_dict() if h.alias in specs
                                  else None, sampler=confs.get(h.alias))
                for h in inv.hosts if h.alias in specs or h.alias in confs]
        prepare_s = time.monotonic() - t_phase

        def on_start(start_ns: int, margin_s: float, timings: dict[str, Any]) -> None:
            timings = {"phase_start_ns": phase_ns, "prepare_s": round(prepare_s, 3),
                       "influx_clear_s": clear.seconds, **timings,
                       "first_iteration_after_phase_s": round((start_ns - phase_ns) / 1e9, 3)}
            (samples_dir / "start.json").write_text(
                json.dumps({"start_ns": start_ns, "timings": timings}))
            log.info("bench@%s: the load starts %.3f s after the phase began (margin %.3f s)",
                     point, (start_ns - phase_ns) / 1e9, margin_s)

        try:
            benchrun.run_bench(
                work, python=clouds.agent_python, samples_dir=samples_dir,
                zip_path=build_agent_zip(run.dir / "tmp" / "femdc_agent.zip"),
                metrics_dir=metrics_dir, control_dir=control_dir(run.dir), timeout_s=timeout,
                on_start=on_start, before_go=clear.result, epoch=deploy_epoch(run),
                progress=lambda m: progress(f"bench {point}: {m}"))
        finally:
            if faults:
                faults.stop()
        n = store_samples(run, exp, target, point)
        m = store_metrics(run, exp, target, point)
        store_events(run, exp, target)
        if faults:
            faults.store(target)
        record_clocks(run, inv, f"bench@{point}")
        progress(f"{n} samples stored, {m} service and host samples")
    return n


def deploy_epoch(run: Run) -> str:
    """What changes whenever the run's services are deployed again (the deploy's marker
    and the clouds file, contents and times): the bench daemons keep a Keystone token
    and the endpoints between benches of one epoch only."""
    h = hashlib.sha256()
    for name in ("deploy.digest", "clouds.json"):
        f = run.dir / name
        with contextlib.suppress(OSError):
            h.update(f"{name}\0{f.stat().st_mtime_ns}\0".encode() + f.read_bytes())
    return h.hexdigest()[:16]


class _Background:
    """A call on a thread; `result()` waits for it and raises what it raised."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.seconds: float | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], None]) -> None:
        t0 = time.monotonic()
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - given to result()
            self._error = e
        self.seconds = round(time.monotonic() - t0, 3)

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _clear_point(run: Run, target: Any, point: str) -> None:
    """The point's earlier points out of InfluxDB before it is benched again, after
    what waits in the spool (replace_point)."""
    from femdc_bench.metrics.client import InfluxError, connect

    try:
        with connect(target) as client:
            replace_point(run, client, point)
    except InfluxError as e:
        raise RunError(f"InfluxDB {target.url} before the load at {point}: {e}") from e


def stop_bench(run: Run, inv: Inventory, point: str | None = None, *,
               daemon: bool = False) -> list[str]:
    """Stop what a bench left on the hosts (benchrun.stop_hosts: load agents, samplers,
    `daemon`: the bench daemons too) and, for `point`, fetch what they recorded into
    the point's samples and metrics. One line per host that could not be reached."""
    try:
        return benchrun.stop_hosts(
            list(inv.hosts), zip_path=build_agent_zip(run.dir / "tmp" / "femdc_agent.zip"),
            control_dir=control_dir(run.dir),
            samples_dir=run.samples_dir(point) if point else None,
            metrics_dir=run.metrics_dir(point) if point else None, daemon=daemon)
    except OSError as e:
        return [f"bench processes on the hosts not stopped: {e}"]


def warm_bench(run: Run, inv: Inventory, clouds: Clouds) -> None:
    """The bench daemon started on every load host (end of deploy), so that the first
    bench does not wait for its imports. A failure is a warning: a bench starts it."""
    hosts = list(inv.with_role("load"))
    if not hosts:
        return
    try:
        done, errors = benchrun.warm(
            hosts, python=clouds.agent_python, control_dir=control_dir(run.dir),
            zip_path=build_agent_zip(run.dir / "tmp" / "femdc_agent.zip"))
    except OSError as e:
        done, errors = {}, [str(e)]
    log.info("bench daemons: %s", ", ".join(f"{a} {how}" for a, how in sorted(done.items())))
    for e in errors:
        log.warning("bench daemon not started (a bench will start it): %s", e)


def read_metrics(run: Run, point: str) -> list[dict[str, Any]]:
    """The sampler records fetched from the hosts (a torn last line is skipped)."""
    return [rec for f in sorted(run.metrics_dir(point).glob("*.jsonl"))
            for rec in read_jsonl(f) if {"m", "tags", "fields", "t"} <= rec.keys()]


def store_metrics(run: Run, exp: Experiment, target: Any, point: str) -> int:
    """The point's sampler records into InfluxDB (replacing the point's earlier ones)."""
    from femdc_bench.metrics.names import SAMPLED

    recs = read_metrics(run, point)
    counts: dict[str, int] = {}
    with spooling_writer(run, target, _point_tags(exp, point)) as (client, w):
        # Away: the bench deleted them before its load; `store` asks for InfluxDB first.
        # (The records of the files are the same points again: a resend overwrites.)
        _delete_before_store(run, client, point, SAMPLED, "sampler records")
        for r in recs:
            if r["m"] not in SAMPLED:
                continue
            w.write(r["m"], {**r["tags"], "run": run.id, "experiment": exp.name,
                             "point": point}, r["fields"], int(r["t"]))
            counts[r["m"]] = counts.get(r["m"], 0) + 1
    run.update_manifest(metrics={point: counts})
    return sum(counts.values())


def _point_tags(exp: Experiment, point: str) -> dict[str, str]:
    """The point's swept parameters as tags: wan.default.delay -> wan_default_delay."""
    sp = exp.point(point)
    return {re.sub(r"[^A-Za-z0-9]+", "_", k).strip("_"): v for k, v in sp.params.items()}


def read_samples(run: Run, point: str) -> list[Sample]:
    """The samples fetched from the load hosts (a torn last line of a killed agent is
    skipped)."""
    from femdc_bench.workload.sink import iter_samples

    return [s for f in sorted(run.samples_dir(point).glob("*.jsonl"))
            for s in iter_samples(str(f))]


def store_samples(run: Run, exp: Experiment, target: Any, point: str) -> int:
    """The point's samples as `api` points (into the spool while InfluxDB is away)."""
    samples = read_samples(run, point)
    with spooling_writer(run, target, _point_tags(exp, point)) as (_, w):
        hold_for_test(run, "store")
        w.write_samples(samples, run=run.id, experiment=exp.name, point=point)
    run.update_manifest(samples={point: len(samples)})
    return len(samples)


def spool_file(run: Run) -> Path:
    """Points the run could not write (InfluxDB away), waiting to be sent."""
    return run.dir / "influx-spool.jsonl"


@contextlib.contextmanager
def spooling_writer(run: Run, target: Any, tags: dict[str, str] | None = None
                    ) -> Iterator[tuple[Any, Any]]:
    """(client, writer) for the run's points that loses none: while InfluxDB does not
    answer (its influxd died, the network is down) the client is None and every point
    goes to the run's spool, as do the points of a server that dies during the writes;
    they are sent at the next write that reaches it, or by `femdc-bench store`. A server
    that refuses us (credentials, database) still raises."""
    from femdc_bench.metrics.client import InfluxUnavailable, connect
    from femdc_bench.metrics.writer import InfluxWriter

    client = None
    try:
        client = connect(target)
    except InfluxUnavailable as e:
        log.warning("InfluxDB unreachable (%s): the points go to %s", e, spool_file(run))
    try:
        with InfluxWriter(client, common_tags=tags, spool_path=spool_file(run)) as w:
            yield client, w
    finally:
        if client is not None:
            client.close()


def _delete_before_store(run: Run, client: Any, point: str, measurements: Iterable[str],
                         what: str) -> None:
    """The point's earlier `measurements`, deleted before a store step writes them again
    (`client` of spooling_writer). InfluxDB away is a warning: the new points wait in
    the spool."""
    from femdc_bench.metrics.client import InfluxUnavailable

    try:
        for measurement in measurements if client is not None else ():
            client.delete(measurement, {"run": run.id, "point": point})
    except InfluxUnavailable as e:
        log.warning("%s of %s not deleted before storing (%s)", what, point, e)


def replace_point(run: Run, client: Any, point: str) -> int:
    """Before `point` is benched again: what waits in the spool is sent first (an
    earlier bench of the point may have left its points there: sent after the delete,
    they would double the point), then the point's points are deleted (`api`, `event`
    and the sampled ones). Returns the spooled points sent."""
    from femdc_bench.metrics.names import API, EVENT, SAMPLED
    from femdc_bench.metrics.writer import InfluxWriter

    sent = 0
    if spool_waiting(run):
        sent = InfluxWriter(client, spool_path=spool_file(run)).replay_spool()
        log.info("sent %d spooled points before replacing %s", sent, point)
    for measurement in (API, EVENT, *SAMPLED):
        client.delete(measurement, {"run": run.id, "point": point})
    return sent


def hold_for_test(run: Run, name: str) -> None:
    """Tests only: when FEMDC_TEST_HOLD lists `name` (comma-separated), write
    <run>/tmp/hold-<name> and wait until the test removes it (at most FEMDC_TEST_HOLD_S,
    600 s by default): a window at a known step in which a test acts (kills the run's
    InfluxDB, or this CLI). Without the variable it does nothing. Names: `store` (a
    point's samples: connected, nothing written yet), `stored` (the CLI, after a bench
    has stored its points), `backup` (before the archive is written)."""
    if name not in os.environ.get("FEMDC_TEST_HOLD", "").split(","):
        return
    flag = run.dir / "tmp" / f"hold-{name}"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text(f"{os.getpid()}\n")
    log.warning("test hold %s: waiting until %s is removed", name, flag)
    deadline = time.monotonic() + float(os.environ.get("FEMDC_TEST_HOLD_S", "600"))
    while flag.exists():
        if time.monotonic() > deadline:
            flag.unlink(missing_ok=True)
            raise RunError(f"test hold {name}: {flag} was not removed in time")
        time.sleep(0.05)


def spool_waiting(run: Run) -> int:
    from femdc_bench.metrics.writer import spool_count

    return spool_count(spool_file(run))


def store(run: Run, points: Sequence[str] | None = None, progress: Progress = _noop
          ) -> dict[str, int]:
    """Write the run's points into InfluxDB again, from what the run keeps on disk:
    first the spool (what waited while InfluxDB was away), then for each benched point
    (or `points`) its samples (`api`) and sampler records, each replacing the point's
    earlier ones, and the events. After an outage, or into another InfluxDB
    (`metrics.influxdb`). Raises InfluxUnavailable while it is still away: the spool
    keeps what was not sent."""
    from femdc_bench.metrics.client import connect
    from femdc_bench.metrics.names import API
    from femdc_bench.metrics.server import LocalInfluxd
    from femdc_bench.metrics.writer import InfluxWriter

    exp = run.experiment()
    known = [p.id for p in exp.points]
    for p in points or ():
        if p not in known:
            raise RunError(f"no sweep point {p!r} in {run.id} (points: {', '.join(known)})")
    chosen = list(points) if points else [
        p for p in known if (run.dir / "samples" / p).is_dir()
        and any((run.dir / "samples" / p).glob("*.jsonl"))]
    counts: dict[str, int] = {}
    with run.phase("store"):
        target, started = metrics_target(run, exp)
        try:
            with connect(target) as client:
                if spool_waiting(run):
                    progress(f"sending the {spool_waiting(run)} spooled points")
                    with InfluxWriter(client, spool_path=spool_file(run)) as w:
                        counts["spooled"] = w.replay_spool()
                for pid in chosen:
                    client.delete(API, {"run": run.id, "point": pid})
            for pid in chosen:
                progress(f"storing {pid}")
                counts[f"api@{pid}"] = store_samples(run, exp, target, pid)
                counts[f"metrics@{pid}"] = store_metrics(run, exp, target, pid)
            counts["events"] = store_events(run, exp, target)
        finally:
            if started:
                LocalInfluxd(run.influx_dir()).stop()
    run.event("store", "store", f"stored again: {', '.join(f'{k} {v}' for k, v in counts.items())}")
    return counts


# ---------------------------------------------------------------------------- wan


def _emulator(run: Run, exp: Experiment, inv: Inventory, sp: SweepPoint) -> str:
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


def run_tag(run: Run) -> str:
    """Short id of the run: names of what it creates on hosts (tc handles, chains, users)."""
    from femdc_bench.providers.local import short_id

    return short_id(run.id)


def plan_sha(p: WanPlan) -> str:
    import json

    return hashlib.sha256(json.dumps(asdict(p), sort_keys=True).encode()).hexdigest()


def emulate(run: Run, point: str = "p0", progress: Progress = _noop,
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
            emulator = _emulator(run, exp, inv, sp)
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


def remove_wan(run: Run, progress: Progress = _noop) -> None:
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


def check_wan(run: Run, point: str = "p0", progress: Progress = _noop) -> WanCheck:
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
        _store_wan(run, exp, target, point, chk)
        if not chk.ok:
            run.state.wan_checked = None
            run.save()
            raise WanCheckError(f"WAN at {point} is off target: " + "; ".join(chk.failures()))
        run.state.wan_checked = {"point": point, "generation": run.state.wan_generation,
                                 "at": time.time()}
        run.save()
    return chk


def measure_base(run: Run, progress: Progress = _noop) -> None:
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


WAN_PROBES = 20
WAN_CHECK_ATTEMPTS = 3  # measurements of an off-target matrix before the check fails


class WanCheckError(RuntimeError):
    pass


def _store_wan(run: Run, exp: Experiment, target: Any, point: str, chk: WanCheck) -> None:
    """The check's measured pairs into InfluxDB (`wan`), replacing the point's earlier
    ones; spooled like every other point while InfluxDB does not answer."""
    from femdc_bench.metrics.names import WAN

    now = time.time_ns()
    with spooling_writer(run, target, _point_tags(exp, point)) as (client, w):
        _delete_before_store(run, client, point, (WAN,), "wan points")
        for p in chk.pairs:
            fields: dict[str, Any] = {"target_ms": p.expected_ms, "loss_pct": p.loss_pct,
                                      "tolerance_ms": p.tolerance_ms, "ok": int(p.ok)}
            if p.measured_ms is not None:
                fields["rtt_ms"] = p.measured_ms
            if p.p95_ms is not None:
                fields["rtt_p95_ms"] = p.p95_ms
            w.write(WAN, {"run": run.id, "experiment": exp.name, "point": point,
                          "site": p.src_site, "target_site": p.dst_site}, fields, now)


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
                wan_apply.apply(plan_wan(wan, self.inv), emulator=_emulator(
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

        with spooling_writer(self.run, target, _point_tags(self.exp, self.point)) as (_, w):
            for ts, kind, site, phase, label, step_s in self.events:
                w.write(EVENT, {"run": self.run.id, "experiment": self.exp.name,
                                "point": self.point, "kind": kind, "site": site,
                                "phase": phase, "fault": label},
                        {"active": int(phase == "start"), "step_s": float(step_s),
                         "text": f"{label}: {phase} ({step_s:.1f} s to take effect)"}, ts)
        self.run.write_json(f"wan/{self.point}/events.json", self.events)


def store_events(run: Run, exp: Experiment, target: Any) -> int:
    """The run's events.jsonl (phases, WAN changes) as `event` points; idempotent (the
    same event is the same point). Fault events are stored by FaultInjector.store."""
    from femdc_bench.metrics.names import EVENT

    evs = run.events()
    with spooling_writer(run, target) as (_, w):
        for e in evs:
            tags = {"run": run.id, "experiment": exp.name, "kind": e["kind"],
                    "phase": e["phase"], "point": e.get("point"), "site": e.get("site")}
            fields = {"text": e["text"]}
            if isinstance(e.get("seconds"), int | float):
                fields["seconds"] = e["seconds"]
            w.write(EVENT, tags, fields, int(e["t"]))
    return len(evs)


def read_events(client: Any, run_id: str) -> list[dict[str, Any]]:
    from femdc_bench.metrics.names import EVENT

    rows = list(client.rows(EVENT, {"run": run_id}))
    return sorted(({"time": r.get("time"), "kind": r.get("kind"), "phase": r.get("phase"),
                    "point": r.get("point"), "site": r.get("site"), "fault": r.get("fault"),
                    "step_s": r.get("step_s"),
                    "text": r.get("text") or f"{r.get('kind')} {r.get('site')} {r.get('phase')}"}
                   for r in rows), key=lambda e: int(e["time"] or 0))


def interrupt(run: Run, *, keep: bool) -> None:
    """Ctrl-C: stop the agents, keep what they measured, tear down unless `keep`."""
    exp = run.experiment()
    point = run.state.current_point or "p0"
    ph = run.state.phases.get(f"bench@{point}")
    if ph and ph.status in ("running", "interrupted") and (run.dir / "inventory.json").exists():
        try:
            for w in stop_bench(run, run.inventory(), point):
                log.warning("after the interrupt: %s", w)
            target, _ = metrics_target(run, exp)
            store_samples(run, exp, target, point)
            store_metrics(run, exp, target, point)
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
    labels: dict[str, str] = field(default_factory=dict)  # point -> its parameters
    wan: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # point -> RTT pairs
    events: list[dict[str, Any]] = field(default_factory=list)  # in time order
    faults: list[dict[str, Any]] = field(default_factory=list)  # report.faults.attribute


def read_back(run: Run, exp: Experiment, *, events: bool = False
              ) -> tuple[dict[str, list[Sample]], list[Any], list[dict[str, Any]]]:
    """The run's samples by point, its `wan` rows and (`events`: after storing the run's
    events.jsonl) its events in time order, from its InfluxDB (a local one of a
    destroyed run is started for this and stopped again)."""
    from femdc_bench.metrics.client import connect
    from femdc_bench.metrics.names import WAN
    from femdc_bench.metrics.reader import InfluxReader
    from femdc_bench.metrics.server import LocalInfluxd

    target, started = metrics_target(run, exp)
    try:
        if events:
            store_events(run, exp, target)
        client = connect(target, create=False)
        try:
            return (InfluxReader(client).api_samples_by_point(run.id),
                    list(client.rows(WAN, {"run": run.id})),
                    read_events(client, run.id) if events else [])
        finally:
            client.close()
    finally:
        if started:  # a destroyed run: leave its InfluxDB as we found it
            LocalInfluxd(run.influx_dir()).stop()


def export_rally(run: Run, out: Path) -> dict[str, int]:
    """Write the run's results in Rally's task results layout (report/rally_export.py);
    returns counts (tasks, workloads, iterations)."""
    import json

    from femdc_bench.report.rally_export import rally_json

    exp = run.experiment()
    by_point, _, _ = read_back(run, exp)
    if not any(by_point.values()):
        raise RunError(f"no samples in InfluxDB for run {run.id}: nothing to export")
    doc = rally_json(run.id, exp, by_point, version=__version__)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)
    wls = [w for t in doc["tasks"] for st in t["subtasks"] for w in st["workloads"]]
    return {"tasks": len(doc["tasks"]), "workloads": len(wls),
            "iterations": sum(w["total_iteration_count"] for w in wls)}


def report(run: Run) -> Report:
    """Read the run's points back from InfluxDB; stats per (site, target, operation)."""
    from femdc_bench.report import faults as faults_report
    from femdc_bench.report.render import stats_json
    from femdc_bench.report.stats import (
        check_sla_spec,
        compute_stats_by_point,
        rally_sla_results,
        rally_sla_violations,
    )

    exp = run.experiment()
    with run.phase("report"):
        by_point, wan_rows, events = read_back(run, exp, events=True)
        rows = compute_stats_by_point(by_point)
        own = {sc.workload: sc.sla for sc in exp.workload.scenarios if sc.workload and sc.sla}
        sla_results = rally_sla_results(by_point, own)
        violations = check_sla_spec(rows, exp.workload.sla, own)
        violations += rally_sla_violations(sla_results)
        if not rows:
            violations = ["no samples in InfluxDB for this run"]
        doc = stats_json(rows, run=run.id, sla=exp.workload.sla, violations=violations)
        doc["sla_results"] = sla_results
        labels = {p.id: p.label() for p in exp.points}
        wan: dict[str, list[dict[str, Any]]] = {}
        for r in sorted(wan_rows, key=lambda r: (r["point"], r["site"], r["target_site"])):
            wan.setdefault(r["point"], []).append({
                "src_site": r["site"], "dst_site": r["target_site"],
                "target_ms": r.get("target_ms"), "measured_ms": r.get("rtt_ms"),
                "p95_ms": r.get("rtt_p95_ms"), "loss_pct": r.get("loss_pct"),
                "ok": bool(r.get("ok"))})
        doc["points"] = {p.id: {"params": p.params, "label": labels[p.id]} for p in exp.points}
        doc["wan"] = wan
        doc["events"] = events
        doc["faults"] = fault_rows = faults_report.attribute(
            by_point, faults_report.windows(events))
        run.write_json("report.json", doc)
        run.state.sla_ok = not violations
        run.state.sla_violations = violations
    run.save()
    return Report(rows=rows, doc=doc, violations=violations, labels=labels, wan=wan,
                  events=events, faults=fault_rows)


# ---------------------------------------------------------------------------- destroy


@dataclass
class DestroyReport:
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _cli_alive(pid: int | None) -> bool:
    """Whether `pid` is still a femdc-bench CLI (not a dead one's reused PID)."""
    if pid is None:
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"femdc" in cmd and b"\0" in cmd


def _orphans(run: Run) -> list[int]:
    """Controller processes a dead CLI of this run left behind: its ansible-playbook
    runs (their inventory is the run's) and their ssh clients (the run's control path).
    Not the run's InfluxDB, nor the sshds of its hosts."""
    needles = (f"{run.dir}/ansible/".encode(), str(control_dir(run.dir)).encode())
    mine, pid = set(), os.getpid()
    while pid > 1:  # this process and its ancestors (pytest, a shell)
        mine.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in mine:
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if any(n in cmd for n in needles):
                out.append(int(entry))
    return out


def recover(run: Run, progress: Progress = _noop) -> list[str]:
    """A run whose CLI died (kill -9, a crash, the OOM killer) left a phase `running` and
    maybe work going on: ansible-playbook and ssh on the controller, load agents and
    samplers on the hosts, faults in place. End all of it before the run goes on
    (`run --resume`) or away (`destroy`); the phase becomes `interrupted` (a later run
    does it again: each phase is idempotent, a bench replaces its point's samples).
    Returns what was done, one line each."""
    import signal

    stale = [n for n, ph in run.state.phases.items()
             if ph.status == "running" and not _cli_alive(ph.pid)]
    if not stale:
        return []
    done = [f"phase {', '.join(stale)} of a CLI that is gone: interrupted"]
    orphans = _orphans(run)
    if orphans:
        done.append(f"ended {len(orphans)} process(es) it left on this machine "
                    "(ansible-playbook, ssh)")
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while orphans and time.monotonic() < deadline:
        orphans = [p for p in orphans if Path(f"/proc/{p}").exists()
                   and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1][:3]]
        time.sleep(0.1)
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for name in stale:
        ph = run.state.phases[name]
        ph.status, ph.error = "interrupted", "its CLI died"
        run.event("phase", name, "interrupted (its CLI died)")
    run.state.status = "interrupted"
    run.save()
    benches = [n.split("@", 1)[1] for n in stale if n.startswith("bench@")]
    if benches and (run.dir / "inventory.json").exists():
        exp, inv = run.experiment(), run.inventory()
        for point in benches:
            progress(f"stopping the load of {point} left on the hosts")
            done += stop_bench(run, inv, point)
            done.append(f"stopped the load agents and samplers of {point}")
        if exp.workload.faults:
            progress("undoing the faults it may have left")
            done += _undo_faults(run, exp, inv)
    return done


def _undo_faults(run: Run, exp: Experiment, inv: Inventory) -> list[str]:
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


def destroy(run: Run, progress: Progress = _noop) -> DestroyReport:
    """Stop services, remove hosts, stop the local InfluxDB. Keeps results/<run>/."""
    report = DestroyReport()
    report.warnings += recover(run, progress)  # a CLI killed mid-phase: its leftovers first
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
            if any(name.startswith("emulate@") for name in run.state.phases):
                try:
                    remove_wan(run, progress)
                    report.removed.append("WAN emulation (qdiscs, iptables chains, daemons)")
                except AnsibleError as e:
                    report.warnings.append(f"WAN emulation not removed: {e}")
            if run.state.phases.get("deploy") and exp.metrics.grafana is not None:
                from femdc_bench.grafana import service as grafana

                try:
                    grafana.destroy(exp, inv, run_id=run.id, run_dir=run.dir,
                                    log=run.log("destroy"))
                    report.removed.append(f"Grafana on {exp.metrics.grafana.host}")
                except AnsibleError as e:
                    report.warnings.append(f"Grafana not removed: {e}")
            if run.state.phases.get("deploy"):
                progress("stopping the bench daemons")
                report.warnings += stop_bench(run, inv, daemon=True)
                progress("stopping services on hosts")
                try:
                    _destroy_deployment(run, exp, inv)
                    report.removed.append("OpenStack services and their data on every host")
                except AnsibleError as e:
                    # Hosts are namespaces we own: removing them below ends what is left.
                    report.warnings.append(str(e))
        progress("removing hosts")
        report.removed += provider.destroy()
        if n := close_connections(run.dir):
            report.removed.append(f"{n} SSH master connection(s)")
        removed_influx = stop_local_influx(run)
        if removed_influx:
            report.removed.append(removed_influx)
        run.state.status = "destroyed"
    run.save()
    return report


def _destroy_deployment(run: Run, exp: Experiment, inv: Inventory) -> None:
    _method(exp.deployment.method).destroy(exp, inv, run_id=run.id, run_dir=run.dir,
                                           log=run.log("destroy"))


def stop_local_influx(run: Run) -> str | None:
    from femdc_bench.metrics.server import LocalInfluxd

    d = run.influx_dir()
    if not d.exists():
        return None
    influxd = LocalInfluxd(d)
    if influxd.is_running():
        influxd.stop()
        return f"influxd (data kept in {d})"
    return None


# ---------------------------------------------------------------------------- backup


def backup(run: Run, out: Path | None = None, progress: Progress = _noop) -> Any:
    """One archive of the run (femdc_bench/backup.py): its InfluxDB points as line
    protocol (after the spool and the events are written), its files, host logs and
    configuration, secrets redacted, with a checksum manifest."""
    from femdc_bench import backup as bk
    from femdc_bench.metrics.client import connect
    from femdc_bench.metrics.lineproto import run_lines
    from femdc_bench.metrics.server import LocalInfluxd
    from femdc_bench.metrics.writer import InfluxWriter

    exp = run.experiment()
    dest = out or run.dir / "backup" / f"{run.id}.backup.tar.gz"
    with run.phase("backup"):
        target, started = metrics_target(run, exp)
        try:
            spool = spool_file(run)
            with connect(target) as client:
                if spool.exists() and spool.stat().st_size:
                    with InfluxWriter(client, spool_path=spool) as w:
                        w.replay_spool()
            store_events(run, exp, target)
            hold_for_test(run, "backup")
            progress("reading the run's points")
            with connect(target, create=False) as client:
                res = bk.write_archive(run.dir, run.id, run_lines(client, run.id), dest)
        finally:
            if started:
                LocalInfluxd(run.influx_dir()).stop()
    run.update_manifest(backup={"path": str(dest), "points": res.points, "files": res.files})
    return res


def restore(archive: Path, results: Path, influx_url: str | None = None,
            database: str = "femdc", progress: Progress = _noop, *,
            org: str | None = None, token: str | None = None) -> tuple[Run, dict[str, int]]:
    """A backup into `results/<run>/` and its points into `influx_url` (or the restored
    run's own local InfluxDB, which `report` then reads): 1.x into `database`, 2.x into
    the bucket of that name in `org` with `token`. Returns the run and the points per
    measurement read back from the server, which must equal the archive's."""
    import json as _json

    from femdc_bench import backup as bk
    from femdc_bench.metrics.client import InfluxTarget, connect
    from femdc_bench.metrics.lineproto import point_counts
    from femdc_bench.metrics.server import LocalInfluxd

    opened = bk.open_archive(archive)
    dest = results / opened.run_id
    bk.extract_files(opened, dest)
    st = dest / "state.json"
    state = _json.loads(st.read_text())
    state["status"] = "destroyed"  # no host of it exists here
    state["metrics_url"] = None
    st.write_text(_json.dumps(state, indent=2))
    run = Run.open(str(dest))
    run.update_manifest(restored_from={"archive": str(archive), "at": time.time()})
    influxd = None
    if influx_url is None:
        influxd = LocalInfluxd(run.influx_dir())
        influx_url = influxd.start()
    target = InfluxTarget(url=influx_url, database=database, org=org, token=token)
    try:
        lines = bk.influx_lines(opened)
        progress(f"writing {len(lines)} points")
        with connect(target) as client:
            for i in range(0, len(lines), 5000):
                client.write_lines(lines[i:i + 5000])
        with connect(target, create=False) as client:
            counts = point_counts(client, opened.run_id)
    finally:
        if influxd is not None:
            influxd.stop()
    if counts != opened.meta.get("points", {}):
        raise RunError(f"restored points differ from the archive's: {counts} != "
                       f"{opened.meta.get('points')}")
    return run, counts
