"""The run directory: the one place that knows its layout, and the run's state.

results/<run-id>/
  experiment.yaml      copy of the experiment file as run (tasks/: its Rally task, same name;
                       experiment.<time>.yaml + tasks/<time>/: what `bench --task` replaced)
  state.json           phases (status, start, seconds, error), overall status
  manifest.json        versions: femdc-bench, OpenStack packages, MariaDB, InfluxDB, kernel
  inventory.json       hosts (provider output)
  clouds.json          per-site clouds (deploy output); clouds.yaml (0600) for openstack CLI
  secrets.json         generated passwords (0600, never printed)
  logs/<phase>.log     ansible output per phase; logs/femdc-bench.log; logs/hosts/<alias>/
  samples/<point>/<alias>.jsonl raw per-iteration samples fetched from load hosts
  wan/<point>/         plan.json, ping-<alias>.txt, check.json (RTT matrix), events.json
  influxdb/            the local InfluxDB's data (kept after destroy)
  report.json          the last report
  provider/, ssh/      provider state (sshd configs, run key)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from femdc_bench import experiment as experiment_mod
from femdc_bench.ansible import PROJECT_ROOT
from femdc_bench.model import Cloud, Clouds, Experiment, Host, Inventory

RESULTS = Path(os.environ.get("FEMDC_RESULTS", PROJECT_ROOT / "results"))
PHASES = ("up", "deploy", "bench", "report", "destroy")


class RunError(RuntimeError):
    pass


@dataclass
class PhaseState:
    status: str = "pending"  # pending | running | done | failed | interrupted
    started: float | None = None
    seconds: float | None = None
    error: str | None = None
    pid: int | None = None  # the CLI running it: a `running` phase whose CLI died is stale


@dataclass
class RunState:
    run_id: str
    experiment: str
    experiment_file: str
    created: float
    status: str = "created"  # created | running | done | failed | interrupted | destroyed
    phases: dict[str, PhaseState] = field(default_factory=dict)
    sla_ok: bool | None = None
    sla_violations: list[str] = field(default_factory=list)
    metrics_url: str | None = None
    wan_point: str | None = None  # the sweep point whose WAN is applied on the hosts
    wan_plan_sha: str | None = None  # sha256 of that point's plan as applied
    # +1 whenever something changes the rules on the hosts (apply, remove, a fault)
    wan_generation: int = 0
    # the last passing check: {"point", "generation", "at"} (reused while nothing changed)
    wan_checked: dict[str, Any] | None = None
    current_point: str | None = None  # the point whose load runs (or ran last)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunState:
        d = json.loads(text)
        d["phases"] = {k: PhaseState(**v) for k, v in d.get("phases", {}).items()}
        return cls(**d)

    def phase_times(self) -> str:
        """One line of where the run's time went, phases in the order they ran:
        `up 12.3 s, deploy 180.0 s, emulate@p1 32.1 s, ...; 295.4 s in all` ("" before
        any phase has ended). A phase that did not end well says so."""
        ran = sorted(((ph.started or 0.0, name, ph) for name, ph in self.phases.items()
                      if ph.seconds is not None), key=lambda t: t[0])
        if not ran:
            return ""
        parts = [f"{name} {ph.seconds:.1f} s" + ("" if ph.status == "done" else f" ({ph.status})")
                 for _, name, ph in ran]
        return ", ".join(parts) + f"; {sum(ph.seconds or 0.0 for _, _, ph in ran):.1f} s in all"


def new_run_id(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _claim_run_dir(results: Path, run_id: str | None, name: str) -> Path:
    """Create the run's directory, atomically: an id asked for must be new; a generated
    one (`<name>-<time>`) takes a suffix (-2, -3, ...) when another run of the same
    experiment started in the same second (two runs at once on one machine)."""
    results.mkdir(parents=True, exist_ok=True)
    if run_id:
        try:
            (results / run_id).mkdir()
        except FileExistsError:
            raise RunError(f"run directory {results / run_id} already exists") from None
        return results / run_id
    base = new_run_id(name)
    for n in range(1, 1000):
        path = results / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"no free run directory for {base} in {results}")


class Run:
    def __init__(self, path: Path) -> None:
        self.dir = path
        self.id = path.name
        self.state = RunState.from_json((path / "state.json").read_text())
        self._experiment: tuple[bytes, Experiment] | None = None

    # ------------------------------------------------------------ create / open
    @classmethod
    def create(cls, exp_file: Path, results: Path = RESULTS, run_id: str | None = None) -> Run:
        exp = experiment_mod.load(exp_file)  # validate before creating anything
        path = _claim_run_dir(results, run_id, exp.name)
        run_id = path.name
        (path / "logs").mkdir()
        _copy_experiment(Path(exp_file), path)
        # the scenario names the load above imported, kept for the run's commands
        experiment_mod.scenario_table(path / "tmp" / "experiment.schema-passed")
        state = RunState(run_id=run_id, experiment=exp.name,
                         experiment_file=str(Path(exp_file).resolve()), created=time.time())
        (path / "state.json").write_text(state.to_json())
        return cls(path)

    @classmethod
    def open(cls, ref: str, results: Path = RESULTS) -> Run:
        """A run by id, by path, or 'last' (the newest in results/)."""
        if ref == "last":
            runs = list_runs(results)
            if not runs:
                raise RunError(f"no runs in {results}")
            return runs[-1]
        path = Path(ref)
        if not (path / "state.json").exists():
            path = results / ref
        if not (path / "state.json").exists():
            raise RunError(f"no run {ref!r} (looked for {path}/state.json)")
        return cls(path)

    # ------------------------------------------------------------ state
    def save(self) -> None:
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(self.state.to_json())
        tmp.replace(self.dir / "state.json")

    def experiment(self) -> Experiment:
        """The run's experiment. A command asks for it several times (bench: 4 times
        before the load starts): read and checked once per content of experiment.yaml
        (its bytes compared, not its time stamps) and kept by this Run. Not kept when it
        names a Rally task: the task file is read again each time, as it always was.
        tmp/experiment.schema-passed: the document that last passed the schema check
        (experiment.parse), so that the next commands skip that check, not the rules."""
        path = self.dir / "experiment.yaml"
        try:
            data = path.read_bytes()
        except OSError:
            data = None  # load() reports it as usual
        if data is not None and self._experiment is not None and self._experiment[0] == data:
            return self._experiment[1]
        exp = experiment_mod.load(path, passed=self.dir / "tmp" / "experiment.schema-passed")
        task = (exp.raw.get("workload") or {}).get("rally_task")
        self._experiment = (data, exp) if data is not None and not task else None
        return exp

    def use_task(self, task_file: Path, task_args: dict[str, Any]) -> Experiment:
        """Make a Rally task file (and its args) the run's workload, as `bench --task`
        does. The task is validated against the run's experiment first (an error leaves
        the run as it was); the previous experiment.yaml is kept as
        experiment.<time>.yaml (with its task, if any), so the run keeps its history."""
        import yaml

        doc = yaml.safe_load((self.dir / "experiment.yaml").read_text())
        old = doc.get("workload") or {}
        doc["workload"] = {"rally_task": str(task_file.resolve()), "task_args": task_args,
                           **{k: old[k] for k in ("faults", "sla") if k in old}}
        tmp = self.dir / "tmp"
        tmp.mkdir(exist_ok=True)
        candidate = tmp / "experiment.task.yaml"
        candidate.write_text(yaml.safe_dump(doc, sort_keys=False))
        # ExperimentError names the task file; FILE is the user's own command-line choice
        exp = experiment_mod.load(candidate, task_anywhere=True)
        stamp = base = time.strftime("%Y%m%d-%H%M%S")
        n = 1
        while (self.dir / f"experiment.{stamp}.yaml").exists():  # twice in one second
            n += 1
            stamp = f"{base}-{n}"
        prev = self.dir / f"experiment.{stamp}.yaml"
        os.replace(self.dir / "experiment.yaml", prev)
        if old.get("rally_task"):  # its task file goes along, under the same name
            src = self.dir / old["rally_task"]
            kept = f"tasks/{stamp}/{src.name}"
            (self.dir / "tasks" / stamp).mkdir(parents=True, exist_ok=True)
            os.replace(src, self.dir / kept)
            prev_doc = yaml.safe_load(prev.read_text())
            prev_doc["workload"]["rally_task"] = kept
            prev.write_text(yaml.safe_dump(prev_doc, sort_keys=False))
        _copy_experiment(candidate, self.dir)
        candidate.unlink()
        return exp

    def log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    @contextmanager
    def phase(self, name: str):  # type: ignore[no-untyped-def]
        ph = PhaseState(status="running", started=time.time(), pid=os.getpid())
        self.state.phases[name] = ph
        if name in ("up", "deploy", "bench"):
            self.state.status = "running"
        self.save()
        self.event("phase", name, "start")
        t0 = time.monotonic()
        logging.getLogger("femdc_bench").info("phase %s: start", name)
        try:
            yield ph
        except KeyboardInterrupt:
            ph.status, ph.error = "interrupted", "interrupted by the user"
            raise
        except BaseException as e:
            ph.status, ph.error = "failed", str(e).splitlines()[0] if str(e) else repr(e)
            self.state.status = "failed"
            raise
        else:
            ph.status = "done"
            if name == "report" and self.state.status == "running":
                self.state.status = "done"
        finally:
            ph.seconds = round(time.monotonic() - t0, 3)
            self.event("phase", name, ph.status, seconds=ph.seconds)
            logging.getLogger("femdc_bench").info("phase %s: %s in %.1fs", name, ph.status,
                                                  ph.seconds)
            self.save()

    def event(self, kind: str, phase: str, text: str, *, site: str | None = None,
              **fields: Any) -> None:
        """Append one event (phase start/end, a WAN change, a fault) to events.jsonl;
        `run.store_events` writes them as `event` points. `phase` may name a point
        (`bench@p1`): the point becomes its own tag."""
        name, _, point = phase.partition("@")
        rec = {"t": time.time_ns(), "kind": kind, "phase": name, "text": text,
               **({"point": point} if point else {}), **({"site": site} if site else {}),
               **fields}
        with (self.dir / "events.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec, separators=(",", ":"), default=str) + "\n")

    def events(self) -> list[dict[str, Any]]:
        return sorted(read_jsonl(self.dir / "events.jsonl"), key=lambda e: e.get("t", 0))

    def done(self, name: str) -> bool:
        ph = self.state.phases.get(name)
        return bool(ph and ph.status == "done")

    # ------------------------------------------------------------ phase outputs
    def write_json(self, name: str, data: Any) -> None:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, default=str))

    def read_json(self, name: str) -> Any:
        p = self.dir / name
        if not p.exists():
            raise RunError(f"{p} is missing: run the phase that makes it first")
        return json.loads(p.read_text())

    def save_inventory(self, inv: Inventory) -> None:
        self.write_json("inventory.json", asdict(inv))

    def inventory(self) -> Inventory:
        d = self.read_json("inventory.json")
        hosts = tuple(Host(**{**h, "roles": tuple(h["roles"])}) for h in d["hosts"])
        return Inventory(provider=d["provider"], hosts=hosts,
                         shared_filesystem=d["shared_filesystem"])

    def save_clouds(self, clouds: Clouds) -> None:
        self.write_json("clouds.json", asdict(clouds))

    def clouds(self) -> Clouds:
        d = self.read_json("clouds.json")
        return Clouds(**{**d, "clouds": tuple(
            Cloud(**{**c, "services": tuple(c.get("services", ("keystone",)))})
            for c in d["clouds"])})

    def update_manifest(self, **entries: Any) -> None:
        p = self.dir / "manifest.json"
        data = json.loads(p.read_text()) if p.exists() else {}
        for k, v in entries.items():
            if isinstance(v, dict) and isinstance(data.get(k), dict):
                data[k].update(v)
            else:
                data[k] = v
        p.write_text(json.dumps(data, indent=2, default=str))

    def metrics_dir(self, point: str) -> Path:
        """The hosts' sampler records of a point (metrics/sampler.py), one file a host."""
        d = self.dir / "metrics" / point
        d.mkdir(parents=True, exist_ok=True)
        return d

    def samples_dir(self, point: str) -> Path:
        d = self.dir / "samples" / point
        d.mkdir(parents=True, exist_ok=True)
        return d

    def influx_dir(self) -> Path:
        return self.dir / "influxdb"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file of ours (events, sampler records); a line
    that does not parse (the torn last line of a crash) is skipped; no file, no records."""
    out = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def list_runs(results: Path = RESULTS) -> list[Run]:
    if not results.exists():
        return []
    runs = [Run(p) for p in results.iterdir() if (p / "state.json").exists()]
    return sorted(runs, key=lambda r: r.state.created)


def _copy_experiment(exp_file: Path, run_dir: Path) -> None:
    """experiment.yaml as given; with a Rally task, the task file is copied into
    `tasks/` (same name) and the copy names that one, so the run stands on its own."""
    import yaml

    doc = yaml.safe_load(exp_file.read_text())
    task = (doc.get("workload") or {}).get("rally_task") if isinstance(doc, dict) else None
    if not task:
        shutil.copyfile(exp_file, run_dir / "experiment.yaml")
        return
    src = Path(task) if Path(task).is_absolute() else exp_file.parent / task
    dest = f"tasks/{src.name}"  # its name is in the workload ids (`workload` tag)
    (run_dir / "tasks").mkdir(exist_ok=True)
    shutil.copyfile(src, run_dir / dest)
    doc["workload"]["rally_task"] = dest
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


log = logging.getLogger("femdc_bench")


Progress = Callable[[str], None]


def noop(_: str) -> None:
    pass


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


def run_tag(run: Run) -> str:
    """Short id of the run: names of what it creates on hosts (tc handles, chains, users)."""
    from femdc_bench.providers.local import short_id

    return short_id(run.id)

