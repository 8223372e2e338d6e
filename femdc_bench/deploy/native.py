"""Deployment method `native`: OpenStack from PyPI venvs, MariaDB/memcached from the distro.

The Python side only prepares data (secrets, per-host variables) and reads the result
back; everything that happens on hosts is in playbooks/native/.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import yaml

from femdc_bench import catalog, ship
from femdc_bench.ansible import PLAYBOOKS, AnsibleError, run_playbook
from femdc_bench.metrics.sampler import SELF as SAMPLER
from femdc_bench.model import Cloud, Clouds, Experiment, Inventory

LOCK = PLAYBOOKS / "native" / "files" / "openstack.lock"
KEYSTONE_PORT = catalog.KEYSTONE.ports[0]
# Every generated secret (the catalog's records name them): URL-safe (they go unquoted
# into SQL, URLs and INI files).
SECRET_KEYS = catalog.secret_keys()
# Keystone's fernet and credential keys (0 = staged, 1 = primary), shared by every Keystone
# of the run: Keystones over one database (central, Galera) must decrypt each other's
# tokens. A fernet key is 32 random bytes, URL-safe base64 (44 characters with '=').
KEY_KEYS = catalog.key_keys()
# Libraries whose versions the manifest records beside the services' packages.
MANIFEST_LIBRARIES = ("keystoneauth1", "uwsgi", "sqlalchemy", "oslo.cache", "pymysql",
                      "python-memcached", "oslo.messaging", "ovsdbapp")


def _new_secret(key: str) -> str:
    if key in KEY_KEYS:
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return secrets.token_urlsafe(24)


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
    """Random passwords for this run, in a 0600 file; reused by later phases (a key
    added since the file was written is generated and saved)."""
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [k for k in (*SECRET_KEYS, *KEY_KEYS) if k not in values]
    if not missing:
        return values
    values.update({k: _new_secret(k) for k in missing})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f)
    os.replace(tmp, path)
    return values


def compute_hosts(alias: str, n: int) -> list[str]:
    """Host names of the fake nova-compute services of a host: <alias>-c001, ..."""
    return [f"{alias}-c{i:03d}" for i in range(1, n + 1)]


def keystone_url(inv: Inventory, site: str, tls: bool = False) -> str:
    scheme = "https" if tls else "http"
    address = _url_host(inv.with_role("keystone", site)[0].address)
    return f"{scheme}://{address}:{KEYSTONE_PORT}/v3"


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def region_computes(exp: Experiment, inv: Inventory) -> dict[str, int]:
    """How many nova-compute services each region has (its compute hosts' `computes`)."""
    computes = {h.name: h.computes for s in exp.sites for h in s.hosts}
    out: dict[str, int] = {}
    for h in inv.with_role("compute"):
        region = exp.deployment.region_for(h.site)
        out[region] = out.get(region, 0) + computes.get(h.alias, 1)
    return out


def host_vars(exp: Experiment, inv: Inventory,
              certs: dict[str, tls.HostCert] | None = None) -> Inventory:
    """Add the per-host variables the native playbooks need (see playbooks/native/README).
    `certs`: with deployment.tls, each host's certificate (femdc_tls_{ca,cert,key}_file: controller
    paths of its cert, key and the run's CA, which the host role copies to the host)."""
    d = exp.deployment
    computes = {h.name: h.computes for s in exp.sites for h in s.hosts}
    per_region = region_computes(exp, inv)

    def db_address(site: str) -> str:
        return inv.with_role("database", d.database_site_for(site))[0].address

    galera = [h for h in inv.with_role("database")] if d.database == "galera" else []
    # Keystones over one database: the first one creates the schema, the others follow.
    shared_db = d.database in ("central", "galera")
    first_keystone = next(iter(inv.with_role("keystone")), None)

    def ks_url(site: str) -> str:
        return keystone_url(inv, site, d.tls)

    hosts = []
    for h in inv.hosts:
        extra = dict(h.extra)
        if certs is not None:
            # flat strings: EnOSlib's INI inventory cannot quote a mapping
            extra.update({f"femdc_tls_{k}_file": v for k, v in certs[h.alias].to_vars().items()})
        if galera and "database" in h.roles:
            extra.update(femdc_galera_nodes=[g.address for g in galera],
                         femdc_galera_first=h.alias == galera[0].alias,
                         femdc_galera_joiner=h.alias != galera[0].alias)
        if "keystone" in h.roles:
            extra.update(femdc_keystone_region=h.site, femdc_db_address=db_address(h.site),
                         femdc_keystone_primary=not shared_db or h is first_keystone)
        if "control" in h.roles:
            extra.update(femdc_region=h.site, femdc_db_address=db_address(h.site),
                         femdc_keystone_url=ks_url(d.keystone_site_for(h.site)),
                         femdc_region_computes=per_region.get(h.site, 0))
        if "compute" in h.roles:
            region = d.region_for(h.site)
            extra.update(femdc_region=region,
                         femdc_control_address=inv.with_role("control", region)[0].address,
                         femdc_keystone_url=ks_url(d.keystone_site_for(region)),
                         femdc_compute_hosts=compute_hosts(h.alias, computes.get(h.alias, 1)))
        hosts.append(dataclasses.replace(h, extra=extra))
    return dataclasses.replace(inv, hosts=tuple(hosts))


def clouds_for(exp: Experiment, inv: Inventory,
               auth_url: Callable[[Inventory, str], str] | None = None) -> list[Cloud]:
    """One cloud per site: its region and the Keystone that serves it, whose URL
    `auth_url(inv, keystone_site)` gives (each deployment method serves Keystone at its
    own URL; the layout is the same; default: the native one, https with tls)."""
    d = exp.deployment
    if auth_url is None:
        def auth_url(inv: Inventory, site: str) -> str:
            return keystone_url(inv, site, d.tls)
    clouds = []
    for site in exp.site_names:
        ks_site = d.keystone_site_for(site)
        region = d.region_for(site)
        clouds.append(Cloud(site=site, auth_url=auth_url(inv, ks_site), region=region,
                            keystone_site=ks_site, region_site=region, services=d.services))
    return clouds


def write_clouds_yaml(path: Path, clouds: list[Cloud], admin_password: str,
                      ca_file: str | None = None) -> None:
    """clouds.yaml, one cloud per site (0600: it holds the admin password); `ca_file`:
    the run's CA, which openstacksdk and the openstack CLI then verify against."""
    doc = {"clouds": {
        c.site: {
            "auth": {"auth_url": c.auth_url, "username": "admin", "password": admin_password,
                     "project_name": "admin", "user_domain_name": "Default",
                     "project_domain_name": "Default"},
            "region_name": c.region,
            "identity_api_version": 3,
            "interface": "public",
            **({"cacert": ca_file} if ca_file else {}),
        } for c in clouds}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)


def deploy(exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path, log: Path,
           on_task: Callable[[str], None] | None = None) -> Clouds:
    secrets_file = run_dir / "secrets.json"
    pw = load_or_create_secrets(secrets_file)
    venv = venv_dir()
    ca_file = None
    certs = None
    if exp.deployment.tls:
        from femdc_bench.deploy import tls  # cryptography: ~50 ms, only for a TLS deploy

        certs = tls.host_certs(run_dir, run_id, inv)
        ca_file = str(tls.ensure_ca(run_dir, run_id))
    hosts = host_vars(exp, inv, certs)
    extra_vars = {
        "femdc_run": run_id,
        "femdc_venv_dir": venv,
        "femdc_lock_file": str(LOCK),
        "femdc_venv_on_controller": inv.shared_filesystem,
        "femdc_install_packages": inv.provider != "local",
        "femdc_python": "/usr/bin/python3",
        "femdc_keystone_workers": exp.deployment.keystone_workers,
        "femdc_api_workers": exp.deployment.api_workers,
        "femdc_results_dir": str(run_dir),
        "femdc_secrets": pw,
        "femdc_tls": exp.deployment.tls,
        **catalog.ansible_vars(),
    }
    # Nothing changed since the last successful deploy: check that it is still whole
    # (processes alive, APIs answering) instead of walking every role again; anything
    # missing runs the whole deploy.
    digest = inputs_digest(hosts, extra_vars)
    marker = run_dir / "deploy.digest"
    unchanged = marker.exists() and marker.read_text().strip() == digest
    if unchanged:
        try:
            run_playbook(PLAYBOOKS / "native" / "verify.yml", hosts, run_dir=run_dir, log=log,
                         on_task=on_task, extra_vars=extra_vars)
        except AnsibleError:
            unchanged = False
    if not unchanged:
        marker.unlink(missing_ok=True)
        run_playbook(PLAYBOOKS / "native" / "deploy.yml", hosts, run_dir=run_dir, log=log,
                     on_task=on_task, extra_vars=extra_vars)
        marker.write_text(digest + "\n")
    clouds = clouds_for(exp, inv)
    clouds_yaml = run_dir / "clouds.yaml"
    write_clouds_yaml(clouds_yaml, clouds, pw["admin"], ca_file)
    versions = {k: v for k, v in lock_versions().items()
                if k in (*catalog.packages(), *MANIFEST_LIBRARIES)}
    return Clouds(clouds=tuple(clouds), clouds_yaml=str(clouds_yaml),
                  secrets_file=str(secrets_file), agent_python=f"{venv}/bin/python",
                  versions=versions, ca_file=ca_file)


def inputs_digest(inv: Inventory, extra_vars: dict[str, object]) -> str:
    """sha256 of everything a deploy depends on: the playbooks tree (roles, templates,
    library, the lock), the hosts with their variables, and the extra vars."""
    h = hashlib.sha256()
    for path in sorted((PLAYBOOKS / "native").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(PLAYBOOKS)).encode() + b"\0" + path.read_bytes())
    h.update(json.dumps([dataclasses.asdict(x) for x in inv.hosts], sort_keys=True,
                        default=str).encode())
    h.update(json.dumps(extra_vars, sort_keys=True, default=str).encode())
    return h.hexdigest()


