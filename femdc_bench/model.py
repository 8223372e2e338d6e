"""Plain data that crosses packages.

Every phase of the pipeline takes and returns these dataclasses (see
docs/architecture.md). This module imports nothing but the standard library, so the
workload agent that runs on hosts can import it too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from femdc_bench import catalog

# --------------------------------------------------------------------------- experiment


@dataclass(frozen=True)
class HostSpec:
    """One host of a site, as the experiment names it (ranges already expanded)."""

    name: str  # unique alias, "<site>-<name>"
    roles: tuple[str, ...]
    computes: int = 0  # nova-compute services (fake driver) on this host; >= 1 with role compute


@dataclass(frozen=True)
class SiteSpec:
    name: str
    hosts: tuple[HostSpec, ...]

    def hosts_with(self, role: str) -> list[HostSpec]:
        return [h for h in self.hosts if role in h.roles]


@dataclass(frozen=True)
class LinkSpec:
    """One-way constraints on a link. None means "not constrained"."""

    delay_ms: float = 0.0
    rate_kbit: float | None = None
    loss_pct: float = 0.0


@dataclass(frozen=True)
class WanOverride:
    src: tuple[str, ...]  # site names (groups expanded)
    dst: tuple[str, ...]
    link: LinkSpec
    symmetric: bool = True


@dataclass(frozen=True)
class WanSpec:
    emulator: str = "auto"  # auto | netem | userspace
    default: LinkSpec = field(default_factory=LinkSpec)
    intra_site: LinkSpec | None = None
    overrides: tuple[WanOverride, ...] = ()
    exclude: tuple[str, ...] = ()  # host aliases or CIDRs left unshaped
    compensate_base: bool = False  # targets are on top of the RTT measured before shaping


@dataclass(frozen=True)
class SweepPoint:
    """One point of the Cartesian product of the experiment's swept WAN parameters."""

    id: str  # "p0", "p1", ...
    params: dict[str, str]  # key path -> value as written, e.g. {"wan.default.delay": "50ms"}
    wan: WanSpec

    def label(self) -> str:
        return ", ".join(f"{k.removeprefix('wan.')}={v}" for k, v in self.params.items()) or "-"


@dataclass(frozen=True)
class SshHostSpec:
    """provider `static`: how to reach one host of the experiment over SSH."""

    alias: str  # "<site>-<host>", as the experiment names it
    address: str  # IP address: services bind to it, WAN rules match it
    user: str = "root"
    port: int = 22
    key: str | None = None  # private key path (absolute or ~/...); None: SSH agent/ssh config
    device: str = "eth0"  # the interface that holds `address`: the WAN rules go on it


@dataclass(frozen=True)
class G5kSpec:
    """provider `g5k`: one OAR job (per Grid'5000 site) through EnOSlib's G5k provider."""

    job_name: str
    walltime: str  # "HH:MM:SS"
    placement: tuple[tuple[str, str, str], ...]  # (experiment site, G5k site, cluster)
    queue: str = "default"  # default | production | besteffort
    reservation: str | None = None  # "YYYY-MM-DD HH:MM:SS"; None: as soon as possible
    env_name: str | None = None  # kadeploy environment; None: no deployment (std env)

    def cluster_of(self, site: str) -> tuple[str, str]:
        """(Grid'5000 site, cluster) of an experiment site."""
        for name, g5k_site, cluster in self.placement:
            if name == site:
                return g5k_site, cluster
        raise KeyError(site)


# Host roles. "control" is the rest of a site's control plane (Placement, Glance, Nova
# api/conductor/scheduler, Neutron server + OVN, RabbitMQ); "compute" runs nova-compute.
ROLES = ("database", "keystone", "load", "control", "compute")


# A host's flavour (VM size, Chameleon flavour or node type): by its alias, else by the
# first of its roles in this order (the heaviest first), else `default`.
FLAVOUR_ROLE_ORDER = ("control", "compute", "database", "keystone", "load")


