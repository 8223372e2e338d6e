"""Reports: statistics over the samples read back from InfluxDB, SLA check, rendering."""

from femdc_bench.report.render import stats_json, stats_table
from femdc_bench.report.stats import (
    StatsRow,
    action_rows,
    check_sla,
    check_sla_spec,
    compute_stats,
    compute_stats_by_point,
    iteration_rows,
)
from femdc_bench.workload.percentile import percentile

__all__ = [
    "StatsRow",
    "action_rows",
    "check_sla",
    "check_sla_spec",
    "compute_stats",
    "compute_stats_by_point",
    "iteration_rows",
    "percentile",
    "stats_json",
    "stats_table",
]
