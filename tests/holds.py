"""Test holds: a window at a known step of the pipeline in which a test acts (kills the
run's InfluxDB, or the CLI). Product code names none of this: the steps are wrapped
from outside.

A held step writes `<run>/tmp/hold-<name>` (the holder's pid) and waits until the test
removes it (at most FEMDC_TEST_HOLD_S, 600 s by default). Steps:
  `store`   a point's samples: connected to InfluxDB, nothing written yet
            (before InfluxWriter.write_samples);
  `stored`  a bench has stored its points (after bench.controller.bench returns);
  `backup`  before the archive is written (before backup.write_archive).

In this process: `install(["store"], monkeypatch)`. In a CLI started as a subprocess:
`env_with_holds(env, ["backup"])` names them in FEMDC_TEST_HOLD and puts
tests/holds_site/ (its sitecustomize installs them at interpreter start) on PYTHONPATH.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def hold(run_dir: Path, name: str) -> None:
    """Write <run>/tmp/hold-<name> and wait until it is removed."""
    flag = run_dir / "tmp" / f"hold-{name}"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text(f"{os.getpid()}\n")
    deadline = time.monotonic() + float(os.environ.get("FEMDC_TEST_HOLD_S", "600"))
    while flag.exists():
        if time.monotonic() > deadline:
            flag.unlink(missing_ok=True)
            raise RuntimeError(f"test hold {name}: {flag} was not removed in time")
        time.sleep(0.05)


def _steps() -> dict[str, tuple[Any, str, bool, Callable[..., Path]]]:
    """name -> (owner, attribute, hold after the call (else before), run dir of the args)."""
    from femdc_bench import backup
    from femdc_bench.bench import controller
    from femdc_bench.metrics.writer import InfluxWriter

    return {
        "store": (InfluxWriter, "write_samples", False,
                  lambda w, *a, **kw: w.spool_path.parent),
        "stored": (controller, "bench", True, lambda run, *a, **kw: run.dir),
        "backup": (backup, "write_archive", False, lambda run_dir, *a, **kw: Path(run_dir)),
    }


def _wrapped(name: str, fn: Callable[..., Any], after: bool,
             run_dir: Callable[..., Path]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def held(*args: Any, **kwargs: Any) -> Any:
        if not after:
            hold(run_dir(*args, **kwargs), name)
        out = fn(*args, **kwargs)
        if after:
            hold(run_dir(*args, **kwargs), name)
        return out

    return held


def install(names: Iterable[str], monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """Hold at each of `names` (with `monkeypatch`: undone at the test's end)."""
    steps = _steps()
    for name in names:
        owner, attr, after, run_dir = steps[name]
        new = _wrapped(name, getattr(owner, attr), after, run_dir)
        if monkeypatch is not None:
            monkeypatch.setattr(owner, attr, new)
        else:
            setattr(owner, attr, new)


def env_with_holds(env: dict[str, str], names: Iterable[str]) -> dict[str, str]:
    """`env` for a CLI subprocess that holds at `names`."""
    path = [str(ROOT / "tests" / "holds_site"), str(ROOT)]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    return {**env, "FEMDC_TEST_HOLD": ",".join(names), "PYTHONPATH": os.pathsep.join(path)}
