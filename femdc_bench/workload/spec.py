"""SPEC.json: what one workload agent runs on one host.

The controller writes one spec per load-generating host (mode 0600: it holds passwords),
copies the femdc_bench package beside it and starts::

    PYTHONPATH=<copy> <service-venv>/bin/python -m femdc_bench.workload.agent \\
        --spec SPEC.json --out SAMPLES.jsonl [--pidfile P]

Format (``version`` 1); every key shown is accepted, unknown keys are rejected with their
path, keys with a default may be left out::

    {
      "version": 1,
      "site": "site1",                     # where the load runs (Sample.site)
      "host": "site1-ctl",                 # host alias (Sample.host)
      "jobs": [                            # run one after the other
        {
          "scenario": "keystone.authenticate_and_validate_token",
          "args": {},                      # scenario arguments (see scenarios/keystone.py)
          "runner": {"type": "times", "times": 100, "concurrency": 4},
          #  or     {"type": "duration", "duration_s": 60, "concurrency": 4}
          #  or     {"type": "rps", "times": 1000, "rps": 50, "concurrency": 16}
          #         ("rps_ramp": {"start", "end", "step", "step_s"} instead of "rps");
          #  any may add "timeout_s": an iteration longer than that is an error
          "target_site": "site2",          # whose cloud is loaded (Sample.target_site)
          "auth": {
            "auth_url": "http://10.0.0.2:5000/v3",
            "username": "admin", "password": "...", "project_name": "admin",
            "user_domain_name": "Default", "project_domain_name": "Default",
            "region_name": "RegionTwo",    # null: the only region of the catalog
            "interface": "public",
            "verify": true                 # TLS: true, false or a CA bundle path
          },
          "name_prefix": "femdc-r42-",     # prefix of every resource the job creates
          "sla": {"failure_rate_max_pct": 0, "p95_ms_max": null},
          "request_timeout_s": 60,         # per HTTP request
          "contexts": {"users": {"tenants": 2}}  # Rally's users/roles (task_contexts.py)
        }
      ]
    }

``name_prefix`` should be unique per run (the controller uses ``femdc-<run-id>-``): every
user/project a job creates is named ``<name_prefix><12 hex chars>``, so a run's leftovers
can be found by prefix. Nothing in the spec is ever logged; ``repr()`` hides the password.

This module imports only the standard library, femdc_bench.model and the runner rules
(runners.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

from femdc_bench.model import RpsRamp, RunnerSpec, ScenarioSpec, SlaSpec
from femdc_bench.workload.runners import RAMP_KEYS, RunnerError, runner

SPEC_VERSION = 1


class SpecError(ValueError):
    """The spec is not valid; the message names the offending path."""


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class AuthSpec:
    """Keystone v3 password credentials and where the target cloud's endpoints are."""

    auth_url: str
    username: str
    password: str = field(repr=False)
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    interface: str = "public"
    verify: bool | str = True


@dataclass(frozen=True)
class JobSpec:
    """One scenario run against one target site."""

    scenario: str
    runner: RunnerSpec
    target_site: str
    auth: AuthSpec
    name_prefix: str
    args: dict[str, Any] = field(default_factory=dict)
    sla: SlaSpec = field(default_factory=SlaSpec)
    request_timeout_s: float = 60.0
    workload: str = ""  # Sample.workload of everything it records
    contexts: dict[str, Any] = field(default_factory=dict)  # see task_contexts.py

    @classmethod
    def from_scenario(
        cls,
        scenario: ScenarioSpec,
        *,
        target_site: str,
        auth: AuthSpec,
        name_prefix: str,
        sla: SlaSpec | None = None,
        request_timeout_s: float = 60.0,
        runner: RunnerSpec | None = None,
    ) -> JobSpec:
        """The job that runs `scenario` (from the experiment) against `target_site`;
        `runner`: this host's share of the scenario's runner (see `share_runner`)."""
        return cls(
            scenario=scenario.name,
            runner=runner or scenario.runner,
            target_site=target_site,
            auth=auth,
            name_prefix=name_prefix,
            args=dict(scenario.args),
            sla=scenario.sla or sla or SlaSpec(),
            # no request may outlive the iteration's timeout
            request_timeout_s=min(request_timeout_s, (runner or scenario.runner).timeout_s
                                  or request_timeout_s),
            workload=scenario.workload,
            contexts=dict(scenario.contexts),
        )


