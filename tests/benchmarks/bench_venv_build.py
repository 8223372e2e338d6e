"""A locked venv built by pip and by uv, cold, same lock (issue 23, item 6: the deploy's
time went to pip building the OpenStack venv).

    python tests/benchmarks/bench_venv_build.py [--lock playbooks/native/files/openstack.lock]
        [--installers pip,uv] [--repeat 1] [--python /usr/bin/python3] [--keep]

Each build is femdc_locked_venv.build() (the module every locked venv goes through) into
a new temporary directory: `python -m venv`, the install with no cache (pip
--no-cache-dir, uv --no-cache: every package downloaded and every sdist built, uWSGI
compiled), then the same self-test as the deployment (uwsgi --pyrun for the OpenStack
lock, an import otherwise). Prints the seconds of each build and the median per
installer. Run it under the machine's heavy lock: it compiles.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.unit.playbook_files import load  # noqa: E402

MODULE = "common/library/femdc_locked_venv.py"
SELFTEST = REPO / "playbooks" / "native" / "roles" / "venv" / "files" / "selftest.py"


def one_build(mod, lock: Path, installer: str, python: str, keep: bool) -> float:  # noqa: ANN001
    sha = hashlib.sha256(lock.read_bytes()).hexdigest()
    tmp = Path(tempfile.mkdtemp(prefix=f"femdc-venv-{installer}-"))
    venv = tmp / f"bench-{sha[:12]}"
    if lock.name == "openstack.lock":
        selftest, expect = [f"{venv}/bin/uwsgi", f"--pyrun={SELFTEST}"], "femdc self-test ok"
    else:
        selftest, expect = [f"{venv}/bin/python", "-c", "print('built')"], "built"
    uv = str(Path(sys.executable).parent / "uv") if installer == "uv" else ""
    t0 = time.monotonic()
    res = mod.build({"venv": str(venv), "lock": str(lock), "sha256": sha, "python": python,
                     "selftest": selftest, "expect": expect, "uv": uv, "wait": 60})
    took = time.monotonic() - t0
    assert res["installer"] == installer, res
    if not keep:
        shutil.rmtree(tmp)
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lock", type=Path,
                    default=REPO / "playbooks" / "native" / "files" / "openstack.lock")
    ap.add_argument("--installers", default="pip,uv")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    mod = load(MODULE)
    times: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for installer in args.installers.split(","):
            took = one_build(mod, args.lock, installer, args.python, args.keep)
            times.setdefault(installer, []).append(took)
            print(f"{args.lock.name} {installer}: {took:.1f} s", flush=True)
    for installer, ts in times.items():
        print(f"{args.lock.name} {installer}: median {statistics.median(ts):.1f} s over {len(ts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
