"""experiment/loading.py: the scenario names come from the registry (the schema's enum
and the table of the services they load), and a run keeps that table beside its schema
key, keyed by the digest of the scenario sources, so that its commands do not import
the scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from femdc_bench.experiment import ExperimentError, parse, scenario_table, schema
from femdc_bench.workload import scenarios
from femdc_bench.workload.registry import REGISTRY, source_digest
from tests.one_host import one_host_experiment


def test_the_schema_names_every_registered_scenario() -> None:
    full = schema.full()
    name = full["properties"]["workload"]["properties"]["scenarios"]["items"]["properties"][
        "name"]
    assert name["enum"] == REGISTRY.names() == sorted(scenarios.table())
    # the literal has no list of its own
    static = schema.SCHEMA["properties"]["workload"]["properties"]["scenarios"]["items"]
    assert "enum" not in static["properties"]["name"]


def test_an_unknown_scenario_is_refused_with_a_hint() -> None:
    doc = one_host_experiment()
    doc["workload"]["scenarios"][0]["name"] = "keystone.list_user"
    with pytest.raises(ExperimentError) as e:
        parse(doc, "x.yaml")
    assert str(e.value) == ("x.yaml: workload.scenarios[0].name: expected a scenario name "
                            "(see README: Scenarios), got 'keystone.list_user' (did you "
                            "mean 'keystone.list_users'?)")


def test_the_table_is_kept_beside_the_key(tmp_path: Path) -> None:
    passed = tmp_path / "tmp" / "experiment.schema-passed"
    table = scenario_table(passed)
    assert table == scenarios.table()
    kept = json.loads((tmp_path / "tmp" / "scenarios.json").read_text())
    assert kept == {"digest": source_digest(), "table": table}
    # read back while the sources are unchanged; another digest is not believed
    kept["table"] = {"keystone.list_users": "identity"}
    (tmp_path / "tmp" / "scenarios.json").write_text(json.dumps(kept))
    assert scenario_table(passed) == {"keystone.list_users": "identity"}
    kept["digest"] = "0" * 64
    (tmp_path / "tmp" / "scenarios.json").write_text(json.dumps(kept))
    assert scenario_table(passed) == table
    (tmp_path / "tmp" / "scenarios.json").write_text("not json")
    assert scenario_table(passed) == table


def test_the_source_digest_follows_the_scenario_sources() -> None:
    digest = source_digest()
    assert digest == source_digest() and len(digest) == 64
