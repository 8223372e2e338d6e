"""femdc-bench export --format csv|parquet: every table, the counts of the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from femdc_bench.cli import main
from femdc_bench.metrics.server import LocalInfluxd
from femdc_bench.metrics.store import read_samples
from femdc_bench.report.stats import compute_stats_by_point
from femdc_bench.results import load
from femdc_bench.results.export import TABLES, export_tables
from tests.synthetic_run import ACTIONS, N_ITER, POINTS, SITES, synthetic_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return synthetic_run(tmp_path_factory.mktemp("export") / "results")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_every_table_with_the_reports_counts(run, fmt: str) -> None:  # type: ignore[no-untyped-def]
    frames = load(run, source="files")
    out = run.dir / f"x.{fmt}"
    counts = export_tables(frames, fmt, out)
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    tables = {t: read(out / f"{t}.{fmt}") for t in TABLES}
    assert {t: len(df) for t, df in tables.items()} == counts
    it = tables["iterations"]
    assert len(it) == len(POINTS) * len(SITES) * N_ITER
    assert len(tables["actions"]) == len(it) * len(ACTIONS)
    for col in ("run", "point", "wan.default.delay_ms", "site", "target_site", "region",
                "workload", "operation", "action", "status", "error", "t0"):
        assert col in it.columns
    # the same counts and errors per cell as the text report
    rows = [r for r in compute_stats_by_point({p: read_samples(run, p) for p in POINTS})
            if not r.action]
    got = it.groupby(["point", "site"]).agg(n=("status", "size"),
                                            err=("status", lambda s: (s != "ok").sum()))
    assert {(r.point, r.site): (r.count, r.errors) for r in rows} == {
        k: (int(v.n), int(v.err)) for k, v in got.iterrows()}
    assert set(tables["servers"].measurement) == {"proc", "host", "db", "mq", "tcp"}
    if fmt == "parquet":
        assert str(it.t0.dtype).startswith("datetime64") and str(it.t0.dt.tz) == "UTC"
    assert (out / "meta.json").exists() and not out.with_name(out.name + ".tmp").exists()


def test_export_verb(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The CLI: the run's InfluxDB has none of its points (never stored): the files are
    read, and said so."""
    out = tmp_path / "pq"
    try:
        res = CliRunner().invoke(main, ["--results", str(run.dir.parent), "export", run.id,
                                        "--format", "parquet", "--out", str(out)])
    finally:
        LocalInfluxd(run.influx_dir()).stop()
    assert res.exit_code == 0, res.output
    assert "from files" in res.output and f"iterations {len(POINTS) * len(SITES) * N_ITER}" \
        in res.output
    assert len(pd.read_parquet(out / "actions.parquet")) == len(POINTS) * len(SITES) * N_ITER * 2


def test_unknown_format_is_refused(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="format must be one of"):
        export_tables(load(run, source="files"), "xlsx", tmp_path / "x")