def flavour_for(flavours: tuple[tuple[str, str], ...], alias: str,
                roles: tuple[str, ...]) -> str:
    table = dict(flavours)
    if alias in table:
        return table[alias]
    for role in FLAVOUR_ROLE_ORDER:
        if role in roles and role in table:
            return table[role]
    return table["default"]


@dataclass(frozen=True)
class VagrantSpec:
    """provider `vagrant`: one VM per host through EnOSlib's Vagrant provider."""

    backend: str = "libvirt"  # libvirt | virtualbox
    box: str = "generic/debian12"
    flavours: tuple[tuple[str, str], ...] = (("default", "medium"),)  # role|alias|default
    cidr: str = "192.168.42.0/24"  # the experiment network between the VMs


@dataclass(frozen=True)
class ChameleonSpec:
    """provider `chameleon`: KVM instances or a bare-metal lease through EnOSlib."""

    kind: str  # kvm | baremetal
    image: str
    key_name: str  # an SSH key pair registered in the Chameleon project
    flavours: tuple[tuple[str, str], ...]  # role|alias|default -> flavour (kvm) / node type
    rc_file: str | None = None  # OpenStack RC file (absolute or ~/...); None: OS_* environment
    user: str = "cc"
    lease_name: str = "femdc-bench"  # baremetal
    walltime: str = "02:00:00"  # baremetal: the lease's length


@dataclass(frozen=True)
class ProviderSpec:
    type: str = "local"  # local | static | g5k | vagrant | chameleon
    subnet: str | None = None  # local: private subnet for the hosts; chosen when None
    hosts: tuple[SshHostSpec, ...] = ()  # static
    g5k: G5kSpec | None = None
    vagrant: VagrantSpec | None = None
    chameleon: ChameleonSpec | None = None


# Services of the control plane beyond Keystone, in deployment order (catalog.py). A
# deployment that has a control plane runs all of them (Nova needs Placement, Glance
# and Neutron).
CONTROL_SERVICES = catalog.control_services()
# Sample.service (the catalog's service type) -> the deployed service that serves it.
SERVICE_OF_TYPE = catalog.service_of_type()


DEVSTACK_REPO = "https://opendev.org/openstack/devstack"
# local.conf variables femdc-bench sets from the layout and the run's secrets:
# `deployment.devstack.extra_localrc` may not set them (deploy/devstack.py renders them).
DEVSTACK_MANAGED_VARS = (
    "HOST_IP", "SERVICE_HOST", "MYSQL_HOST", "DATABASE_TYPE", "RABBIT_HOST", "GLANCE_HOSTPORT",
    "Q_HOST", "KEYSTONE_SERVICE_HOST", "REGION_NAME", "KEYSTONE_REGION_NAME",
    "ENABLED_SERVICES", "VIRT_DRIVER", "NUMBER_FAKE_NOVA_COMPUTE", "ADMIN_PASSWORD",
    "DATABASE_PASSWORD", "RABBIT_PASSWORD", "SERVICE_PASSWORD", "LOGFILE", "LOGDIR",
    "API_WORKERS", "ENABLE_CHASSIS_AS_GW", "NOVA_VNC_ENABLED", "DEST", "STACK_USER")


@dataclass(frozen=True)
class DevstackSpec:
    """`deployment.devstack`: which DevStack runs on the hosts (method devstack)."""

    ref: str  # git branch, tag or commit of `repo`; default stable/<release>
    repo: str = DEVSTACK_REPO
    stack_user: str = "stack"  # the user stack.sh runs as (home /opt/stack)
    extra_localrc: dict[str, str] = field(default_factory=dict)  # VAR -> value, literal


