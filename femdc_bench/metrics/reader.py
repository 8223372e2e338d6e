"""`InfluxReader`: the raw ``api`` points of a run back into `Sample` objects."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from femdc_bench.metrics.client import InfluxClient
from femdc_bench.metrics.names import API, API_COLUMNS
from femdc_bench.model import Sample

# --------------------------------------------------------------------------- reader


def _sample_from_row(row: Mapping[str, Any]) -> Sample:
    def s(key: str) -> str:
        v = row.get(key)
        return "" if v is None else str(v)

    duration = row.get("duration_ms")
    iteration = row.get("iteration")
    # Extra fields: the numeric columns that are neither tags nor the fixed fields (tags,
    # such as a sweep point's parameters, are strings; a field a point lacks is None).
    fields = {
        str(k): float(v)
        for k, v in row.items()
        if k not in API_COLUMNS
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    }
    return Sample(
        site=s("site"),
        target_site=s("target_site"),
        service=s("service"),
        operation=s("operation"),
        t0_ns=int(row["time"]),
        duration_ms=math.nan if duration is None else float(duration),
        status=s("status"),
        error=s("error"),
        host=s("host"),
        iteration=0 if iteration is None else int(iteration),
        action=s("action"),
        fields=fields,
        workload=s("workload"),
    )


class InfluxReader:
    """Reads raw points back (no aggregation in the database: the report computes)."""

    def __init__(self, client: InfluxClient) -> None:
        self.client = client

    def api_samples_by_point(self, run: str, point: str | None = None) -> dict[str, list[Sample]]:
        """The run's `API` points as Samples, grouped by their ``point`` tag, time-ordered."""
        where = {"run": run}
        if point is not None:
            where["point"] = point
        out: dict[str, list[Sample]] = {}
        for row in self.client.rows(API, where):
            p = row.get("point")
            out.setdefault("" if p is None else str(p), []).append(_sample_from_row(row))
        for samples in out.values():
            samples.sort(key=lambda x: x.t0_ns)
        return out

    def api_samples(self, run: str, point: str | None = None) -> list[Sample]:
        """The run's (or one sweep point's) `API` points as Samples, time-ordered."""
        merged = [s for ss in self.api_samples_by_point(run, point).values() for s in ss]
        merged.sort(key=lambda x: x.t0_ns)
        return merged

    def count(self, run: str, measurement: str = API, field_name: str = "iteration") -> int:
        """Number of points of `measurement` for `run` (counting `field_name`)."""
        return self.client.count(measurement, field_name, {"run": run})
