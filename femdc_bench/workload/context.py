"""What scenarios are given: keystoneauth1 sessions and adapters, names, resource tracking.

One `JobContext` per job authenticates the admin once (untimed), resolves the identity
endpoint once from the catalog (service_type identity, the spec's interface and region,
API v3), and is what scenario setup/teardown functions receive. Each worker thread gets
a `WorkerContext` with its own keystoneauth1 Session (one keep-alive connection) and
Adapter; all of them share the admin auth plugin, whose token keystoneauth1 caches (and
renews only near expiry), so iterations never re-authenticate the admin and make no
request beyond the scenario's own.

Imports the standard library, requests and keystoneauth1 only.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from femdc_bench.workload.runner import describe_error
from femdc_bench.workload.spec import JobSpec

USER_AGENT = "femdc-bench-agent"
NAME_MAX = 64  # Keystone's limit for project names (users: 255)
NAME_SUFFIX_HEX = 12


class SetupError(RuntimeError):
    """The job cannot run: authentication, catalog or scenario setup failed."""


class JobContext:
    """Per-job state shared by all workers; what setup and teardown functions receive."""

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
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        # (collection path, id) -> None: a set that keeps creation order
        self._resources: dict[tuple[str, str], None] = {}
        self.endpoint = ""
        self.session = self.new_session()
        self.identity: ks_adapter.Adapter | None = None  # admin adapter, after open()

    # ---------------------------------------------------------------- lifecycle

    def open(self) -> None:
        """Authenticate the admin and resolve the identity v3 endpoint (untimed)."""
        a = self.job.auth
        try:
            self.access = self.auth.get_access(self.session)
        except Exception as e:  # noqa: BLE001 - reported as one line
            raise SetupError(f"cannot authenticate at {a.auth_url}: {describe_error(e)}") from e
        try:
            endpoint = ks_adapter.Adapter(
                self.session,
                service_type="identity",
                interface=a.interface,
                region_name=a.region_name,
                min_version="3",
                max_version="3.latest",
            ).get_endpoint()
        except Exception as e:  # noqa: BLE001
            raise SetupError(f"no identity v3 endpoint: {describe_error(e)}") from e
        if not endpoint:
            raise SetupError(
                f"no identity v3 endpoint (interface {a.interface}, region {a.region_name})"
            )
        self.endpoint = endpoint.rstrip("/")
        self.identity = self.adapter(self.session)

    def close(self) -> None:
        for s in self._sessions:
            s.close()
        self._sessions.clear()

    # ---------------------------------------------------------------- sessions

    def new_session(self) -> ks_session.Session:
        rs = requests.Session()
        # Direct connections only: no proxy/netrc/CA settings from the environment (testbed
        # nodes often export http_proxy; requests would also re-read the whole environment
        # on every request, the largest client CPU cost). TLS trust comes from auth.verify.
        rs.trust_env = False
        self._sessions.append(rs)
        return ks_session.Session(
            auth=self.auth,
            session=rs,
            verify=self.job.auth.verify,
            timeout=self.job.request_timeout_s,
            user_agent=USER_AGENT,
        )

    def adapter(self, session: ks_session.Session) -> ks_adapter.Adapter:
        """An identity Adapter on `session`, pinned to the endpoint resolved by open()."""
        a = self.job.auth
        return ks_adapter.Adapter(
            session,
            service_type="identity",
            interface=a.interface,
            region_name=a.region_name,
            endpoint_override=self.endpoint,
        )

    def worker(self, n: int) -> WorkerContext:
        s = self.new_session()
        return WorkerContext(job=self, worker=n, session=s, identity=self.adapter(s))

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

    def admin(self) -> ks_adapter.Adapter:
        if self.identity is None:
            raise SetupError("job context not opened")
        return self.identity

    # ---------------------------------------------------------------- names, resources

    def new_name(self) -> str:
        return f"{self.name_prefix}{uuid.uuid4().hex[:NAME_SUFFIX_HEX]}"

    def track(self, collection: str, rid: str) -> None:
        """Remember `collection/rid` (e.g. "/projects", id) for deletion at teardown."""
        with self._lock:
            self._resources[(collection, rid)] = None

    def untrack(self, collection: str, rid: str) -> None:
        with self._lock:
            self._resources.pop((collection, rid), None)

    def tracked(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._resources)

    def delete_tracked(self) -> list[str]:
        """Delete what was tracked, newest first; return one line per failure (404 is fine)."""
        errors: list[str] = []
        ident = self.admin()
        with self._lock:
            todo = list(reversed(self._resources))
        for collection, rid in todo:
            try:
                r = ident.delete(f"{collection}/{rid}", raise_exc=False)
                if r.status_code in (200, 202, 204, 404):
                    self.untrack(collection, rid)
                else:
                    errors.append(f"DELETE {collection}/{rid}: HTTP {r.status_code}")
            except Exception as e:  # noqa: BLE001 - teardown goes on
                errors.append(f"DELETE {collection}/{rid}: {describe_error(e, 200)}")
        return errors


@dataclass
class WorkerContext:
    """What a scenario function receives: one per worker thread."""

    job: JobContext
    worker: int
    session: ks_session.Session
    identity: ks_adapter.Adapter  # identity v3 endpoint of the target cloud
    state: dict[str, Any] = field(default_factory=dict)  # per-worker scratch space

    @property
    def args(self) -> dict[str, Any]:
        return self.job.args

    @property
    def shared(self) -> dict[str, Any]:
        return self.job.shared

    @property
    def name_prefix(self) -> str:
        return self.job.name_prefix

    def new_name(self) -> str:
        return self.job.new_name()

    def track(self, collection: str, rid: str) -> None:
        self.job.track(collection, rid)

    def untrack(self, collection: str, rid: str) -> None:
        self.job.untrack(collection, rid)
