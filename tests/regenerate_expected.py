"""Rewrite the expected files of the golden-file tests, on purpose and by hand.

The tests compare rendered files with the ones under tests/unit/data/ and never write
them (a test that rewrites its expectation cannot fail). After a deliberate change to a
template or a renderer, run

    .venv/bin/python tests/regenerate_expected.py [devstack] [kolla]

review `git diff tests/unit/data`, and commit the files with the change. `--into DIR`
writes the trees under DIR instead (DIR/devstack/..., DIR/kolla/...).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "unit" / "data"


def devstack_files() -> dict[str, str]:
    """layout/<alias>.local.conf -> text, as tests/unit/deploy/test_devstack.py renders them."""
    from tests.unit.deploy.test_devstack import layouts, rendered

    return {f"{layout}/{alias}.local.conf": text
            for layout in sorted(layouts()) for alias, text in rendered(layout)[2].items()}


def kolla_files() -> dict[str, str]:
    """layout/<path> -> text, as tests/unit/deploy/test_kolla.py renders them."""
    from tests.unit.deploy.test_kolla import LAYOUTS, rendered

    return {f"{layout}/{rel}": text for layout in LAYOUTS for rel, text in rendered(layout).items()}


SETS: dict[str, Callable[[], dict[str, str]]] = {"devstack": devstack_files,
                                                  "kolla": kolla_files}


def write_tree(base: Path, files: dict[str, str]) -> None:
    """Make `base` hold exactly `files` (stale expected files are removed)."""
    if base.exists():
        for old in sorted(base.rglob("*"), reverse=True):
            if old.is_file():
                old.unlink()
            elif old.is_dir() and not any(old.iterdir()):
                old.rmdir()
    for rel, text in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", metavar="SET",
                    help=f"which expected files: {', '.join(SETS)} (default: all)")
    ap.add_argument("--into", type=Path, default=DATA, help="where (default: tests/unit/data)")
    args = ap.parse_args(argv)
    if unknown := sorted(set(args.sets) - set(SETS)):
        ap.error(f"unknown set {unknown[0]!r}: expected one of {', '.join(SETS)}")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for name in args.sets or list(SETS):
        files = SETS[name]()
        write_tree(args.into / name, files)
        print(f"{args.into / name}: {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
