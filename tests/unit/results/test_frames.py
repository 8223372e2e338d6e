"""femdc_bench.results.load: a run as DataFrames, from its InfluxDB and from its files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from femdc_bench.metrics.server import LocalInfluxd
from femdc_bench.metrics.store import read_samples
from femdc_bench.report.stats import compute_stats_by_point
from femdc_bench.results import load
from femdc_bench.results.frames import param_columns
from femdc_bench.workload.percentile import percentile
from tests.synthetic_run import ACTIONS, N_ITER, POINTS, SITES, store_in_influx, synthetic_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return synthetic_run(tmp_path_factory.mktemp("frames") / "results")


def test_one_percentile_definition_is_pandas_default_linear_quantile() -> None:
    """Rally's linear interpolation (workload.percentile.percentile) is numpy's and pandas'
    default quantile: the HTML report and the exports may use either."""
    rng = random.Random(3)
    for n in (1, 2, 3, 7, 100, 1001):
        xs = [rng.lognormvariate(2, 1) for _ in range(n)]
        for p in (0, 1, 50, 90, 95, 99, 99.9, 100):
            ours = percentile(xs, p)
            assert ours == pytest.approx(float(np.percentile(xs, p)), rel=1e-12, abs=1e-12)
            assert ours == pytest.approx(float(pd.Series(xs).quantile(p / 100)),
                                         rel=1e-12, abs=1e-12)


def test_param_columns_name_the_unit() -> None:
    assert param_columns("wan.default.delay", "50ms") == ("wan.default.delay_ms", 50.0)
    assert param_columns("wan.default.delay", "1.5s") == ("wan.default.delay_ms", 1500.0)
    assert param_columns("wan.default.rate", "10mbit") == ("wan.default.rate_kbit", 10000.0)
    assert param_columns("wan.default.loss", "0.5%") == ("wan.default.loss_pct", 0.5)
    assert param_columns("wan.links", "star") == ("wan.links", "star")


def test_files_give_every_iteration_action_and_tag(run) -> None:  # type: ignore[no-untyped-def]
    f = load(run, source="files")
    assert f.source == "files"
    assert f.params == ["wan.default.delay_ms"]
    n_it = len(POINTS) * len(SITES) * N_ITER
    assert len(f.iterations) == n_it
    assert len(f.actions) == n_it * len(ACTIONS)
    assert set(f.actions.action) == set(ACTIONS)
    assert (f.iterations.action == "").all()
    for col in ("run", "experiment", "point", "point_label", "wan.default.delay_ms", "site",
                "host", "target_site", "region", "service", "operation", "workload",
                "status", "error", "duration_ms", "iteration", "t0"):
        assert col in f.iterations.columns, col
    assert str(f.iterations.t0.dtype) == "datetime64[ns, UTC]"
    assert f.iterations.groupby("point")["wan.default.delay_ms"].first().to_dict() == POINTS
    assert set(f.iterations.region) == {"core"}
    errors = f.iterations[f.iterations.status != "ok"]
    assert len(errors) > 0 and (errors.error != "").all()
    # the servers' samples, long: 5 measurements, 10 samples each per point
    assert set(f.servers.measurement) == {"proc", "host", "db", "mq", "tcp"}
    assert len(f.servers[(f.servers.field == "cpu_pct") & (f.servers.measurement == "proc")]
               ) == 10 * len(POINTS)
    assert set(f.wan.point) == set(POINTS) and len(f.wan) == len(POINTS) * 6
    assert {"phase", "partition"} <= set(f.events.kind)
    assert f.meta["manifest"]["packages"] == {"keystone": "30.0.0"}
    assert {h["site"] for h in f.meta["hosts"]} == set(SITES)


def test_frames_agree_with_the_report_statistics(run) -> None:  # type: ignore[no-untyped-def]
    """p50/p95 and counts from the frames (pandas' quantile over the ok iterations) are
    the text report's, cell by cell."""
    f = load(run, source="files")
    rows = compute_stats_by_point({p: read_samples(run, p) for p in POINTS})
    ok = f.iterations[f.iterations.status == "ok"]
    q = ok.groupby(["point", "site"]).duration_ms.quantile([0.5, 0.95]).unstack()
    n = f.iterations.groupby(["point", "site"]).size()
    checked = 0
    for r in rows:
        if r.action:
            continue
        assert n[(r.point, r.site)] == r.count
        assert q.loc[(r.point, r.site), 0.5] == pytest.approx(r.p50_ms)
        assert q.loc[(r.point, r.site), 0.95] == pytest.approx(r.p95_ms)
        checked += 1
    assert checked == len(POINTS) * len(SITES)


def test_influxdb_and_files_give_the_same_frames(tmp_path: Path) -> None:
    """The same run read from its (real, local) InfluxDB and from its files."""
    r = synthetic_run(tmp_path / "results", n_iter=20)
    try:
        store_in_influx(r)
        a = load(r.id, results=tmp_path / "results", source="influxdb")
        b = load(r.id, results=tmp_path / "results", source="files")
    finally:
        LocalInfluxd(r.influx_dir()).stop()
    assert a.source == "influxdb"
    for name in ("iterations", "actions", "wan"):
        x, y = getattr(a, name), getattr(b, name)
        assert list(x.columns) == list(y.columns), name
        key = [c for c in ("point", "site", "target_site", "action", "t0") if c in x]
        pd.testing.assert_frame_equal(x.sort_values(key).reset_index(drop=True),
                                      y.sort_values(key).reset_index(drop=True),
                                      check_dtype=False, obj=name)
    key = ["point", "measurement", "host", "service", "peer_site", "field", "time"]
    pd.testing.assert_frame_equal(a.servers.sort_values(key).reset_index(drop=True),
                                  b.servers.sort_values(key).reset_index(drop=True))
    assert (a.events.groupby("kind").size().to_dict()
            == b.events.groupby("kind").size().to_dict())


def test_auto_falls_back_to_the_files_when_influxdb_is_away(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = synthetic_run(tmp_path / "results", n_iter=3)
    from femdc_bench.metrics import server

    # no influxd binary: the run's local InfluxDB cannot start
    monkeypatch.setattr(server.LocalInfluxd, "start",
                        lambda self: (_ for _ in ()).throw(server.LocalInfluxdError("gone")))
    f = load(r, source="auto")
    assert f.source == "files" and len(f.iterations) == len(POINTS) * len(SITES) * 3
    with pytest.raises(server.LocalInfluxdError):
        load(r, source="influxdb")


def test_bad_source_is_refused(run) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="source must be one of"):
        load(run, source="csv")


def test_stats_rows_over_frames_are_the_reports(run) -> None:  # type: ignore[no-untyped-def]
    """results.stats.stats_rows (pandas, column-wise) gives the text report's StatsRows:
    same keys, same order, same figures."""
    from femdc_bench.results.stats import stats_rows

    want = compute_stats_by_point({p: read_samples(run, p) for p in POINTS})
    got = stats_rows(load(run, source="files"))
    assert [r.key for r in got] == [r.key for r in want]
    for a, b in zip(got, want, strict=True):
        da, db = a.to_dict(), b.to_dict()
        for k, v in db.items():
            if isinstance(v, float):
                assert da[k] == pytest.approx(v, rel=1e-9), (b.label, k)
            else:
                assert da[k] == v, (b.label, k)
