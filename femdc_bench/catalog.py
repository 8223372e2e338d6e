"""The service catalog: one record per service femdc-bench deploys or loads.

OpenStack APIs (Keystone, Placement, Glance, Nova, Neutron) and the services behind them
(MariaDB/Galera, memcached, RabbitMQ, OVN, the fake computes and their chassis) each have
one `Service` record here, and every other table is derived from these records: the
experiment's checks (`model.CONTROL_SERVICES`, `SERVICE_OF_TYPE`, `KILLABLE_SERVICES`,
the Kolla enable flags of `KOLLA_CONTROLLED_GLOBALS`), the run's secrets
(`deploy/native.py`), the variables handed to the native playbooks (`ansible_vars`: which
roles a host role runs, the databases each role creates, destroy's stop stages, ports),
DevStack's `ENABLED_SERVICES` and Kolla's `enable_*` flags, the fault targets, the
sampler's service names and the scenarios' clients (`ctx.api("compute")`: API versions,
microversion, teardown order). Adding a service is a record here, a role under
playbooks/native/roles/ and a scenario module (docs/architecture.md, "Adding an
OpenStack service").

The order of `SERVICES` is the deployment order on a host (memcached before Keystone,
OVN before Neutron); a stop stage reverses it.

Standard library only: the workload agent and the sampler on hosts import it (it is in
the agent zip, bench.controller.build_agent_zip).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Host roles (experiment `roles:`) a service may run on.
HOST_ROLES = ("database", "keystone", "control", "compute", "load")

#: destroy's stop stages: computes first, the rest of the control plane, the database last.
STOP_COMPUTE, STOP_CONTROL, STOP_DATABASE = 0, 1, 2


@dataclass(frozen=True)
class Database:
    """A MariaDB database the service's role creates (with its user) on its database
    host; the user's password is the run's secret `secret`."""

    name: str
    user: str
    secret: str


@dataclass(frozen=True)
class Process:
    """A supervised process: its pidfile/unit name (`<workdir>/run/<name>.pid`,
    `femdc-<run>-<name>`), the command name the pidfile's PID must have (`comm`, checked
    before a signal) and whether a `kill` fault may target it."""

    name: str
    comm: str
    killable: bool = True


@dataclass(frozen=True)
class Service:
    """One service. `name` is how the experiment and the results name it.

    - role: its role under playbooks/native/roles/;
    - hosts: the host roles whose hosts run it (native layouts);
    - catalog_type: its Keystone catalog type (None: not an API), the key of
      `ctx.api(...)` and of Sample.service;
    - api_versions: (min, max) version asked of discovery; microversion: what every
      request carries (OpenStack-API-Version); rally_versions: the versions Rally's
      `api_versions` context may name;
    - ports: what it listens on (plain; TLS ports are the roles'); health: the path of
      its API that answers 200 when it is up;
    - databases, secrets (generated per run, URL-safe), keys (32-byte URL-safe base64:
      Keystone's fernet and credential keys);
    - processes; stop_stage (STOP_*);
    - devstack: DevStack service names enabled on the hosts that run it;
    - kolla_flag: the globals.yml `enable_*` flag that deploys it with Kolla-Ansible;
    - teardown: (rank, collection) of what scenarios create in this API, deleted at a
      job's end in rank order across services (lower first), newest first within one;
      ranks are spaced by 10 so that a new service's collections fit between (a
      volume after the servers it is attached to, before their networks);
    - packages: its PyPI distributions in the native method's lock (recorded in the
      run's manifest with their versions).
    """

    name: str
    role: str
    hosts: tuple[str, ...]
    catalog_type: str | None = None
    api_versions: tuple[str, str] | None = None
    microversion: str | None = None
    rally_versions: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    health: str | None = None
    databases: tuple[Database, ...] = ()
    secrets: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    processes: tuple[Process, ...] = ()
    stop_stage: int = STOP_CONTROL
    devstack: tuple[str, ...] = ()
    kolla_flag: str | None = None
    teardown: tuple[tuple[int, str], ...] = ()
    packages: tuple[str, ...] = ()

    @property
    def is_api(self) -> bool:
        return self.catalog_type is not None


MEMCACHED = Service(
    name="memcached", role="memcached", hosts=("keystone", "control"), ports=(11211,),
    processes=(Process("memcached", "memcached"),), kolla_flag="enable_memcached")

KEYSTONE = Service(
    name="keystone", role="keystone", hosts=("keystone",), catalog_type="identity",
    api_versions=("3", "3.latest"), rally_versions=("3",), ports=(5000,), health="/v3",
    databases=(Database("keystone", "keystone", "keystone_db"),),
    secrets=("keystone_db", "admin", "service"),
    keys=("fernet_0", "fernet_1", "credential_0", "credential_1"),
    processes=(Process("keystone", "uwsgi"),), devstack=("key",),
    kolla_flag="enable_keystone", packages=("keystone",))

MARIADB = Service(  # Galera too: the same server, in a cluster (deployment.database)
    name="mariadb", role="mariadb", hosts=("database",), ports=(3306,), secrets=("db_root",),
    processes=(Process("mariadb", "mariadbd"),), stop_stage=STOP_DATABASE,
    devstack=("mysql",), kolla_flag="enable_mariadb")

RABBITMQ = Service(
    name="rabbitmq", role="rabbitmq", hosts=("control",), ports=(5672,), secrets=("rabbit",),
    processes=(Process("rabbitmq", "beam.smp"),), devstack=("rabbit",),
    kolla_flag="enable_rabbitmq")

OVN = Service(  # OVN central: NB and SB ovsdb-servers and ovn-northd (Neutron's ML2/OVN)
    name="ovn", role="ovn", hosts=("control",), ports=(6641, 6642),
    processes=(Process("ovn-northd", "ovn-northd"),
               Process("ovn-nb", "ovsdb-server", killable=False),
               Process("ovn-sb", "ovsdb-server", killable=False)))

PLACEMENT = Service(
    name="placement", role="placement", hosts=("control",), catalog_type="placement",
    api_versions=("1.0", "1.latest"), microversion="1.39", rally_versions=("1", "1.0"),
    ports=(8778,), health="/", databases=(Database("placement", "placement", "placement_db"),),
    secrets=("placement_db",), processes=(Process("placement", "uwsgi"),),
    devstack=("placement-api",), kolla_flag="enable_placement",
    packages=("openstack-placement",),
    teardown=((70, "/allocations"), (80, "/resource_providers")))

GLANCE = Service(
    name="glance", role="glance", hosts=("control",), catalog_type="image",
    api_versions=("2", "2.latest"), rally_versions=("2",), ports=(9292,), health="/versions",
    databases=(Database("glance", "glance", "glance_db"),), secrets=("glance_db",),
    processes=(Process("glance", "uwsgi"),), devstack=("g-api",), kolla_flag="enable_glance",
    packages=("glance",),
    teardown=((50, "/images"),))

NOVA = Service(  # the control services; the fake computes are NOVA_COMPUTE
    name="nova", role="nova", hosts=("control",), catalog_type="compute",
    api_versions=("2.1", "2.latest"), microversion="2.79", rally_versions=("2", "2.1"),
    ports=(8774,), health="/",
    databases=(Database("nova_api", "nova", "nova_db"), Database("nova", "nova", "nova_db"),
               Database("nova_cell0", "nova", "nova_db")),
    secrets=("nova_db",),
    processes=(Process("nova-api", "uwsgi"), Process("nova-conductor", "nova-conductor:"),
               Process("nova-scheduler", "nova-scheduler:")),
    devstack=("n-api", "n-cond", "n-sch"), kolla_flag="enable_nova", packages=("nova",),
    # servers first, waited for until gone: their ports must be gone before networks
    teardown=((10, "/servers"), (60, "/flavors")))

NEUTRON = Service(  # with ML2/OVN: DevStack's OVN services come with it
    name="neutron", role="neutron", hosts=("control",), catalog_type="network",
    api_versions=("2.0", "2.latest"), rally_versions=("2", "2.0"), ports=(9696,), health="/",
    databases=(Database("neutron", "neutron", "neutron_db"),), secrets=("neutron_db",),
    processes=(Process("neutron", "uwsgi"),),
    devstack=("q-svc", "ovn-northd", "ovn-controller", "ovs-vswitchd", "ovsdb-server"),
    kolla_flag="enable_neutron", packages=("neutron",),
    teardown=((20, "/ports"), (30, "/subnets"), (40, "/networks")))

NOVA_COMPUTE = Service(  # one pool process forking a fake nova-compute per name
    name="nova-compute", role="nova_compute", hosts=("compute",),
    processes=(Process("nova-compute", "python"),), stop_stage=STOP_COMPUTE,
    devstack=("n-cpu", "placement-client"))

OVN_CHASSIS = Service(  # one OVN chassis per fake compute, kept alive as ovn-controller would
    name="ovn-chassis", role="ovn_chassis", hosts=("compute",),
    processes=(Process("ovn-chassis", "python3", killable=False),), stop_stage=STOP_COMPUTE,
    devstack=("ovn-controller", "ovs-vswitchd", "ovsdb-server"))

#: Every service, in deployment order.
SERVICES: tuple[Service, ...] = (MEMCACHED, KEYSTONE, MARIADB, RABBITMQ, OVN, PLACEMENT,
                                 GLANCE, NOVA, NEUTRON, NOVA_COMPUTE, OVN_CHASSIS)


def service(name: str) -> Service:
    for s in SERVICES:
        if s.name == name:
            return s
    raise KeyError(name)


def of_type(catalog_type: str) -> Service:
    """The API service of a catalog type ("compute" -> nova)."""
    for s in SERVICES:
        if s.catalog_type == catalog_type:
            return s
    raise KeyError(catalog_type)


def on(host_role: str) -> tuple[Service, ...]:
    """The services hosts of `host_role` run, in deployment order."""
    return tuple(s for s in SERVICES if host_role in s.hosts)


# ------------------------------------------------------------------ derived tables

def apis() -> tuple[Service, ...]:
    return tuple(s for s in SERVICES if s.is_api)


def control_services() -> tuple[str, ...]:
    """The APIs of a region's control plane beyond Keystone, in deployment order."""
    return tuple(s.name for s in apis() if "control" in s.hosts)


def service_of_type() -> dict[str, str]:
    """Catalog type (Sample.service) -> the deployed service that serves it."""
    return {s.catalog_type: s.name for s in apis() if s.catalog_type}


def killable() -> dict[str, tuple[str, ...]]:
    """What a `kill` fault may target (a process) -> host roles of the hosts running it."""
    return {p.name: s.hosts for s in SERVICES for p in s.processes if p.killable}


def secret_keys() -> tuple[str, ...]:
    """Every per-run password (URL-safe), `admin` and `service` among them."""
    return tuple(dict.fromkeys(k for s in SERVICES for k in s.secrets))


def key_keys() -> tuple[str, ...]:
    """Every per-run 32-byte key (URL-safe base64)."""
    return tuple(dict.fromkeys(k for s in SERVICES for k in s.keys))


def kolla_flags() -> tuple[str, ...]:
    return tuple(s.kolla_flag for s in SERVICES if s.kolla_flag)


def api_versions() -> dict[str, tuple[str, str]]:
    """Catalog type -> (min, max) version asked of discovery."""
    return {s.catalog_type: s.api_versions for s in apis()
            if s.catalog_type and s.api_versions}


def microversions() -> dict[str, str]:
    """Catalog type -> the microversion every request carries."""
    return {s.catalog_type: s.microversion for s in apis()
            if s.catalog_type and s.microversion}


def rally_versions() -> dict[str, tuple[str, ...]]:
    """Rally's service name (ours) -> the API versions its `api_versions` context may ask."""
    return {s.name: s.rally_versions for s in SERVICES if s.rally_versions}


def teardown_order() -> tuple[tuple[str, str], ...]:
    """(catalog type, collection) of what scenarios create, in deletion order."""
    ranked = sorted((rank, s.catalog_type, coll) for s in apis() if s.catalog_type
                    for rank, coll in s.teardown)
    return tuple((t, c) for _, t, c in ranked)


def devstack_services(host_roles: tuple[str, ...] | list[str]) -> list[str]:
    """DevStack's ENABLED_SERVICES of a host with these roles (each name once, in
    deployment order)."""
    return list(dict.fromkeys(n for s in SERVICES if set(s.hosts) & set(host_roles)
                              for n in s.devstack))


def packages() -> tuple[str, ...]:
    """The services' PyPI distributions (native method)."""
    return tuple(p for s in SERVICES for p in s.packages)


def stop_stages() -> list[list[list[str]]]:
    """destroy's stages: [[pidfile name, comm], ...] per stage, each in reverse
    deployment order (playbooks/native/files/stop_all.py)."""
    n = max(s.stop_stage for s in SERVICES) + 1
    stages: list[list[list[str]]] = [[] for _ in range(n)]
    for s in reversed(SERVICES):
        for p in s.processes:
            stages[s.stop_stage].append([p.name, p.comm])
    return stages


def ansible_vars() -> dict[str, object]:
    """What the native playbooks take from the catalog (extra vars):

    - femdc_catalog: role name -> {name, ports, health, databases [{name, user,
      secret}]}, what a role reads of its own record;
    - femdc_roles_of: host role -> the roles its hosts run, in deployment order (the
      plays of deploy.yml loop over them);
    - femdc_apis: [{role, port, health, hosts}] of every API (verify.yml).

    destroy.yml takes `femdc_stop_stages` (stop_stages(), deploy/native.py adds the
    sampler)."""
    return {
        "femdc_catalog": {s.role: {"name": s.name, "ports": list(s.ports),
                                   "health": s.health,
                                   "databases": [{"name": d.name, "user": d.user,
                                                  "secret": d.secret} for d in s.databases]}
                          for s in SERVICES},
        "femdc_roles_of": {r: [s.role for s in on(r)] for r in HOST_ROLES},
        "femdc_apis": [{"role": s.role, "port": s.ports[0], "health": s.health,
                        "hosts": list(s.hosts)} for s in SERVICES if s.health and s.ports],
    }