# kolla-ansible's release series: OpenStack release -> the kolla-ansible version deployed by
# default (the one pinned in playbooks/kolla/files/kolla-<release>.lock; a unit test keeps
# the two in step). `deployment.kolla.version` may name another of the same series.
KOLLA_VERSIONS = {"2025.1": "20.6.0", "2025.2": "21.3.0", "2026.1": "22.2.0",
                  "2026.2": "23.0.0"}

# globals.yml keys the kolla method writes from the experiment (layout, services, regions,
# interfaces): `deployment.kolla.globals` may not set them, nor any `ansible_*` variable.
KOLLA_CONTROLLED_GLOBALS = (
    "openstack_release", "kolla_base_distro", "network_interface",
    "neutron_external_interface", "kolla_internal_vip_address", "kolla_internal_fqdn",
    "kolla_external_vip_address", "enable_haproxy", "enable_keepalived",
    "keepalived_virtual_router_id", "docker_registry", "enable_openstack_core",
    *catalog.kolla_flags(), "enable_horizon", "neutron_plugin_agent", "enable_nova_fake",
    "num_nova_fake_per_node",
    "enable_nova_libvirt_container",
    "openstack_region_name", "multiple_regions_names", "kolla_internal_fqdn_r1",
    "keystone_internal_url", "openstack_auth", "node_custom_config",
    "openstack_service_workers", "keystone_api_workers")


@dataclass(frozen=True)
class KollaSpec:
    """`deployment.kolla`: what the kolla method needs beyond the layout (see
    docs/architecture.md, "Deployment method kolla")."""

    version: str  # kolla-ansible's version (pip)
    network_interface: str  # kolla's network_interface (API, tunnels) on every host
    neutron_external_interface: str | None = None  # None: a dummy interface we create
    # region (site of its control plane) -> internal VIP (haproxy + keepalived); a region
    # without one uses its control host's own address, without haproxy and keepalived
    internal_vip: dict[str, str] = field(default_factory=dict)
    registry: str | None = None  # docker_registry; None: kolla's default (quay.io)
    base_distro: str = "debian"  # kolla_base_distro of the images
    horizon: bool = False  # Horizon in the Keystone region (never in the others)
    globals: dict[str, Any] = field(default_factory=dict)  # more globals.yml keys, as given


@dataclass(frozen=True)
class DeploymentSpec:
    """Where each part of OpenStack runs.

    The three layouts of the published studies:
      a. central control:   keystone=centralized X, control=centralized X (compute elsewhere)
      b. region per site:   keystone=centralized X, control=per_site
      c. Keystone per site: keystone=per_site, control=None, database per_site|central|galera
    """

    method: str = "native"
    keystone: str = "per_site"  # "per_site" or "centralized"
    keystone_site: str | None = None  # the site when centralized
    database: str = "per_site"  # "per_site" | "central" | "galera"
    database_site: str | None = None  # the site when central
    keystone_workers: int = 2
    control: str | None = None  # None (Keystone only) | "centralized" | "per_site"
    control_site: str | None = None  # the site when centralized
    api_workers: int = 1  # uwsgi processes of placement, glance, nova-api, neutron
    # Every API endpoint, RabbitMQ, MariaDB (and Galera replication) behind TLS with a CA
    # made for the run (method native).
    tls: bool = False
    release: str | None = None  # OpenStack release (devstack, kolla), e.g. "2025.1"
    devstack: DevstackSpec | None = None  # method devstack: its repository, ref, extra localrc
    kolla: KollaSpec | None = None  # method "kolla" only

    @property
    def services(self) -> tuple[str, ...]:
        return ("keystone", *CONTROL_SERVICES) if self.control else ("keystone",)

    def keystone_sites(self, sites: list[str]) -> list[str]:
        if self.keystone == "centralized":
            assert self.keystone_site is not None
            return [self.keystone_site]
        return list(sites)

    def keystone_site_for(self, site: str) -> str:
        """The site whose Keystone serves `site`'s cloud."""
        return self.keystone_site if self.keystone == "centralized" else site  # type: ignore[return-value]

    def control_sites(self, sites: list[str]) -> list[str]:
        if self.control is None:
            return []
        if self.control == "centralized":
            assert self.control_site is not None
            return [self.control_site]
        return list(sites)

    def control_site_for(self, site: str) -> str | None:
        """The site whose control plane (Nova, Glance, ...) serves `site`; None without one."""
        if self.control is None:
            return None
        return self.control_site if self.control == "centralized" else site

    def region_for(self, site: str) -> str:
        """The region `site`'s users work in: named after the site that serves it."""
        return self.control_site_for(site) or self.keystone_site_for(site)

    def regions(self, sites: list[str]) -> list[str]:
        return list(dict.fromkeys(self.region_for(s) for s in sites))

    def database_site_for(self, site: str) -> str:
        """The site whose database host holds the databases of `site`'s services
        (galera: the local node of the cluster)."""
        if self.database == "central":
            assert self.database_site is not None
            return self.database_site
        return site

    # As the experiment file says it, for error messages.
    def keystone_text(self) -> str:
        return f"{{centralized: {self.keystone_site}}}" if self.keystone == "centralized" \
            else "per_site"

    def control_text(self) -> str:
        return f"{{centralized: {self.control_site}}}" if self.control == "centralized" \
            else str(self.control)

    def database_text(self) -> str:
        return f"{{central: {self.database_site}}}" if self.database == "central" \
            else self.database


