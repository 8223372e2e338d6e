"""Statistics, percentiles, SLA check and rendering of the report (pure, fast)."""

from __future__ import annotations

import io
import json
import math
import random
import statistics

import pytest
from rich.console import Console

from femdc_bench.model import Sample, SlaSpec
from femdc_bench.report import (
    action_rows,
    check_sla,
    check_sla_spec,
    compute_stats,
    compute_stats_by_point,
    iteration_rows,
    percentile,
    stats_json,
    stats_table,
)
from femdc_bench.report.render import sweep_table

# --------------------------------------------------------------------------- percentile


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        # values checked against numpy.percentile(..., method="linear") by hand
        ([1, 2, 3, 4], 50, 2.5),
        ([1, 2, 3, 4], 25, 1.75),
        ([1, 2, 3, 4], 75, 3.25),
        ([1, 2, 3, 4], 0, 1.0),
        ([1, 2, 3, 4], 100, 4.0),
        ([15, 20, 35, 40, 50], 40, 29.0),
        ([15, 20, 35, 40, 50], 5, 16.0),
        ([50, 40, 35, 20, 15], 40, 29.0),  # unsorted input
        (list(range(1, 101)), 50, 50.5),
        (list(range(1, 101)), 95, 95.05),
        (list(range(1, 101)), 99, 99.01),
        ([7.5], 0, 7.5),
        ([7.5], 95, 7.5),
        ([7.5], 100, 7.5),
        ([3, 3, 3], 99, 3.0),
    ],
)
def test_percentile_known_values(values: list[float], p: float, expected: float) -> None:
    assert percentile(values, p) == pytest.approx(expected, abs=1e-12)


def test_percentile_matches_statistics_inclusive() -> None:
    rng = random.Random(42)
    for n in (2, 3, 10, 101, 1000):
        xs = [rng.lognormvariate(3, 0.5) for _ in range(n)]
        cuts = statistics.quantiles(xs, n=100, method="inclusive")
        for i, cut in enumerate(cuts, start=1):
            assert percentile(xs, i) == pytest.approx(cut, rel=1e-12), (n, i)


def test_percentile_errors() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], -1)
    with pytest.raises(ValueError):
        percentile([1.0], math.nan)


# --------------------------------------------------------------------------- stats


def _s(
    t0_s: float,
    dur: float,
    status: str = "ok",
    site: str = "s1",
    target: str = "s1",
    op: str = "auth",
    service: str = "identity",
) -> Sample:
    return Sample(
        site=site,
        target_site=target,
        service=service,
        operation=op,
        t0_ns=int(t0_s * 1e9),
        duration_ms=dur,
        status=status,
        error="" if status == "ok" else "boom",
    )


def test_compute_stats_groups_and_values() -> None:
    samples = [
        _s(0, 1000),
        _s(1, 1000),
        _s(2, 1000, "error"),
        _s(3, 1000),  # ends at 4 s: span 4 s for 4 iterations
        _s(0, 10, site="s2", target="s1"),
        _s(0, 30, site="s2", target="s1"),
        _s(0.5, 5, site="s1", target="s1", op="list", service="image"),
    ]
    rows = compute_stats(samples, point="p1")
    assert [(r.site, r.target_site, r.service, r.operation) for r in rows] == [
        ("s1", "s1", "identity", "auth"),
        ("s1", "s1", "image", "list"),
        ("s2", "s1", "identity", "auth"),
    ]
    a, img, b = rows
    assert a.point == "p1"
    assert (a.count, a.errors) == (4, 1)
    assert a.error_rate_pct == 25.0
    assert a.mean_ms == 1000.0 and a.p50_ms == 1000.0 and a.max_ms == 1000.0
    assert a.iterations_per_s == pytest.approx(1.0)
    # two concurrent iterations: span = 30 ms
    assert b.count == 2 and b.errors == 0
    assert b.mean_ms == 20.0 and b.min_ms == 10.0 and b.max_ms == 30.0
    assert b.p50_ms == 20.0
    assert b.p95_ms == pytest.approx(29.0)
    assert b.p99_ms == pytest.approx(29.8)
    assert b.iterations_per_s == pytest.approx(2 / 0.030)
    assert img.count == 1 and img.p99_ms == 5.0
    assert img.iterations_per_s == pytest.approx(1 / 0.005)


def test_latency_figures_ignore_failures() -> None:
    rows = compute_stats([_s(0, 100), _s(0, 1, "error"), _s(0, 2, "error")])
    (r,) = rows
    assert r.mean_ms == 100.0 and r.p50_ms == 100.0 and r.min_ms == 100.0
    assert r.errors == 2 and r.error_rate_pct == pytest.approx(200 / 3)


