"""Errors and waiting of the workload's jobs: a leaf (standard library only) that the
contexts (context.py, task_contexts.py), the service layer (services/) and the
scenarios import, so that none of them imports another for these."""

from __future__ import annotations

import time
from typing import Any


class SetupError(RuntimeError):
    """The job cannot run: authentication, catalog or scenario setup failed."""


class WaitTimeout(RuntimeError):
    """A resource did not reach the awaited state in time."""


class ResourceFailed(RuntimeError):
    """A resource went into an error state while being waited for."""


def wait_for(
    get: Any,
    done: Any,
    *,
    what: str,
    timeout_s: float,
    poll_s: float,
    failed: Any = None,
    delay_first: bool = True,
) -> Any:
    """Call `get()` until `done(value)`; return that value.

    Sleeps `poll_s` before each call (before the first one too when `delay_first`).
    `failed(value)` returns an error message to stop at once (raises ResourceFailed).
    After `timeout_s` raises WaitTimeout: a wait never hangs. The deadline uses the
    monotonic clock; how long the wait took is the runner's to measure.
    """
    deadline = time.monotonic() + timeout_s
    first = True
    while True:
        if delay_first or not first:
            time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))
        first = False
        value = get()
        if done(value):
            return value
        if failed is not None:
            msg = failed(value)
            if msg:
                raise ResourceFailed(f"{what}: {msg}")
        if time.monotonic() >= deadline:
            state = value.get("status") if isinstance(value, dict) else value
            raise WaitTimeout(f"{what}: still {state!r} after {timeout_s:g} s")
