"""`run` with a remote InfluxDB that does not answer: one line naming the experiment's
key, exit 2, and no run created (checked before `up`, not after minutes of deploy)."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml
from click.testing import CliRunner

from femdc_bench.cli import main
from tests.one_host import one_host_experiment

EXP = one_host_experiment()

def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_influxdb_stops_run_before_anything(tmp_path: Path) -> None:
    f = tmp_path / "exp.yaml"
    url = f"http://127.0.0.1:{_closed_port()}"
    f.write_text(yaml.safe_dump({**EXP, "metrics": {"influxdb": {"url": url}}}))
    results = tmp_path / "results"
    res = CliRunner().invoke(main, ["--results", str(results), "run", str(f),
                                    "--run-id", "r1"])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {f}: metrics.influxdb: expected an InfluxDB that answers"), lines
    assert url in lines[0]
    assert not (results / "r1").exists()
