"""The experiment file: one package, a module per job.

- `schema.py`: the schema literal and the one-line message of its first error;
- `layout.py`: which hosts each site needs for the deployment's layout;
- `loading.py`: `load` / `parse`: read, check, build the Experiment (model.py);
- units and ranges (`25ms`, `100mbit`, `0.1%`, `edge[1-8]`) are `femdc_bench/units.py`,
  `ExperimentError` is `femdc_bench/errors.py`: leaves that the providers' and the
  deployment methods' own checks (providers/*.py, deploy/*.py) import without this
  package (which imports them).

Every public name is here: ``from femdc_bench.experiment import load, ExperimentError``.
"""

from __future__ import annotations

from typing import Any

from femdc_bench.errors import ExperimentError
from femdc_bench.experiment.loading import load, parse, scenario_table, schema_key
from femdc_bench.model import ROLES
from femdc_bench.units import (
    MAX_HOSTS,
    MAX_RANGE,
    duration_ms,
    expand_range,
    percent,
    rate_kbit,
)

__all__ = ["MAX_HOSTS", "MAX_RANGE", "ROLES", "SCHEMA", "ExperimentError", "duration_ms",
           "expand_range", "load", "parse", "percent", "rate_kbit", "scenario_table", "schema_key"]


def __getattr__(name: str) -> Any:
    """SCHEMA: the full schema, scenario names included (importing the scenarios: only
    when asked)."""
    if name == "SCHEMA":
        from femdc_bench.experiment import schema

        return schema.full()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
