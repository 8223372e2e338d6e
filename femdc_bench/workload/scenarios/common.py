"""Small helpers shared by the scenario modules (no timing here: the runner times)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

from keystoneauth1 import adapter as ks_adapter

from femdc_bench.workload.context import JobContext

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
WAIT_ARGS: dict[str, Any] = {"poll_interval": 0.5, "timeout": 120.0}


class ScenarioFailed(RuntimeError):
    """The cloud answered, but not what the scenario checks (e.g. a created item not listed)."""


def teardown_tracked(job: JobContext) -> list[str]:
    """Delete every resource the job tracked; return the failures."""
    return job.delete_tracked()


def is_uuid(value: str) -> bool:
    return bool(UUID.fullmatch(value))


def random_cidr(prefix: int = 24) -> str:
    """A random 10.x.y.0/24 (or 10.x.0.0/16): overlapping CIDRs are fine in Neutron."""
    if prefix == 16:
        return f"10.{random.randrange(256)}.0.0/16"
    return f"10.{random.randrange(256)}.{random.randrange(256)}.0/24"


def wait_args(args: dict[str, Any]) -> tuple[float, float]:
    """(poll_interval, timeout) from the scenario args, checked."""
    poll, timeout = float(args["poll_interval"]), float(args["timeout"])
    if poll <= 0 or timeout <= 0:
        raise ValueError("poll_interval and timeout must be > 0")
    return poll, timeout


class RepeatedBytes:
    """`size` bytes made of `block` repeated, as a request body with a Content-Length.

    Iterating yields the block (and a last partial one): no copy of the data is made,
    so any size costs the memory of one block.
    """

    def __init__(self, block: bytes, size: int) -> None:
        if not block or size < 0:
            raise ValueError("RepeatedBytes needs a non-empty block and size >= 0")
        self.block = block
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        full, rest = divmod(self.size, len(self.block))
        for _ in range(full):
            yield self.block
        if rest:
            yield self.block[:rest]


def pages(
    api: ks_adapter.Adapter,
    path: str,
    key: str,
    params: dict[str, Any] | None = None,
    *,
    strip_prefix: str = "",
) -> list[dict[str, Any]]:
    """Every item of a listing, following its "next" links (Nova ``<key>_links``,
    Glance ``next``). `strip_prefix` removes a version prefix Glance puts in its links."""
    body = api.get(path, params=params).json()
    items: list[dict[str, Any]] = list(body[key])
    while True:
        nxt = body.get("next")
        for link in body.get(f"{key}_links", ()):
            if link.get("rel") == "next":
                nxt = link.get("href")
        if not nxt:
            return items
        if strip_prefix and nxt.startswith(strip_prefix):
            nxt = nxt[len(strip_prefix) :]
        body = api.get(nxt).json()
        items.extend(body[key])
