"""Measurement names, in one place: every writer and reader of femdc-bench uses these."""

from __future__ import annotations

from femdc_bench.model import API_FIELDS, API_TAGS

API = "api"  # one point per workload iteration, and one per atomic action of it
PROC = "proc"  # per-service process samples (metrics/sampler.py)
TCP = "tcp"  # a service's established TCP connections by peer site
HOST = "host"  # host CPU, memory, and per interface (tag iface) network bytes
DB = "db"  # database server samples
MQ = "mq"  # message queue samples
WAN = "wan"  # measured RTTs
EVENT = "event"  # phase and fault annotations
MEASUREMENTS: frozenset[str] = frozenset({API, PROC, TCP, HOST, DB, MQ, WAN, EVENT})
#: What the per-service sampler of every host writes.
SAMPLED: tuple[str, ...] = (PROC, TCP, HOST, DB, MQ)

#: Columns a row of `API` may have that are not extra fields of the sample.
API_COLUMNS = frozenset({*API_TAGS, *API_FIELDS, "time"})
