"""Load a Python file shipped with the playbooks (an ansible module, a host script) as a
module, for unit tests of its logic."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PLAYBOOKS = Path(__file__).parents[2] / "playbooks"


def load(relative: str) -> ModuleType:
    """playbooks/<relative> as a module named after the file."""
    path = PLAYBOOKS / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
