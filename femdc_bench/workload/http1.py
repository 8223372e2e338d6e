"""A minimal HTTP/1.1 client over one kept-alive TCP connection, for load generation.

Why not http.client: it parses every response's headers with the email package, which
is most of its ~0.08 ms of CPU per request here; with the request bytes built once per
task and only the status line and the four headers that frame a response read, a
request costs a fraction of that, and the client stops being the limit of a single
agent (HttpRequests at several thousand requests per second).

What it does: plain ``http://`` (no TLS, no proxy), one request at a time on one
connection (no pipelining); the response framed as RFC 9112 says: no body for HEAD,
1xx, 204 and 304 (1xx answers skipped), ``Transfer-Encoding: chunked`` (trailers
skipped), ``Content-Length``, else read until the server closes; the connection is kept
unless the server says ``Connection: close`` or answers HTTP/1.0 without keep-alive.
A connection found closed by the server on reuse (an idle keep-alive timeout: the send
fails or nothing at all comes back) is reopened and the request sent once more, as
urllib3 does for a dropped pooled connection. Every socket operation has the timeout.
The body is read and counted, not kept.

Standard library only.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

CRLF = b"\r\n"
CHUNK = 65536
MAX_HEAD = 65536  # status line + headers
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as expected."""


class RemoteDisconnected(ConnectionError):
    """The server closed the connection without answering."""


def _check(text: str, what: str, *, spaces: bool) -> None:
    """No control characters (CR, LF: header injection), no spaces unless `spaces`."""
    bad = [c for c in text if ord(c) < 0x20 or ord(c) == 0x7F or (c == " " and not spaces)]
    if bad or not text and not spaces:
        raise ValueError(f"invalid {what}: {text!r}")


def build_request(method: str, host: str, port: int, path: str,
                  headers: dict[str, str], body: bytes | None) -> bytes:
    """The request's bytes: request line, Host, the headers, Content-Length, body."""
    _check(method, "method", spaces=False)
    _check(path, "path", spaces=False)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}" if port == 80 else
             f"Host: {host}:{port}"]
    for k, v in headers.items():
        _check(k, "header name", spaces=False)
        if ":" in k:
            raise ValueError(f"invalid header name: {k!r}")
        _check(str(v).replace("\t", " "), f"value of header {k}", spaces=True)
        lines.append(f"{k}: {v}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    elif method in METHODS_WITH_BODY:
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


@dataclass
class Response:
    status: int
    location: str | None  # the Location header, if any
    body_bytes: int


class Connection:
    """One kept-alive connection to host:port (opened on first use)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self._buf = b""

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock, self._buf = None, b""

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def set_timeout(self, timeout: float) -> None:
        if timeout != self.timeout:
            self.timeout = timeout
            if self.sock is not None:
                self.sock.settimeout(timeout)

    def request(self, data: bytes, *, head: bool = False) -> Response:
        """Send `data` (from build_request) and read the whole answer."""
        for attempt in (1, 2):
            reused = self.sock is not None
            if not reused:
                self._connect()
            try:
                self.sock.sendall(data)  # type: ignore[union-attr]
                return self._read_response(head)
            except (RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    ConnectionAbortedError) as e:
                self.close()
                if not reused or attempt == 2 or getattr(e, "answered", False):
                    raise
            except BaseException:
                self.close()  # a half-read answer must not poison the next request
                raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ reading

    def _recv(self) -> bytes:
        return self.sock.recv(CHUNK)  # type: ignore[union-attr]

    def _read_head(self, first: bool) -> bytes:
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > MAX_HEAD:
                raise ProtocolError(f"response head longer than {MAX_HEAD} bytes")
            data = self._recv()
            if not data:
                if first and not self._buf:
                    raise RemoteDisconnected("Remote end closed connection without response")
                e = RemoteDisconnected("connection closed inside the response head")
                e.answered = True  # type: ignore[attr-defined]
                raise e
            self._buf += data
        head, self._buf = self._buf[:end], self._buf[end + 4:]
        return head

    def _read_response(self, head_request: bool) -> Response:
        first = True
        while True:
            head = self._read_head(first)
            first = False
            lines = head.split(CRLF)
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError(f"bad status line {lines[0][:100]!r}")
            status = int(parts[1])
            if 100 <= status < 200 and status != 101:
                continue  # 100 Continue and the like: the real answer follows
            length = chunked = location = None
            close = parts[0] == b"HTTP/1.0"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = value.strip()
                elif name == b"transfer-encoding":
                    chunked = value.strip().lower().endswith(b"chunked")
                elif name == b"connection":
                    v = value.strip().lower()
                    close = v == b"close" or (close and v != b"keep-alive")
                elif name == b"location":
                    location = value.strip().decode("latin-1")
            if head_request or status in (204, 304) or status < 200:
                n = 0
            elif chunked:
                n = self._read_chunked()
            elif length is not None:
                if not length.isdigit():
                    raise ProtocolError(f"bad Content-Length {length[:40]!r}")
                n = self._read_exactly(int(length))
            else:
                n, close = self._read_to_close(), True
            if close:
                self.close()
            return Response(status, location, n)

    def _read_exactly(self, n: int) -> int:
        """Consume n body bytes (memory: one receive at a time)."""
        left = n
        while len(self._buf) < left:
            left -= len(self._buf)
            self._buf = self._recv()
            if not self._buf:
                raise ProtocolError(f"connection closed after {n - left} of {n} body bytes")
        self._buf = self._buf[left:]
        return n

    def _read_line(self) -> bytes:
        while (end := self._buf.find(CRLF)) < 0:
            if len(self._buf) > MAX_HEAD:
                raise ProtocolError("chunk size line too long")
            data = self._recv()
            if not data:
                raise ProtocolError("connection closed inside a chunked body")
            self._buf += data
        line, self._buf = self._buf[:end], self._buf[end + 2:]
        return line

    def _read_chunked(self) -> int:
        total = 0
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text[:40]!r}") from None
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return total
            total += self._read_exactly(size)
            if self._read_line():
                raise ProtocolError("no CRLF after a chunk")

    def _read_to_close(self) -> int:
        n = len(self._buf)
        self._buf = b""
        while data := self._recv():
            n += len(data)
        return n
