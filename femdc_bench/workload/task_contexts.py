"""Rally's `users`, `roles`, `quotas`, `network`, `images` and `flavors` contexts: made by
the agent before a job's load, untimed, and deleted after it with everything else the job
tracked.

    users: {tenants: 2, users_per_tenant: 3, user_choice_method: round_robin}
    roles: [reader]
    quotas: {nova: {instances: -1}, neutron: {network: -1, port: -1}}
    network: {networks_per_tenant: 1, subnets_per_network: 1, start_cidr: 10.2.0.0/24}
    images: {image_url: http://.../cirros.img, disk_format: qcow2, container_format: bare}
    flavors: [{name: ram64, ram: 64}]

`users` creates `tenants` projects (named with the job's prefix, in the admin's project
domain), `users_per_tenant` users in each (random passwords, or `user_password`) with
the role "member" on their project, as rally-openstack does, and authenticates each one
once. Each iteration then runs as one of them (`ContextUsers.pick`): `random` (Rally's
default) or `round_robin` (iteration i: project i mod T in id order, its user (i div T)
mod U, Rally's formula). The scenario's compute, image, network and placement requests
carry that user's token; identity requests stay the admin's (Rally's Keystone scenarios
use admin clients) and a scenario reads the user as ``ctx.user``.

`roles` gives each context user these existing roles on its project (a missing role
fails the job's setup). Deleting the users and projects removes the assignments.

`quotas` sets, for each context project, the quotas of `nova` (PUT
/os-quota-sets/{project}), `neutron` (PUT /quotas/{project}) and `cinder` (volumev3
PUT /os-quota-sets/{project}; a deployment without Cinder fails the job's setup), with
Rally's key names, -1 for unlimited; at teardown they are deleted (back to the
defaults) before the projects are. It needs the users context.

`network` creates, in each context project (as the admin, owned by the project),
`networks_per_tenant` networks (with `network_create_args`), each with
`subnets_per_network` IPv4 subnets taken in turn from `start_cidr` (the next one of the
same size each time, as Rally's generate_cidr; `dns_nameservers` optional). An
iteration of a scenario that boots servers or creates ports then uses a network of its
user's project (one at random, as Rally's auto_assign_nic) instead of the one its setup
would make. Routers (Rally's `router` option) are not made: the option is refused.

`images` uploads, in each context project, `images_per_tenant` images (as the project's
first user: owned by it) from `image_url` (a path or URL; a URL is fetched once per load
host into the image cache, see image_source), with Rally's disk_format/container_format
(or their deprecated image_type/image_container), visibility (private), min_ram,
min_disk and image_name (used when images_per_tenant is 1, as Rally). It needs users.

`flavors` makes each listed flavor (name, ram; vcpus 1, disk, swap, ephemeral 0,
extra_specs) as the admin. Flavor names are global in Nova while the task runs from every
site at once, so the flavor is named ``<job prefix><name>``; a scenario's flavor argument
finds the context's flavor by its given name first. It does not need users.

`resource_management_workers` and `user_domain`/`project_domain` other than the
admin's are accepted by the validation for Rally files and reported: the domains must
be the admin's ("default"), the workers have no effect (creation is sequential).

Imports the standard library and keystoneauth1 (hosts only at run time).
"""

from __future__ import annotations

import ipaddress
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from femdc_bench import catalog

SUPPORTED = ("users", "roles", "quotas", "network", "images", "flavors", "api_versions")
#: api_versions context: Rally's service names -> the API versions our scenarios speak
#: (it only checks: asking another version, or another endpoint, is an error); from
#: catalog.py's records
API_VERSIONS: dict[str, tuple[str, ...]] = catalog.rally_versions()
CHOICE_METHODS = ("random", "round_robin")
USERS_KEYS = frozenset({"tenants", "users_per_tenant", "user_password",
                        "resource_management_workers", "project_domain", "user_domain",
                        "user_choice_method"})
