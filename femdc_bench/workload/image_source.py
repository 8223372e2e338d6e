"""Where image bytes come from: Rally's ``image_location`` / ``image_url``.

A location is an absolute path on the load host, a ``file://`` URL, or an ``http(s)://``
URL. A URL is fetched once per load host into the image cache
(``/var/cache/femdc-bench/images/<sha256 of the URL, 16 hex>/<file name>``; the
``FEMDC_IMAGE_CACHE`` environment variable moves it), outside any timing, and every
upload then streams that file: Rally instead downloads the URL again in every
iteration, which times the download site rather than Glance. A host without access to
the URL (an offline testbed, CI) can be given the file ahead, at `cache_path(url)`.

Downloads honour the host's proxy settings (testbeds such as Grid'5000 reach the
outside through one). Concurrent jobs on one host download a URL once (a lock file).

Standard library and requests only.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_CACHE = "/var/cache/femdc-bench/images"
CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_S = 60.0  # per read, not for the whole file


class ImageSourceError(RuntimeError):
    """A location that cannot be read or fetched."""


def check_location(value: object, key: str = "image_location") -> None:
    """ValueError unless `value` is an absolute path, a file:// or an http(s):// URL."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"arg {key!r}: expected a path or URL, got {value!r}")
    scheme = urlsplit(value).scheme
    if scheme in ("http", "https", "file"):
        return
    if scheme or not value.startswith("/"):
        raise ValueError(f"arg {key!r}: expected an absolute path, a file:// or an "
                         f"http(s):// URL, got {value!r}")


def cache_dir() -> Path:
    return Path(os.environ.get("FEMDC_IMAGE_CACHE") or DEFAULT_CACHE)


def cache_path(url: str) -> Path:
    """Where the image cache keeps `url`'s bytes."""
    name = Path(unquote(urlsplit(url).path)).name or "image"
    return cache_dir() / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def local_file(location: str) -> Path:
    """A local file with `location`'s bytes (a URL: from the cache, fetched if absent)."""
    parts = urlsplit(location)
    if parts.scheme in ("http", "https"):
        path = cache_path(location)
        if not path.is_file():
            _download(location, path)
    else:
        path = Path(unquote(parts.path)) if parts.scheme == "file" else Path(location)
    if not path.is_file():
        raise ImageSourceError(f"image {location}: no such file")
    return path


def _download(url: str, path: Path) -> None:
    import requests

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another job of this host may be fetching it
        if path.is_file():
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT_S) as r:
                r.raise_for_status()
                with open(tmp, "wb") as f:
                    for chunk in r.iter_content(CHUNK):
                        f.write(chunk)
            os.replace(tmp, path)
        except (OSError, requests.RequestException) as e:
            raise ImageSourceError(f"image {url}: cannot fetch it into {path}: "
                                   f"{type(e).__name__}: {e}") from None
        finally:
            tmp.unlink(missing_ok=True)


class FileData:
    """A file as a request body: a Content-Length, and its bytes read anew on every
    iteration (each upload opens the file; memory: one chunk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        if self.size == 0:
            raise ImageSourceError(f"image {path}: empty file")

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
