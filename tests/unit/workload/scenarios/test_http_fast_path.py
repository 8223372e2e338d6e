"""HttpRequests' http.client path sends what requests would send, keeps one connection
per worker, survives a server that drops idle connections, and follows redirects as
requests does (real local HTTP server, the real agent)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

import femdc_bench.workload.scenarios  # noqa: F401  (registers)
from femdc_bench.workload import agent
from femdc_bench.workload.scenarios import http as http_scenarios


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]] = []
    ports: set[int] = set()

    def _answer(self) -> None:
        body_in = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Handler.seen.append({"method": self.command, "path": self.path, "body": body_in,
                              "type": self.headers.get("Content-Type"),
                              "x": self.headers.get("X-Test")})
        _Handler.ports.add(self.client_address[1])
        if self.path.startswith("/redirect"):
            self.send_response(303)
            self.send_header("Location", "/ok/after")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"fine\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if self.path.startswith("/drop"):
            self.close_connection = True  # closed without telling: a keep-alive timeout

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Handler.seen, _Handler.ports = [], set()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _run(tmp_path: Path, args: dict[str, Any], times: int = 4, concurrency: int = 1
         ) -> list[dict[str, Any]]:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"site": "s1", "host": "h", "jobs": [{
        "scenario": "HttpRequests.check_request", "args": args,
        "runner": {"type": "times", "times": times, "concurrency": concurrency},
        "target_site": "s1",
        "auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "admin",
                 "password": "x", "project_name": "admin"},
        "name_prefix": "femdc-t-"}]}))
    out = tmp_path / "out.jsonl"
    assert agent.main(["--spec", str(spec), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines() if line]
    return [r for r in rows if not r.get("action")]


CASES = [
    {"method": "GET", "params": {"a": "1", "b": ["x", "y z"]}},
    {"method": "GET", "path": "/ok?q=1", "params": {"a": "2"}},
    {"method": "POST", "data": {"k": "v", "n": ["1", "2"]}},
    {"method": "POST", "data": "raw text"},
    {"method": "PUT", "json": {"a": [1, 2], "b": None}},
    {"method": "PATCH", "json": [1], "headers": {"Content-Type": "application/merge+json"}},
    {"method": "DELETE", "headers": {"X-Test": "yes"}},
    {"method": "POST"},
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_the_fast_path_sends_what_requests_sends(tmp_path: Path, server: str,
                                                 case: dict[str, Any]) -> None:
    args = {k: v for k, v in case.items() if k != "path"}
    url = server + case.get("path", "/ok")
    assert http_scenarios._fast_ok(url, {k: v for k, v in args.items() if k != "method"})
    with requests.Session() as s:
        s.request(url=url, **args)
    want = _Handler.seen.pop()
    rows = _run(tmp_path, {"url": url, "status_code": 200, **args}, times=1)
    assert [r["status"] for r in rows] == ["ok"], rows
    assert _Handler.seen == [want]


def test_one_connection_per_worker_for_all_its_iterations(tmp_path: Path,
                                                          server: str) -> None:
    rows = _run(tmp_path, {"url": f"{server}/ok", "method": "GET", "status_code": 200},
                times=30, concurrency=3)
    assert len(rows) == 30 and all(r["status"] == "ok" for r in rows)
    assert len(_Handler.ports) <= 3


def test_a_connection_the_server_dropped_is_reopened(tmp_path: Path, server: str) -> None:
    rows = _run(tmp_path, {"url": f"{server}/drop", "method": "GET", "status_code": 200},
                times=5)
    assert [r["status"] for r in rows] == ["ok"] * 5, rows
    assert len(_Handler.seen) == 5  # each sent once: the retry is only for the dead socket
    assert len(_Handler.ports) == 5


def test_a_redirect_is_followed_as_requests_follows_it(tmp_path: Path, server: str) -> None:
    rows = _run(tmp_path, {"url": f"{server}/redirect", "method": "POST", "data": "x",
                           "status_code": 200}, times=1)
    assert [r["status"] for r in rows] == ["ok"]
    assert [(s["method"], s["path"], s["body"]) for s in _Handler.seen] == [
        ("POST", "/redirect", b"x"), ("GET", "/ok/after", b"")]
    _Handler.seen = []
    rows = _run(tmp_path, {"url": f"{server}/redirect", "method": "GET", "status_code": 303,
                           "allow_redirects": False}, times=1)
    assert [r["status"] for r in rows] == ["ok"] and len(_Handler.seen) == 1


def test_a_refused_connection_is_a_failed_iteration(tmp_path: Path) -> None:
    rows = _run(tmp_path, {"url": "http://127.0.0.1:9/ok", "method": "GET",
                           "status_code": 200}, times=2)
    assert [r["status"] for r in rows] == ["error", "error"]
    assert "ConnectionRefusedError" in rows[0]["error"]


@pytest.mark.parametrize(("url", "kwargs", "fast"), [
    ("http://h/x", {}, True),
    ("http://h/x", {"timeout": 3}, True),
    ("http://h/x", {"timeout": (1, 2)}, False),
    ("https://h/x", {}, False),
    ("http://h/x", {"cookies": {"a": "b"}}, False),
    ("http://h/x", {"auth": ("u", "p")}, False),
    ("http://h/x", {"verify": False}, False),
])
def test_what_takes_the_fast_path(url: str, kwargs: dict[str, Any], fast: bool) -> None:
    assert http_scenarios._fast_ok(url, kwargs) is fast
