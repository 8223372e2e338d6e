"""trends on synthetic series: a step in the fourth of five runs is found (and is a new
regression only while it is among the latest runs), a flat noisy series is not flagged."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from femdc_bench.results.trends import TrendRun, change_points, html_page, runs_from_rows, trends

T0 = pd.Timestamp("2026-12-01T02:00:00Z")


def run(i: int, medians: dict[tuple[str, str], float], *, seed: int, n: int = 60,
        errors: int = 0) -> TrendRun:
    rng = np.random.default_rng(seed)
    rows = []
    for (site, target), m in medians.items():
        for k, v in enumerate(m * np.exp(rng.normal(0, 0.08, n))):
            rows.append({"site": site, "target_site": target, "service": "identity",
                         "operation": "authenticate", "workload": "", "action": "",
                         "status": "error" if k < errors else "ok", "duration_ms": v,
                         "t0": T0 + pd.Timedelta(days=i, seconds=k)})
    return TrendRun(run=f"nightly-{i}", samples=pd.DataFrame(rows))


def test_step_in_fourth_of_five_is_found() -> None:
    runs = [run(i, {("edge1", "core"): 70.0 + (50.0 if i >= 3 else 0.0),
                    ("core", "core"): 20.0}, seed=i) for i in range(5)]
    doc = trends(runs[::-1], recent=2)  # given in any order: sorted by time
    assert [r["run"] for r in doc["runs"]] == [f"nightly-{i}" for i in range(5)]
    edge = next(c for c in doc["cells"] if c["site"] == "edge1")
    core = next(c for c in doc["cells"] if c["site"] == "core")
    p50 = [cp for cp in edge["change_points"] if cp["metric"] == "p50_ms"]
    assert [(cp["run"], cp["direction"]) for cp in p50] == [("nightly-3", "slower")]
    assert p50[0]["before"] == pytest.approx(70, rel=0.05)
    assert p50[0]["after"] == pytest.approx(120, rel=0.05)
    assert core["change_points"] == []
    assert {(r["run"], r["metric"]) for r in doc["regressions"]} >= {("nightly-3", "p50_ms")}
    assert all(r["label"].startswith("edge1->core") for r in doc["regressions"])
    # with only the latest run as new, the step at run 4 of 5 is marked but not new
    old = trends(runs, recent=1)
    assert old["regressions"] == []
    assert any(cp["run"] == "nightly-3" for c in old["cells"] for cp in c["change_points"])
    json.dumps(doc)


def test_flat_noisy_series_not_flagged() -> None:
    rng = np.random.default_rng(4)
    # 4 % noise: at most 2 % of flat series get a change point (Otava's t-test at 0.001
    # after E-Divisive chose the split; measured 1 % on 400 series of 5)
    flagged = sum(bool(change_points(70 + rng.normal(0, 3, 5))) for _ in range(200))
    assert flagged <= 4
    assert change_points(70 + rng.normal(0, 3, 30)) == []
    runs = [run(i, {("edge1", "core"): 70.0, ("edge2", "core"): 71.0}, seed=10 + i)
            for i in range(5)]
    doc = trends(runs, recent=5)
    assert all(c["change_points"] == [] for c in doc["cells"])
    assert doc["regressions"] == []


def test_step_in_long_series_and_small_change_ignored() -> None:
    rng = np.random.default_rng(5)
    step = np.r_[70 + rng.normal(0, 1, 20), 90 + rng.normal(0, 1, 10)]
    cps = change_points(step)
    assert [cp["index"] for cp in cps] == [20]
    tiny = np.r_[70 + rng.normal(0, 0.1, 20), 71 + rng.normal(0, 0.1, 10)]  # +1.4 %
    assert change_points(tiny, min_effect=0.05) == []
    assert [cp["index"] for cp in change_points(tiny, min_effect=0.01)] == [20]


def test_faster_is_not_a_regression_and_errors_are_tracked() -> None:
    runs = [run(i, {("edge1", "core"): 120.0 - (50.0 if i >= 3 else 0.0)}, seed=i,
                errors=30 if i >= 4 else 0) for i in range(5)]
    doc = trends(runs, recent=2)
    cell = doc["cells"][0]
    assert {cp["direction"] for cp in cell["change_points"] if cp["metric"] == "p50_ms"} == \
        {"faster"}
    assert doc["regressions"] == []
    assert cell["series"][-1]["error_rate_pct"] == pytest.approx(50.0)
    assert cell["series"][-1]["n"] == 30 and cell["series"][-1]["count"] == 60
    page = html_page(doc)
    assert "<script" not in page and page.count("<svg") == 1


def test_runs_from_influx_rows() -> None:
    rows = []
    for i, r in enumerate(("a", "b")):
        for k in range(3):
            rows.append({"time": 1_765_000_000_000_000_000 + i * 10**12 + k, "run": r,
                         "experiment": "x", "point": "p0", "site": "edge1", "host": "h",
                         "target_site": "core", "service": "identity", "operation": "op",
                         "status": "ok", "action": None, "workload": None,
                         "wan_default_delay": "25ms", "duration_ms": 10.0 + k,
                         "error": "", "iteration": k})
    runs = runs_from_rows(rows)
    assert [r.run for r in runs] == ["a", "b"] and runs[0].params == ["wan_default_delay"]
    doc = trends(runs)
    assert len(doc["cells"]) == 1 and doc["cells"][0]["series"][1]["p50_ms"] == 11.0
    assert doc["cells"][0]["label"] == "[wan_default_delay=25ms] edge1->core identity.op"


def test_cli_trends_over_results(tmp_path) -> None:
    from click.testing import CliRunner

    from femdc_bench.cli import main
    from tests.synthetic_run import synthetic_run
    from tests.unit.results.test_compare import _slow_down

    results = tmp_path / "results"
    for i in range(1, 6):
        synthetic_run(results, f"syn-{i}")
        if i >= 4:
            _slow_down(results / f"syn-{i}", "edge1", 1.5)
    runner = CliRunner()
    page = tmp_path / "t.html"
    res = runner.invoke(main, ["--results", str(results), "trends", "--json", "--recent", "2",
                               "--fail-on", "regression", "--html", str(page)])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert [r["run"] for r in doc["runs"]] == [f"syn-{i}" for i in range(1, 6)]
    marked = {(c["site"], cp["run"]) for c in doc["cells"] for cp in c["change_points"]
              if cp["metric"] == "p50_ms"}
    assert marked == {("edge1", "syn-4")}
    assert "new regression" in res.stderr and page.read_text().count("<svg") == 18
    res = runner.invoke(main, ["--results", str(results), "trends", "syn-1", "syn-2"])
    assert res.exit_code == 0 and "2 runs, 18 cells" in res.stdout
    res = runner.invoke(main, ["--results", str(results), "trends", "--since", "tomorrow"])
    assert res.exit_code == 2 and "--since" in res.stderr


def test_cli_trends_from_a_shared_influxdb(tmp_path) -> None:
    """Five nightly runs of one experiment in one (scratch, loopback) InfluxDB, the edge
    site 25 ms slower from the fourth: `trends --influxdb` reads them through
    metrics/client.py and fails on the new regression."""
    from click.testing import CliRunner

    from femdc_bench.cli import main
    from femdc_bench.metrics.client import InfluxTarget, connect
    from femdc_bench.metrics.server import LocalInfluxd
    from femdc_bench.metrics.writer import InfluxWriter
    from femdc_bench.model import Sample

    rng = np.random.default_rng(8)
    with LocalInfluxd(tmp_path / "influxdb") as influxd:
        url = influxd.start()
        with connect(InfluxTarget(url=url, database="nightly")) as client, \
                InfluxWriter(client, common_tags={"wan_default_delay": "25ms"}) as w:
            for night in range(5):
                t0 = int(T0.value) + night * 86_400 * 10**9
                for site in ("core", "edge1"):
                    base = 20.0 if site == "core" else 70.0 + (50.0 if night >= 3 else 0.0)
                    w.write_samples([Sample(site=site, target_site="core",
                                            service="identity", operation="authenticate",
                                            t0_ns=t0 + i * 10**8 + (site == "core"),
                                            duration_ms=float(base * np.exp(rng.normal(0, 0.05))),
                                            status="ok", host=f"{site}-h", iteration=i)
                                     for i in range(40)],
                                    run=f"nightly-{night}", experiment="nightly", point="p0")
            # another experiment in the same database is not read
            w.write_samples([Sample(site="x", target_site="x", service="identity",
                                    operation="authenticate", t0_ns=int(T0.value),
                                    duration_ms=1.0, status="ok", host="x")],
                            run="other-1", experiment="other", point="p0")
        res = CliRunner().invoke(main, ["trends", "--influxdb", url, "--database", "nightly",
                                        "--experiment", "nightly", "--recent", "2",
                                        "--fail-on", "regression", "--json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert [r["run"] for r in doc["runs"]] == [f"nightly-{i}" for i in range(5)]
    assert doc["params"] == ["wan_default_delay"]
    marked = {(c["site"], cp["metric"], cp["run"]) for c in doc["cells"]
              for cp in c["change_points"]}
    assert ("edge1", "p50_ms", "nightly-3") in marked
    assert not any(site == "core" for site, _, _ in marked)
    bad = CliRunner().invoke(main, ["trends", "--influxdb", url])
    assert bad.exit_code == 2 and "--experiment" in bad.stderr
