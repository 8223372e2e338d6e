"""Units of an experiment file (`25ms`, `100mbit`, `0.1%`) and name ranges (`edge[1-8]`).

Standard library only, and outside the experiment package: the providers' checks
(providers/*.py) expand ranges in their own keys, and the experiment package imports
them (a module of the package there would close an import circle)."""

from __future__ import annotations

import re

_DURATION = r"^[0-9]+(\.[0-9]+)?(us|ms|s)$"
_RATE = r"^[0-9]+(\.[0-9]+)?([kmgKMG]?bit)$"
_PERCENT = r"^[0-9]+(\.[0-9]+)?%$"
_NAME = r"^[a-z][a-z0-9-]*(\[[0-9]+-[0-9]+\][a-z0-9-]*)?$"

_DUR_FACTOR_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_RATE_FACTOR_KBIT = {"bit": 0.001, "kbit": 1.0, "mbit": 1000.0, "gbit": 1_000_000.0}


def duration_ms(text: str) -> float:
    m = re.match(r"^([0-9]+(?:\.[0-9]+)?)(us|ms|s)$", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * _DUR_FACTOR_MS[m.group(2)]


def rate_kbit(text: str) -> float:
    m = re.match(r"^([0-9]+(?:\.[0-9]+)?)([kmg]?bit)$", text.lower())
    if not m:
        raise ValueError(f"not a rate: {text!r}")
    return float(m.group(1)) * _RATE_FACTOR_KBIT[m.group(2)]


def percent(text: str) -> float:
    return float(text.rstrip("%"))


#: at most this many names from one range (`edge[1-1000]`), and hosts in an experiment
MAX_RANGE = 1000
MAX_HOSTS = 2000


def expand_range(name: str) -> list[str]:
    """``edge[1-3]`` -> edge1, edge2, edge3; ``n[01-10]`` keeps the zero padding.

    ValueError for a range of more than MAX_RANGE names or an empty one."""
    m = re.match(r"^(.*)\[([0-9]+)-([0-9]+)\](.*)$", name)
    if not m:
        return [name]
    prefix, lo, hi, suffix = m.groups()
    n = int(hi) - int(lo) + 1
    if n > MAX_RANGE:
        raise ValueError(f"range {name!r} names {n} items; at most {MAX_RANGE}")
    if n < 1:
        raise ValueError(f"range {name!r} is empty (its end is before its start)")
    width = len(lo) if lo.startswith("0") else 0
    return [f"{prefix}{i:0{width}d}{suffix}" for i in range(int(lo), int(hi) + 1)]

