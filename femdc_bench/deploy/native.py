"""Deployment method `native`: OpenStack from PyPI venvs, MariaDB/memcached from the distro.

The Python side only prepares data (secrets, per-host variables) and reads the result
back; everything that happens on hosts is in playbooks/native/.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import yaml

from femdc_bench import ship
from femdc_bench.ansible import PLAYBOOKS, run_playbook
from femdc_bench.model import Cloud, Clouds, Experiment, Inventory

LOCK = PLAYBOOKS / "native" / "files" / "openstack.lock"
KEYSTONE_PORT = 5000
SECRET_KEYS = ("db_root", "keystone_db", "admin")


def lock_sha256(lock: Path = LOCK) -> str:
    return ship.lock_sha256(lock)


def venv_dir(lock: Path = LOCK) -> str:
    return ship.locked_venv("openstack", lock)


def lock_versions(lock: Path = LOCK) -> dict[str, str]:
    out = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            out[name.strip().lower()] = version.strip()
    return out


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """Random passwords for this run, in a 0600 file; reused by later phases."""
    if path.exists():
        return json.loads(path.read_text())
    values = {k: secrets.token_urlsafe(24) for k in SECRET_KEYS}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f)
    return values


def host_vars(exp: Experiment, inv: Inventory) -> Inventory:
    """Add the per-host variables the native playbooks need (see playbooks/native/README)."""
    hosts = []
    for h in inv.hosts:
        extra = dict(h.extra)
        if "keystone" in h.roles:
            db = inv.with_role("database", h.site)[0]
            extra.update(femdc_keystone_region=h.site, femdc_db_address=db.address)
        hosts.append(dataclasses.replace(h, extra=extra))
    return dataclasses.replace(inv, hosts=tuple(hosts))


def clouds_for(exp: Experiment, inv: Inventory) -> list[Cloud]:
    clouds = []
    for site in exp.site_names:
        ks_site = exp.deployment.keystone_site_for(site)
        ks = inv.with_role("keystone", ks_site)[0]
        clouds.append(Cloud(site=site, auth_url=f"http://{ks.address}:{KEYSTONE_PORT}/v3",
                            region=ks_site, keystone_site=ks_site))
    return clouds


def write_clouds_yaml(path: Path, clouds: list[Cloud], admin_password: str) -> None:
    doc = {"clouds": {
        c.site: {
            "auth": {"auth_url": c.auth_url, "username": "admin", "password": admin_password,
                     "project_name": "admin", "user_domain_name": "Default",
                     "project_domain_name": "Default"},
            "region_name": c.region,
            "identity_api_version": 3,
            "interface": "public",
        } for c in clouds}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)


def deploy(exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path, log: Path,
           on_task: Callable[[str], None] | None = None) -> Clouds:
    secrets_file = run_dir / "secrets.json"
    pw = load_or_create_secrets(secrets_file)
    venv = venv_dir()
    run_playbook(
        PLAYBOOKS / "native" / "deploy.yml", host_vars(exp, inv), run_dir=run_dir, log=log,
        on_task=on_task,
        extra_vars={
            "femdc_run": run_id,
            "femdc_venv_dir": venv,
            "femdc_lock_file": str(LOCK),
            "femdc_venv_on_controller": inv.shared_filesystem,
            "femdc_install_packages": inv.provider != "local",
            "femdc_python": "/usr/bin/python3",
            "femdc_keystone_workers": exp.deployment.keystone_workers,
            "femdc_results_dir": str(run_dir),
            "femdc_secrets": pw,
        })
    clouds = clouds_for(exp, inv)
    clouds_yaml = run_dir / "clouds.yaml"
    write_clouds_yaml(clouds_yaml, clouds, pw["admin"])
    versions = {k: v for k, v in lock_versions().items()
                if k in ("keystone", "keystoneauth1", "uwsgi", "sqlalchemy", "oslo.cache",
                         "pymysql", "python-memcached")}
    return Clouds(clouds=tuple(clouds), clouds_yaml=str(clouds_yaml),
                  secrets_file=str(secrets_file), agent_python=f"{venv}/bin/python",
                  versions=versions)


def destroy(inv: Inventory, *, run_id: str, run_dir: Path, log: Path) -> None:
    run_playbook(PLAYBOOKS / "native" / "destroy.yml", inv, run_dir=run_dir, log=log,
                 extra_vars={"femdc_run": run_id, "femdc_results_dir": str(run_dir)})
