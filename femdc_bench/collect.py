"""What the hosts tell about the deployment: versions, memory (PSS) and service logs,
fetched by playbooks/common/collect.yml into the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from femdc_bench.ansible import PLAYBOOKS, run_playbook
from femdc_bench.model import Inventory
from femdc_bench.rundir import Run


def collect(run: Run, inv: Inventory) -> None:
    """Fetch versions (for the manifest) and service logs from every host."""
    (run.dir / "versions").mkdir(exist_ok=True)
    run_playbook(PLAYBOOKS / "common" / "collect.yml", inv, run_dir=run.dir,
                 log=run.log("collect"), extra_vars={"femdc_results_dir": str(run.dir)})
    unpack_logs(run.dir / "logs" / "hosts")


def unpack_logs(hosts_dir: Path) -> None:
    """Each host's fetched <alias>.tar.gz into <alias>/ (replacing what an earlier collect
    brought), then the archive is removed. Only plain files, by base name: an archive
    cannot write outside its host's directory."""
    import shutil
    import tarfile

    for archive in sorted(hosts_dir.glob("*.tar.gz")):
        dest = hosts_dir / archive.name.removesuffix(".tar.gz")
        tmp = dest.with_name(dest.name + ".new")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar.getmembers():
                name = Path(m.name).name
                if not m.isfile() or not name or name != m.name:
                    continue
                src = tar.extractfile(m)
                if src is not None:
                    with src, open(tmp / name, "wb") as out:
                        shutil.copyfileobj(src, out)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        archive.unlink()


def deployment_memory(run: Run) -> dict[str, Any]:
    """PSS of the deployment's processes, per host and in all (from collect.yml)."""
    import json

    by_host: dict[str, Any] = {}
    for p in sorted((run.dir / "versions").glob("*.memory")):
        try:
            by_host[p.stem] = json.loads(p.read_text())
        except ValueError:
            continue
    total = round(sum(h.get("pss_mb", 0.0) for h in by_host.values()), 1)
    return {"memory_mb": total, "by_host": by_host}


def host_versions(run: Run) -> dict[str, Any]:
    import json

    out = {}
    for p in sorted((run.dir / "versions").glob("*.json")):
        out[p.stem] = json.loads(p.read_text())
    return out

