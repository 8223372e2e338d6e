"""Is every service this run started on this host still running?

For each pidfile under RUNDIR (the service role's `run/<service>.pid`, written with the
digest the service was started with), the process must exist and not be a zombie.
Prints one line per service that is not running and exits 1 if there is any.

    python3 running.py RUNDIR
"""

import os
import sys


def main() -> int:
    rundir = sys.argv[1]
    dead = []
    names = sorted(n[:-4] for n in os.listdir(rundir) if n.endswith(".pid"))
    for name in names:
        try:
            with open(os.path.join(rundir, name + ".pid")) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            state = "gone"
        if state in ("Z", "X", "gone"):
            dead.append(f"{name}: not running ({state})")
    if not os.path.exists(rundir) or not names:
        dead.append("no service of this run was started here")
    print("\n".join(dead) or f"{len(names)} services running")
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main())