@dataclass(frozen=True)
class RpsRamp:
    """Rally's rps ramp: `start` iterations/s, `step` more every `step_s` seconds, up to
    `end` (a staircase: the rate of stage k is min(end, start + k * step))."""

    start: float
    end: float
    step: float
    step_s: float = 1.0

    def rate(self, stage: int) -> float:
        return min(self.end, self.start + stage * self.step)

    def scaled(self, factor: float) -> RpsRamp:
        return RpsRamp(self.start * factor, self.end * factor, self.step * factor, self.step_s)


@dataclass(frozen=True)
class RunnerSpec:
    type: str  # "times" | "duration" | "rps"
    concurrency: int = 1  # rps: the most iterations in flight (Rally's max_concurrency)
    times: int | None = None  # times and rps
    duration_s: float | None = None
    rps: float | None = None  # rps: a constant rate (iterations started per second)...
    rps_ramp: RpsRamp | None = None  # ...or a ramp
    timeout_s: float | None = None  # an iteration that takes longer is an error (Rally's)

    def start_offset_s(self, index: int) -> float:
        """rps: when iteration `index` (from 0) is due, in seconds from the start."""
        if self.rps is not None:
            return index / self.rps
        ramp = self.rps_ramp
        if ramp is None:
            return 0.0
        done, stage = 0.0, 0
        while True:
            rate = ramp.rate(stage)
            per_stage = rate * ramp.step_s
            if rate >= ramp.end or done + per_stage > index:
                # the stage where `index` falls, or the last (constant) rate from here on
                return stage * ramp.step_s + (index - done) / rate
            done += per_stage
            stage += 1


@dataclass(frozen=True)
class ScenarioSpec:
    name: str  # e.g. "keystone.authenticate_and_validate_token"
    runner: RunnerSpec
    args: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()  # sites that run the load
    targets: tuple[str, ...] | None = None  # sites whose cloud is loaded; None = "local"
    # A Rally task's workload: its id (the `workload` tag, e.g. "task.yaml:subtasks[0]") and
    # its own SLA over the workload's rows (None: the experiment's workload.sla).
    workload: str = ""
    sla: SlaSpec | None = None
    contexts: dict[str, Any] = field(default_factory=dict)  # Rally's users/roles contexts


@dataclass(frozen=True)
class OutliersSla:
    """Rally's `outliers`: at most `max` successful iterations slower than mean + `sigmas`
    standard deviations of the ones before them, counted from the `min_iterations`-th."""

    max: int = 0
    min_iterations: int = 3
    sigmas: float = 3.0


