"""roles/service under systemd: what the qemu guest run (tests/testbed) showed.

The run-named unit has no [Install] section (it is never started at boot), so
`systemctl is-enabled` answers "static" with rc 0, which ansible's systemd module takes
for "enabled": a task with `enabled: false` on it runs `systemctl disable` and reports a
change on every deploy, breaking deploy.yml's "a second run changes nothing"."""

from __future__ import annotations

import yaml

from tests.unit.playbook_files import PLAYBOOKS

ROLE = PLAYBOOKS / "native" / "roles" / "service"


def _tasks(tasks: list[dict]) -> list[dict]:
    out = []
    for t in tasks:
        out.append(t)
        out += _tasks(t.get("block", []))
    return out


def test_the_unit_is_static_and_its_tasks_do_not_ask_systemd_to_enable_or_disable_it() -> None:
    unit = (ROLE / "templates" / "unit.service.j2").read_text()
    assert "[Service]" in unit and "[Install]" not in unit
    for name in ("start.yml", "stop.yml"):
        tasks = _tasks(yaml.safe_load((ROLE / "tasks" / name).read_text()))
        on_unit = [t["ansible.builtin.systemd"] for t in tasks if "ansible.builtin.systemd" in t
                   and "service_unit" in str(t["ansible.builtin.systemd"].get("name", ""))]
        assert on_unit, name
        assert all("enabled" not in args for args in on_unit), (name, on_unit)
