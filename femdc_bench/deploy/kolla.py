"""Deployment method `kolla`: OpenStack in containers, deployed by Kolla-Ansible.

`render` (pure) turns the experiment and the inventory into Kolla-Ansible's inputs, one
configuration directory per region: `regions/<region>/multinode` (the inventory) and
`regions/<region>/globals.yml`, plus `regions/<region>/config/*.conf` overrides in the
regions that share the Keystone of the first. `deploy` runs kolla-ansible from its own
venv on this machine (the deploy host): kolla-genpwd once, then bootstrap-servers,
prechecks, deploy and post-deploy per region, the Keystone region first, each step a
phase of the run. See docs/architecture.md, "Deployment method kolla".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import jinja2
import yaml

from femdc_bench import catalog, ship
from femdc_bench.ansible import (
    PLAYBOOKS,
    SSH_OPTIONS,
    AnsibleError,
    _run,
    control_dir,
    run_playbook,
)
from femdc_bench.deploy.native import write_clouds_yaml
from femdc_bench.model import (
    KOLLA_VERSIONS,
    Cloud,
    Clouds,
    DeploymentSpec,
    Experiment,
    Host,
    Inventory,
    KollaSpec,
)

HERE = PLAYBOOKS / "kolla"
TEMPLATES = HERE / "templates"
GROUPS = HERE / "files" / "groups.yml"
KEYSTONE_PORT = catalog.KEYSTONE.ports[0]
# The interface given to neutron as its external one when the experiment names none: a
# dummy interface that playbooks/kolla/prepare.yml makes on network and compute hosts
# (kolla's OVN bridge needs one; the benchmarks need no provider network).
DUMMY_EXTERNAL = "femdc-ext0"
FIRST_ROUTER_ID = 51  # keepalived_virtual_router_id of the first region; +1 per region
STEPS = ("bootstrap-servers", "prechecks", "deploy", "post-deploy")
# Where kolla-ansible's Python comes from when a lock asks a newer one than the system's.
PYENV_ROOTS = (os.environ.get("PYENV_ROOT", ""), "/root/.pyenv", str(Path.home() / ".pyenv"))

PhaseFactory = Callable[[str], AbstractContextManager[Any]]


class KollaError(RuntimeError):
    """A kolla deployment cannot proceed: one line saying why."""


# --------------------------------------------------------------------------- render


def regions(exp: Experiment) -> list[str]:
    """The regions, the one with the Keystone first (kolla's "region 1")."""
    d = exp.deployment
    out = d.control_sites(exp.site_names)
    return sorted(out, key=lambda r: r != d.keystone_site)


def _spec(exp: Experiment) -> tuple[DeploymentSpec, KollaSpec]:
    d = exp.deployment
    if d.method != "kolla" or d.kolla is None or d.release is None:
        raise KollaError(f"{exp.path}: deployment.method is {d.method!r}, not 'kolla'")
    return d, d.kolla


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def internal_address(exp: Experiment, inv: Inventory, region: str) -> str:
    """The region's internal VIP: the one given, else its control host's own address."""
    _, k = _spec(exp)
    return k.internal_vip.get(region) or inv.with_role("control", region)[0].address


def keystone_url(exp: Experiment, inv: Inventory) -> str:
    d, _ = _spec(exp)
    assert d.keystone_site is not None
    return f"http://{_url_host(internal_address(exp, inv, d.keystone_site))}:{KEYSTONE_PORT}/v3"


def _host_vars(h: Host, **more: Any) -> str:
    """`ansible_host=... ansible_user=...` for one inventory line (values validated or
    made by us; none holds a space)."""
    pairs: dict[str, Any] = {"ansible_host": h.address, "ansible_user": h.ssh_user}
    if h.ssh_port != 22:
        pairs["ansible_port"] = h.ssh_port
    if h.ssh_key:
        pairs["ansible_ssh_private_key_file"] = h.ssh_key
    if h.ssh_user != "root":
        pairs["ansible_become"] = "true"
    pairs.update({k: v for k, v in sorted(h.extra.items()) if k.startswith("ansible_")})
    pairs.update(more)
    for k, v in pairs.items():
        if re.search(r"\s", f"{k}{v}"):
            raise KollaError(f"host {h.alias}: inventory variable {k} has a space: {v!r}")
    return " ".join(f"{k}={v}" for k, v in pairs.items())


def _yaml_value(value: Any) -> str:
    """A value as YAML on one line (flow style), for globals.yml."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["yaml"] = _yaml_value
    return env


def render(exp: Experiment, inv: Inventory) -> dict[str, str]:
    """Kolla-Ansible's inputs for `exp` on `inv`: relative path -> text. Pure."""
    d, k = _spec(exp)
    env = _env()
    groups = yaml.safe_load(GROUPS.read_text())
    computes = {h.name: h.computes for s in exp.sites for h in s.hosts}
    names = regions(exp)
    first = names[0]
    r1_address = internal_address(exp, inv, first)
    out: dict[str, str] = {}
    for i, region in enumerate(names):
        ctl = inv.with_role("control", region)[0]
        compute_hosts = [h for h in inv.with_role("compute") if d.region_for(h.site) == region]
        per_node = sorted({computes.get(h.alias, 1) for h in compute_hosts})
        uniform = per_node[0] if len(per_node) == 1 else None
        seen: set[str] = set()
        fake_vars = {} if uniform is not None else {
            h.alias: {"num_nova_fake_per_node": computes.get(h.alias, 1)}
            for h in compute_hosts}

        def line(h: Host, seen: set[str] = seen, fake_vars: dict[str, Any] = fake_vars
                 ) -> str:
            """A host's first line carries its variables; later ones only its name."""
            if h.alias in seen:
                return h.alias
            seen.add(h.alias)
            return f"{h.alias} {_host_vars(h, **fake_vars.get(h.alias, {}))}"

        top = {"control": [line(ctl)], "network": [line(ctl)],
               "compute": [line(h) for h in compute_hosts], "monitoring": [line(ctl)],
               "storage": [], "deployment": [
                   "localhost ansible_connection=local "
                   "ansible_python_interpreter=\"{{ ansible_playbook_python }}\""]}
        out[f"regions/{region}/multinode"] = env.get_template("multinode.j2").render(
            experiment=exp.name, region=region, top=top, groups=groups)
        vip = k.internal_vip.get(region)
        region_roles = {r for h in inv.hosts if d.region_for(h.site) == region
                        for r in h.roles}
        ctx = {
            "experiment": exp.name, "region": region, "first": region == first,
            "release": d.release, "version": k.version, "base_distro": k.base_distro,
            "registry": k.registry, "network_interface": k.network_interface,
            "neutron_external_interface": k.neutron_external_interface or DUMMY_EXTERNAL,
            "internal_address": vip or ctl.address, "haproxy": vip is not None,
            "router_id": FIRST_ROUTER_ID + i, "horizon": k.horizon and region == first,
            "fake_per_node": uniform, "regions": names, "r1_address": r1_address,
            "api_workers": d.api_workers, "keystone_workers": d.keystone_workers,
            "legacy_openstack_auth": d.release < "2026.1",
            # kolla's own variables, for kolla to expand (not us)
            "keystone_r1_url": "{{ kolla_internal_fqdn_r1 | kolla_url(internal_protocol, "
                               "keystone_internal_port) }}",
            "node_custom_config": "{{ node_config }}/config",
            "kolla_admin_auth": {"auth_url": "{{ keystone_internal_url }}",
                                 "username": "{{ keystone_admin_user }}",
                                 "password": "{{ keystone_admin_password }}",
                                 "project_name": "{{ keystone_admin_project }}",
                                 "domain_name": "default", "user_domain_name": "default"},
            "extra": sorted(k.globals.items()),
            # the catalog's Kolla enable flags, on where a host of the region runs it
            "services": [(s.kolla_flag, bool(set(s.hosts) & region_roles))
                         for s in catalog.SERVICES if s.kolla_flag],
        }
        out[f"regions/{region}/globals.yml"] = env.get_template("globals.yml.j2").render(ctx)
        if region != first:
            for name in ("global.conf", "nova.conf"):
                out[f"regions/{region}/config/{name}"] = env.get_template(
                    f"config/{name}.j2").render(ctx)
    return out


def clouds_for(exp: Experiment, inv: Inventory) -> list[Cloud]:
    """One cloud per site: the shared Keystone, the region that serves the site."""
    d, _ = _spec(exp)
    assert d.keystone_site is not None
    url = keystone_url(exp, inv)
    return [Cloud(site=s, auth_url=url, region=d.region_for(s), keystone_site=d.keystone_site,
                  region_site=d.region_for(s), services=d.services) for s in exp.site_names]


def clouds(exp: Experiment, inv: Inventory, *, run_dir: Path, admin_password: str,
           agent_python: str, secrets_file: Path) -> Clouds:
    """clouds.yaml (0600, the native method's writer) and the Clouds of the run."""
    d, k = _spec(exp)
    cl = clouds_for(exp, inv)
    path = run_dir / "clouds.yaml"
    write_clouds_yaml(path, cl, admin_password)
    assert d.release is not None
    versions = {"kolla-ansible": k.version, "openstack_release": d.release,
                **{n: v for n, v in lock_versions(d.release).items()
                   if n in ("ansible-core", "ansible")}}
    return Clouds(clouds=tuple(cl), clouds_yaml=str(path), secrets_file=str(secrets_file),
                  agent_python=agent_python, versions=versions)


# --------------------------------------------------------------------------- the venv


def lock_path(release: str) -> Path:
    return HERE / "files" / f"kolla-{release}.lock"


def lock_versions(release: str) -> dict[str, str]:
    out = {}
    for ln in lock_path(release).read_text().splitlines():
        if "==" in ln and not ln.startswith("#"):
            name, version = ln.split("==", 1)
            out[name.strip().lower()] = version.strip()
    return out


def lock_text(release: str, version: str | None = None) -> str:
    """The release's lock, with kolla-ansible at `version` when another is asked."""
    text = lock_path(release).read_text()
    if version is None or version == KOLLA_VERSIONS[release]:
        return text
    return re.sub(r"(?m)^kolla-ansible==.*$", f"kolla-ansible=={version}", text)


def python_min(release: str) -> tuple[int, int]:
    m = re.search(r"(?m)^# python >= ([0-9]+)\.([0-9]+)$", lock_path(release).read_text())
    assert m, f"{lock_path(release)} names no '# python >= X.Y'"
    return int(m.group(1)), int(m.group(2))


def venv_dir(release: str, version: str | None = None) -> str:
    """`/var/cache/femdc-bench/venvs/kolla-<sha256(lock)[:12]>`: reused by every run
    with the same lock (and the same kolla-ansible version)."""
    digest = hashlib.sha256(lock_text(release, version).encode()).hexdigest()
    return f"{ship.VENV_ROOT}/kolla-{digest[:12]}"


def _candidates() -> Iterator[str]:
    for root in dict.fromkeys(r for r in PYENV_ROOTS if r):
        versions = Path(root) / "versions"
        if versions.is_dir():
            found = [p for p in versions.iterdir() if re.fullmatch(r"3\.[0-9]+\.[0-9]+", p.name)]
            for p in sorted(found, key=lambda p: [int(x) for x in p.name.split(".")]):
                yield str(p / "bin" / "python3")
    for minor in range(11, 20):
        yield f"/usr/bin/python3.{minor}"
    yield "/usr/bin/python3"
    yield sys.executable


def find_python(minimum: tuple[int, int],
                candidates: Callable[[], Iterator[str]] = _candidates) -> str:
    """The first interpreter >= `minimum` that can make venvs: pyenv's (3.12 on this
    machine kind), then /usr/bin/python3.X, the system's, ours."""
    tried = []
    for exe in dict.fromkeys(candidates()):
        if not os.access(exe, os.X_OK):
            continue
        tried.append(exe)
        try:
            p = subprocess.run([exe, "-c", "import sys, venv, ensurepip; "
                                "print(sys.version_info[0], sys.version_info[1])"],
                               capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if p.returncode == 0 and tuple(int(x) for x in p.stdout.split()) >= minimum:
            return exe
    want = ".".join(map(str, minimum))
    raise KollaError(f"kolla-ansible needs Python >= {want} with venv; none found (tried "
                     f"{', '.join(tried) or 'nothing'}): install python{want} (e.g. "
                     f"`pyenv install {want}`)")


def ensure_venv(release: str, version: str | None, log: Path) -> str:
    """Build kolla-ansible's venv from the release's lock (once; cached by its hash). It
    is built where it stays (a venv's scripts name their interpreter by its path), under
    a file lock so that two runs do not build it together; `femdc.lock`, written last,
    says it is whole."""
    import fcntl

    target = Path(venv_dir(release, version))
    marker = target / "femdc.lock"
    if marker.exists():
        return str(target)
    python = find_python(python_min(release))
    target.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.build-lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if marker.exists():  # built by another run meanwhile
            return str(target)
        shutil.rmtree(target, ignore_errors=True)  # what a killed build left
        lock = target.parent / f"{target.name}.requirements"
        lock.write_text(lock_text(release, version))
        try:
            with open(log, "a") as out:
                for cmd in ([python, "-m", "venv", str(target)],
                            [str(target / "bin" / "pip"), "install", "--quiet",
                             "--disable-pip-version-check", "-r", str(lock)]):
                    out.write(f"\n### {' '.join(cmd)}\n")
                    out.flush()
                    p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                       env=_clean_env(), timeout=1800)
                    if p.returncode != 0:
                        shutil.rmtree(target, ignore_errors=True)
                        raise KollaError(f"building kolla-ansible's venv failed: {cmd[0]} "
                                         f"exited {p.returncode} (log: {log})")
            os.replace(lock, marker)
        finally:
            lock.unlink(missing_ok=True)
    return str(target)


# --------------------------------------------------------------------------- deploy


def _clean_env() -> dict[str, str]:
    """Our environment without what would steer another Python or Ansible: none of our
    ANSIBLE_* settings (or our venv) reach kolla-ansible's."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("ANSIBLE_", "KOLLA_", "FEMDC_")) and k not in drop}


def kolla_env(venv: str, run_dir: Path) -> dict[str, str]:
    """The environment of kolla-ansible's commands: ours cleaned, its venv first on PATH,
    its own collections directory, and how to reach hosts made for this run (fresh host
    keys: no known_hosts)."""
    env = _clean_env()
    env.update({
        "PATH": f"{venv}/bin:{env.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_COLLECTIONS_PATH": f"{venv}/collections",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s "
                            + " ".join(SSH_OPTIONS),
        # the run's own master connections (`destroy` closes them)
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir(run_dir)),
        "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp" / "kolla-ansible"),
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def step_argv(venv: str, step: str, region_dir: Path) -> list[str]:
    return [f"{venv}/bin/kolla-ansible", step, "-i", str(region_dir / "multinode"),
            "--configdir", str(region_dir)]


def write_config(exp: Experiment, inv: Inventory, root: Path) -> list[Path]:
    """render() into `root` (the run's kolla/ directory); what was written."""
    written = []
    for rel, text in render(exp, inv).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def passwords(venv: str, run_dir: Path, log: Path) -> Path:
    """The run's passwords.yml (0600), from kolla-genpwd once; every region uses it, so
    that the service users the regions register in the one Keystone agree. The file is
    never printed; `secrets.json` gets the admin password (what bench reads) and every
    value, so that a backup redacts them where they appear."""
    path = run_dir / "kolla-passwords.yml"
    if not path.exists():
        import tempfile

        example = Path(venv) / "share" / "kolla-ansible" / "etc_examples" / "kolla" / \
            "passwords.yml"
        # kolla-genpwd writes its file anew, 0640: in a 0700 directory of ours until it
        # is 0600
        private = Path(tempfile.mkdtemp(prefix="genpwd-", dir=run_dir))
        tmp = private / "passwords.yml"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(example.read_bytes())
            with open(log, "a") as out:
                cmd = [f"{venv}/bin/kolla-genpwd", "-p", str(tmp)]
                out.write(f"\n### {' '.join(cmd)}\n")
                out.flush()
                p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   env=kolla_env(venv, run_dir), timeout=120)
            if p.returncode != 0:
                raise KollaError(f"kolla-genpwd exited {p.returncode} (log: {log})")
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(private, ignore_errors=True)
    values = yaml.safe_load(path.read_text())
    secrets = {"admin": str(values["keystone_admin_password"])}
    secrets.update({k: v for k, v in values.items() if isinstance(v, str) and len(v) >= 8})
    sfile = run_dir / "secrets.json"
    fd = os.open(sfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(secrets, f)
    return path


def _link_passwords(region_dir: Path, pw: Path) -> None:
    """kolla-ansible reads <configdir>/passwords.yml (whatever --passwords says)."""
    link = region_dir / "passwords.yml"
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(pw, region_dir))


def _has_kolla_collection(venv: str) -> bool:
    return (Path(venv) / "collections" / "ansible_collections" / "openstack" / "kolla").is_dir()


def deploy(exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path, log: Path,
           on_task: Callable[[str], None] | None = None,
           phase: PhaseFactory) -> Clouds:
    """Deploy `exp` with Kolla-Ansible; each step a phase of the run (`phase` is
    run.Run.phase or alike); every command's output goes to logs/kolla-*.log."""
    d, k = _spec(exp)
    assert d.release is not None
    logs = log.parent
    root = run_dir / "kolla"
    with phase("kolla-venv"):
        venv = ensure_venv(d.release, k.version, logs / "kolla-venv.log")
    write_config(exp, inv, root)
    (run_dir / "tmp" / "kolla-ansible").mkdir(parents=True, exist_ok=True)
    env = kolla_env(venv, run_dir)
    pw = passwords(venv, run_dir, logs / "kolla-genpwd.log")
    if not _has_kolla_collection(venv):
        # bootstrap-servers needs the openstack.kolla collection, which kolla-ansible
        # installs from git (opendev.org): the deploy host needs that network once.
        with phase("kolla-install-deps"):
            _run([f"{venv}/bin/kolla-ansible", "install-deps"],
                 Path("kolla-ansible install-deps"), logs / "kolla-install-deps.log", env,
                 on_task)
    if k.neutron_external_interface is None:
        with phase("kolla-prepare"):
            run_playbook(HERE / "prepare.yml", inv, run_dir=run_dir,
                         log=logs / "kolla-prepare.log", on_task=on_task,
                         extra_vars={"femdc_kolla_dummy_interface": DUMMY_EXTERNAL})
    for region in regions(exp):
        region_dir = root / "regions" / region
        _link_passwords(region_dir, pw)
        for step in STEPS:
            with phase(f"kolla-{step}:{region}"):
                try:
                    _run(step_argv(venv, step, region_dir), Path(f"kolla-ansible {step}"),
                         logs / f"kolla-{step}-{region}.log", env, on_task)
                except AnsibleError as e:
                    raise KollaError(f"region {region}: {e}") from None
    from femdc_bench.deploy.agent import ensure_agent_python

    agent_python = ensure_agent_python(inv, run_dir, log)
    admin = json.loads((run_dir / "secrets.json").read_text())["admin"]
    return clouds(exp, inv, run_dir=run_dir, admin_password=admin,
                  agent_python=agent_python, secrets_file=run_dir / "secrets.json")


def destroy_argv(venv: str, region_dir: Path) -> list[str]:
    """`kolla-ansible destroy` of one region (containers and volumes; images kept)."""
    return [*step_argv(venv, "destroy", region_dir), "--yes-i-really-really-mean-it"]


def destroy(exp: Experiment, inv: Inventory, *, run_dir: Path, log: Path,
            on_task: Callable[[str], None] | None = None) -> None:
    """Remove what `deploy` made, the last region first; nothing when it never rendered
    (or built its venv)."""
    d, k = _spec(exp)
    assert d.release is not None
    venv = venv_dir(d.release, k.version)
    if not (Path(venv) / "femdc.lock").exists():
        return
    env = kolla_env(venv, run_dir)
    (run_dir / "tmp" / "kolla-ansible").mkdir(parents=True, exist_ok=True)
    for region in reversed(regions(exp)):
        region_dir = run_dir / "kolla" / "regions" / region
        if (region_dir / "multinode").exists():
            _run(destroy_argv(venv, region_dir), Path("kolla-ansible destroy"),
                 log.parent / f"kolla-destroy-{region}.log", env, on_task)


__all__ = ["KollaError", "clouds", "clouds_for", "deploy", "destroy", "ensure_venv",
           "find_python", "kolla_env", "render", "regions", "venv_dir"]


# ------------------------------------------------------------------ the registry's entry

import contextlib  # noqa: E402  (this section is appended: the top is another concern's)
import typing  # noqa: E402

if typing.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from femdc_bench.deploy import Phase
    from femdc_bench.model import SiteSpec

LAYOUTS = ("method 'kolla' deploys two layouts: central control (keystone and control "
           "{centralized: X}) or one region per site with a shared Keystone (keystone "
           "{centralized: X}, control per_site), both with database per_site")


class Kolla:
    """deployment.method kolla (deploy/__init__.py: Method)."""

    name = "kolla"
    tls = False
    service_faults = False

    def options(self, file: str, d: Mapping[str, Any], names: Sequence[str]
                ) -> dict[str, Any]:
        """deployment.release (one kolla-ansible is pinned for) and deployment.kolla."""
        import ipaddress

        from femdc_bench.deploy import refuse_others
        from femdc_bench.errors import ExperimentError
        from femdc_bench.model import KOLLA_CONTROLLED_GLOBALS

        refuse_others(file, d, self)
        release = d.get("release")
        if release is None:
            raise ExperimentError(file, "deployment.release", "missing required key (method "
                                  "'kolla' deploys a release, e.g. "
                                  f"{list(KOLLA_VERSIONS)[-1]!r})")
        if release not in KOLLA_VERSIONS:
            raise ExperimentError(file, "deployment.release", "expected a release "
                                  "kolla-ansible is pinned for "
                                  f"({', '.join(KOLLA_VERSIONS)}), got {release!r}")
        if "kolla" not in d:
            raise ExperimentError(file, "deployment.kolla", "missing required key (method "
                                  "'kolla' needs at least network_interface)")
        k = d["kolla"]
        default = KOLLA_VERSIONS[release]
        version = k.get("version", default)
        if version.split(".")[0] != default.split(".")[0]:
            raise ExperimentError(file, "deployment.kolla.version", f"kolla-ansible {version} "
                                  f"does not deploy {release}: expected "
                                  f"{default.split('.')[0]}.x (default {default})")
        vips: dict[str, str] = {}
        for site, address in k.get("internal_vip", {}).items():
            where = f"deployment.kolla.internal_vip.{site}"
            if site not in names:
                raise ExperimentError(file, where, "expected one of the sites "
                                      f"({', '.join(names)}), got {site!r}")
            try:
                vips[site] = str(ipaddress.ip_address(address))
            except ValueError:
                raise ExperimentError(file, where, f"expected an IP address, got {address!r}"
                                      ) from None
            if list(vips.values()).count(vips[site]) > 1:
                raise ExperimentError(file, where,
                                      f"{address} is the VIP of another region too")
        for key in k.get("globals", {}):
            if key in KOLLA_CONTROLLED_GLOBALS or str(key).startswith("ansible_"):
                raise ExperimentError(file, f"deployment.kolla.globals.{key}", "set by "
                                      "femdc-bench from the experiment (layout, regions, "
                                      "interfaces, deployment.kolla); remove it here")
        return {"kolla": KollaSpec(
            version=version, network_interface=k["network_interface"],
            neutron_external_interface=k.get("neutron_external_interface"),
            internal_vip=vips, registry=k.get("registry"),
            base_distro=k.get("base_distro", "debian"),
            horizon=bool(k.get("horizon", False)), globals=dict(k.get("globals", {})))}

    def validate(self, file: str, dep: DeploymentSpec) -> None:
        from femdc_bench.errors import ExperimentError

        if dep.keystone != "centralized":
            raise ExperimentError(file, "deployment.keystone",
                                  f"{LAYOUTS}; got keystone {dep.keystone_text()}")
        if dep.control is None:
            raise ExperimentError(file, "deployment.control",
                                  f"{LAYOUTS}; got no control (Keystone only)")
        if dep.database != "per_site":
            raise ExperimentError(file, "deployment.database",
                                  f"{LAYOUTS}; got database {dep.database_text()}")

    def validate_hosts(self, file: str, dep: DeploymentSpec, sites: Sequence[SiteSpec],
                       index: Mapping[str, int]) -> None:
        """Kolla runs a region's database, its Keystone and the rest of its control plane
        on the hosts of its `control` group: here, the region's one control host."""
        from femdc_bench.errors import ExperimentError

        assert dep.kolla is not None
        regions = dep.control_sites([s.name for s in sites])
        for s in sites:
            if s.name not in regions:
                continue
            ctl = s.hosts_with("control")[0]
            need = ("database", "keystone", "control") if s.name == dep.keystone_site else (
                "database", "control")
            for role in need:
                others = [h.name for h in s.hosts_with(role) if h is not ctl]
                if others:
                    raise ExperimentError(
                        file, f"sites[{index[s.name]}].hosts", "method 'kolla' runs a "
                        f"region's {', '.join(need[:-1])} and control plane on one host "
                        f"(kolla's control group): give {ctl.name!r} the roles "
                        f"{', '.join(need)}; {others[0]!r} has role {role!r}")
        for site in dep.kolla.internal_vip:
            if site not in regions:
                raise ExperimentError(
                    file, f"deployment.kolla.internal_vip.{site}", f"site {site!r} is not a "
                    f"region (regions: {', '.join(regions)})")
        if len(regions) > 200:
            raise ExperimentError(file, "sites", f"method 'kolla' deploys at most 200 regions "
                                  f"(keepalived router ids), got {len(regions)}")

    def deploy(self, exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path,
               log: Path, on_task: Callable[[str], None] | None = None,
               phase: Phase | None = None) -> Clouds:
        return deploy(exp, inv, run_id=run_id, run_dir=run_dir, log=log, on_task=on_task,
                      phase=phase or (lambda _name: contextlib.nullcontext()))

    def destroy(self, exp: Experiment, inv: Inventory, *, run_id: str, run_dir: Path,
                log: Path) -> None:
        destroy(exp, inv, run_dir=run_dir, log=log)


    def manifest(self, exp: Experiment) -> dict[str, Any]:
        return {"release": exp.deployment.release}


METHOD = Kolla()
