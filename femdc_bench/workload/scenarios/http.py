"""Rally's HttpRequests scenarios: plain HTTP requests checked against a status code.

=================================== ====================================================
name                                one iteration (atomic action)
=================================== ====================================================
HttpRequests.check_request          requests.check_request: ``method url`` (with the
                                    optional request arguments), then the status code
                                    must be ``status_code``
HttpRequests.check_random_request   the same for one request picked at random from
                                    ``requests`` (each a dict of url, method and
                                    optionally status_code and request arguments;
                                    ``status_code`` is the default)
=================================== ====================================================

They need no OpenStack: no authentication, no catalog (unless the task gives a context
that does). Each worker keeps one requests.Session (keep-alive, environment proxies
ignored as for the OpenStack scenarios); Rally opens a new connection per request
(``requests.request``). A wrong status code is a failed iteration with Rally's message
"Expected HTTP request code is `200` actual `404`".
"""

from __future__ import annotations

import random
from typing import Any

import requests

from femdc_bench.workload.context import WorkerContext
from femdc_bench.workload.registry import scenario

SERVICE = "http"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: what requests.request takes beside method and url (Rally passes **kwargs through)
REQUEST_ARGS: dict[str, Any] = {
    "params": None, "data": None, "json": None, "headers": None, "cookies": None,
    "auth": None, "timeout": None, "allow_redirects": True, "proxies": None,
    "stream": None, "verify": None, "cert": None,
}


def _check_one(req: dict[str, Any], where: str) -> None:
    url, method = req.get("url"), req.get("method")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"{where}url: expected an http:// or https:// URL, got {url!r}")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValueError(f"{where}method: expected one of {', '.join(METHODS)}, "
                         f"got {method!r}")
    code = req.get("status_code")
    if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 599:
        raise ValueError(f"{where}status_code: expected an HTTP status code, got {code!r}")
    unknown = sorted(set(req) - {"url", "method", "status_code", *REQUEST_ARGS})
    if unknown:
        raise ValueError(f"{where}{unknown[0]}: not an argument of requests.request "
                         f"(accepted: {', '.join(REQUEST_ARGS)})")


def _check_request_args(args: dict[str, Any]) -> None:
    _check_one(args, "")


def _check_random_args(args: dict[str, Any]) -> None:
    reqs = args.get("requests")
    if not isinstance(reqs, list) or not reqs:
        raise ValueError("requests: expected a non-empty list of requests")
    for i, r in enumerate(reqs):
        if not isinstance(r, dict):
            raise ValueError(f"requests[{i}]: expected a mapping, got {type(r).__name__}")
        _check_one({"status_code": args.get("status_code"), **r}, f"requests[{i}].")


def session(ctx: WorkerContext) -> requests.Session:
    """This worker's plain HTTP session (made on first use, closed with the job)."""
    s = ctx.state.get("http")
    if s is None:
        s = ctx.state["http"] = ctx.job.new_http_session()
    return s


def check(ctx: WorkerContext, url: str, method: str, status_code: int,
          **kwargs: Any) -> None:
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    with ctx.atomic("requests.check_request"):
        resp = session(ctx).request(method, url, **kwargs)
        resp.content  # noqa: B018 - the body is part of the request's time
        if resp.status_code != status_code:
            raise ValueError(f"Expected HTTP request code is `{status_code}` actual "
                             f"`{resp.status_code}`")


@scenario("HttpRequests.check_request", service=SERVICE, qualified=True, openstack=False,
          args={"url": None, "method": None, "status_code": None, **REQUEST_ARGS},
          check=_check_request_args)
def check_request(ctx: WorkerContext) -> None:
    """One request, checked against status_code (Rally: HttpRequests.check_request)."""
    a = ctx.args
    check(ctx, a["url"], a["method"], a["status_code"], **{k: a[k] for k in REQUEST_ARGS})


@scenario("HttpRequests.check_random_request", service=SERVICE, qualified=True,
          openstack=False, args={"requests": None, "status_code": None},
          check=_check_random_args)
def check_random_request(ctx: WorkerContext) -> None:
    """One request picked at random from `requests` (Rally: check_random_request)."""
    req = dict(random.choice(ctx.args["requests"]))
    req.setdefault("status_code", ctx.args["status_code"])
    check(ctx, **req)