DEFAULT_ROLE = "member"
#: quotas context: Rally's services and their keys -> (service type, path, body key)
QUOTA_KEYS: dict[str, frozenset[str]] = {
    "nova": frozenset({"instances", "cores", "ram", "floating_ips", "fixed_ips",
                       "metadata_items", "injected_files", "injected_file_content_bytes",
                       "injected_file_path_bytes", "key_pairs", "security_groups",
                       "security_group_rules", "server_groups", "server_group_members"}),
    "neutron": frozenset({"network", "subnet", "port", "router", "floatingip",
                          "security_group", "security_group_rule", "pool", "vip",
                          "health_monitor", "trunk", "subnetpool", "rbac_policy"}),
    "cinder": frozenset({"volumes", "snapshots", "gigabytes", "backups",
                         "backup_gigabytes", "groups"}),
}
NETWORK_KEYS = frozenset({"start_cidr", "networks_per_tenant", "subnets_per_network",
                          "network_create_args", "dns_nameservers"})
IMAGES_KEYS = frozenset({"image_url", "disk_format", "container_format", "image_name",
                         "min_ram", "min_disk", "visibility", "images_per_tenant",
                         "image_args", "image_container", "image_type"})
IMAGE_ARGS_KEYS = frozenset({"is_public", "min_ram", "min_disk"})
#: Rally's images context enums (its schema)
IMAGE_DISK_FORMATS = ("qcow2", "raw", "vhd", "vmdk", "vdi", "iso", "aki", "ari", "ami")
IMAGE_CONTAINER_FORMATS = ("aki", "ami", "ari", "bare", "docker", "ova", "ovf")
IMAGE_VISIBILITIES = ("public", "private", "shared", "community")
FLAVOR_KEYS = frozenset({"name", "ram", "vcpus", "disk", "swap", "ephemeral", "extra_specs"})
FLAVOR_NAME_MAX = 255
QUOTA_API: dict[str, tuple[str, str, str]] = {
    "nova": ("compute", "/os-quota-sets", "quota_set"),
    "neutron": ("network", "/quotas", "quota"),
    "cinder": ("volumev3", "/os-quota-sets", "quota_set"),
}


