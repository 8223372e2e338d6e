"""Deployment method `devstack`: DevStack's stack.sh on every host that runs OpenStack.

The Python side renders one local.conf per host from playbooks/devstack/templates/
(`render`, pure) and the clouds the run's users see (`clouds`, pure); `deploy` writes
them into the run directory and runs playbooks/devstack/deploy.yml, which prepares each
host, runs stack.sh (the Keystone host first, then the other controllers, then compute
hosts) and fetches the logs. See playbooks/devstack/README.md.

Layouts (checked by the experiment loader): one Keystone shared by every region
(`KEYSTONE_SERVICE_HOST`), and a region's Keystone, MySQL, RabbitMQ and APIs on its
`control` host (DevStack's `SERVICE_HOST`): central control, or one region per site.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path

import jinja2

from femdc_bench import catalog
from femdc_bench.ansible import PLAYBOOKS, run_playbook
from femdc_bench.deploy import native
from femdc_bench.model import DEVSTACK_MANAGED_VARS, Cloud, Clouds, Experiment, Inventory

TEMPLATES = PLAYBOOKS / "devstack" / "templates"
# DevStack services of a region's controller (the whole control plane of a region: its
# database, Keystone and control services) and of a compute host, from the catalog's
# records; a controller with role compute runs both.
CONTROLLER_SERVICES = tuple(catalog.devstack_services(("database", "keystone", "control")))
COMPUTE_SERVICES = tuple(catalog.devstack_services(("compute",)))
# A password goes unquoted into DevStack's SQL, URLs and INI files: what
# secrets.token_urlsafe() gives, like the native method's.
_SAFE_SECRET = re.compile(r"[A-Za-z0-9_.~-]{8,}")
_VAR = re.compile(r"[A-Z][A-Z0-9_]*")


class DevstackError(ValueError):
    """The experiment and inventory cannot be rendered for DevStack (one line)."""


def stack_hosts(inv: Inventory) -> list[str]:
    """Aliases of the hosts that run stack.sh: controllers and compute hosts (a load-only
    host runs no DevStack)."""
    return [h.alias for h in inv.hosts if {"control", "compute"} & set(h.roles)]


def keystone_url(inv: Inventory, site: str) -> str:
    """DevStack serves Keystone behind Apache at /identity on the Keystone host."""
    return f"http://{inv.with_role('keystone', site)[0].address}/identity/v3"


def clouds(exp: Experiment, inv: Inventory) -> list[Cloud]:
    """One cloud per site, its region and DevStack's Keystone URL (native's layout code)."""
    return native.clouds_for(exp, inv, auth_url=keystone_url)


def versions(exp: Experiment) -> dict[str, str]:
    """What the manifest records of the deployment before it runs: the release and the
    DevStack repository and ref (deploy adds the commits checked out on the hosts)."""
    d = exp.deployment
    assert d.devstack is not None and d.release is not None
    return {"devstack.release": d.release, "devstack.ref": d.devstack.ref,
            "devstack.repo": d.devstack.repo}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    return env


def render(exp: Experiment, inv: Inventory, secrets: Mapping[str, str]) -> dict[str, str]:
    """host alias -> the text of its local.conf, for every host that runs DevStack."""
    d = exp.deployment
    ds = d.devstack
    if d.method != "devstack" or ds is None or d.release is None or d.keystone_site is None:
        raise DevstackError("deployment.method devstack with a release and a central "
                            "Keystone is needed to render local.conf")
    pw = {}
    for var, key in (("admin_password", "admin"), ("database_password", "db_root"),
                     ("rabbit_password", "rabbit"), ("service_password", "service")):
        value = secrets.get(key, "")
        if not _SAFE_SECRET.fullmatch(value):
            raise DevstackError(f"secret {key!r} must be 8+ characters of [A-Za-z0-9_.~-]")
        pw[var] = value
    for var in ds.extra_localrc:
        if not _VAR.fullmatch(var) or var in DEVSTACK_MANAGED_VARS:
            raise DevstackError(f"deployment.devstack.extra_localrc: {var!r} cannot be set")
    for h in inv.hosts:
        if ":" in h.address:
            raise DevstackError(f"host {h.alias}: DevStack needs an IPv4 HOST_IP, got "
                                f"{h.address!r}")
    computes = {h.name: h.computes for s in exp.sites for h in s.hosts}
    keystone_host = inv.with_role("keystone", d.keystone_site)[0].address
    keystone_region = d.region_for(d.keystone_site)
    template = _environment().get_template("local.conf.j2")
    stacked = set(stack_hosts(inv))
    out = {}
    for h in inv.hosts:
        if h.alias not in stacked:
            continue
        region = d.region_for(h.site)
        controller = "control" in h.roles
        services = list(CONTROLLER_SERVICES) if controller else []
        n = computes.get(h.alias, 1) if "compute" in h.roles else 0
        if n:
            services += [s for s in COMPUTE_SERVICES if s not in services]
        out[h.alias] = template.render(
            alias=h.alias, roles=h.roles, experiment=exp.name, ref=ds.ref, release=d.release,
            controller=controller, host_ip=h.address,
            service_host=inv.with_role("control", region)[0].address,
            keystone_host=keystone_host, region=region, keystone_region=keystone_region,
            services=services, computes=n, api_workers=d.api_workers,
            glance_port=catalog.GLANCE.ports[0],
            extra_localrc=ds.extra_localrc, **pw)
    return out


def host_vars(exp: Experiment, inv: Inventory) -> Inventory:
    """The per-host variables playbooks/devstack/ needs (see its README): on a controller
    its region and how many nova-computes the region must have up."""
    d = exp.deployment
    region_computes = native.region_computes(exp, inv)
    stacked = set(stack_hosts(inv))
    hosts = []
    for h in inv.hosts:
        extra = dict(h.extra)
        if h.alias in stacked:
            extra.update(femdc_devstack=True, femdc_region=d.region_for(h.site))
        if "control" in h.roles:
            extra.update(femdc_region_computes=region_computes.get(h.site, 0))
        hosts.append(dataclasses.replace(h, extra=extra))
    return dataclasses.replace(inv, hosts=tuple(hosts))


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_local_confs(run_dir: Path, confs: Mapping[str, str]) -> Path:
    """results/<run>/devstack/<alias>.local.conf, 0600 in a 0700 directory (they hold the
    run's passwords); the playbook copies each to its host."""
    out = run_dir / "devstack"
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    for alias, text in confs.items():
        _write_private(out / f"{alias}.local.conf", text)
    return out


def host_commits(run_dir: Path) -> dict[str, str]:
    """The git commits deploy.yml found on the hosts (results/<run>/devstack/versions/
    <alias>.json: project -> commit): one entry per project when every host agrees,
    else `<project>@<alias>` per host."""
    per_host: dict[str, dict[str, str]] = {}
    for f in sorted((run_dir / "devstack" / "versions").glob("*.json")):
        per_host[f.stem] = {k: str(v) for k, v in json.loads(f.read_text()).items()}
    out: dict[str, str] = {}
    for project in sorted({p for commits in per_host.values() for p in commits}):
        seen = {alias: c[project] for alias, c in per_host.items() if project in c}
        if len(set(seen.values())) == 1:
            out[f"{project}.commit"] = next(iter(seen.values()))
        else:
            out.update({f"{project}.commit@{alias}": c for alias, c in seen.items()})
    return out


def _agent_python(inv: Inventory, run_dir: Path, log: Path) -> str:
    """An interpreter with keystoneauth1 on every load host (DevStack's own venv is on
    its hosts only): the small locked venv of femdc_bench/deploy/agent.py."""
    from femdc_bench.deploy import agent

    return agent.ensure_agent_python(inv, run_dir, log)


def deploy(exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path, log: Path,
           on_task: Callable[[str], None] | None = None) -> Clouds:
    """Render every local.conf, run playbooks/devstack/deploy.yml, write clouds.yaml."""
    ds = exp.deployment.devstack
    assert ds is not None
    if inv.shared_filesystem:
        raise DevstackError("deployment.method devstack needs hosts of their own (stack.sh "
                            "installs packages and writes /opt/stack, /etc and systemd "
                            "units): the local provider's hosts share this machine; use a "
                            "testbed provider")
    secrets_file = run_dir / "secrets.json"
    pw = native.load_or_create_secrets(secrets_file)
    conf_dir = write_local_confs(run_dir, render(exp, inv, pw))
    agent_python = _agent_python(inv, run_dir, log)
    extra_vars = {
        "femdc_run": run_id,
        "femdc_results_dir": str(run_dir),
        "femdc_devstack_conf_dir": str(conf_dir),
        "femdc_devstack_repo": ds.repo,
        "femdc_devstack_ref": ds.ref,
        "femdc_devstack_user": ds.stack_user,
    }
    run_playbook(PLAYBOOKS / "devstack" / "deploy.yml", host_vars(exp, inv), run_dir=run_dir,
                 log=log, on_task=on_task, extra_vars=extra_vars)
    cloud_list = clouds(exp, inv)
    clouds_yaml = run_dir / "clouds.yaml"
    native.write_clouds_yaml(clouds_yaml, cloud_list, pw["admin"])
    return Clouds(clouds=tuple(cloud_list), clouds_yaml=str(clouds_yaml),
                  secrets_file=str(secrets_file), agent_python=agent_python,
                  versions={**versions(exp), **host_commits(run_dir)})


def check(exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path, log: Path) -> None:
    """playbooks/devstack/check.yml: read-only, Keystone answers and every region has its
    nova-computes up."""
    ds = exp.deployment.devstack
    assert ds is not None
    run_playbook(PLAYBOOKS / "devstack" / "check.yml", host_vars(exp, inv), run_dir=run_dir,
                 log=log, extra_vars={"femdc_run": run_id, "femdc_results_dir": str(run_dir),
                                      "femdc_devstack_user": ds.stack_user})


def destroy(inv: Inventory, *, run_id: str, run_dir: Path, log: Path,
            stack_user: str = "stack") -> None:
    """unstack.sh and clean.sh on every host that has a DevStack (tolerant when absent)."""
    run_playbook(PLAYBOOKS / "devstack" / "destroy.yml", inv, run_dir=run_dir, log=log,
                 extra_vars={"femdc_run": run_id, "femdc_results_dir": str(run_dir),
                             "femdc_devstack_user": stack_user})


# ------------------------------------------------------------------ the registry's entry

import typing  # noqa: E402  (this section is appended: the top is another concern's)

if typing.TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from femdc_bench.deploy import Phase
    from femdc_bench.model import DeploymentSpec, SiteSpec

LAYOUTS = ("DevStack supports central control (keystone and control {centralized: "
           "<site>}) and region per site (keystone {centralized: <site>}, control "
           "per_site), database per_site")


class Devstack:
    """deployment.method devstack (deploy/__init__.py: Method)."""

    name = "devstack"
    tls = False
    service_faults = False

    def options(self, file: str, d: Mapping[str, Any], names: Sequence[str]
                ) -> dict[str, Any]:
        """deployment.release (required), deployment.devstack (ref, repo, stack user,
        extra localrc lines that set nothing femdc-bench sets)."""
        from femdc_bench.deploy import refuse_others
        from femdc_bench.errors import ExperimentError
        from femdc_bench.model import DEVSTACK_REPO, DevstackSpec

        refuse_others(file, d, self)
        if "release" not in d:
            raise ExperimentError(file, "deployment.release", "missing required key: method "
                                  "devstack deploys one OpenStack release, e.g. '2025.1'")
        if "keystone_workers" in d:
            raise ExperimentError(file, "deployment.keystone_workers", "not used by method "
                                  "devstack: DevStack runs every API, Keystone's too, with "
                                  "API_WORKERS processes (deployment.api_workers)")
        ds = d.get("devstack", {})
        extra = ds.get("extra_localrc", {})
        for var, value in extra.items():
            where = f"deployment.devstack.extra_localrc.{var}"
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", var):
                raise ExperimentError(file, where, "expected a variable name of upper-case "
                                      "letters, digits and '_' (like GIT_BASE)")
            if var in DEVSTACK_MANAGED_VARS:
                raise ExperimentError(file, where, "set by femdc-bench from the layout, the "
                                      "hosts and the run's secrets; not settable here")
            if any(c in value for c in "\n\r\0"):
                raise ExperimentError(file, where, "expected a value on one line")
        return {"devstack": DevstackSpec(
            ref=ds.get("ref", f"stable/{d['release']}"), repo=ds.get("repo", DEVSTACK_REPO),
            stack_user=ds.get("stack_user", "stack"), extra_localrc=dict(extra))}

    def validate(self, file: str, dep: DeploymentSpec) -> None:
        """The regions share one Keystone (KEYSTONE_SERVICE_HOST), each runs its own
        control plane and MySQL."""
        from femdc_bench.errors import ExperimentError

        if dep.keystone != "centralized":
            raise ExperimentError(file, "deployment.keystone", "per_site is not supported by "
                                  f"deployment.method devstack; {LAYOUTS}")
        if dep.control is None:
            raise ExperimentError(file, "deployment.control", "missing: a Keystone-only "
                                  "layout is not supported by deployment.method devstack; "
                                  f"{LAYOUTS}")
        if dep.database == "galera" or (dep.database == "central" and not (
                dep.control == "centralized" and dep.database_site == dep.control_site)):
            raise ExperimentError(file, "deployment.database", f"{dep.database_text()} is not "
                                  "supported by deployment.method devstack (MySQL runs on "
                                  f"each region's controller host); {LAYOUTS}")

    def validate_hosts(self, file: str, dep: DeploymentSpec, sites: Sequence[SiteSpec],
                       index: Mapping[str, int]) -> None:
        """DevStack runs a region's Keystone, MySQL, RabbitMQ and APIs on one controller
        host (its SERVICE_HOST)."""
        from femdc_bench.errors import ExperimentError

        for s in sites:
            controllers = s.hosts_with("control")
            if not controllers:
                continue
            ctl = controllers[0]
            for role in ("keystone", "database"):
                other = next((h for h in s.hosts_with(role) if h is not ctl), None)
                if other is not None:
                    raise ExperimentError(
                        file, f"sites[{index[s.name]}].hosts", "deployment.method devstack "
                        "runs a region's Keystone, MySQL and control plane on one host: role "
                        f"{role!r} must be on {ctl.name!r} (the site's 'control' host), not "
                        f"on {other.name!r}")

    def deploy(self, exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path,
               log: Path, on_task: Callable[[str], None] | None = None,
               phase: Phase | None = None) -> Clouds:
        return deploy(exp, inv, run_id=run_id, run_dir=run_dir, log=log, on_task=on_task)

    def destroy(self, exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path,
                log: Path) -> None:
        assert exp.deployment.devstack is not None
        destroy(inv, run_id=run_id, run_dir=run_dir, log=log,
                stack_user=exp.deployment.devstack.stack_user)


    def manifest(self, exp: Experiment) -> dict[str, Any]:
        return {"release": exp.deployment.release}


METHOD = Devstack()
