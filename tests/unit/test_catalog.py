"""The service catalog (femdc_bench/catalog.py): its records are consistent, and the
tables derived from it equal the hand-written ones they replaced (written here once, so
that the derivation is proven equal)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from femdc_bench import catalog, experiment, model
from femdc_bench.ansible import PLAYBOOKS
from femdc_bench.bench import controller as bench_controller
from femdc_bench.deploy import devstack, native
from femdc_bench.workload import context, task_contexts

ROLES_DIR = PLAYBOOKS / "native" / "roles"
CATALOG_PY = Path(catalog.__file__)

# ------------------------------------------------------------------ the old tables

OLD_CONTROL_SERVICES = ("placement", "glance", "nova", "neutron")
OLD_SERVICE_OF_TYPE = {"identity": "keystone", "placement": "placement", "image": "glance",
                       "compute": "nova", "network": "neutron"}
OLD_KILLABLE_SERVICES = {
    "keystone": ("keystone",), "memcached": ("keystone", "control"), "mariadb": ("database",),
    "rabbitmq": ("control",), "placement": ("control",), "glance": ("control",),
    "nova-api": ("control",), "nova-conductor": ("control",), "nova-scheduler": ("control",),
    "neutron": ("control",), "ovn-northd": ("control",), "nova-compute": ("compute",),
}
OLD_KOLLA_SERVICE_FLAGS = {"enable_keystone", "enable_glance", "enable_nova", "enable_neutron",
                           "enable_placement", "enable_mariadb", "enable_memcached",
                           "enable_rabbitmq"}
OLD_API_VERSIONS = {"identity": ("3", "3.latest"), "compute": ("2.1", "2.latest"),
                    "image": ("2", "2.latest"), "network": ("2.0", "2.latest"),
                    "placement": ("1.0", "1.latest")}
OLD_MICROVERSIONS = {"compute": "2.79", "placement": "1.39"}
OLD_TEARDOWN_ORDER = (
    ("compute", "/servers"), ("network", "/ports"), ("network", "/subnets"),
    ("network", "/networks"), ("image", "/images"), ("compute", "/flavors"),
    ("placement", "/allocations"), ("placement", "/resource_providers"),
    ("compute", "/os-quota-sets"), ("network", "/quotas"), ("volumev3", "/os-quota-sets"),
)
OLD_RALLY_API_VERSIONS = {"keystone": ("3",), "nova": ("2", "2.1"), "glance": ("2",),
                          "neutron": ("2", "2.0"), "placement": ("1", "1.0")}
OLD_SECRET_KEYS = ("db_root", "keystone_db", "admin", "service", "rabbit", "placement_db",
                   "glance_db", "nova_db", "neutron_db")
OLD_KEY_KEYS = ("fernet_0", "fernet_1", "credential_0", "credential_1")
OLD_DEVSTACK_CONTROLLER = ("key", "mysql", "rabbit", "placement-api", "g-api", "n-api",
                           "n-cond", "n-sch", "q-svc", "ovn-northd", "ovn-controller",
                           "ovs-vswitchd", "ovsdb-server")
OLD_DEVSTACK_COMPUTE = ("n-cpu", "placement-client", "ovn-controller", "ovs-vswitchd",
                        "ovsdb-server")
OLD_STOP_STAGES = [
    [["femdc-sampler", "python3"], ["ovn-chassis", "python3"], ["nova-compute", "python"]],
    [["neutron", "uwsgi"], ["nova-api", "uwsgi"], ["nova-conductor", "nova-conductor:"],
     ["nova-scheduler", "nova-scheduler:"], ["glance", "uwsgi"], ["placement", "uwsgi"],
     ["ovn-northd", "ovn-northd"], ["ovn-nb", "ovsdb-server"], ["ovn-sb", "ovsdb-server"],
     ["rabbitmq", "beam.smp"], ["keystone", "uwsgi"], ["memcached", "memcached"]],
    [["mariadb", "mariadbd"]],
]
# roles/mariadb/defaults/main.yml's mariadb_databases: (name, user, secret, host group)
OLD_DATABASES = {("keystone", "keystone", "keystone_db", "keystone"),
                 ("placement", "placement", "placement_db", "control"),
                 ("glance", "glance", "glance_db", "control"),
                 ("nova_api", "nova", "nova_db", "control"),
                 ("nova", "nova", "nova_db", "control"),
                 ("nova_cell0", "nova", "nova_db", "control"),
                 ("neutron", "neutron", "neutron_db", "control")}
OLD_DEPLOY_ROLES = {"database": ["mariadb"], "keystone": ["memcached", "keystone"],
                    "control": ["memcached", "rabbitmq", "ovn", "placement", "glance", "nova",
                                "neutron"],
                    "compute": ["nova_compute", "ovn_chassis"], "load": []}
OLD_PORTS = {"keystone": 5000, "memcached": 11211, "mariadb": 3306, "rabbitmq": 5672,
             "placement": 8778, "glance": 9292, "nova": 8774, "neutron": 9696}


def test_derived_tables_equal_the_ones_they_replaced() -> None:
    assert model.CONTROL_SERVICES == OLD_CONTROL_SERVICES
    assert model.SERVICE_OF_TYPE == OLD_SERVICE_OF_TYPE
    assert model.KILLABLE_SERVICES == OLD_KILLABLE_SERVICES
    assert {g for g in model.KOLLA_CONTROLLED_GLOBALS
            if g in OLD_KOLLA_SERVICE_FLAGS} == OLD_KOLLA_SERVICE_FLAGS
    assert set(catalog.kolla_flags()) == OLD_KOLLA_SERVICE_FLAGS
    assert context.API_VERSIONS == OLD_API_VERSIONS
    assert context.MICROVERSIONS == OLD_MICROVERSIONS
    assert context.TEARDOWN_ORDER == OLD_TEARDOWN_ORDER
    assert task_contexts.API_VERSIONS == OLD_RALLY_API_VERSIONS
    assert set(native.SECRET_KEYS) == set(OLD_SECRET_KEYS)
    assert len(native.SECRET_KEYS) == len(OLD_SECRET_KEYS)
    assert native.KEY_KEYS == OLD_KEY_KEYS
    assert devstack.CONTROLLER_SERVICES == OLD_DEVSTACK_CONTROLLER
    assert devstack.COMPUTE_SERVICES == OLD_DEVSTACK_COMPUTE
    assert native.stop_stages() == OLD_STOP_STAGES
    assert native.KEYSTONE_PORT == 5000
    got = {(d.name, d.user, d.secret, h) for s in catalog.SERVICES for d in s.databases
           for h in s.hosts}
    assert got == OLD_DATABASES
    v = catalog.ansible_vars()
    assert v["femdc_roles_of"] == OLD_DEPLOY_ROLES
    assert {s.name: s.ports[0] for s in catalog.SERVICES if s.name in OLD_PORTS} == OLD_PORTS
    assert catalog.OVN.ports == (6641, 6642)
    # native.deploy's manifest versions: this list, now the records' packages + libraries
    assert {*catalog.packages(), *native.MANIFEST_LIBRARIES} == {
        "keystone", "keystoneauth1", "uwsgi", "sqlalchemy", "oslo.cache", "pymysql",
        "python-memcached", "openstack-placement", "glance", "nova", "neutron",
        "oslo.messaging", "ovsdbapp"}


# ------------------------------------------------------------------ consistency

def test_names_types_processes_and_ports_are_unique() -> None:
    names = [s.name for s in catalog.SERVICES]
    assert len(names) == len(set(names))
    roles = [s.role for s in catalog.SERVICES]
    assert len(roles) == len(set(roles))
    types = [s.catalog_type for s in catalog.SERVICES if s.catalog_type]
    assert len(types) == len(set(types))
    procs = [p.name for s in catalog.SERVICES for p in s.processes]
    assert len(procs) == len(set(procs))
    # ports: unique over the whole catalog (one host may hold every role)
    ports = [p for s in catalog.SERVICES for p in s.ports]
    assert len(ports) == len(set(ports))
    ranks = [r for s in catalog.SERVICES for r, _ in s.teardown]
    assert len(ranks) == len(set(ranks))


def test_every_record_is_complete_for_what_it_is() -> None:
    for s in catalog.SERVICES:
        assert s.hosts and set(s.hosts) <= set(experiment.ROLES), s.name
        assert set(catalog.HOST_ROLES) == set(experiment.ROLES)
        assert s.processes, s.name
        assert s.stop_stage in (catalog.STOP_COMPUTE, catalog.STOP_CONTROL,
                                catalog.STOP_DATABASE), s.name
        for d in s.databases:
            assert d.secret in s.secrets, (s.name, d)
        if s.is_api:
            assert s.api_versions and s.ports and s.health and s.health.startswith("/"), s.name
            assert s.rally_versions and s.packages, s.name
        else:
            assert s.api_versions is None and s.microversion is None and not s.teardown
        if s.kolla_flag:
            assert s.kolla_flag.startswith("enable_")
            assert s.kolla_flag in model.KOLLA_CONTROLLED_GLOBALS
    assert catalog.of_type("compute") is catalog.NOVA
    assert catalog.service("nova-compute") is catalog.NOVA_COMPUTE


def test_every_killable_process_is_started_by_its_role() -> None:
    """A `kill` target is a process the record's role supervises (its pidfile name is a
    `service_name` of the role's tasks), on hosts of roles the experiment knows."""
    for s in catalog.SERVICES:
        text = "\n".join(p.read_text() for p in (ROLES_DIR / s.role).rglob("*.yml"))
        for p in s.processes:
            assert p.name in text, (s.role, p.name)
    for name, roles in model.KILLABLE_SERVICES.items():
        assert roles and set(roles) <= set(experiment.ROLES), name


