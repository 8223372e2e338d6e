"""What every playbook run gets from femdc_bench/ansible.py's environment."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from femdc_bench import ansible


def test_playbooks_get_our_uv(tmp_path: Path) -> None:
    """The uv pinned in pyproject.toml, installed beside our interpreter by install.sh."""
    deps = tomllib.loads((ansible.PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = [d.split("==")[1] for d in deps["dependencies"] if d.startswith("uv==")]
    uv = ansible.uv_path()
    assert uv == str(Path(sys.executable).parent / "uv")  # pyproject's, beside us
    assert subprocess.run([uv, "--version"], capture_output=True, text=True,
                          check=True).stdout.startswith(f"uv {pin} ")
    assert ansible._env(tmp_path)["FEMDC_UV"] == uv