@dataclass(frozen=True)
class SlaSpec:
    failure_rate_max_pct: float | None = None
    p95_ms_max: float | None = None
    failure_rate_min_pct: float | None = None  # Rally's failure_rate.min
    # Rally's other SLAs (evaluated per site and target over the samples, see
    # femdc_bench/workload/sla.py)
    max_seconds_per_iteration: float | None = None
    max_avg_duration_s: float | None = None
    max_avg_duration_per_atomic: tuple[tuple[str, float], ...] = ()
    outliers: OutliersSla | None = None

    @property
    def per_sample(self) -> bool:
        """Whether a criterion needs the iterations themselves (not only the stats)."""
        return (self.max_seconds_per_iteration is not None
                or self.max_avg_duration_s is not None
                or bool(self.max_avg_duration_per_atomic) or self.outliers is not None)


# Services a `kill` fault can crash, and the roles of the hosts that run them.
KILLABLE_SERVICES: dict[str, tuple[str, ...]] = catalog.killable()


@dataclass(frozen=True)
class FaultSpec:
    """A fault injected during the workload, from `at_s` after the load starts, for
    `duration_s` (None: until the load ends; then it is undone):

    - `partition`: `site` is cut off (100 % loss to and from it);
    - `kill`: `service` on `site`'s hosts is killed as by a crash (SIGKILL to its process
      tree), restarted as it was started after `duration_s` (`restart_after`);
    - `degrade`: the links between `site` and every other site get the `link` values
      named in `link_keys` (of delay_ms, rate_kbit, loss_pct) instead of the point's; the
      others stay as the point has them."""

    kind: str
    site: str
    at_s: float
    duration_s: float | None
    service: str | None = None
    link: LinkSpec | None = None
    link_keys: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        what = self.service if self.kind == "kill" else self.kind
        return f"{what}@{self.site}"


@dataclass(frozen=True)
class WorkloadSpec:
    scenarios: tuple[ScenarioSpec, ...] = ()
    sla: SlaSpec = field(default_factory=SlaSpec)
    faults: tuple[FaultSpec, ...] = ()


GRAFANA_IMAGE = "grafana/grafana-oss:11.6.0"  # the Docker image `metrics.grafana` runs


@dataclass(frozen=True)
class GrafanaSpec:
    """`metrics.grafana`: Grafana in Docker on one host of a testbed, our dashboards
    provisioned, its datasource the run's InfluxDB (grafana/service.py)."""

    host: str  # host alias ('<site>-<host>')
    port: int = 3000
    image: str = GRAFANA_IMAGE
    influxdb_url: str | None = None  # the run's InfluxDB as that host reaches it


@dataclass(frozen=True)
class MetricsSpec:
    influxdb: str = "local"  # "local" or a URL
    database: str = "femdc"  # 1.x database (or 2.x bucket when bucket is None)
    bucket: str | None = None
    org: str | None = None
    token_env: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    period_s: float = 5.0  # per-service sampling period on every host (metrics/sampler.py)
    sampling: bool = True  # sample services and hosts during every bench
    grafana: GrafanaSpec | None = None  # Grafana on a testbed host (metrics.grafana)


@dataclass(frozen=True)
class Experiment:
    name: str
    path: str  # file it was loaded from
    sites: tuple[SiteSpec, ...]
    provider: ProviderSpec
    deployment: DeploymentSpec
    wan: WanSpec
    workload: WorkloadSpec
    metrics: MetricsSpec
    points: tuple[SweepPoint, ...] = ()  # one per WAN sweep point; a single p0 without sweep
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def point(self, point_id: str) -> SweepPoint:
        for p in self.points:
            if p.id == point_id:
                return p
        raise KeyError(point_id)

    @property
    def site_names(self) -> list[str]:
        return [s.name for s in self.sites]

    def site(self, name: str) -> SiteSpec:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)


