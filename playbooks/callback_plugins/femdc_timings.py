"""Where a playbook's time goes: one line per task, appended to $FEMDC_TASK_TIMINGS.

femdc-bench enables this callback for every playbook it runs (femdc_bench/ansible.py);
the file is `<log>.tasks.tsv` beside the phase's log. A task's time runs from its start
to the next task's start (the linear strategy: all hosts of a task together), so the
lines add up to the playbook's duration. Slowest first, after a `# <time> <playbook>
<total>s` header.
"""

from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: femdc_timings
    type: aggregate
    short_description: per-task durations to $FEMDC_TASK_TIMINGS
    description: Appends the duration of every task of the run, slowest first.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "femdc_timings"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._times: dict[str, float] = {}
        self._current: str | None = None
        self._t = time.monotonic()
        self._t0 = self._t
        self._playbook = ""

    def _close(self) -> None:
        now = time.monotonic()
        if self._current is not None:
            self._times[self._current] = self._times.get(self._current, 0.0) + now - self._t
        self._current, self._t = None, now

    def v2_playbook_on_start(self, playbook) -> None:  # noqa: ANN001 - ansible's API
        self._playbook = os.path.basename(playbook._file_name)

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:  # noqa: ANN001
        self._close()
        role = task._role.get_name() if task._role else ""
        name = task.get_name().strip()
        self._current = f"{role} : {name}" if role and not name.startswith(role) else name

    def v2_playbook_on_handler_task_start(self, task) -> None:  # noqa: ANN001
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats) -> None:  # noqa: ANN001
        self._close()
        path = os.environ.get("FEMDC_TASK_TIMINGS")
        if not path or not self._times:
            return
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"# {time.strftime('%Y-%m-%dT%H:%M:%S')} {self._playbook} "
                    f"{time.monotonic() - self._t0:.1f}s\n")
            for task, s in sorted(self._times.items(), key=lambda kv: -kv[1]):
                f.write(f"{s:.1f}\t{task}\n")
