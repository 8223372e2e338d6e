"""SAMPLES.jsonl: one Sample per line, written so that a killed agent leaves valid lines.

A line is the Sample's fields as a JSON object; ``action`` and ``fields`` are left out
for a whole iteration without extra fields (so older readers and files stay compatible,
and `iter_samples` reads lines with or without them).

Lines are buffered in memory and written whole, with one ``os.write`` of complete lines,
at least every `flush_interval_s` (checked at each sample) and on `flush()`/`close()`.
So a reader sees only complete lines, except at worst a torn last line if the writer died
inside a write; `iter_samples` skips such a trailing line.

Standard library and femdc_bench.model only.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from types import TracebackType

from femdc_bench.model import Sample


class JsonlSink:
    """Thread-safe JSONL writer of Samples."""

    def __init__(
        self,
        path: str,
        *,
        flush_interval_s: float = 0.5,
        max_buffered: int = 1000,
        append: bool = False,
    ) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        self.path = path
        self._fd: int | None = os.open(path, flags, 0o644)
        self._lock = threading.Lock()
        self._buf: list[str] = []
        self._interval_ns = int(flush_interval_s * 1e9)
        self._max = max_buffered
        self._last_flush = time.monotonic_ns()
        self.written = 0

    def emit(self, sample: Sample) -> None:
        d = vars(sample)
        if not d.get("action") and not d.get("fields"):
            # a whole iteration without extra fields: the line as before atomic actions
            d = {k: v for k, v in d.items() if k not in ("action", "fields")}
        line = json.dumps(d, separators=(",", ":")) + "\n"
        with self._lock:
            if self._fd is None:
                return  # closed: a late (abandoned) worker; its sample is dropped
            self._buf.append(line)
            if (
                len(self._buf) >= self._max
                or time.monotonic_ns() - self._last_flush >= self._interval_ns
            ):
                self._flush_locked()

    __call__ = emit

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        with self._lock:
            if self._fd is None:
                return
            try:
                self._flush_locked()
            finally:
                os.close(self._fd)
                self._fd = None

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic_ns()
        if not self._buf or self._fd is None:
            return
        data = "".join(self._buf).encode("utf-8")
        n = len(self._buf)
        self._buf.clear()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.written += n

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def iter_samples(path: str, *, strict: bool = False) -> Iterator[Sample]:
    """Samples of a JSONL file. A torn last line is skipped unless `strict`.

    Any other bad line raises ValueError naming its line number.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    # split() leaves "" after the final newline; a non-empty last element is torn
    last = len(lines) - 1
    for n, line in enumerate(lines, start=1):
        if not line:
            continue
        try:
            yield Sample.from_dict(json.loads(line))
        except (ValueError, TypeError) as e:
            if n - 1 == last and not strict:
                return
            raise ValueError(f"{path}:{n}: not a Sample: {e}") from None
