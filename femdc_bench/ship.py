"""What femdc-bench ships to hosts: venvs named by their lock, and zips of package parts.

One place for both, shared by the deployment (service venv, workload agent) and the
WAN fallback (netfilterqueue venv, delay daemon).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
VENV_ROOT = "/var/cache/femdc-bench/venvs"


def lock_sha256(lock: Path) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def locked_venv(name: str, lock: Path) -> str:
    """`/var/cache/femdc-bench/venvs/<name>-<sha256(lock)[:12]>`: a venv built from `lock`
    is reused by every run whose lock is the same."""
    return f"{VENV_ROOT}/{name}-{lock_sha256(lock)[:12]}"


def package_zip(path: Path, files: Iterable[str]) -> Path:
    """Zip `files` (paths relative to the femdc_bench package) as `femdc_bench/<file>`,
    importable with the zip on PYTHONPATH. Entries carry a fixed timestamp so that the
    zip, and its checksum, only change when the code does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in files:
            info = zipfile.ZipInfo(f"femdc_bench/{name}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, (PACKAGE / name).read_bytes())
    return path