# --------------------------------------------------------------------------- inventory


@dataclass(frozen=True)
class Host:
    """A provisioned host, reachable over SSH."""

    alias: str
    address: str  # address on the experiment network (what services bind to)
    site: str
    roles: tuple[str, ...]
    ssh_user: str = "root"
    ssh_port: int = 22
    ssh_key: str | None = None
    workdir: str = "/var/lib/femdc-bench"  # per-host directory for files of this run
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific ansible vars


@dataclass(frozen=True)
class Inventory:
    provider: str
    hosts: tuple[Host, ...]
    shared_filesystem: bool = False  # local provider: hosts see the controller's files

    def by_site(self, site: str) -> list[Host]:
        return [h for h in self.hosts if h.site == site]

    def with_role(self, role: str, site: str | None = None) -> list[Host]:
        return [h for h in self.hosts if role in h.roles and (site is None or h.site == site)]

    def host(self, alias: str) -> Host:
        for h in self.hosts:
            if h.alias == alias:
                return h
        raise KeyError(alias)


# --------------------------------------------------------------------------- clouds


@dataclass(frozen=True)
class Cloud:
    """What a site's users see: the Keystone that serves the site and the region."""

    site: str
    auth_url: str
    region: str
    keystone_site: str  # site hosting that Keystone
    region_site: str = ""  # site whose control plane is the region ("" = keystone_site)
    services: tuple[str, ...] = ("keystone",)  # deployed services the region offers


HOST_CA_FILE = "tls/ca.pem"  # under a host's workdir (playbooks: native_tls_ca)


@dataclass(frozen=True)
class Clouds:
    clouds: tuple[Cloud, ...]
    clouds_yaml: str  # path to results/<run>/clouds.yaml (0600; holds the password)
    secrets_file: str  # path to the 0600 file with the generated passwords
    agent_python: str  # interpreter on load hosts with keystoneauth1 (the service venv)
    versions: dict[str, str] = field(default_factory=dict)  # package -> version
    # deployment.tls: the run's CA on the controller (clouds.yaml's `cacert`); on every
    # host it is <workdir>/tls/ca.pem (HOST_CA_FILE), which the load agents verify with.
    ca_file: str | None = None

    def host_ca_file(self, host: Host) -> str | None:
        return f"{host.workdir}/{HOST_CA_FILE}" if self.ca_file else None

    def for_site(self, site: str) -> Cloud:
        for c in self.clouds:
            if c.site == site:
                return c
        raise KeyError(site)


# --------------------------------------------------------------------------- samples

# Tags and fields of the `api` measurement (one point per Sample), in the order the
# architecture names them: here, so that the writer (metrics) and the agent (workload),
# which never import each other, share one list.
API_TAGS: tuple[str, ...] = ("run", "experiment", "point", "site", "host", "target_site",
                             "service", "operation", "status", "action", "workload")
API_FIELDS: tuple[str, ...] = ("duration_ms", "error", "iteration")


@dataclass
class Sample:
    """One workload iteration, as stored in the `api` measurement."""

    site: str  # where the load ran
    target_site: str  # whose cloud was loaded
    service: str  # "identity", ...
    operation: str  # scenario short name, e.g. "authenticate_and_validate_token"
    t0_ns: int  # wall-clock start (epoch ns), the point's timestamp
    duration_ms: float  # monotonic-clock duration
    status: str  # "ok" | "error"
    error: str = ""
    host: str = ""
    iteration: int = 0
    action: str = ""  # "" for the whole iteration; else an atomic action, e.g. "nova.boot_server"
    fields: dict[str, float] = field(default_factory=dict)  # more numbers, e.g. {"mb_per_s": 41.2}
    workload: str = ""  # the Rally workload it belongs to ("" outside Rally tasks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        return cls(**d)
