"""What scenarios are given: keystoneauth1 sessions and adapters, names, resource tracking.

One `JobContext` per job authenticates the admin once (untimed) and resolves, once, the
endpoint of every catalog service type the scenario needs (`Scenario.services`: identity,
compute, image, network, placement), with the spec's interface and region. It is what
scenario setup/teardown functions receive. Each worker thread gets a `WorkerContext`
with its own keystoneauth1 Session (one keep-alive connection) and, made on first use,
one Adapter per service type (``ctx.api("compute")``, keyed by the catalog type of
catalog.py's records; ``ctx.identity`` the admin's), pinned to the resolved endpoint:
no catalog lookup or version discovery per request. All of them share the admin auth
plugin, whose token keystoneauth1 caches (and renews only near expiry), so iterations
never re-authenticate the admin and make no request beyond the scenario's own.

Endpoints are versioned: identity ".../v3", compute ".../v2.1", image ".../v2", network
".../v2.0", placement the root (it has a single major version). Microversions
(`MICROVERSIONS`) are sent by the compute and placement adapters only, on each of their
requests, so every response of a job has one schema:

- compute 2.79 (Train): "networks" is required at boot (2.37+), so the scenarios always
  pass one; server representations include everything up to Train.
- placement 1.39: POST /resource_providers returns the provider (1.20+), allocations
  carry project, user, consumer generation (1.28+) and consumer type (1.38+).

Imports the standard library, requests and keystoneauth1 only.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import requests
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from femdc_bench import catalog
from femdc_bench.workload import runner
from femdc_bench.workload.errors import SetupError, wait_for
from femdc_bench.workload.runner import AtomicAction, describe_error
from femdc_bench.workload.spec import JobSpec
from femdc_bench.workload.task_contexts import QUOTA_API, ContextUser, ContextUsers

USER_AGENT = "femdc-bench-agent"
NAME_MAX = 64  # Keystone's limit for project names (users: 255)
NAME_SUFFIX_HEX = 12
T = TypeVar("T")

#: Service type -> (min_version, max_version) asked of the one discovery at open()
#: (catalog.py, each API's record).
API_VERSIONS: dict[str, tuple[str, str]] = catalog.api_versions()
#: Service type -> the microversion all its requests carry (OpenStack-API-Version).
MICROVERSIONS: dict[str, str] = catalog.microversions()

#: Teardown order: (service type, collection); within a group newest first; anything
#: else (identity users, projects...) afterwards, newest first. Servers are deleted
#: first and waited for until gone: their ports must be gone before networks are. The
#: catalog's records rank their collections; then the quotas context's resets (back to
#: the defaults before the projects go).
TEARDOWN_ORDER: tuple[tuple[str, str], ...] = (
    *catalog.teardown_order(),
    *((svc, path) for svc, path, _ in QUOTA_API.values()),
)
TEARDOWN_WAIT_S = 120.0  # per resource that must be waited for (servers)
TEARDOWN_POLL_S = 0.5
TEARDOWN_CONFLICT_RETRIES = 5  # a 409 (e.g. a network whose ports are going) is retried


class AuthCache(Protocol):
    """Tokens and endpoints kept between jobs (the bench daemon's, host_daemon.AuthCache):
    `key(parts)` names an identity, `get`/`put` its {"state", "endpoints"}."""

    def key(self, parts: list[Any]) -> str: ...

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...


def is_gone(adapter: ks_adapter.Adapter, path: str) -> Any:
    """GET `path`: True if 404, else the JSON body (raises on other HTTP errors)."""
    r = adapter.get(path, raise_exc=False)
    if r.status_code == 404:
        return True
    if r.status_code >= 400:
        r.raise_for_status()
    try:
        body = r.json()
    except ValueError:
        return {}
    return next(iter(body.values()), body) if isinstance(body, dict) and len(body) == 1 else body


class JobContext:
    """Per-job state shared by all workers; what setup and teardown functions receive.

    Has the same helpers as a WorkerContext (admin adapters per service type, names,
    tracking, `atomic` and `record*`, which do nothing outside the load), so a helper
    can serve both a scenario iteration and its setup.
    """

    def __init__(self, job: JobSpec) -> None:
        if len(job.name_prefix) + NAME_SUFFIX_HEX > NAME_MAX:
            raise SetupError(f"name_prefix longer than {NAME_MAX - NAME_SUFFIX_HEX} characters")
        self.job = job
        self.args: dict[str, Any] = dict(job.args)
        self.name_prefix = job.name_prefix
        self.shared: dict[str, Any] = {}  # filled by scenario setup, read by workers
        a = job.auth
        self.auth = v3.Password(
            auth_url=a.auth_url,
            username=a.username,
            password=a.password,
            project_name=a.project_name,
            user_domain_name=a.user_domain_name,
            project_domain_name=a.project_domain_name,
        )
        self._sessions: list[Any] = []  # anything with close(): sessions, connections
        self._lock = threading.Lock()
        # (service type, collection path, id) -> None: a set that keeps creation order
        self._resources: dict[tuple[str, str, str], None] = {}
        self.endpoints: dict[str, str] = {}  # service type -> versioned endpoint URL
        self.session = self.new_session()
        self.identity: ks_adapter.Adapter | None = None  # admin adapter, after open()
        self._admin: dict[str, ks_adapter.Adapter] = {}
        self.users: ContextUsers | None = None  # Rally's users context, if the job has one
        # what the images and flavors contexts made: kind -> given name -> id
        self.context_names: dict[str, dict[str, str]] = {"image": {}, "flavor": {}}

    # ---------------------------------------------------------------- lifecycle

    def open(self, services: tuple[str, ...] | list[str] = ("identity",),
             cache: AuthCache | None = None) -> None:
        """Authenticate the admin and resolve the endpoint of each of `services` (untimed).

        With a `cache` (the bench daemon's), a token and endpoints an earlier job of the
        same identity got are reused: no request at all when they cover `services` and
        the token is not near its expiry (keystoneauth1 authenticates again then, and
        on a 401). What this job learnt goes back to the cache."""
        a = self.job.auth
        key = hit = None
        if cache is not None:
            key = cache.key([self.auth.get_cache_id(), a.interface, a.region_name,
                             str(a.verify)])
            hit = cache.get(key)
            if hit is not None:
                try:
                    self.auth.set_auth_state(hit["state"])
                    self.endpoints.update(hit["endpoints"])
                except (KeyError, TypeError, ValueError):
                    self.auth.set_auth_state(None)
                    self.endpoints.clear()
                    hit = None
        try:
            self.access = self.auth.get_access(self.session)
        except Exception as e:  # noqa: BLE001 - reported as one line
            raise SetupError(f"cannot authenticate at {a.auth_url}: {describe_error(e)}") from e
        for service_type in dict.fromkeys(("identity", *services)):
            self.resolve(service_type)
        self.identity = self.admin("identity")
        if cache is not None and key is not None:
            state = self.auth.get_auth_state()
            if state and (hit is None or hit.get("state") != state
                          or hit.get("endpoints") != self.endpoints):
                cache.put(key, {"state": state, "endpoints": dict(self.endpoints)})

    @property
    def endpoint(self) -> str:
        """The identity v3 endpoint (after open())."""
        return self.endpoints.get("identity", "")

    def resolve(self, service_type: str) -> str:
        """The endpoint of `service_type`: from the catalog, then its API version (once)."""
        if service_type in self.endpoints:
            return self.endpoints[service_type]
        a = self.job.auth
        where = f"interface {a.interface}, region {a.region_name or '(any)'}"
        try:
            self.access.service_catalog.url_for(
                service_type=service_type, interface=a.interface, region_name=a.region_name
            )
        except Exception as e:  # noqa: BLE001 - EndpointNotFound and the like
            raise SetupError(
                f"no {service_type} endpoint in the catalog ({where}): {describe_error(e, 200)}"
            ) from e
        lo, hi = API_VERSIONS.get(service_type, (None, None))
        try:
            endpoint = ks_adapter.Adapter(
                self.session,
                service_type=service_type,
                interface=a.interface,
                region_name=a.region_name,
                min_version=lo,
                max_version=hi,
            ).get_endpoint()
        except Exception as e:  # noqa: BLE001
            raise SetupError(
                f"no {service_type} API {lo} endpoint ({where}): {describe_error(e, 300)}"
            ) from e
        if not endpoint:
            raise SetupError(f"no {service_type} API {lo} endpoint ({where})")
        self.endpoints[service_type] = endpoint.rstrip("/")
        return self.endpoints[service_type]

    def close(self) -> None:
        for s in self._sessions:
            s.close()
        self._sessions.clear()

    def closing(self, thing: T) -> T:
        """`thing` (with a close() method) is closed with the job."""
        with self._lock:
            self._sessions.append(thing)
        return thing

    # ---------------------------------------------------------------- sessions

    def new_http_session(self) -> requests.Session:
        """A plain requests.Session, closed with the job.

        Direct connections only: no proxy/netrc/CA settings from the environment (testbed
        nodes often export http_proxy; requests would also re-read the whole environment
        on every request, the largest client CPU cost). TLS trust comes from auth.verify.
        """
        rs = requests.Session()
        rs.trust_env = False
        with self._lock:
            self._sessions.append(rs)
        return rs

    def new_session(self) -> ks_session.Session:
        rs = self.new_http_session()
        return ks_session.Session(
            auth=self.auth,
            session=rs,
            verify=self.job.auth.verify,
            timeout=self.job.request_timeout_s,
            user_agent=USER_AGENT,
        )

    def adapter(
        self, session: ks_session.Session, service_type: str = "identity", auth: Any = None
    ) -> ks_adapter.Adapter:
        """An Adapter on `session`, pinned to the endpoint resolved for `service_type`
        (`auth`: another identity than the session's, e.g. a context user's)."""
        endpoint = self.endpoints.get(service_type)
        if endpoint is None:
            raise SetupError(
                f"no {service_type} endpoint resolved: the scenario must name "
                f"{service_type!r} in its service or uses"
            )
        a = self.job.auth
        return ks_adapter.Adapter(
            session,
            service_type=service_type,
            interface=a.interface,
            region_name=a.region_name,
            endpoint_override=endpoint,
            default_microversion=MICROVERSIONS.get(service_type),
            auth=auth,
        )

    def worker(self, n: int) -> WorkerContext:
        s = self.new_session()
        # no identity adapter when the job was not opened (a scenario without OpenStack)
        identity = self.adapter(s) if "identity" in self.endpoints else None
        return WorkerContext(job=self, worker=n, session=s, identity=identity)

    def as_user(self, user: ContextUser) -> WorkerContext:
        """A worker context acting as `user` (of the users context), on the job's
        session: what the images context uploads with, as Rally's."""
        return WorkerContext(job=self, worker=-1, session=self.session, identity=None,
                             user=user)

    # ---------------------------------------------------------------- admin adapters

    def admin(self, service_type: str = "identity") -> ks_adapter.Adapter:
        """The admin's Adapter for `service_type` on the job's own session (setup, teardown)."""
        if service_type not in self._admin:
            if service_type not in self.endpoints:
                if not hasattr(self, "access"):
                    raise SetupError("job context not opened")
                self.resolve(service_type)  # setup and teardown only: untimed
            self._admin[service_type] = self.adapter(self.session, service_type)
        return self._admin[service_type]

    def api(self, service_type: str) -> ks_adapter.Adapter:
        """The admin's Adapter for `service_type` (a catalog type: "compute", "image",
        "volume", ...), as WorkerContext.api gives a worker's: what setup and teardown
        helpers shared with iterations call."""
        return self.admin(service_type)

    # ---------------------------------------------------------------- admin identity

    @property
    def project_id(self) -> str:
        return str(self.access.project_id)

    @property
    def user_id(self) -> str:
        return str(self.access.user_id)

    @property
    def user_domain_id(self) -> str:
        return str(self.access.user_domain_id)

    @property
    def project_domain_id(self) -> str:
        return str(self.access.project_domain_id)

    # ---------------------------------------------------------------- atomic actions

    @property
    def job_context(self) -> JobContext:
        return self

    @staticmethod
    def atomic(name: str) -> AtomicAction:
        """`runner.atomic` (a no-op outside the load, e.g. in setup)."""
        return runner.atomic(name)

    @staticmethod
    def record(**fields: float) -> None:
        runner.record(**fields)

    @staticmethod
    def record_bytes(n: int) -> None:
        runner.record_bytes(n)

    # ---------------------------------------------------------------- names, resources

    def new_name(self) -> str:
        return f"{self.name_prefix}{uuid.uuid4().hex[:NAME_SUFFIX_HEX]}"

    def track(self, collection: str, rid: str, service: str = "identity") -> None:
        """Remember `collection/rid` of `service` (e.g. "/projects", id) for teardown."""
        with self._lock:
            self._resources[(service, collection, rid)] = None

    def untrack(self, collection: str, rid: str, service: str = "identity") -> None:
        with self._lock:
            self._resources.pop((service, collection, rid), None)

    def tracked(self) -> list[tuple[str, str, str]]:
        """(service type, collection, id) of what is still to delete, in creation order."""
        with self._lock:
            return list(self._resources)

    def teardown_plan(self) -> list[tuple[str, str, str]]:
        """`tracked()` in deletion order (TEARDOWN_ORDER, then newest first)."""
        rank = {key: n for n, key in enumerate(TEARDOWN_ORDER)}
        todo = list(reversed(self.tracked()))  # newest first; sort() is stable
        todo.sort(key=lambda r: rank.get((r[0], r[1]), len(rank)))
        return todo

    def delete_tracked(self) -> list[str]:
        """Delete what was tracked (`teardown_plan` order); one line per failure.

        404 is fine. Servers are all deleted first, then waited for until gone.
        """
        errors: list[str] = []
        waiting: list[tuple[str, str, str]] = []
        plan = self.teardown_plan()
        for n, res in enumerate(plan):
            service, collection, rid = res
            if waiting and (service, collection) != ("compute", "/servers"):
                errors.extend(self._wait_deleted(waiting))
                waiting = []
            path = f"{collection}/{rid}"
            try:
                api = self.admin(service)
                for attempt in range(TEARDOWN_CONFLICT_RETRIES + 1):
                    r = api.delete(path, raise_exc=False)
                    if r.status_code != 409 or attempt == TEARDOWN_CONFLICT_RETRIES:
                        break
                    time.sleep(1.0)
                if r.status_code == 404:
                    self.untrack(collection, rid, service)
                elif r.status_code in (200, 202, 204):
                    if (service, collection) == ("compute", "/servers"):
                        waiting.append(res)
                    else:
                        self.untrack(collection, rid, service)
                else:
                    errors.append(f"DELETE {service} {path}: HTTP {r.status_code}")
            except Exception as e:  # noqa: BLE001 - teardown goes on
                errors.append(f"DELETE {service} {path}: {describe_error(e, 200)}")
            if n == len(plan) - 1 and waiting:
                errors.extend(self._wait_deleted(waiting))
        return errors

    def _wait_deleted(self, resources: list[tuple[str, str, str]]) -> list[str]:
        errors: list[str] = []
        deadline = time.monotonic() + TEARDOWN_WAIT_S
        for service, collection, rid in resources:
            path = f"{collection}/{rid}"
            try:
                wait_for(
                    lambda service=service, path=path: is_gone(self.admin(service), path),
                    lambda v: v is True,
                    what=f"{service} {path} deletion",
                    timeout_s=max(0.0, deadline - time.monotonic()),
                    poll_s=TEARDOWN_POLL_S,
                    delay_first=False,
                )
                self.untrack(collection, rid, service)
            except Exception as e:  # noqa: BLE001
                errors.append(describe_error(e, 200))
        return errors


@dataclass
class WorkerContext:
    """What a scenario function receives: one per worker thread."""

    job: JobContext
    worker: int
    session: ks_session.Session
    identity: Any  # Adapter on the identity v3 endpoint (None: job not opened)
    state: dict[str, Any] = field(default_factory=dict)  # per-worker scratch space
    user: ContextUser | None = None  # the users context's user of this iteration
    iteration: int = 0  # the running iteration's number, from 1 (Rally's context["iteration"])
    _adapters: dict[tuple[str, str], ks_adapter.Adapter] = field(default_factory=dict,
                                                                 repr=False)

    def begin_iteration(self, index: int) -> None:
        """Called by the runner before iteration `index` (from 0): its number and its
        context user."""
        self.iteration = index + 1
        if self.job.users is not None:
            self.user = self.job.users.pick(index)

    def api(self, service_type: str) -> ks_adapter.Adapter:
        """This worker's Adapter for `service_type` (made once per user, on first use):
        the iteration's context user's token, the admin's without a users context and
        always for identity."""
        user = self.user if service_type != "identity" else None
        key = (user.id if user else "", service_type)
        a = self._adapters.get(key)
        if a is None:
            a = self._adapters[key] = self.job.adapter(
                self.session, service_type, auth=user.auth if user else None)
        return a

    def admin_api(self, service_type: str) -> ks_adapter.Adapter:
        """This worker's admin Adapter for `service_type`, whoever the iteration's user
        (Rally's admin-only scenarios: flavors)."""
        a = self._adapters.get(("", service_type))
        if a is None:
            a = self._adapters[("", service_type)] = self.job.adapter(self.session,
                                                                       service_type)
        return a

    @property
    def job_context(self) -> JobContext:
        return self.job

    @property
    def args(self) -> dict[str, Any]:
        return self.job.args

    @property
    def shared(self) -> dict[str, Any]:
        return self.job.shared

    @property
    def name_prefix(self) -> str:
        return self.job.name_prefix

    # atomic actions: the timing is the runner's, the context only forwards
    @staticmethod
    def atomic(name: str) -> AtomicAction:
        """``with ctx.atomic("nova.boot_server"):`` times the block (see runner.atomic)."""
        return runner.atomic(name)

    @staticmethod
    def record(**fields: float) -> None:
        """Numbers for Sample.fields of the current atomic action (see runner.record)."""
        runner.record(**fields)

    @staticmethod
    def record_bytes(n: int) -> None:
        """Bytes moved by the current atomic action: fields bytes and mb_per_s."""
        runner.record_bytes(n)

    def new_name(self) -> str:
        return self.job.new_name()

    def track(self, collection: str, rid: str, service: str = "identity") -> None:
        self.job.track(collection, rid, service)

    def untrack(self, collection: str, rid: str, service: str = "identity") -> None:
        self.job.untrack(collection, rid, service)


Ctx = JobContext | WorkerContext  # what scenario helpers accept