def test_every_role_exists_and_creates_its_own_databases() -> None:
    for s in catalog.SERVICES:
        tasks = ROLES_DIR / s.role / "tasks"
        for f in ("main.yml", "start.yml", "stop.yml", "check.yml"):
            assert (tasks / f).is_file(), (s.role, f)
        boot = tasks / "bootstrap.yml"
        creates = boot.is_file() and f"femdc_catalog.{s.role}.databases" in boot.read_text()
        assert creates == bool(s.databases), s.role
    # the mariadb role no longer lists any service's database
    defaults = yaml.safe_load((ROLES_DIR / "mariadb" / "defaults" / "main.yml").read_text())
    assert "mariadb_databases" not in defaults


def test_playbooks_list_no_service() -> None:
    """deploy.yml and destroy.yml loop over the catalog's variables: no service role or
    process is named there (but the Galera and region checks, which are the
    database's and Nova's own task files)."""
    deploy = yaml.safe_load((PLAYBOOKS / "native" / "deploy.yml").read_text())
    for play in deploy:
        assert [r if isinstance(r, str) else r["role"] for r in play.get("roles", [])] \
            in ([], ["host"], ["venv"]), play["name"]
    destroy = (PLAYBOOKS / "native" / "destroy.yml").read_text()
    for s in catalog.SERVICES:
        for p in s.processes:
            assert f"[{p.name}," not in destroy


def test_ansible_vars_are_plain_json() -> None:
    v = catalog.ansible_vars()
    assert json.loads(json.dumps(v)) == v
    assert set(v["femdc_catalog"]) == {s.role for s in catalog.SERVICES}
    assert [a["role"] for a in v["femdc_apis"]] == [s.role for s in catalog.apis()]


def test_catalog_is_standard_library_only_and_shipped(tmp_path: Path) -> None:
    tree = ast.parse(CATALOG_PY.read_text())
    imported = {(n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
                for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
                for a in n.names}
    assert imported <= {"__future__", "dataclasses"}, imported
    z = bench_controller.build_agent_zip(tmp_path / "agent.zip")
    assert "femdc_bench/catalog.py" in zipfile.ZipFile(z).namelist()
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c",
         "import sys; sys.path.insert(0, sys.argv[1]); import femdc_bench.catalog as c, "
         "femdc_bench.model as m, femdc_bench.metrics.sampler; "
         "print(c.__file__, m.CONTROL_SERVICES)", str(z)],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert str(z) in proc.stdout and "placement" in proc.stdout