class ContextError(ValueError):
    """A context's configuration is not valid: `path` (below the context) and message."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def validate(contexts: Mapping[str, Any]) -> dict[str, Any]:
    """The contexts in normal form (defaults filled); ContextError names the bad key
    relative to the contexts section, e.g. ``users.tenants``."""
    out: dict[str, Any] = {}
    for name, cfg in contexts.items():
        if name == "users":
            _options("users", cfg, USERS_KEYS)
            u: dict[str, Any] = {
                k: _count(f"users.{k}", cfg.get(k, 1))
                for k in ("tenants", "users_per_tenant", "resource_management_workers")}
            method = cfg.get("user_choice_method", "random")
            if method not in CHOICE_METHODS:
                raise ContextError("users.user_choice_method",
                                   f"expected one of {', '.join(CHOICE_METHODS)}")
            u["user_choice_method"] = method
            for k in ("project_domain", "user_domain"):
                v = cfg.get(k, "default")
                if not isinstance(v, str) or v.lower() != "default":
                    raise ContextError(f"users.{k}", "unsupported: context users are made "
                                       "in the admin's domain ('default')")
            if "user_password" in cfg:
                if not isinstance(cfg["user_password"], str) or not cfg["user_password"]:
                    raise ContextError("users.user_password", "expected a non-empty string")
                u["user_password"] = cfg["user_password"]
            out["users"] = u
        elif name == "quotas":
            out["quotas"] = _quotas(cfg)
        elif name == "network":
            out["network"] = _network(cfg)
        elif name == "images":
            out["images"] = _images(cfg)
        elif name == "flavors":
            out["flavors"] = _flavors(cfg)
        elif name == "api_versions":
            _api_versions(cfg)  # nothing to set up: the versions are ours already
        elif name == "roles":
            if not isinstance(cfg, list) or not all(isinstance(r, str) and r for r in cfg):
                raise ContextError("roles", "expected a list of role names")
            out["roles"] = list(cfg)
        else:
            raise ContextError(str(name), "unsupported context")
    for name in ("roles", "quotas", "network", "images"):
        if name in out and "users" not in out:
            raise ContextError(name, "needs the users context (it applies to its projects)")
    return out


def _api_versions(cfg: Any) -> None:
    if not isinstance(cfg, dict):
        raise ContextError("api_versions", "expected a mapping of services")
    for svc, v in cfg.items():
        where = f"api_versions.{svc}"
        if svc not in API_VERSIONS:
            raise ContextError(where, "unsupported service (supported: "
                               f"{', '.join(API_VERSIONS)})")
        _options(where, v, frozenset({"version"}))
        version = str(v.get("version", API_VERSIONS[svc][0]))
        if version not in API_VERSIONS[svc]:
            raise ContextError(f"{where}.version", f"unsupported: {svc} is spoken in "
                               f"version {API_VERSIONS[svc][-1]} only, got {version}")


def _options(section: str, cfg: Any, allowed: frozenset[str]) -> None:
    """`cfg` is a mapping of options in `allowed` (ContextError naming the first other)."""
    if not isinstance(cfg, dict):
        raise ContextError(section, "expected a mapping")
    for k in cfg:
        if k not in allowed:
            raise ContextError(f"{section}.{k}", "unsupported option (accepted: "
                               f"{', '.join(sorted(allowed))})")


def _count(path: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ContextError(path, f"expected an integer >= 1, got {v!r}")
    return v


def _network(cfg: Any) -> dict[str, Any]:
    _options("network", cfg, NETWORK_KEYS)
    out: dict[str, Any] = {
        k: _count(f"network.{k}", cfg.get(k, 1))
        for k in ("networks_per_tenant", "subnets_per_network")}
    cidr = cfg.get("start_cidr", "10.2.0.0/24")
    try:
        net = ipaddress.ip_network(cidr)
    except (TypeError, ValueError):
        raise ContextError("network.start_cidr", f"expected a CIDR, got {cidr!r}") from None
    if net.version != 4 or net.prefixlen > 29:
        raise ContextError("network.start_cidr", f"expected an IPv4 CIDR of /29 or larger, "
                           f"got {cidr!r}")
    out["start_cidr"] = str(net)
    args = cfg.get("network_create_args", {})
    if not isinstance(args, dict):
        raise ContextError("network.network_create_args", "expected a mapping")
    out["network_create_args"] = dict(args)
    dns = cfg.get("dns_nameservers")
    if dns is not None:
        if not isinstance(dns, list) or not all(isinstance(d, str) for d in dns):
            raise ContextError("network.dns_nameservers", "expected a list of addresses")
        out["dns_nameservers"] = list(dns)
    return out


def _count0(path: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ContextError(path, f"expected an integer >= 0, got {v!r}")
    return v


def _enum(path: str, v: Any, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise ContextError(path, f"expected one of {', '.join(allowed)}, got {v!r}")
    return str(v)


def _images(cfg: Any) -> dict[str, Any]:
    """Rally's images context, its deprecated spellings (image_type, image_container,
    image_args) folded into the current ones as Rally does."""
    from femdc_bench.workload.image_source import check_location

    _options("images", cfg, IMAGES_KEYS)
    try:
        check_location(cfg.get("image_url"), "image_url")
    except ValueError as e:
        raise ContextError("images.image_url", str(e).split(": ", 1)[1]) from None
    disk = cfg.get("disk_format", cfg.get("image_type"))
    container = cfg.get("container_format", cfg.get("image_container"))
    if disk is None:
        raise ContextError("images.disk_format", "required (or the deprecated image_type)")
    if container is None:
        raise ContextError("images.container_format",
                           "required (or the deprecated image_container)")
    args = cfg.get("image_args", {})
    _options("images.image_args", args, IMAGE_ARGS_KEYS)
    visibility = cfg.get("visibility")
    if visibility is None:
        visibility = "public" if args.get("is_public") else "private"
    out: dict[str, Any] = {
        "image_url": cfg["image_url"],
        "disk_format": _enum("images.disk_format" if "disk_format" in cfg
                             else "images.image_type", disk, IMAGE_DISK_FORMATS),
        "container_format": _enum("images.container_format" if "container_format" in cfg
                                  else "images.image_container", container,
                                  IMAGE_CONTAINER_FORMATS),
        "visibility": _enum("images.visibility", visibility, IMAGE_VISIBILITIES),
        "images_per_tenant": _count("images.images_per_tenant",
                                    cfg.get("images_per_tenant", 1)),
    }
    for k in ("min_ram", "min_disk"):
        where = "images" if k in cfg else "images.image_args"
        out[k] = _count0(f"{where}.{k}", cfg.get(k, args.get(k, 0)))
    name = cfg.get("image_name")
    if name is not None:
        if not isinstance(name, str) or not name:
            raise ContextError("images.image_name", "expected a non-empty string")
        if out["images_per_tenant"] == 1:  # Rally ignores it for more images per tenant
            out["image_name"] = name
    return out


def _flavors(cfg: Any) -> list[dict[str, Any]]:
    if not isinstance(cfg, list) or not cfg:
        raise ContextError("flavors", "expected a non-empty list of flavors")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, f in enumerate(cfg):
        where = f"flavors[{i}]"
        _options(where, f, FLAVOR_KEYS)
        for k in ("name", "ram"):
            if k not in f:
                raise ContextError(f"{where}.{k}", "required")
        name = f["name"]
        if not isinstance(name, str) or not name:
            raise ContextError(f"{where}.name", "expected a non-empty string")
        if name in names:
            raise ContextError(f"{where}.name", f"flavor {name!r} given twice")
        names.add(name)
        flavor: dict[str, Any] = {
            "name": name,
            "ram": _count(f"{where}.ram", f["ram"]),
            "vcpus": _count(f"{where}.vcpus", f.get("vcpus", 1)),
            **{k: _count0(f"{where}.{k}", f.get(k, 0)) for k in ("disk", "swap", "ephemeral")},
        }
        specs = f.get("extra_specs", {})
        if not isinstance(specs, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in specs.items()):
            raise ContextError(f"{where}.extra_specs", "expected a mapping of strings")
        flavor["extra_specs"] = dict(specs)
        out.append(flavor)
    return out


def subnet_cidrs(start_cidr: str, n: int) -> list[str]:
    """The first `n` CIDRs from `start_cidr` on, each the next one of the same size."""
    net = ipaddress.ip_network(start_cidr)
    base, size = int(net.network_address), net.num_addresses
    return [f"{ipaddress.IPv4Address((base + i * size) % 2**32)}/{net.prefixlen}"
            for i in range(n)]


def _quotas(cfg: Any) -> dict[str, dict[str, int]]:
    if not isinstance(cfg, dict):
        raise ContextError("quotas", "expected a mapping of service -> quotas")
    out: dict[str, dict[str, int]] = {}
    for service, quotas in cfg.items():
        if service not in QUOTA_KEYS:
            raise ContextError(f"quotas.{service}", "unsupported service (supported: "
                               f"{', '.join(QUOTA_KEYS)})")
        if not isinstance(quotas, dict):
            raise ContextError(f"quotas.{service}", "expected a mapping of quota -> number")
        for key, value in quotas.items():
            if key not in QUOTA_KEYS[service]:
                raise ContextError(f"quotas.{service}.{key}", "unknown quota (accepted: "
                                   f"{', '.join(sorted(QUOTA_KEYS[service]))})")
            if not isinstance(value, int) or isinstance(value, bool) or value < -1:
                raise ContextError(f"quotas.{service}.{key}",
                                   f"expected an integer >= -1 (-1: unlimited), got {value!r}")
        out[service] = dict(quotas)
    return out


@dataclass(frozen=True)
class ContextUser:
    id: str
    name: str
    project_id: str
    password: str = field(repr=False)
    auth: Any = field(repr=False, compare=False, default=None)  # keystoneauth1 plugin


@dataclass
class ContextUsers:
    """The users of the `users` context, by project (in project id order)."""

    by_project: dict[str, list[ContextUser]]
    method: str = "random"
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    networks: dict[str, list[str]] = field(default_factory=dict)  # network context
    images: dict[str, list[str]] = field(default_factory=dict)  # images context

    def network_of(self, user: ContextUser | None) -> str | None:
        """A network context's network of `user`'s project (at random), if any."""
        nets = self.networks.get(user.project_id) if user is not None else None
        return self._rng.choice(nets) if nets else None

    @property
    def all(self) -> list[ContextUser]:
        return [u for p in sorted(self.by_project) for u in self.by_project[p]]

    def pick(self, iteration: int) -> ContextUser:
        """The user iteration `iteration` (from 0) runs as."""
        if self.method == "random":
            return self._rng.choice(self.all)
        projects = sorted(self.by_project)
        users = self.by_project[projects[iteration % len(projects)]]
        return users[(iteration // len(projects)) % len(users)]


def setup(jc: Any, contexts: Mapping[str, Any]) -> ContextUsers | None:
    """Create what `contexts` asks (tracked on the job context `jc`: deleted with the
    job's other resources); the context users, or None without a users context."""
    if "flavors" in contexts:
        make_flavors(jc, contexts["flavors"])
    cfg = contexts.get("users")
    if not cfg:
        return None
    from keystoneauth1.identity import v3

    from femdc_bench.workload.errors import SetupError

    admin = jc.admin()
    role_ids = {}
    for name in [DEFAULT_ROLE, *contexts.get("roles", [])]:
        found = admin.get("/roles", params={"name": name}).json()["roles"]
        if not found:
            raise SetupError(f"role {name!r} not found"
                             + (" (roles context)" if name != DEFAULT_ROLE else ""))
        role_ids[name] = found[0]["id"]
    by_project: dict[str, list[ContextUser]] = {}
    for _ in range(cfg["tenants"]):
        project = admin.post("/projects", json={"project": {
            "name": jc.new_name(), "domain_id": jc.project_domain_id}}).json()["project"]
        jc.track("/projects", project["id"])
        users = by_project.setdefault(project["id"], [])
        for _ in range(cfg["users_per_tenant"]):
            password = cfg.get("user_password") or secrets.token_urlsafe(24)
            user = admin.post("/users", json={"user": {
                "name": jc.new_name(), "domain_id": jc.user_domain_id, "password": password,
                "default_project_id": project["id"]}}).json()["user"]
            jc.track("/users", user["id"])
            for rid in role_ids.values():
                admin.put(f"/projects/{project['id']}/users/{user['id']}/roles/{rid}")
            auth = v3.Password(auth_url=jc.job.auth.auth_url, user_id=user["id"],
                               password=password, project_id=project["id"])
            auth.get_access(jc.session)  # once, untimed: later requests reuse the token
            users.append(ContextUser(user["id"], user["name"], project["id"], password, auth))
    set_quotas(jc, contexts.get("quotas", {}), list(by_project))
    users_ctx = ContextUsers(by_project, cfg["user_choice_method"])
    if "network" in contexts:
        users_ctx.networks = make_networks(jc, contexts["network"], sorted(by_project))
    if "images" in contexts:
        users_ctx.images = make_images(jc, contexts["images"], users_ctx)
    return users_ctx


def make_flavors(jc: Any, flavors: list[Mapping[str, Any]]) -> None:
    """The flavors context, as the admin (tracked). Nova's flavor names are global, and
    the same task runs from every site at once: each flavor is made as
    ``<job prefix><name>``, and a scenario's ``flavor: <name>`` (or {name}, {regex})
    finds this job's flavor first (``jc.context_names["flavor"]``)."""
    api = jc.admin("compute")
    for f in flavors:
        body = {"name": f"{jc.name_prefix}{f['name']}"[:FLAVOR_NAME_MAX], "ram": f["ram"],
                "vcpus": f["vcpus"], "disk": f["disk"], "swap": f["swap"],
                "OS-FLV-EXT-DATA:ephemeral": f["ephemeral"]}
        fid = str(api.post("/flavors", json={"flavor": body}).json()["flavor"]["id"])
        jc.track("/flavors", fid, "compute")
        if f["extra_specs"]:
            api.post(f"/flavors/{fid}/os-extra-specs", json={"extra_specs": f["extra_specs"]})
        jc.context_names["flavor"][f["name"]] = fid


def make_images(jc: Any, cfg: Mapping[str, Any], users: ContextUsers) -> dict[str, list[str]]:
    """The images context: `images_per_tenant` images in each context project, uploaded
    by its first user (owned by the project, as Rally's), from `image_url` (fetched once
    into the image cache); tracked. A scenario's ``image: <image_name>`` finds them
    first (``jc.context_names["image"]``: the last one made under that name)."""
    from femdc_bench.workload.services import image

    jc.admin("image")  # resolves the endpoint the users' adapters are pinned to
    data = image.image_data(cfg["image_url"])
    out: dict[str, list[str]] = {}
    for pid in sorted(users.by_project):
        as_user = jc.as_user(users.by_project[pid][0])
        for _ in range(cfg["images_per_tenant"]):
            image_id = image.create_image(
                as_user, data, disk_format=cfg["disk_format"],
                container_format=cfg["container_format"], poll_s=0.5, timeout_s=300.0,
                visibility=cfg["visibility"], min_disk=cfg["min_disk"],
                min_ram=cfg["min_ram"], name=cfg.get("image_name"))
            out.setdefault(pid, []).append(image_id)
            if "image_name" in cfg:
                jc.context_names["image"][cfg["image_name"]] = image_id
    return out


def make_networks(jc: Any, cfg: Mapping[str, Any], projects: list[str]
                  ) -> dict[str, list[str]]:
    """The network context: networks and subnets per project (tracked)."""
    api = jc.admin("network")
    per_net = cfg["subnets_per_network"]
    cidrs = iter(subnet_cidrs(cfg["start_cidr"],
                              len(projects) * cfg["networks_per_tenant"] * per_net))
    out: dict[str, list[str]] = {}
    for pid in projects:
        for _ in range(cfg["networks_per_tenant"]):
            body = {"network": {"name": jc.new_name(), **cfg["network_create_args"],
                                "project_id": pid}}
            net_id = str(api.post("/networks", json=body).json()["network"]["id"])
            jc.track("/networks", net_id, "network")
            out.setdefault(pid, []).append(net_id)
            for _ in range(per_net):
                sub: dict[str, Any] = {"name": jc.new_name(), "network_id": net_id,
                                       "project_id": pid, "ip_version": 4,
                                       "cidr": next(cidrs)}
                if "dns_nameservers" in cfg:
                    sub["dns_nameservers"] = cfg["dns_nameservers"]
                sid = str(api.post("/subnets", json={"subnet": sub}).json()["subnet"]["id"])
                jc.track("/subnets", sid, "network")
    return out


def set_quotas(jc: Any, quotas: Mapping[str, Mapping[str, int]], projects: list[str]) -> None:
    """The quotas context on each of `projects` (tracked: deleted at teardown)."""
    from femdc_bench.workload.errors import SetupError

    for service, values in quotas.items():
        if not values:
            continue
        service_type, path, key = QUOTA_API[service]
        api = jc.admin(service_type)  # SetupError when the catalog has no such service
        for pid in projects:
            r = api.put(f"{path}/{pid}", json={key: dict(values)}, raise_exc=False)
            if r.status_code not in (200, 202):
                raise SetupError(f"quotas context: {service} PUT {path}/{pid}: HTTP "
                                 f"{r.status_code} {r.text[:200]}")
            jc.track(path, pid, service_type)
