"""The HTML report on a synthetic run (three sites, a two-point WAN sweep, a partition
fault, failures, atomic actions, server samples): its content, and the page rendered in
a real headless Chromium with no network."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from femdc_bench.results.report import write_html_report
from tests.chromium import check_page
from tests.synthetic_run import ACTIONS, N_ITER, synthetic_run


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    r = synthetic_run(tmp_path_factory.mktemp("html") / "results")
    return write_html_report(r, source="files")


def test_page_has_every_section_and_exact_tables(page) -> None:  # type: ignore[no-untyped-def]
    html = page.path.read_text()
    assert page.path.name == "report.html" and page.path.stat().st_size < 5_000_000
    for text in ("The run", "SLA violated", "Sites, hosts, roles and regions",
                 "measured RTT against the targets", "Versions", "30.0.0",
                 "Heat map: p50 / p95", "Latency against the swept WAN parameters",
                 "Timeline per point", "CPU % per service", "RSS MB per service",
                 "RabbitMQ connections", "database queries/s",
                 "Faults: before, during and after", "partition@edge2",
                 "load profile", "duration per iteration", "duration histogram",
                 "atomic-action breakdown", "90%ile", *ACTIONS,
                 "ConnectFailure: Unable to establish connection to &quot;core&quot;, giving up"):
        assert text in html, text
    # one Rally table per (point, operation, site, target): 2 x 3
    assert html.count("<th>90%ile</th>") == 6
    # exact: edge2 in p1 lost its iterations during the partition; the count is all 60
    fails = page.frames.iterations.query("point == 'p1' and site == 'edge2' and status != 'ok'")
    assert len(fails) > 0
    assert f"failures: {len(fails)} of {N_ITER}" in html
    # the SLA verdict is the text report's
    assert page.violations and "edge2->core" in page.violations[0]


def test_sweep_slope_is_two_ms_per_ms_of_rtt(page) -> None:  # type: ignore[no-untyped-def]
    """The synthetic latency is 8 ms + 2 x RTT + noise: the fitted slope says so."""
    html = page.path.read_text()
    row = re.search(r"<td>authenticate_and_validate_token</td><td>edge1</td><td>core</td>"
                    r"<td class=n>(\d+)</td><td class=n>([0-9.]+)</td>", html)
    assert row, "no slope row for edge1 -> core"
    assert 1.85 < float(row.group(2)) < 2.05


def test_page_renders_offline_in_chromium(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chk = check_page(page.path, tmp_path)
    assert chk.ready, "the page's script did not run (no #report-ready marker)"
    assert chk.ready["charts"] >= 20 and chk.ready["empty"] == 0, chk.ready
    assert chk.console == [], chk.console
    assert chk.requests == [] and chk.external_refs == []
    assert chk.screenshot.stat().st_size > 50_000


def test_load_profile_is_the_mean_number_in_flight() -> None:
    from femdc_bench.results.html import _load_profile

    # two iterations over [0, 10] and [5, 10]: 1 in flight, then 2
    x, y = _load_profile(np.array([0.0, 5.0]), np.array([10.0, 10.0]), n=10)
    assert y.tolist() == pytest.approx([1.0] * 5 + [2.0] * 5)
    # back-to-back iterations of 1 s with 1 s gaps: half a client on average
    starts = np.arange(0.0, 100.0, 2.0)
    _, y = _load_profile(starts, starts + 1.0, n=5)
    assert y.tolist() == pytest.approx([0.5] * 4 + [0.5 * 39 / 39], abs=0.02)


def test_report_html_reads_once_and_says_what_report_says(tmp_path: Path) -> None:
    """`report --html` (one read, statistics with pandas) gives the text report's JSON
    document of `report` (Samples, report.stats), from the run's real local InfluxDB;
    the CLI prints the page's path and exits 1 on the violated SLA."""
    from click.testing import CliRunner

    from femdc_bench.cli import main
    from femdc_bench.metrics.server import LocalInfluxd
    from femdc_bench.report import assemble
    from femdc_bench.results.report import report_with_html
    from tests.synthetic_run import store_in_influx

    r = synthetic_run(tmp_path / "results", n_iter=15)
    try:
        store_in_influx(r)
        LocalInfluxd(r.influx_dir()).stop()  # a finished run: the reports start it
        want = assemble.report(r).doc
        got, page = report_with_html(r, tmp_path / "page.html")
        assert page.frames.source == "influxdb"
        res = CliRunner().invoke(main, ["--results", str(r.dir.parent), "report", r.id,
                                        "--html", "--out", str(tmp_path / "cli.html")])
    finally:
        LocalInfluxd(r.influx_dir()).stop()
    doc = got.doc
    for key in ("schema", "run", "sla", "sla_results", "points", "wan", "faults"):
        assert doc[key] == want[key], key
    # the same events, and the first report's own phase events (made in between)
    got_ev = [(e["time"], e["kind"], e["phase"], e["text"]) for e in doc["events"]]
    want_ev = [(e["time"], e["kind"], e["phase"], e["text"]) for e in want["events"]]
    assert set(want_ev) <= set(got_ev)
    assert {e[2] for e in set(got_ev) - set(want_ev)} == {"report"}
    for a, b in zip(doc["rows"] + doc["actions"], want["rows"] + want["actions"], strict=True):
        assert {k: v for k, v in a.items() if not isinstance(v, float)} == \
            {k: v for k, v in b.items() if not isinstance(v, float)}
        for k, v in b.items():
            if isinstance(v, float):
                assert a[k] == pytest.approx(v, rel=1e-9), k
    assert res.exit_code == 1, res.output
    assert f"HTML report: {tmp_path / 'cli.html'}" in res.output.replace("\n", "")
    assert (tmp_path / "cli.html").stat().st_size > 10_000


def test_a_run_with_nothing_measured_still_gets_a_page(tmp_path: Path) -> None:
    """No samples, no server samples, no WAN check: the frames are empty (with their
    columns) and the page says so instead of failing."""
    import shutil

    from femdc_bench.results import load

    r = synthetic_run(tmp_path / "results", n_iter=1)
    for d in ("samples", "metrics", "wan"):
        shutil.rmtree(r.dir / d)
    (r.dir / "events.jsonl").unlink()
    f = load(r, source="files")
    assert f.iterations.empty and f.servers.empty and f.wan.empty and f.events.empty
    assert "duration_ms" in f.iterations.columns and "value" in f.servers.columns
    page = write_html_report(r, source="files")
    html = page.path.read_text()
    assert "no samples for this run" in html and "No WAN check was recorded" in html
