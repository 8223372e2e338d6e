"""Shared by the end-to-end tests: a results directory whose runs are destroyed after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_local_run import femdc


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root (network namespaces, sshd)")
    path = tmp_path_factory.mktemp("results")
    yield path
    # A failed test may leave a kept run up: destroy whatever still has hosts.
    for run_dir in path.iterdir():
        if (run_dir / "provider" / "state.json").exists():
            femdc(path, "destroy", run_dir.name)
