"""A page checked in a real headless Chromium (Debian's `chromium`, from install.sh),
with no network: run under `unshare -n` (a new network namespace with only a down
loopback), so any request the page makes fails, and Chromium's NetLog says whether it
tried (a request keyed to the page's file:// site). Console messages come from
`--enable-logging=stderr` (`CONSOLE` lines); the DOM after the page's script ran from
`--dump-dom`; a screenshot is kept."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


@dataclass
class PageCheck:
    dom: str
    console: list[str]  # console messages (any: the report writes none)
    requests: list[str]  # non-file URLs the page asked for
    external_refs: list[str]  # http(s) or protocol-relative src/href in the file itself
    screenshot: Path
    ready: dict[str, int] = field(default_factory=dict)  # the page's #report-ready marker


def _chromium(args: list[str], user_dir: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    if exe is None:
        raise AssertionError("chromium is not installed (install.sh installs Debian's)")
    return subprocess.run(["unshare", "-n", exe, *FLAGS, f"--user-data-dir={user_dir}", *args],
                          capture_output=True, text=True, timeout=timeout)


def check_page(page: Path, out_dir: Path, *, timeout: float = 120.0) -> PageCheck:
    """Render `page` twice (DOM + logs + NetLog; screenshot 1400x4000 into `out_dir`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="femdc-chromium-") as tmp:
        t = Path(tmp)
        net = t / "net.json"
        p = _chromium(["--enable-logging=stderr", "--v=0", f"--log-net-log={net}",
                       "--dump-dom", url], t / "a", timeout)
        shot = out_dir / "report-screenshot.png"
        s = _chromium([f"--screenshot={shot}", "--window-size=1400,4000", url], t / "b", timeout)
        if not shot.exists():
            raise AssertionError(f"no screenshot: {s.stderr[-2000:]}")
        netlog = net.read_text(errors="replace") if net.exists() else ""
    console = [line for line in p.stderr.splitlines() if ":CONSOLE" in line]
    requests = sorted({u for u in re.findall(r'"key":"[^"]*file:// (\S+?)"', netlog)
                       if not u.startswith("file:")})
    html = page.read_text(encoding="utf-8")
    external = re.findall(r'(?:src|href)\s*=\s*["\']?((?:https?:)?//[^"\'\s>]+)', html)
    ready: dict[str, int] = {}
    m = re.search(r'<div id="report-ready"([^>]*)>', p.stdout)
    if m:
        ready = {k: int(v) for k, v in re.findall(r'data-([a-z]+)="(\d+)"', m.group(1))}
    return PageCheck(dom=p.stdout, console=console, requests=requests,
                     external_refs=external, screenshot=shot, ready=ready)
