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
that does). A wrong status code is a failed iteration with Rally's message
"Expected HTTP request code is `200` actual `404`". Rally opens a new connection per
request (``requests.request``); each worker here keeps its connections alive, and a
request without a timeout gets the job's request timeout (an iteration never hangs).

Two clients, one behaviour. A plain ``http://`` request whose arguments are only
``params``, ``data``, ``json``, ``headers``, ``timeout`` (a number) and
``allow_redirects`` goes out on the worker's own kept-alive connection to that host
(`femdc_bench.workload.http1`, its bytes built once per task): about 0.09 ms of client
CPU per iteration here, all included, against 0.6 ms per request for requests.Session
with 8 workers, so that one agent loads an endpoint at over 10,000 requests per second.
Body and headers are built as requests builds them (form or JSON encoding and their
Content-Type, params appended to the query, ``Accept: */*``);
a connection the server closed while idle is reopened and the request sent once more,
as urllib3 does. A redirect with ``allow_redirects`` is followed by the requests client
from the first Location on (method rewritten as requests does). Everything else
(``https://``, cookies, auth, proxies, stream, verify, cert, a timeout tuple) uses the
worker's requests.Session (environment proxies ignored as for the OpenStack scenarios).
"""

from __future__ import annotations

import json as jsonlib
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from femdc_bench.workload import http1
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


#: what the http.client path builds itself; anything else goes through requests
FAST_ARGS = frozenset({"params", "data", "json", "headers", "timeout", "allow_redirects"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _fast_ok(url: str, kwargs: dict[str, Any]) -> bool:
    t = kwargs.get("timeout")
    return (url.startswith("http://") and kwargs.keys() <= FAST_ARGS
            and (t is None or isinstance(t, int | float)))


def _body(kwargs: dict[str, Any], headers: dict[str, str]) -> bytes | str | None:
    """The request body and its Content-Type, as requests makes them."""
    data, js = kwargs.get("data"), kwargs.get("json")
    if data:
        if isinstance(data, dict | list | tuple):
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            return urlencode(data, doseq=True)
        return data
    if js is not None:
        headers.setdefault("Content-Type", "application/json")
        return jsonlib.dumps(js, allow_nan=False).encode("utf-8")
    return None


def _target(url: str, params: Any) -> tuple[str, int, str]:
    parts = urlsplit(url)
    path = parts.path or "/"
    query = parts.query
    if params:
        extra = urlencode(params, doseq=True) if not isinstance(params, str) else params
        query = f"{query}&{extra}" if query else extra
    return parts.hostname or "", parts.port or 80, f"{path}?{query}" if query else path


@dataclass(frozen=True)
class Prepared:
    """One request of a task, built once per worker: its arguments do not change."""

    url: str
    method: str
    status_code: int
    kwargs: dict[str, Any]  # without None values; the timeout filled in
    fast: bool
    host: str = ""
    port: int = 0
    data: bytes = b""  # the whole request, built once (http1.build_request)


def prepare(url: str, method: str, status_code: int, timeout_s: float,
            kwargs: dict[str, Any]) -> Prepared:
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    fast = _fast_ok(url, kwargs)
    kwargs.setdefault("timeout", timeout_s)
    if not fast:
        return Prepared(url, method, status_code, kwargs, False)
    host, port, path = _target(url, kwargs.get("params"))
    headers = {"Accept": "*/*", "User-Agent": "femdc-bench-agent"}
    headers.update(kwargs.get("headers") or {})
    body = _body(kwargs, headers)
    if isinstance(body, str):  # as http.client encodes a str body for requests
        try:
            body = body.encode("latin-1")
        except UnicodeEncodeError:  # where requests would fail: UTF-8
            body = body.encode("utf-8")
    method = method.upper()
    return Prepared(url, method, status_code, kwargs, True, host, port,
                    http1.build_request(method, host, port, path, headers, body))


def _fast(ctx: WorkerContext, req: Prepared) -> int:
    """`req` on this worker's kept-alive connection to its host: the status code (a
    redirect with allow_redirects: the final one, through requests)."""
    conns = ctx.state.setdefault("http_conns", {})
    timeout = req.kwargs["timeout"]
    conn = conns.get((req.host, req.port))
    if conn is None:
        conn = conns[(req.host, req.port)] = ctx.job.closing(
            http1.Connection(req.host, req.port, timeout))
    conn.set_timeout(timeout)
    resp = conn.request(req.data, head=req.method == "HEAD")
    code = resp.status
    if code in REDIRECTS and resp.location and req.kwargs.get("allow_redirects", True):
        code = _follow(ctx, req, code, resp.location)
    return code


def _follow(ctx: WorkerContext, req: Prepared, code: int, location: str) -> int:
    """The rest of a redirect chain through requests, from the first Location on."""
    m, kwargs = req.method, {k: v for k, v in req.kwargs.items() if k != "params"}
    # requests' rebuild_method: 303 (and 301/302 of a POST) become a GET without body
    if (code == 303 and m != "HEAD") or (code in (301, 302) and m == "POST"):
        m, kwargs = "GET", {k: v for k, v in kwargs.items() if k not in ("data", "json")}
    resp = session(ctx).request(m, urljoin(req.url, location), **kwargs)
    resp.content  # noqa: B018
    return resp.status_code


def check(ctx: WorkerContext, req: Prepared) -> None:
    with ctx.atomic("requests.check_request"):
        if req.fast:
            code = _fast(ctx, req)
        else:
            resp = session(ctx).request(req.method, req.url, **req.kwargs)
            resp.content  # noqa: B018 - the body is part of the request's time
            code = resp.status_code
        if code != req.status_code:
            raise ValueError(f"Expected HTTP request code is `{req.status_code}` actual "
                             f"`{code}`")


@scenario("HttpRequests.check_request", service=SERVICE, qualified=True, openstack=False,
          args={"url": None, "method": None, "status_code": None, **REQUEST_ARGS},
          check=_check_request_args)
def check_request(ctx: WorkerContext) -> None:
    """One request, checked against status_code (Rally: HttpRequests.check_request)."""
    req = ctx.state.get("http_request")
    if req is None:
        a = ctx.args
        req = ctx.state["http_request"] = prepare(
            a["url"], a["method"], a["status_code"], ctx.job.job.request_timeout_s,
            {k: a[k] for k in REQUEST_ARGS})
    check(ctx, req)


@scenario("HttpRequests.check_random_request", service=SERVICE, qualified=True,
          openstack=False, args={"requests": None, "status_code": None},
          check=_check_random_args)
def check_random_request(ctx: WorkerContext) -> None:
    """One request picked at random from `requests` (Rally: check_random_request)."""
    reqs = ctx.args["requests"]
    i = random.randrange(len(reqs))
    cache = ctx.state.setdefault("http_requests", {})
    req = cache.get(i)
    if req is None:
        r = reqs[i]
        req = cache[i] = prepare(
            r["url"], r["method"], r.get("status_code", ctx.args["status_code"]),
            ctx.job.job.request_timeout_s,
            {k: v for k, v in r.items() if k not in ("url", "method", "status_code")})
    check(ctx, req)
