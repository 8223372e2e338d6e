"""The shape of femdc_bench/'s imports beyond circles (tests/unit/test_import_graph.py
walks the same graph for those): the pipeline at the top, and no module over 800 lines
outside the data tables."""

from __future__ import annotations

from tests.unit.test_import_graph import graph, modules

MAX_LINES = 800
DATA_TABLES: set[str] = set()  # modules allowed past MAX_LINES: none today


def test_the_pipeline_is_at_the_top() -> None:
    """Nothing imports run.py or cli.py: the pieces do not reach back."""
    edges = graph()
    assert [m for m, deps in edges.items()
            if deps & {"femdc_bench.run", "femdc_bench.cli"} and m != "femdc_bench.cli"] == []


def test_no_module_over_800_lines() -> None:
    long = {m: n for m, f in modules().items()
            if (n := len(f.read_text().splitlines())) > MAX_LINES and m not in DATA_TABLES}
    assert long == {}
