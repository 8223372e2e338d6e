"""compare on synthetic frames: verdicts, the minimum effect, too few samples, BH, matching
by parameters, the header's differences, JSON/HTML output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from femdc_bench.results.compare import (
    MIN_N,
    RunData,
    compare_runs,
    diff,
    html_page,
    regressions,
)

PARAM = "wan.default.delay_ms"


def samples(cells: dict[tuple[str, str, str], tuple[float, int]], *, seed: int,
            param: float | None = None, action: str = "", noise: float = 0.1,
            errors: int = 0) -> pd.DataFrame:
    """(site, target, operation) -> (median ms, n) as lognormal-ish latencies."""
    rng = np.random.default_rng(seed)
    rows = []
    for (site, target, op), (median, n) in cells.items():
        d = median * np.exp(rng.normal(0, noise, n))
        for i, v in enumerate(d):
            rows.append({"site": site, "target_site": target, "service": "identity",
                         "operation": op, "workload": "", "action": action,
                         "status": "error" if i < errors else "ok", "duration_ms": v,
                         **({PARAM: param} if param is not None else {})})
    return pd.DataFrame(rows)


def run(name: str, df: pd.DataFrame, params: list[str] | None = None,
        meta: dict | None = None) -> RunData:
    return RunData(run=name, samples=df, params=params or [], meta=meta or {})


CELLS = {("core", "core", "authenticate"): (20.0, 200),
         ("edge1", "core", "authenticate"): (70.0, 200),
         ("edge2", "core", "authenticate"): (70.0, 200),
         ("edge1", "core", "list_users"): (60.0, 100)}


def test_slower_cells_found_and_local_unchanged() -> None:
    slow = {k: (m + 50 if k[0] != k[1] else m, n) for k, (m, n) in CELLS.items()}
    doc = compare_runs([run("a", samples(CELLS, seed=1)), run("b", samples(slow, seed=2))])
    verdicts = {(c["site"], c["operation"]): c["verdict"] for c in doc["cells"]}
    assert verdicts == {("core", "authenticate"): "no change",
                        ("edge1", "authenticate"): "slower",
                        ("edge2", "authenticate"): "slower",
                        ("edge1", "list_users"): "slower"}
    edge = next(c for c in doc["cells"] if c["site"] == "edge1" and
                c["operation"] == "authenticate")
    assert edge["ratio"] == pytest.approx(120 / 70, rel=0.05)
    assert edge["ci_low"] < edge["ratio"] < edge["ci_high"]
    assert edge["q_value"] < 0.05 and edge["p_value"] <= edge["q_value"]
    assert len(regressions(doc)) == 3


def test_faster_and_min_effect() -> None:
    fast = {k: (m * 0.8, n) for k, (m, n) in CELLS.items()}
    doc = compare_runs([run("a", samples(CELLS, seed=1)), run("b", samples(fast, seed=2))])
    assert {c["verdict"] for c in doc["cells"]} == {"faster"}
    assert regressions(doc) == []
    # a significant 3 % change is no change at --min-effect 5 %, a change at 1 %
    small = {k: (m * 1.03, 4000) for k, (m, _) in CELLS.items()}
    big = {k: (m, 4000) for k, (m, _) in CELLS.items()}
    a, b = run("a", samples(big, seed=3, noise=0.02)), run("b", samples(small, seed=4,
                                                                         noise=0.02))
    doc = compare_runs([a, b], min_effect=0.05)
    assert all(c["q_value"] < 0.05 for c in doc["cells"])
    assert {c["verdict"] for c in doc["cells"]} == {"no change"}
    assert {c["verdict"] for c in compare_runs([a, b], min_effect=0.01)["cells"]} == {"slower"}


def test_same_distribution_flags_little() -> None:
    """A/A on synthetic data: 40 cells from one distribution, few (BH) flagged."""
    cells = {(f"s{i}", "core", "op"): (50.0, 60) for i in range(40)}
    doc = compare_runs([run("a", samples(cells, seed=10)), run("b", samples(cells, seed=11))])
    flagged = [c for c in doc["cells"] if c["verdict"] != "no change"]
    assert len(flagged) <= 2


def test_too_few_samples_not_decided_nor_corrected() -> None:
    cells = dict(CELLS)
    cells[("edge2", "core", "rare")] = (10.0, MIN_N - 1)
    slow = {k: (m * 3, n) for k, (m, n) in cells.items()}
    doc = compare_runs([run("a", samples(cells, seed=1)), run("b", samples(slow, seed=2))])
    rare = next(c for c in doc["cells"] if c["operation"] == "rare")
    assert rare["verdict"] == "too few samples" and rare["p_value"] is None
    assert f"< {MIN_N}" in rare["warning"]
    assert rare["ratio"] == pytest.approx(3, rel=0.2)
    assert "over 4 decided cells" in doc["settings"]["test"]


def test_missing_cell_and_errors() -> None:
    a = samples(CELLS, seed=1)
    b = samples({k: v for k, v in CELLS.items() if k[2] != "list_users"}, seed=2, errors=5)
    doc = compare_runs([run("a", a), run("b", b)])
    miss = next(c for c in doc["cells"] if c["operation"] == "list_users")
    assert miss["verdict"] == "missing" and "no iteration in b" in miss["warning"]
    core = next(c for c in doc["cells"] if c["site"] == "core")
    assert core["other"]["errors"] == 5 and core["other"]["n"] == 195
    assert core["other"]["error_rate_pct"] == pytest.approx(2.5)


def test_percentiles_are_the_reports() -> None:
    df = pd.DataFrame({"site": "core", "target_site": "core", "service": "identity",
                       "operation": "op", "workload": "", "action": "", "status": "ok",
                       "duration_ms": np.arange(1.0, 21.0)})
    doc = compare_runs([run("a", df), run("b", df)])
    c = doc["cells"][0]
    assert c["baseline"]["p50_ms"] == 10.5 and c["baseline"]["p95_ms"] == pytest.approx(19.05)
    assert c["ratio"] == 1.0 and c["verdict"] == "no change"


def test_matched_by_parameters_not_point_ids() -> None:
    """Run a swept 0 and 25 ms, run b only 25 ms: b's cells meet a's 25 ms cells."""
    one = {("edge1", "core", "authenticate"): (70.0, 100)}
    a = pd.concat([samples(one, seed=1, param=0.0), samples(one, seed=2, param=25.0)])
    b = samples(one, seed=3, param=25.0)
    doc = compare_runs([run("a", a, [PARAM]), run("b", b, [PARAM])])
    by = {c[PARAM]: c["verdict"] for c in doc["cells"]}
    assert by == {"0.0": "missing", "25.0": "no change"}
    assert doc["cells"][1]["label"].startswith("[default.delay_ms=25.0] edge1->core")


def test_actions_are_cells_and_three_runs() -> None:
    it = samples(CELLS, seed=1)
    act = samples(CELLS, seed=5, action="keystone.issue_token")
    b = pd.concat([samples(CELLS, seed=2), samples(CELLS, seed=6, action="keystone.issue_token")])
    c = pd.concat([samples({k: (m * 2, n) for k, (m, n) in CELLS.items()}, seed=3),
                   samples(CELLS, seed=7, action="keystone.issue_token")])
    doc = compare_runs([run("a", pd.concat([it, act])), run("b", b), run("c", c)],
                       baseline="b")
    assert doc["baseline"] == "b"
    assert {c["run"] for c in doc["cells"]} == {"a", "c"}
    assert len(doc["cells"]) == 2 * 2 * len(CELLS)
    slower = {(c["run"], c["action"]) for c in regressions(doc)}
    assert slower == {("c", "")}
    json.dumps(doc)  # JSON-ready


def test_bad_arguments() -> None:
    a = run("a", samples(CELLS, seed=1))
    with pytest.raises(ValueError, match="at least two"):
        compare_runs([a])
    with pytest.raises(ValueError, match="baseline"):
        compare_runs([a, run("b", samples(CELLS, seed=2))], baseline="x")
    with pytest.raises(ValueError, match="twice"):
        compare_runs([a, a])


def test_header_differences() -> None:
    exp_a = {"name": "x", "sites": [{"name": "core"}], "wan": {"default": {"delay": "25ms"}},
             "deployment": {"keystone": {"centralized": "core"}}}
    exp_b = {**exp_a, "wan": {"default": {"delay": "50ms"}},
             "deployment": {"keystone": "per_site"}}
    man_a = {"openstack": {"keystone": "30.0.0"}, "controller": {"kernel": "6.1"},
             "hosts": {"core-ctl": {"kernel": "6.1", "mariadb": "10.11"}}}
    man_b = {"openstack": {"keystone": "31.0.0"}, "controller": {"kernel": "6.1"},
             "hosts": {"core-ctl": {"kernel": "6.2", "mariadb": "10.11"}}}
    wan = pd.DataFrame({"run": "a", "point": "p0", "site": "edge1", "target_site": "core",
                        "target_ms": [50.0], "rtt_ms": [51.2]})
    a = RunData("a", samples(CELLS, seed=1), meta={"experiment": exp_a, "manifest": man_a},
                wan=wan)
    b = RunData("b", samples(CELLS, seed=2), meta={"experiment": exp_b, "manifest": man_b},
                wan=wan.assign(run="b", target_ms=100.0, rtt_ms=101.9))
    h = compare_runs([a, b])["header"]
    assert h["wan_targets"] == [{"key": "wan.default.delay",
                                 "values": {"a": "25ms", "b": "50ms"}}]
    assert [r["key"] for r in h["layout"]] == ["deployment.keystone.centralized",
                                               "deployment.keystone"]
    assert h["versions"] == [{"key": "openstack.keystone",
                              "values": {"a": "30.0.0", "b": "31.0.0"}}]
    assert h["machine"] == [{"key": "hosts.core-ctl.kernel", "values": {"a": "6.1", "b": "6.2"}}]
    assert h["experiment"] == []
    assert h["rtt"][0]["runs"]["b"] == {"target_ms": 100.0, "rtt_ms": 101.9}


def test_diff_lists_absent_keys() -> None:
    assert diff({"a": {"x": 1}, "b": {"x": 1, "y": [1]}}) == [
        {"key": "y[0]", "values": {"a": None, "b": 1}}]


def test_html_is_self_contained() -> None:
    slow = {k: (m * 2, n) for k, (m, n) in CELLS.items()}
    page = html_page(compare_runs([run("a", samples(CELLS, seed=1)),
                                   run("b<x>", samples(slow, seed=2))]))
    assert page.startswith("<!DOCTYPE html>") and "b&lt;x&gt;" in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    assert page.count("<svg") == len(CELLS) and "slower" in page


# --------------------------------------------------------------------------- CLI


def _slow_down(run_dir, site: str, factor: float) -> None:
    """Multiply the durations of `site`'s samples in a synthetic run's files."""
    for f in run_dir.glob(f"samples/*/{site}-*.jsonl"):
        lines = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        for rec in lines:
            rec["duration_ms"] *= factor
        f.write_text("".join(json.dumps(rec) + "\n" for rec in lines))


def test_cli_compare_text_json_html_and_fail_on(tmp_path) -> None:
    from click.testing import CliRunner

    from femdc_bench.cli import main
    from tests.synthetic_run import synthetic_run

    results = tmp_path / "results"
    for i in (1, 2, 3):
        synthetic_run(results, f"syn-{i}")
    _slow_down(results / "syn-3", "edge1", 1.5)
    runner = CliRunner()
    args = ["--results", str(results), "compare", "--source", "files"]
    same = runner.invoke(main, [*args, "syn-1", "syn-2", "--fail-on", "regression"])
    assert same.exit_code == 0, same.output
    assert "18 no change" in same.output and "[default.delay_ms=25.0] edge1->core" in same.output
    page = tmp_path / "c.html"
    slow = runner.invoke(main, [*args, "syn-1", "syn-3", "--fail-on", "regression", "--json",
                                "--html", str(page)])
    assert slow.exit_code == 1
    doc = json.loads(slow.stdout)
    verdicts = {(c["site"], c["verdict"]) for c in doc["cells"]}
    assert verdicts == {("core", "no change"), ("edge2", "no change"), ("edge1", "slower")}
    assert "6 cell(s) slower than syn-1" in slow.stderr
    assert "<svg" in page.read_text()
    bad = runner.invoke(main, [*args, "syn-1", "syn-2", "--min-effect", "150%"])
    assert bad.exit_code == 2 and "--min-effect" in bad.stderr
    bad = runner.invoke(main, [*args, "syn-1", "syn-2", "--baseline", "syn-3"])
    assert bad.exit_code == 2 and "not one of the compared runs" in bad.stderr
