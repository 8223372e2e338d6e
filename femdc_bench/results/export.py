"""A run's tables as files for notebooks: CSV (a directory of files) or Parquet (one
file per table), from `load` (femdc_bench.results.frames): ``iterations``, ``actions``
(one row per iteration and per atomic action, with every tag), ``servers`` (the sampled
server metrics, long format), ``events`` and ``wan``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from femdc_bench.results.frames import RunFrames

TABLES = ("iterations", "actions", "servers", "events", "wan")
FORMATS = ("csv", "parquet")


def export_tables(frames: RunFrames, fmt: str, out: Path) -> dict[str, int]:
    """Write every table of `frames` under the directory `out` (replaced as a whole:
    written beside it first, then moved in place), plus ``meta.json``; returns the rows
    per table. Timestamps are UTC (ISO 8601 in CSV, ns timestamps in Parquet)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    counts: dict[str, int] = {}
    for name in TABLES:
        df = getattr(frames, name)
        path = tmp / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            df.to_parquet(path, index=False, engine="pyarrow")
        counts[name] = len(df)
    (tmp / "meta.json").write_text(json.dumps(
        {"run": frames.run, "source": frames.source, "params": frames.params,
         "rows": counts, **frames.meta}, indent=1, default=str))
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return counts