def share_runner(runner: RunnerSpec, hosts: int) -> list[RunnerSpec | None]:
    """A site's runner split over its `hosts` load hosts, as Rally splits a load over
    its workers: the concurrency in near-equal shares (the first hosts take the
    remainder), the iterations of a `times` or `rps` runner in proportion to them (summing
    to `times`; an rps rate in proportion to the iterations); a `duration` runner keeps
    its duration on every host. A host whose share is
    empty gets None (it runs nothing)."""
    if hosts < 1:
        raise ValueError("hosts must be >= 1")
    c = runner.concurrency
    conc = [c // hosts + (1 if i < c % hosts else 0) for i in range(hosts)]
    if runner.type == "duration":
        return [replace(runner, concurrency=k) if k else None for k in conc]
    total = runner.times or 0
    times = [total * k // c for k in conc]
    for i in sorted(range(hosts), key=lambda i: -(total * conc[i] % c))[:total - sum(times)]:
        times[i] += 1
    if runner.type == "rps":  # the rate in proportion to the iterations
        return [replace(runner, concurrency=min(k, t), times=t,
                        rps=None if runner.rps is None else runner.rps * t / total,
                        rps_ramp=runner.rps_ramp and runner.rps_ramp.scaled(t / total))
                if k and t else None for k, t in zip(conc, times, strict=True)]
    return [replace(runner, concurrency=min(k, t), times=t) if k and t else None
            for k, t in zip(conc, times, strict=True)]


@dataclass(frozen=True)
class AgentSpec:
    """Everything one agent runs: its place (site, host) and its jobs, in order."""

    site: str
    host: str
    jobs: tuple[JobSpec, ...]
    version: int = SPEC_VERSION

    # ---------------------------------------------------------------- (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "site": self.site,
            "host": self.host,
            "jobs": [_job_to_dict(j) for j in self.jobs],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> AgentSpec:
        d = _obj(data, "$", required=("site", "host", "jobs"), optional=("version",))
        version = d.get("version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise SpecError(f"$.version: unsupported spec version {version!r}")
        jobs = d["jobs"]
        if not isinstance(jobs, list) or not jobs:
            raise SpecError("$.jobs: expected a non-empty list")
        return cls(
            site=_str(d["site"], "$.site"),
            host=_str(d["host"], "$.host"),
            jobs=tuple(_job_from_dict(j, f"$.jobs[{i}]") for i, j in enumerate(jobs)),
            version=version,
        )

    @classmethod
    def from_json(cls, text: str) -> AgentSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"not JSON: {e}") from None
        return cls.from_dict(data)

    def write(self, path: str) -> None:
        """Write the spec with mode 0600 (it holds passwords), replacing `path` atomically."""
        tmp = f"{path}.tmp{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def read(cls, path: str) -> AgentSpec:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise SpecError(f"cannot read {path}: {e.strerror}") from None
        return cls.from_json(text)


# --------------------------------------------------------------------------- helpers


def _job_to_dict(j: JobSpec) -> dict[str, Any]:
    return {
        "scenario": j.scenario,
        "args": j.args,
        "runner": runner_to_dict(j.runner),
        "target_site": j.target_site,
        "auth": {
            "auth_url": j.auth.auth_url,
            "username": j.auth.username,
            "password": j.auth.password,
            "project_name": j.auth.project_name,
            "user_domain_name": j.auth.user_domain_name,
            "project_domain_name": j.auth.project_domain_name,
            "region_name": j.auth.region_name,
            "interface": j.auth.interface,
            "verify": j.auth.verify,
        },
        "name_prefix": j.name_prefix,
        "sla": {
            "failure_rate_max_pct": j.sla.failure_rate_max_pct,
            "p95_ms_max": j.sla.p95_ms_max,
            "failure_rate_min_pct": j.sla.failure_rate_min_pct,
        },
        "request_timeout_s": j.request_timeout_s,
        "workload": j.workload,
        "contexts": j.contexts,
    }


def _job_from_dict(data: Any, path: str) -> JobSpec:
    d = _obj(
        data,
        path,
        required=("scenario", "runner", "target_site", "auth", "name_prefix"),
        optional=("args", "sla", "request_timeout_s", "workload", "contexts"),
    )
    from femdc_bench.workload.task_contexts import ContextError, validate

    if not isinstance(d.get("contexts", {}), dict):
        raise SpecError(f"{path}.contexts: expected an object")
    try:
        contexts = validate(d.get("contexts", {}))
    except ContextError as e:
        raise SpecError(f"{path}.contexts.{e.path}: {e.message}") from None
    args = d.get("args", {})
    if not isinstance(args, dict):
        raise SpecError(f"{path}.args: expected an object")
    timeout = _num(d.get("request_timeout_s", 60.0), f"{path}.request_timeout_s")
    if timeout <= 0:
        raise SpecError(f"{path}.request_timeout_s: must be > 0")
    return JobSpec(
        scenario=_str(d["scenario"], f"{path}.scenario"),
        runner=runner_from_dict(d["runner"], f"{path}.runner"),
        target_site=_str(d["target_site"], f"{path}.target_site"),
        auth=_auth_from_dict(d["auth"], f"{path}.auth"),
        name_prefix=_str(d["name_prefix"], f"{path}.name_prefix"),
        args=args,
        sla=_sla_from_dict(d.get("sla", {}), f"{path}.sla"),
        request_timeout_s=timeout,
        workload=_str(d.get("workload", ""), f"{path}.workload", allow_empty=True),
        contexts=contexts,
    )


def runner_to_dict(r: RunnerSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"type": r.type, "concurrency": r.concurrency, "times": r.times,
                         "duration_s": r.duration_s}
    if r.rps is not None:
        d["rps"] = r.rps
    if r.rps_ramp is not None:
        d["rps_ramp"] = {"start": r.rps_ramp.start, "end": r.rps_ramp.end,
                         "step": r.rps_ramp.step, "step_s": r.rps_ramp.step_s}
    if r.timeout_s is not None:
        d["timeout_s"] = r.timeout_s
    return d


def runner_from_dict(data: Any, path: str = "runner") -> RunnerSpec:
    """A validated RunnerSpec (the rules: workload/runners.py; here the JSON types)."""
    d = _obj(data, path, required=("type",), optional=(
        "concurrency", "times", "duration_s", "rps", "rps_ramp", "timeout_s"))
    rtype = _str(d["type"], f"{path}.type")

    def value(key: str, conv: Any) -> Any:
        return None if d.get(key) is None else conv(d[key], f"{path}.{key}")

    ramp = None
    if d.get("rps_ramp") is not None:
        rp = f"{path}.rps_ramp"
        r = _obj(d["rps_ramp"], rp, required=("start", "end", "step"), optional=("step_s",))
        ramp = RpsRamp(**{k: _num(r.get(k, 1.0), f"{rp}.{k}") for k in RAMP_KEYS})
    try:
        return runner(rtype, concurrency=_int(d.get("concurrency", 1), f"{path}.concurrency"),
                      times=value("times", _int), duration_s=value("duration_s", _num),
                      rps=value("rps", _num), rps_ramp=ramp, timeout_s=value("timeout_s", _num))
    except RunnerError as e:
        raise SpecError(f"{path}.{e.key}: {e.message}" if e.key else f"{path}: {e.message}"
                        ) from None


def _auth_from_dict(data: Any, path: str) -> AuthSpec:
    d = _obj(
        data,
        path,
        required=("auth_url", "username", "password", "project_name"),
        optional=(
            "user_domain_name",
            "project_domain_name",
            "region_name",
            "interface",
            "verify",
        ),
    )
    region = d.get("region_name")
    verify = d.get("verify", True)
    if not isinstance(verify, bool | str):
        raise SpecError(f"{path}.verify: expected true, false or a CA bundle path")
    interface = _str(d.get("interface", "public"), f"{path}.interface")
    if interface not in ("public", "internal", "admin"):
        raise SpecError(f"{path}.interface: expected public, internal or admin")
    auth_url = _str(d["auth_url"], f"{path}.auth_url")
    if not auth_url.startswith(("http://", "https://")):
        raise SpecError(f"{path}.auth_url: expected an http(s) URL")
    return AuthSpec(
        auth_url=auth_url,
        username=_str(d["username"], f"{path}.username"),
        password=_str(d["password"], f"{path}.password", allow_empty=True),
        project_name=_str(d["project_name"], f"{path}.project_name"),
        user_domain_name=_str(d.get("user_domain_name", "Default"), f"{path}.user_domain_name"),
        project_domain_name=_str(
            d.get("project_domain_name", "Default"), f"{path}.project_domain_name"
        ),
        region_name=None if region is None else _str(region, f"{path}.region_name"),
        interface=interface,
        verify=verify,
    )


def _sla_from_dict(data: Any, path: str) -> SlaSpec:
    d = _obj(data, path, optional=("failure_rate_max_pct", "p95_ms_max",
                                   "failure_rate_min_pct"))
    fr = d.get("failure_rate_max_pct")
    p95 = d.get("p95_ms_max")
    fr_min = d.get("failure_rate_min_pct")
    return SlaSpec(
        failure_rate_max_pct=None if fr is None else _num(fr, f"{path}.failure_rate_max_pct"),
        p95_ms_max=None if p95 is None else _num(p95, f"{path}.p95_ms_max"),
        failure_rate_min_pct=None if fr_min is None else _num(
            fr_min, f"{path}.failure_rate_min_pct"),
    )


def _obj(
    data: Any, path: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected an object")
    for key in data:
        if key not in required and key not in optional:
            raise SpecError(f"{path}.{key}: unknown key")
    for key in required:
        if key not in data:
            raise SpecError(f"{path}.{key}: required")
    return data


def _str(v: Any, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(v, str) or (not v and not allow_empty):
        raise SpecError(f"{path}: expected a non-empty string")
    return v


def _int(v: Any, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SpecError(f"{path}: expected an integer")
    return v


def _num(v: Any, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SpecError(f"{path}: expected a number")
    return float(v)
