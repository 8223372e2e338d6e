"""A run's results for analysis: DataFrames (`load`), exports, the HTML report."""

from femdc_bench.results.frames import RunFrames, load

__all__ = ["RunFrames", "load"]
