"""http1.Connection against a real TCP server sending canned answers: framing
(Content-Length, chunked with trailers, until close, none for HEAD/204/304, 1xx
skipped), keep-alive and close, a dropped idle connection, timeouts, bad answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from femdc_bench.workload import http1


class Close(bytes):
    """A canned answer after which the server closes the connection."""


HANG = b""  # a canned answer of nothing: the server keeps the connection, silent


class Canned:
    """Answers each request read on a connection with the next canned bytes; a
    canned None closes the connection instead of answering."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                buf = b""
                while self.answers:
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            break
                        buf += data
                    if b"\r\n\r\n" not in buf:
                        break
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    self.requests.append(head)
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    if answer == HANG:
                        conn.recv(1)  # until the client gives up and closes
                        break
                    conn.sendall(answer)
                    if isinstance(answer, Close):
                        break

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def canned() -> Iterator[type[Canned]]:
    made: list[Canned] = []

    def make(answers: list[bytes | None]) -> Canned:
        c = Canned(answers)
        made.append(c)
        return c

    yield make  # type: ignore[misc]
    for c in made:
        c.close()


GET = http1.build_request("GET", "127.0.0.1", 80, "/x", {}, None)


def _conn(srv: Canned, timeout: float = 5.0) -> http1.Connection:
    return http1.Connection("127.0.0.1", srv.port, timeout)


def test_content_length_and_keep_alive(canned) -> None:
    srv = canned([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"] * 3)
    c = _conn(srv)
    got = [c.request(GET) for _ in range(3)]
    assert [(r.status, r.body_bytes) for r in got] == [(200, 5)] * 3
    assert srv.connections == 1


def test_chunked_with_trailers_then_the_next_answer(canned) -> None:
    srv = canned([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
                  b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"])
    c = _conn(srv)
    r = c.request(GET)
    assert (r.status, r.body_bytes) == (200, 11)
    assert c.request(GET).status == 404
    assert srv.connections == 1


def test_a_large_body_is_counted_not_kept(canned) -> None:
    body = b"x" * (3 * 1024 * 1024 + 7)
    srv = canned([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    c = _conn(srv)
    assert c.request(GET).body_bytes == len(body)
    assert c.request(GET).body_bytes == 2


def test_no_body_for_head_204_304_and_1xx_skipped(canned) -> None:
    srv = canned([b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
                  b"HTTP/1.1 204 No Content\r\n\r\n",
                  b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\n"
                  b"Content-Length: 10\r\n\r\n"])
    c = _conn(srv)
    assert c.request(GET, head=True).status == 200
    assert c.request(GET).status == 204
    assert c.request(GET).status == 304
    assert srv.connections == 1


def test_read_until_close_and_http10_close_the_connection(canned) -> None:
    srv = canned([Close(b"HTTP/1.1 200 OK\r\n\r\nall of it"),
                  Close(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n1"),
                  Close(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n1"),
                  b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1"])
    c = _conn(srv)
    r = c.request(GET)  # no length: the body ends when the server closes
    assert (r.status, r.body_bytes) == (200, 9) and c.sock is None
    assert c.request(GET).status == 200 and c.sock is None  # HTTP/1.0
    assert c.request(GET).status == 200 and c.sock is None  # Connection: close
    assert c.request(GET).status == 200 and c.sock is not None
    assert srv.connections == 4


def test_a_connection_dropped_while_idle_is_reopened_once(canned) -> None:
    srv = canned([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1", None,
                  b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"])
    c = _conn(srv)
    assert c.request(GET).status == 200
    assert c.request(GET).status == 200  # the first try found the socket closed
    assert srv.connections == 2


def test_a_fresh_connection_closed_without_answer_is_an_error(canned) -> None:
    srv = canned([None])
    with pytest.raises(http1.RemoteDisconnected):
        _conn(srv).request(GET)


def test_a_hung_server_times_out(canned) -> None:
    srv = canned([HANG])
    with pytest.raises(TimeoutError):
        _conn(srv, timeout=0.3).request(GET)


@pytest.mark.parametrize("answer", [b"SMTP ready\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"])
def test_a_bad_answer_is_a_protocol_error(canned, answer: bytes) -> None:
    srv = canned([answer])
    with pytest.raises(http1.ProtocolError):
        _conn(srv).request(GET)


def test_the_request_bytes() -> None:
    assert http1.build_request("POST", "h", 8080, "/a?b=1", {"X-A": "1"}, b"xy") == (
        b"POST /a?b=1 HTTP/1.1\r\nHost: h:8080\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nxy")
    assert b"Content-Length: 0" in http1.build_request("PUT", "h", 80, "/", {}, None)
    assert b"Content-Length" not in http1.build_request("GET", "h", 80, "/", {}, None)


@pytest.mark.parametrize(("method", "path", "headers"), [
    ("GET", "/a b", {}), ("GET", "/a\r\nX: 1", {}), ("G T", "/", {}),
    ("GET", "/", {"X": "a\r\nInjected: 1"}), ("GET", "/", {"X:Y": "1"}),
    ("GET", "/", {"": "1"}),
])
def test_injection_is_refused(method: str, path: str, headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid"):
        http1.build_request(method, "h", 80, path, headers, None)
