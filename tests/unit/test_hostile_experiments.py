"""Hostile experiment files: rejected by `validate` with exit 2, one line naming the file
and the key path, in well under a second, nothing created; and random documents (from
the experiment's own JSON Schema, and arbitrary JSON) never raise anything but an
ExperimentError."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from femdc_bench import experiment, safeyaml
from femdc_bench.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "topologies" / "default.yaml").read_text()
HEAD = BASE.split("workload:")[0]

BOMB = "".join(f"{a}: &{a} [{', '.join([f'*{p}' if p else 'x'] * 9)}]\n"
               for p, a in zip(["", *"abcdefgh"], "abcdefghi", strict=True))


def _sub(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


CASES: dict[str, tuple[str, str]] = {  # name -> (document, what the error must say)
    "shell metacharacters": (_sub("name: core\n", "name: 'core;rm -rf /'\n"),
                             "sites[0].name: expected a lower-case name"),
    "path separator": (_sub("name: ctl\n", "name: 'a/b'\n"), "sites[0].hosts[0].name"),
    "dot dot": (_sub("name: ctl\n", "name: '..'\n"), "sites[0].hosts[0].name"),
    "very long name": (_sub("name: ctl\n", f"name: {'x' * 300}\n"), "at most 32 characters"),
    "non-ASCII": (_sub("name: ctl\n", "name: 'ctlé'\n"), "sites[0].hosts[0].name"),
    "huge range": (_sub("edge[1-2]", "edge[1-100000]"),
                   "sites[1].name: range 'edge[1-100000]' names 100000 items; at most 1000"),
    "empty range": (_sub("edge[1-2]", "edge[5-2]"), "is empty"),
    "too many hosts": (_sub("edge[1-2]", "edge[1-900]").replace(
        "      - name: node\n", "      - name: node[1-3]\n"), "more than 2000 hosts"),
    "deep nesting": (BASE + "x: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64"),
    "alias bomb": (BOMB + BASE, "more than 100000 nodes once its aliases are expanded"),
    "python tag": (_sub("name: keystone-3sites",
                        "name: !!python/object/apply:os.system ['touch /tmp/pwned']"),
                   "could not determine a constructor"),
    "duplicate key": (_sub("name: keystone-3sites", "name: keystone-3sites\nname: x"),
                      "line 6: duplicate key 'name'"),
    "huge document": (BASE + "# " + "x" * (2 * 1024 * 1024) + "\n",
                      "larger than the limit of 1048576"),
    "task outside": (HEAD + "workload:\n  rally_task: ../../etc/passwd\n",
                     "workload.rally_task: '../../etc/passwd' is outside"),
    "task absolute": (HEAD + "workload:\n  rally_task: /etc/hostname\n", "is outside"),
    "task device": (HEAD + "workload:\n  rally_task: /dev/zero\n", "is outside"),
    "task symlink out": (HEAD + "workload:\n  rally_task: link.yaml\n", "is outside"),
    "task FIFO": (HEAD + "workload:\n  rally_task: fifo\n", "not a regular file"),
    "task template escape": (HEAD + "workload:\n  rally_task: evil.yaml\n",
                             "access to attribute '__class__' of 'str' object is unsafe"),
    "site ref range": (_sub("      from: all\n", "      from: 'edge[1-99999999]'\n"),
                       "workload.scenarios[0].from: range 'edge[1-99999999]' names 99999999"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_file_is_one_line_exit_2_under_a_second(tmp_path: Path, name: str) -> None:
    doc, expected = CASES[name]
    (tmp_path / "link.yaml").symlink_to("/etc/hostname")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "evil.yaml").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    f = tmp_path / "exp.yaml"
    f.write_text(doc)
    before = sorted(p.name for p in tmp_path.iterdir())
    t0 = time.monotonic()
    res = CliRunner().invoke(main, ["validate", str(f)])
    took = time.monotonic() - t0
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert expected in lines[0], lines[0]
    assert took < 1.0, f"{name}: {took:.2f} s"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created
    assert not Path("/tmp/pwned").exists()


def test_the_base_file_is_fine(tmp_path: Path) -> None:
    f = tmp_path / "exp.yaml"
    f.write_text(BASE)
    assert CliRunner().invoke(main, ["validate", str(f)]).exit_code == 0


def test_anchors_and_aliases_in_moderation_still_work() -> None:
    doc = safeyaml.load("a: &r {type: times, times: 2}\nb: *r\nc: [*r, *r]\n")
    assert doc["b"] == doc["c"][0] == {"type": "times", "times": 2}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=st.one_of(from_schema(experiment.SCHEMA), JSON))
def test_random_documents_never_raise_anything_but_an_experiment_error(doc: object) -> None:
    try:
        experiment.parse(doc, "random.yaml")
    except experiment.ExperimentError as e:
        assert str(e).startswith("random.yaml") and "\n" not in str(e)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=from_schema(experiment.SCHEMA))
def test_random_files_through_the_cli_are_ok_or_one_line_exit_2(tmp_path_factory: pytest.
                                                                TempPathFactory,
                                                                doc: object) -> None:
    f = tmp_path_factory.mktemp("h") / "exp.yaml"
    f.write_text(yaml.safe_dump(doc))
    res = CliRunner().invoke(main, ["validate", str(f)])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code in (0, 2), res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
