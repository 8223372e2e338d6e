"""What `femdc-bench bench RUN` loads before its first phase (issue 7, item 8: the first
iteration < 1 s after `bench` starts). influxdb_client (~130 ms to import; needed only
to store what the load recorded), cryptography (deploy.tls), EnOSlib, ansible-core and
Jinja2 are not needed before the load starts: a fresh interpreter shows they are not
imported. Not a timing test. (requests is: the bench clears InfluxDB before the load.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from femdc_bench.experiment import ExperimentError
from femdc_bench.rundir import Run
from tests.one_host import one_host_experiment

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("influxdb_client", "reactivex", "cryptography", "enoslib", "ansible", "jinja2",
         "femdc_bench.deploy.tls", "femdc_bench.providers.testbeds", "keystoneauth1",
         "femdc_bench.workload.scenarios")


def _fresh(code: str, cwd: Path = REPO) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after `code` (which prints nothing)."""
    probe = (f"{code}\nimport json, os, sys\n"
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
             "sys.stdout.flush(); os._exit(0)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       cwd=cwd, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    return list(json.loads(p.stdout.strip().splitlines()[-1]))


def test_cli_run_and_metrics_modules_import_nothing_heavy() -> None:
    assert _fresh("import femdc_bench.cli, femdc_bench.run, femdc_bench.rundir, "
                  "femdc_bench.metrics.client, femdc_bench.metrics.writer, "
                  "femdc_bench.metrics.server, femdc_bench.bench.controller, "
                  "femdc_bench.bench.hosts, femdc_bench.teardown, femdc_bench.recovery, "
                  "femdc_bench.backup, femdc_bench.report.assemble") == []


def test_the_probe_sees_a_heavy_import() -> None:
    # deploy.tls needs cryptography: the probe must see it
    assert "cryptography" in _fresh("import femdc_bench.deploy.tls")
    # the scenarios need keystoneauth1 (the experiment's schema check imports them)
    assert "keystoneauth1" in _fresh("from femdc_bench.experiment import SCHEMA")
    assert "influxdb_client" in _fresh("from femdc_bench.metrics.writer import to_line\n"
                                       "to_line('m', {}, {'f': 1}, 1)")


def test_bench_reaches_its_first_phase_without_heavy_imports(tmp_path: Path) -> None:
    """The whole command up to the emulate phase (click, the run opened, the experiment
    read, the error handlers set up), with `emulate` stopped before it touches a host."""
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(one_host_experiment({"influxdb": "local"})))
    results = tmp_path / "results"
    Run.create(f, results, run_id="r1")
    code = ("import json, os, sys\n"
            "import femdc_bench.wan.state as wan_state\n"
            "def stop(*a, **k):\n"
            f"    print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
            "    sys.stdout.flush(); os._exit(0)\n"
            "wan_state.emulate = stop\n"
            "from femdc_bench.cli import main\n"
            f"main(['--results', {str(results)!r}, 'bench', 'r1', '--point', 'p0'])\n"
            "os._exit(3)  # not reached: emulate stops the command")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == []


def test_the_experiment_is_read_once_per_content(tmp_path: Path) -> None:
    f = tmp_path / "exp.yaml"
    doc = one_host_experiment()
    f.write_text(yaml.safe_dump(doc))
    r = Run.create(f, tmp_path / "results", run_id="r1")
    first = r.experiment()
    assert r.experiment() is first
    # a rewrite is seen even when it keeps the size and the time stamps
    path = r.dir / "experiment.yaml"
    st = path.stat()
    text = path.read_text()
    path.write_text(text.replace("times: 2", "times: 3"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = r.experiment()
    assert second is not first
    assert second.workload.scenarios[0].runner.times == 3
    assert r.experiment() is second


def test_an_experiment_naming_a_rally_task_is_read_each_time(tmp_path: Path) -> None:
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(one_host_experiment()))
    r = Run.create(f, tmp_path / "results", run_id="r1")
    task = ("version: 2\nsubtasks:\n- title: u\n  scenario: {KeystoneBasic.create_user: {}}\n"
            "  runner: {constant: {times: 4}}\n")
    (tmp_path / "task.yaml").write_text(task)
    r.use_task(tmp_path / "task.yaml", {})
    assert r.experiment().workload.scenarios[0].runner.times == 4
    (r.dir / "tasks" / "task.yaml").write_text(task.replace("times: 4", "times: 5"))
    assert r.experiment().workload.scenarios[0].runner.times == 5


def test_a_run_checks_its_unchanged_experiment_against_the_schema_once(tmp_path: Path) -> None:
    """The schema check (jsonschema: ~50 ms to import) of the run's own experiment is
    skipped when the same document passed it before, under the same schema."""
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(one_host_experiment()))
    results = tmp_path / "results"
    r = Run.create(f, results, run_id="r1")
    read = (f"from femdc_bench.rundir import Run\n"
            f"Run.open('r1', __import__('pathlib').Path({str(results)!r})).experiment()")
    probe = read + "\nimport sys; print('jsonschema' in sys.modules)\n"

    def fresh() -> bool:
        p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip() == "True"

    assert fresh()  # the first command checks it
    assert not fresh()  # the next ones know it passed
    # another document is checked again, and a bad one still fails
    path = r.dir / "experiment.yaml"
    path.write_text(path.read_text().replace("times: 2", "times: 3"))
    assert fresh()
    assert not fresh()
    path.write_text(path.read_text().replace("times: 3", "times: '3'"))
    with pytest.raises(ExperimentError, match="workload.scenarios\\[0\\].runner.times"):
        Run.open("r1", results).experiment()


def test_the_schema_key_tells_types_and_schemas_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    from femdc_bench import experiment

    doc = one_host_experiment()
    key = experiment.schema_key(doc)
    assert key == experiment.schema_key(one_host_experiment())
    times = doc["workload"]["scenarios"][0]["runner"]
    for other in ("2", 2.0, True):
        times["times"] = other
        assert experiment.schema_key(doc) != key
    times["times"] = 2
    assert experiment.schema_key(doc) == key
    monkeypatch.setattr(experiment.schema, "SCHEMA", {**experiment.schema.SCHEMA,
                                                      "x-changed": 1})
    assert experiment.schema_key(doc) != key