def test_all_failed_group_has_no_latency() -> None:
    (r,) = compute_stats([_s(0, 1, "error"), _s(1, 1, "error")])
    assert r.error_rate_pct == 100.0
    assert r.mean_ms is r.p50_ms is r.p95_ms is r.p99_ms is r.max_ms is None
    assert r.iterations_per_s == pytest.approx(2 / 1.001)


def test_zero_span_gives_no_rate() -> None:
    (r,) = compute_stats([_s(5, 0.0)])
    assert r.iterations_per_s is None


def test_compute_stats_by_point_sorted() -> None:
    rows = compute_stats_by_point({"b": [_s(0, 1)], "a": [_s(0, 2), _s(1, 4)]})
    assert [(r.point, r.count) for r in rows] == [("a", 2), ("b", 1)]
    assert compute_stats([]) == []


# --------------------------------------------------------------------------- SLA


def _rows() -> list:
    return compute_stats(
        [_s(0, 10), _s(1, 20), _s(2, 30, "error")]  # 33.3 % errors, p95 19.5 ms
        + [_s(0, 100, site="s2"), _s(1, 200, site="s2")]  # 0 % errors, p95 195 ms
    )


def test_check_sla_passes_and_limits_are_inclusive() -> None:
    rows = _rows()
    assert check_sla(rows) == []
    assert check_sla(rows, failure_rate_max_pct=100 / 3 + 1e-9, p95_ms_max=195.0) == []


def test_check_sla_violations() -> None:
    rows = _rows()
    v = check_sla(rows, failure_rate_max_pct=10.0)
    assert len(v) == 1 and "s1->s1" in v[0] and "33.33 %" in v[0] and "(1/3)" in v[0]
    v = check_sla(rows, p95_ms_max=100.0)
    assert len(v) == 1 and "s2->s1" in v[0] and "p95 195.0 ms > 100 ms" in v[0]
    assert len(check_sla(rows, 10.0, 100.0)) == 2
    assert check_sla_spec(rows, SlaSpec(failure_rate_max_pct=10.0, p95_ms_max=100.0)) == (
        check_sla(rows, 10.0, 100.0)
    )


def test_check_sla_no_success_and_no_rows() -> None:
    rows = compute_stats([_s(0, 1, "error")])
    assert check_sla(rows, failure_rate_max_pct=100.0) == []
    v = check_sla(rows, p95_ms_max=1000.0)
    assert len(v) == 1 and "no successful iteration" in v[0]
    assert check_sla([], p95_ms_max=1.0) == ["no iteration was recorded"]
    assert check_sla([]) == []


# --------------------------------------------------------------------------- render


def test_stats_table_renders() -> None:
    rows = compute_stats_by_point({"c1": [_s(0, 12.34), _s(1, 20)], "c2": [_s(0, 5, "error")]})
    table = stats_table(rows, title="run r1", sla=SlaSpec(p95_ms_max=15.0))
    assert table.row_count == 2
    headers = [c.header for c in table.columns]
    assert headers[:4] == ["point", "site", "target", "operation"]
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(table)
    out = buf.getvalue()
    assert "identity.auth" in out and "c1" in out and "100.0" in out and "16.2" in out
    # without points, no point column
    plain = stats_table(compute_stats([_s(0, 1)]))
    assert [c.header for c in plain.columns][0] == "site"


def test_stats_json_is_serialisable() -> None:
    rows = compute_stats([_s(0, 1, "error")], point="p")
    sla = SlaSpec(p95_ms_max=10.0)
    doc = stats_json(rows, run="r1", sla=sla, violations=check_sla_spec(rows, sla))
    back = json.loads(json.dumps(doc))
    assert back["run"] == "r1" and back["schema"] == 2
    assert back["rows"][0]["p95_ms"] is None and back["rows"][0]["errors"] == 1
    assert back["sla"]["passed"] is False and back["sla"]["p95_ms_max"] == 10.0
    assert "sla" not in stats_json(rows)


# --------------------------------------------------------------------------- atomic actions


def _a(t0_s: float, dur: float, action: str, status: str = "ok", **fields: float) -> Sample:
    s = _s(t0_s, dur, status, op="NovaServers.boot_and_delete_server", service="compute")
    s.action = action
    s.fields = dict(fields)
    return s