def stop_stages() -> list[list[list[str]]]:
    """destroy.yml's stop stages: the catalog's, a bench's sampler (a killed CLI may
    have left one) stopped first with the computes."""
    stages = catalog.stop_stages()
    stages[0].insert(0, [SAMPLER, "python3"])
    return stages


def destroy(inv: Inventory, *, run_id: str, run_dir: Path, log: Path) -> None:
    run_playbook(PLAYBOOKS / "native" / "destroy.yml", inv, run_dir=run_dir, log=log,
                 extra_vars={"femdc_run": run_id, "femdc_results_dir": str(run_dir),
                             "femdc_stop_stages": stop_stages()})


# ------------------------------------------------------------------ the registry's entry

import typing  # noqa: E402  (this section is appended: the top is another concern's)

if typing.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from femdc_bench.deploy import Phase, tls
    from femdc_bench.model import DeploymentSpec, SiteSpec


class Native:
    """deployment.method native (deploy/__init__.py: Method): our playbooks, every
    layout, TLS, service faults."""

    name = "native"
    tls = True
    service_faults = True

    def options(self, file: str, d: Mapping[str, Any], names: Sequence[str]
                ) -> dict[str, Any]:
        from femdc_bench.deploy import refuse_others
        from femdc_bench.errors import ExperimentError

        if d.get("release") is not None:
            raise ExperimentError(file, "deployment.release", "not used by method native "
                                  "(its versions come from playbooks/native/files/"
                                  "openstack.lock)")
        refuse_others(file, d, self)
        return {}

    def validate(self, file: str, dep: DeploymentSpec) -> None:
        pass  # every layout

    def validate_hosts(self, file: str, dep: DeploymentSpec, sites: Sequence[SiteSpec],
                       index: Mapping[str, int]) -> None:
        pass  # any roles on any host

    def deploy(self, exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path,
               log: Path, on_task: Callable[[str], None] | None = None,
               phase: Phase | None = None) -> Clouds:
        return deploy(exp, inv, run_id=run_id, run_dir=run_dir, log=log, on_task=on_task)

    def destroy(self, exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path,
                log: Path) -> None:
        destroy(inv, run_id=run_id, run_dir=run_dir, log=log)


    def manifest(self, exp: Experiment) -> dict[str, Any]:
        return {"lock_sha256": lock_sha256()}


METHOD = Native()
