"""The compute pool launcher's per-compute files (written before any nova-compute starts)."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.unit.playbook_files import load

POOL = "native/roles/nova_compute/files/compute_pool.py"  # under playbooks/


def test_each_compute_gets_its_state_dir_and_options(tmp_path: Path) -> None:
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    instances = [{"host": f"edge1-cmp-c{i:03d}", "config": str(etc / f"edge1-cmp-c{i:03d}.conf"),
                  "state_path": str(state / f"edge1-cmp-c{i:03d}"),
                  "log_file": f"/logs/nova-compute-edge1-cmp-c{i:03d}.log"} for i in (1, 2)]
    (etc / "edge1-cmp-c001.conf").write_text("[DEFAULT]\nhost = stale\n")  # a redeploy
    load(POOL).write_instance_files(instances)
    for inst in instances:
        text = Path(inst["config"]).read_text()
        assert f"host = {inst['host']}\n" in text
        assert f"state_path = {inst['state_path']}\n" in text
        assert f"log_file = {inst['log_file']}\n" in text
        assert "stale" not in text
        assert stat.S_IMODE(Path(inst["state_path"]).stat().st_mode) == 0o700
    assert sorted(p.name for p in etc.iterdir()) == ["edge1-cmp-c001.conf", "edge1-cmp-c002.conf"]