def _boot_samples() -> list[Sample]:
    it = [_s(i, 300.0, op="NovaServers.boot_and_delete_server", service="compute")
          for i in range(4)]
    boots = [_a(i + 0.001, 200.0, "nova.boot_server") for i in range(4)]
    deletes = [_a(i + 0.2, 100.0, "nova.delete_server", "error" if i == 3 else "ok")
               for i in range(4)]
    # listed deletes first: the order of the rows is the order actions first started
    return deletes + it + boots + [_s(0, 5.0)]


def test_stats_group_by_action() -> None:
    rows = compute_stats(_boot_samples(), point="p0")
    assert [(r.operation, r.action) for r in rows] == [
        ("NovaServers.boot_and_delete_server", ""),
        ("NovaServers.boot_and_delete_server", "nova.boot_server"),
        ("NovaServers.boot_and_delete_server", "nova.delete_server"),
        ("auth", ""),
    ]
    it, boot, delete, auth = rows
    assert (it.count, it.errors, it.mean_ms) == (4, 0, 300.0)
    assert it.is_iteration and it.iterations_per_s is not None
    assert (boot.count, boot.p50_ms, boot.max_ms) == (4, 200.0, 200.0)
    assert (delete.count, delete.errors, delete.error_rate_pct) == (4, 1, 25.0)
    assert boot.iterations_per_s is None  # actions are not iterations
    assert iteration_rows(rows) == [it, auth] and action_rows(rows) == [boot, delete]
    assert it.operation_label == "NovaServers.boot_and_delete_server"
    assert auth.operation_label == "identity.auth"
    assert delete.label == "[p0] s1->s1 NovaServers.boot_and_delete_server nova.delete_server"


def test_mean_of_extra_fields_over_successes() -> None:
    samples = [
        _a(0, 10.0, "glance.download_image", mb_per_s=40.0, bytes=1e6),
        _a(1, 10.0, "glance.download_image", mb_per_s=60.0, bytes=1e6),
        _a(2, 10.0, "glance.download_image", "error", mb_per_s=1.0),
    ]
    (row,) = compute_stats(samples)
    assert row.fields == {"bytes": 1e6, "mb_per_s": 50.0}


def test_sla_ignores_atomic_actions() -> None:
    rows = compute_stats(_boot_samples())
    # one failed delete_server action: 25 % on its row, but every iteration passed
    assert check_sla(rows, failure_rate_max_pct=0.0) == []
    assert check_sla(action_rows(rows), failure_rate_max_pct=0.0) == [
        "no iteration was recorded"
    ]


def test_table_shows_actions_under_iterations_with_rate() -> None:
    samples = [*_boot_samples(), _a(0.5, 10.0, "glance.download_image", mb_per_s=42.0)]
    rows = compute_stats_by_point({"p0": samples})
    table = stats_table(rows)
    headers = [c.header for c in table.columns]
    assert headers[-1] == "MB/s" and table.row_count == 5
    buf = io.StringIO()
    Console(file=buf, width=250, color_system=None).print(table)
    out = buf.getvalue()
    lines = out.splitlines()
    boot = next(line for line in lines if "nova.boot_server" in line)
    assert "└" in boot and "s1" not in boot  # indented, no site repeated
    assert "NovaServers.boot_and_delete_server" in out and "42.0" in out
    assert "identity.auth" in out
    # without any rate, no MB/s column
    assert "MB/s" not in [c.header for c in stats_table(compute_stats([_s(0, 1)])).columns]


def test_json_has_actions_apart() -> None:
    rows = compute_stats(_boot_samples(), point="p0")
    doc = json.loads(json.dumps(stats_json(rows, run="r")))
    assert [r["operation"] for r in doc["rows"]] == ["NovaServers.boot_and_delete_server", "auth"]
    assert all(r["action"] == "" for r in doc["rows"])
    assert [a["action"] for a in doc["actions"]] == ["nova.boot_server", "nova.delete_server"]
    assert doc["actions"][1]["errors"] == 1 and doc["actions"][0]["fields"] == {}


def test_sweep_table_lists_actions_under_their_operation() -> None:
    rows = compute_stats_by_point({"p0": _boot_samples(), "p1": _boot_samples()})
    table = sweep_table(rows, {"p0": "delay=0ms", "p1": "delay=50ms"})
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(table)
    lines = [line for line in buf.getvalue().splitlines() if "│" in line]
    ops = [line.split("│")[3].strip() for line in lines]
    assert ops[:3] == ["NovaServers.boot_and_delete_server", "└ nova.boot_server",
                       "└ nova.delete_server"]
