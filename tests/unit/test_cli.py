"""cli.py's exit codes: 2 only for bad input (an experiment file, a run reference, an
archive that is not one), 1 for every failure, and an unexpected exception as one line
naming the log file that holds its traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from femdc_bench import cli
from femdc_bench.ansible import AnsibleError
from femdc_bench.backup import BackupError, RestoreMismatch
from femdc_bench.experiment import ExperimentError
from femdc_bench.metrics.client import InfluxUnavailable
from femdc_bench.providers.local import ProviderError
from femdc_bench.report.assemble import ExportError
from femdc_bench.rundir import Run, RunError
from femdc_bench.wan.state import WanCheckError
from tests.one_host import one_host_experiment


@pytest.mark.parametrize(("error", "line", "code"), [
    (ExperimentError("x.yaml", "sites[0].name", "expected a name"),
     "x.yaml: sites[0].name: expected a name", 2),
    (RunError("no run 'nope' in results"), "no run 'nope' in results", 2),
    (BackupError("a.tar.gz: not a backup"), "a.tar.gz: not a backup", 2),
    (RestoreMismatch("restored points differ"), "restored points differ", 1),
    (ExportError("no samples in InfluxDB for run r: nothing to export"),
     "no samples in InfluxDB for run r: nothing to export", 1),
    (InfluxUnavailable("connection refused"), "InfluxDB: connection refused", 1),
    (ProviderError("ssh-keygen for k exited 1: disk full"),
     "ssh-keygen for k exited 1: disk full", 1),
    (WanCheckError("WAN at p0 is off target"), "WAN at p0 is off target", 1),
    (KeyError("boom"), "KeyError: 'boom'", 1),
    (RuntimeError("plain"), "RuntimeError: plain", 1),
])
def test_each_error_has_its_line_and_code(error: Exception, line: str, code: int) -> None:
    assert cli.exit_code_for(error) == (line, code)


def test_an_ansible_failure_is_a_failure_not_bad_input() -> None:
    e = AnsibleError("deploy.yml", Path("/r/logs/deploy.log"), "core-ctl unreachable")
    assert cli.exit_code_for(e) == (
        "deploy.yml failed: core-ctl unreachable (full log: /r/logs/deploy.log)", 1)


def _results(tmp_path: Path) -> tuple[Path, Run]:
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(one_host_experiment({"influxdb": "local"})))
    results = tmp_path / "results"
    return results, Run.create(f, results, run_id="r1")


def test_an_unexpected_exception_is_one_line_naming_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results, run = _results(tmp_path)

    def broken(*a: object, **kw: object) -> None:
        raise TypeError("unsupported operand")

    monkeypatch.setattr("femdc_bench.report.assemble.report", broken)
    res = CliRunner().invoke(cli.main, ["--results", str(results), "report", "r1"])
    log = run.dir / "logs" / "femdc-bench.log"
    assert res.exit_code == 1
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert lines == [f"error: TypeError: unsupported operand (traceback in {log})"], res.output
    assert "Traceback" in log.read_text() and "unsupported operand" in log.read_text()


def test_with_no_run_open_the_traceback_goes_beside_the_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*a: object, **kw: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "load_experiment", broken)
    f = tmp_path / "exp.yaml"
    f.write_text("{}")
    res = CliRunner().invoke(cli.main, ["--results", str(tmp_path / "res"), "validate", str(f)])
    assert res.exit_code == 1
    log = tmp_path / "res" / "femdc-bench.log"
    assert f"(traceback in {log})" in res.output
    assert "ZeroDivisionError" in log.read_text()


def test_bad_input_exits_2(tmp_path: Path) -> None:
    results, _ = _results(tmp_path)
    res = CliRunner().invoke(cli.main, ["--results", str(results), "report", "nope"])
    assert res.exit_code == 2 and "traceback" not in res.output
    res = CliRunner().invoke(cli.main, ["--results", str(results), "bench", "r1",
                                        "--point", "p9"])
    assert res.exit_code == 2 and "no sweep point 'p9'" in res.output


def test_up_without_dry_run_creates_the_run(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`up` goes up (a dry run only with --dry-run): the run directory is made and the
    pipeline's up is called with it."""
    from femdc_bench import run as pipeline
    from femdc_bench.model import Inventory

    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(one_host_experiment({"influxdb": "local"})))
    called: list[str] = []
    monkeypatch.setattr(pipeline, "up", lambda run, progress: called.append(run.id)
                        or Inventory(provider="local", hosts=()))
    res = CliRunner().invoke(cli.main, ["--results", str(tmp_path / "res"), "up", str(f),
                                        "--run-id", "u1"])
    assert res.exit_code == 0, res.output
    assert called == ["u1"] and (tmp_path / "res" / "u1" / "state.json").exists()
    res = CliRunner().invoke(cli.main, ["up", str(f), "--dry-run"])
    assert res.exit_code == 0 and "dry run: nothing reserved" in res.output
