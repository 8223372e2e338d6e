#!/usr/bin/python3
# Run a host's WAN commands (femdc_bench.wan.commands.HostCommands) in one module call:
# the `remove` argv lists first, tolerating "already gone" answers, then the `add`
# argv lists, stopping at the first failure. Argument lists, never a shell. One call
# keeps the moment between removing the old emulation and adding the new one short.
#
# With `state` (a file path): when the commands equal those last applied on this host
# since its last boot, nothing is run (changed=false). Deleting and re-creating a root
# qdisc drops the packets queued in it, so re-applying identical rules must not touch
# them (e.g. a userspace sweep step that only changes delays, which live in the daemon).
# After a successful run the file records what was applied; it is deleted when `add`
# is empty (nothing of ours is left) or when a command failed (the state is unknown).
from __future__ import annotations

import contextlib
import json
import os
import re

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: femdc_argv
short_description: run femdc-bench WAN removal then creation commands (argv lists)
options:
  remove: {type: list, elements: list, default: [], description: "argv lists, may be gone"}
  add: {type: list, elements: list, default: [], description: argv lists, any failure fails}
  gone: {type: str, required: true, description: regex of stderr meaning "already gone"}
  state: {type: path, description: file recording the last applied commands}
  force: {type: bool, default: false, description: run even if identical to the state}
"""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _unlink(path: str | None) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "remove": {"type": "list", "elements": "list", "default": []},
            "add": {"type": "list", "elements": "list", "default": []},
            "gone": {"type": "str", "required": True},
            "state": {"type": "path"},
            "force": {"type": "bool", "default": False},
        },
        supports_check_mode=False,
    )
    p = module.params
    remove = [[str(a) for a in argv] for argv in p["remove"]]
    add = [[str(a) for a in argv] for argv in p["add"]]
    wanted = {"boot_id": _boot_id(), "remove": remove, "add": add}
    if p["state"] and not p["force"] and add:
        try:
            with open(p["state"]) as f:
                if json.load(f) == wanted:
                    module.exit_json(changed=False, skipped_identical=True, removed=0,
                                     already_gone=0, added=0)
        except (OSError, ValueError):
            pass

    gone = re.compile(p["gone"])
    removed, already_gone, added = [], [], []
    for argv in remove:
        rc, out, err = module.run_command(argv)
        if rc == 0:
            removed.append(argv)
        elif gone.search(err) or gone.search(out):
            already_gone.append(argv)
        else:
            _unlink(p["state"])
            module.fail_json(msg=f"removal failed: {' '.join(argv)}: {err.strip() or out.strip()}",
                             rc=rc, argv=argv, removed=removed)
    for argv in add:
        rc, out, err = module.run_command(argv)
        if rc != 0:
            _unlink(p["state"])
            module.fail_json(msg=f"failed: {' '.join(argv)}: {err.strip() or out.strip()}",
                             rc=rc, argv=argv, removed=removed, added=added)
        added.append(argv)
    if p["state"]:
        if add:
            tmp = f"{p['state']}.tmp"
            with open(tmp, "w") as f:
                json.dump(wanted, f)
            os.replace(tmp, p["state"])
        else:
            _unlink(p["state"])
    module.exit_json(changed=bool(removed or added), removed=len(removed),
                     already_gone=len(already_gone), added=len(added))


if __name__ == "__main__":
    main()
