"""A tiny HTTP/1.1 endpoint on 127.0.0.1 for client-cost benchmarks: its own process,
asyncio, one fixed 200 answer per request (keep-alive kept), so that the client is the
limit. It counts requests ("METHOD /path 200") and the TCP connections they came on;
GET /__stats answers those counts as JSON (not counted).

    with TinyHttp() as srv:
        srv.url            # http://127.0.0.1:PORT
        srv.request_mix()  # Counter of "GET /ok 200"
        srv.connections()  # TCP connections accepted so far
        srv.server_cpu_s() # user+sys of the server process

Standard library only; stopped by PID on exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from typing import Any

from local_keystone import cpu_seconds

SERVER = r'''
import asyncio, collections, json, sys
mix = collections.Counter()
conns = 0
BODY = b"ok\n"
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
      b"Connection: keep-alive\r\n\r\n" + BODY)

class P(asyncio.Protocol):
    def connection_made(self, t):
        self.t, self.buf, self.counted = t, b"", False
    def data_received(self, data):
        global conns
        self.buf += data
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            length = 0
            for h in head.split(b"\r\n")[1:]:
                k, _, v = h.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            if len(rest) < length:
                return
            self.buf = rest[length:]
            if line[1] == "/__stats":
                body = json.dumps({"mix": mix, "connections": conns}).encode()
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)
            else:
                if not self.counted:  # a connection that made a (non-stats) request
                    conns, self.counted = conns + 1, True
                mix[f"{line[0]} {line[1]} 200"] += 1
                self.t.write(OK if line[0] != "HEAD" else OK[:-len(BODY)])

async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(P, "127.0.0.1", 0, backlog=1024)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()

asyncio.run(main())
'''


class TinyHttp:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> TinyHttp:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def _stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/__stats", timeout=10) as r:
            return json.loads(r.read())

    def request_mix(self) -> Counter[str]:
        return Counter(self._stats()["mix"])

    def connections(self) -> int:
        return int(self._stats()["connections"])

    def server_cpu_s(self) -> float:
        assert self.proc is not None
        return cpu_seconds([self.proc.pid])


if __name__ == "__main__":
    with TinyHttp() as s:
        print(s.url)
        t0 = time.monotonic()
        for _ in range(100):
            urllib.request.urlopen(f"{s.url}/ok").read()
        print(f"100 requests in {time.monotonic() - t0:.3f} s; {s.request_mix()}")
