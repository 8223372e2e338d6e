"""Scenario registry: the names users type in experiment files.

A scenario is a small function of a worker context that does one iteration's requests
and raises on failure; it does not time anything (the runner does: named sub-steps go in
``with ctx.atomic("family.step"):`` blocks). Optional `setup` and `teardown` functions of
the job context run once per job, untimed::

    @scenario("keystone.list_users", service="identity")
    def list_users(ctx: WorkerContext) -> None:
        ctx.identity.get("/users")

`service` is the catalog service type the scenario loads (Sample.service); `uses` names
the other service types it (or its setup) calls. The job resolves the endpoint of each
of them once, before the load; `openstack=False` marks a scenario that needs neither
authentication nor catalog (HttpRequests.*, Dummy.dummy); `any_args` accepts args
beyond the named ones (Rally's ``**kwargs``). `qualified` makes Sample.operation the
full name (Rally's "NovaServers.boot_server") instead of the name without its family
("authenticate_and_validate_token" for "keystone.authenticate_and_validate_token").

Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ScenarioFn = Callable[[Any], object]
HookFn = Callable[[Any], object]


class UnknownScenario(KeyError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown scenario {self.name!r} (known: {', '.join(self.known) or 'none'})"


@dataclass(frozen=True)
class Scenario:
    name: str  # "<family>.<operation>", e.g. "keystone.create_and_delete_user"
    service: str  # Sample.service, e.g. "identity"
    run: ScenarioFn
    setup: HookFn | None = None
    teardown: HookFn | None = None
    doc: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)  # accepted args, default values
    uses: tuple[str, ...] = ()  # other catalog service types called (setup included)
    qualified: bool = False  # Sample.operation is the full name
    needs_users: bool = False  # runs on ctx.user: needs Rally's users context
    check: Callable[[dict[str, Any]], None] | None = None  # more arg checks (ValueError)
    openstack: bool = True  # False: no authentication, no catalog (HttpRequests.*)
    any_args: bool = False  # also takes args it does not name (Rally's **kwargs: Dummy.dummy)

    def resolve_args(self, given: dict[str, Any]) -> dict[str, Any]:
        """`given` over the defaults; ValueError for an unknown arg or a wrong type."""
        out = dict(self.defaults)
        for key, value in given.items():
            if key not in self.defaults:
                if self.any_args:
                    out[key] = value
                    continue
                known = ", ".join(sorted(self.defaults)) or "none"
                raise ValueError(f"{self.name}: unknown arg {key!r} (accepted: {known})")
            default = self.defaults[key]
            if default is not None and not _same_kind(value, default):
                raise ValueError(
                    f"{self.name}: arg {key!r} expects {type(default).__name__}, "
                    f"got {type(value).__name__}"
                )
            out[key] = value
        if self.check is not None:
            try:
                self.check(out)
            except ValueError as e:
                raise ValueError(f"{self.name}: {e}") from None
        return out

    @property
    def operation(self) -> str:
        """Sample.operation: the full name if `qualified`, else the name without family."""
        return self.name if self.qualified else self.name.split(".", 1)[-1]

    @property
    def services(self) -> tuple[str, ...]:
        """Every catalog service type the job needs an endpoint for (identity first)."""
        return tuple(dict.fromkeys(("identity", self.service, *self.uses)))


class Registry:
    def __init__(self) -> None:
        self._scenarios: dict[str, Scenario] = {}

    def scenario(
        self,
        name: str,
        *,
        service: str,
        setup: HookFn | None = None,
        teardown: HookFn | None = None,
        args: dict[str, Any] | None = None,
        uses: tuple[str, ...] = (),
        qualified: bool = False,
        needs_users: bool = False,
        check: Callable[[dict[str, Any]], None] | None = None,
        openstack: bool = True,
        any_args: bool = False,
    ) -> Callable[[ScenarioFn], ScenarioFn]:
        """Register the decorated function under `name`; the function is returned as is.

        `args` names every argument the scenario accepts with its default value.
        """
        if "." not in name:
            raise ValueError(f"scenario name {name!r}: expected '<family>.<operation>'")

        def register(fn: ScenarioFn) -> ScenarioFn:
            if name in self._scenarios:
                raise ValueError(f"scenario {name!r} registered twice")
            doc = (fn.__doc__ or "").strip()
            self._scenarios[name] = Scenario(
                name, service, fn, setup, teardown, doc, dict(args or {}), tuple(uses), qualified,
                needs_users, check, openstack, any_args,
            )
            return fn

        return register

    def get(self, name: str) -> Scenario:
        try:
            return self._scenarios[name]
        except KeyError:
            raise UnknownScenario(name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._scenarios)

    def __contains__(self, name: object) -> bool:
        return name in self._scenarios


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


REGISTRY = Registry()
scenario = REGISTRY.scenario


def source_digest() -> str:
    """sha256 of the scenario modules' sources (workload/scenarios/*.py), read but not
    imported: what the list of scenario names depends on, for a cache key (the experiment
    loader's schema_key) that must not pay for importing them."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    for path in sorted((Path(__file__).parent / "scenarios").glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
