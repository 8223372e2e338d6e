"""Stop this host's sampler by its pidfile (only if that PID runs the sampler).

    python3 stop_sampler.py PIDFILE

SIGTERM, up to 10 s for it to take its last sample and exit, then SIGKILL. Succeeds
when it is already gone.
"""

import os
import signal
import sys
import time


def main() -> int:
    pidfile = sys.argv[1]
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"femdc_bench.metrics.sampler" not in f.read():
                return 0
    except (OSError, ValueError):
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return 0
        except (OSError, IndexError):
            return 0
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
