"""The run's InfluxDB: checked before a run exists, started for the run (`influxdb:
local`), stopped at teardown."""

from __future__ import annotations

from typing import Any

from femdc_bench.experiment import ExperimentError
from femdc_bench.model import Experiment
from femdc_bench.rundir import Run


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

