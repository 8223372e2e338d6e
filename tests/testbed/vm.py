"""A small Debian 12 guest under qemu (TCG) as a stand-in testbed node.

What this machine's kernel cannot run (sch_netem, systemd as PID 1) runs in the guest.
Everything comes from Debian's packages: debootstrap (from the mirror this machine's apt
already uses, read at run time) builds a root directory, `mkfs.ext4 -d` turns it into a
raw image without loop mounts, and qemu boots the kernel and initrd of that root
directly (no bootloader). The guest is reached over SSH on 127.0.0.1 only (qemu's user
network forwards a free local port to the guest's port 22), as root with a key made
for the image.

The image is cached under /var/cache/femdc-bench/vm/<sha256 of the recipe>/ (a recipe
change builds a new one); each boot writes to a fresh qcow2 overlay, never to the
cached image. Run by hand (`tox -e testbed`), as root, and under the machine-wide lock
(`flock /tmp/femdc-heavy.lock`): a build or a boot keeps both cores busy.

    python -m tests.testbed.vm build     # build (or find) the image; prints its directory
    python -m tests.testbed.vm boot      # boot it, print the ssh command, stop on Enter
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
CACHE_ROOT = Path("/var/cache/femdc-bench/vm")
HOST_PACKAGES = ("qemu-system-x86", "qemu-utils", "debootstrap", "e2fsprogs", "openssh-client")
HOST_TOOLS = ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4", "ssh", "ssh-keygen")
# What the guest needs: boot (kernel, initramfs, udev, systemd), SSH + Ansible (python3),
# the WAN emulation and its checks (iproute2 = tc, iptables for the probe, ping, iperf3),
# the service under test (memcached), ps/pgrep (procps).
GUEST_PACKAGES = (
    "linux-image-amd64", "initramfs-tools", "kmod", "udev", "systemd-sysv", "dbus",
    "openssh-server", "python3", "iproute2", "iptables", "iputils-ping", "iperf3",
    "memcached", "procps", "ca-certificates", "netbase",
)
IMAGE_SIZE = "3G"
RECIPE_VERSION = 1  # bump when the configuration written into the root directory changes

# what `systemd-networkd` does on the guest's NIC (qemu's user network answers DHCP)
NETWORK_UNIT = "[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n"


class VmError(RuntimeError):
    pass


def _run(argv: Sequence[str], *, log: Path | None = None, timeout: float | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv; on failure raise VmError with the end of its output."""
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env)
    if log is not None:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(argv)}\n{p.stdout}{p.stderr}\n")
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
        raise VmError(f"{' '.join(argv[:3])}... exited {p.returncode}: {' | '.join(tail)}")
    return p


# --------------------------------------------------------------------------- host side

def missing_tools() -> list[str]:
    return [t for t in HOST_TOOLS if shutil.which(t) is None]


def ensure_host_tools() -> None:
    """Install qemu, debootstrap and e2fsprogs from Debian if missing (root only).

    Idempotent: apt-get runs only when a tool is missing."""
    if not missing_tools():
        return
    if os.geteuid() != 0:
        raise VmError(f"missing {', '.join(missing_tools())} and not root: "
                      f"apt-get install {' '.join(HOST_PACKAGES)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(["apt-get", "update", "-qq"], env=env, timeout=600)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *HOST_PACKAGES],
         env=env, timeout=900)
    if missing_tools():
        raise VmError(f"still missing after apt-get install: {', '.join(missing_tools())}")


def _deb822_uris(text: str, suite: str) -> list[str]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
        if ("deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split()
                and "main" in fields.get("components", "").split()
                and fields.get("enabled", "yes").lower() != "no"):
            out += fields.get("uris", "").split()
    return out


def _one_line_uris(text: str, suite: str) -> list[str]:
    out = []
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
            out.append(words[1])
    return out


def apt_mirror(suite: str = SUITE, etc: Path = Path("/etc/apt")) -> str:
    """The mirror this machine's apt uses for `suite` main (never written anywhere)."""
    uris: list[str] = []
    for f in sorted(etc.glob("sources.list.d/*.sources")):
        uris += _deb822_uris(f.read_text(), suite)
    for f in [etc / "sources.list", *sorted(etc.glob("sources.list.d/*.list"))]:
        if f.is_file():
            uris += _one_line_uris(f.read_text(), suite)
    uris = [u for u in uris if u.startswith(("http://", "https://"))]
    if not uris:
        raise VmError(f"no deb source for {suite} main in {etc}/sources.list(.d)")
    return uris[0]


def recipe() -> dict[str, object]:
    """Everything that decides the image's content (its hash names the cache directory)."""
    return {"suite": SUITE, "packages": sorted(GUEST_PACKAGES), "size": IMAGE_SIZE,
            "network": NETWORK_UNIT, "version": RECIPE_VERSION}


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Image:
    dir: Path

    @property
    def raw(self) -> Path:
        return self.dir / "root.img"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def done(self) -> Path:
        return self.dir / "done.json"

    def ready(self) -> bool:
        return self.done.is_file() and all(
            p.is_file() for p in (self.raw, self.kernel, self.initrd, self.key))


def image(cache_root: Path = CACHE_ROOT) -> Image:
    return Image(cache_root / recipe_hash())


def _configure(root: Path, pubkey: str) -> None:
    """What debootstrap does not do: fstab, hostname, SSH for root, DHCP, fast boot."""
    (root / "etc/fstab").write_text("/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    (root / "etc/hostname").write_text("femdc-guest\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 femdc-guest\n")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(pubkey)
    (ssh_dir / "authorized_keys").chmod(0o600)
    (root / "etc/ssh/sshd_config.d/femdc.conf").write_text(
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n")
    (root / "etc/systemd/network/10-nic.network").write_text(NETWORK_UNIT)
    # Every boot gets its own machine id (systemd writes it on first boot).
    (root / "etc/machine-id").write_text("")
    with contextlib.suppress(FileNotFoundError):
        (root / "var/lib/dbus/machine-id").unlink()
    _run(["chroot", str(root), "systemctl", "enable", "systemd-networkd"])
    # Nothing waits for "online" (sshd does not need it), so do not delay the boot.
    _run(["chroot", str(root), "systemctl", "mask", "systemd-networkd-wait-online"])
    # the apt lists are not needed in the guest (it has no route to a mirror it should use)
    for f in glob.glob(str(root / "var/lib/apt/lists/*_Packages")):
        os.unlink(f)
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)


def build(img: Image | None = None, *, log: Path | None = None) -> tuple[Image, float]:
    """Build the image unless it is in the cache: (image, seconds spent building; 0 if
    cached). Root only."""
    img = img or image()
    if img.ready():
        return img, 0.0
    if os.geteuid() != 0:
        raise VmError("building the guest image needs root (debootstrap, chroot)")
    ensure_host_tools()
    t0 = time.monotonic()
    img.dir.mkdir(parents=True, exist_ok=True)
    log = log or img.dir / "build.log"
    with tempfile.TemporaryDirectory(prefix="femdc-vm-", dir=img.dir) as tmp:
        root = Path(tmp) / "root"
        key = Path(tmp) / "id_ed25519"
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "femdc-vm", "-f", str(key)])
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(GUEST_PACKAGES)}",
              SUITE, str(root), apt_mirror()], log=log, timeout=1800)
        _configure(root, key.with_suffix(".pub").read_text())
        kernels = sorted(glob.glob(str(root / "boot/vmlinuz-*")))
        initrds = sorted(glob.glob(str(root / "boot/initrd.img-*")))
        if not kernels or not initrds:
            raise VmError(f"no kernel or initrd in {root}/boot after debootstrap")
        shutil.copyfile(kernels[-1], Path(tmp) / "vmlinuz")
        shutil.copyfile(initrds[-1], Path(tmp) / "initrd.img")
        raw = Path(tmp) / "root.img"
        _run(["truncate", "-s", IMAGE_SIZE, str(raw)])
        _run(["mkfs.ext4", "-q", "-F", "-L", "femdc-root", "-d", str(root), str(raw)], log=log)
        for name in ("vmlinuz", "initrd.img", "root.img", "id_ed25519", "id_ed25519.pub"):
            os.replace(Path(tmp) / name, img.dir / name)
        img.key.chmod(0o600)
    seconds = time.monotonic() - t0
    img.done.write_text(json.dumps({"recipe": recipe(), "build_s": round(seconds, 1),
                                    "kernel": Path(kernels[-1]).name}, indent=1) + "\n")
    return img, seconds


# --------------------------------------------------------------------------- the guest

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SSH_OPTIONS = ("-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
               "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10")


@dataclass
class Guest:
    """A running guest: SSH to root@127.0.0.1:<port> with the image's key."""

    image: Image
    port: int
    pid: int
    workdir: Path
    boot_s: float = 0.0

    @property
    def console(self) -> Path:
        return self.workdir / "console.log"

    def ssh_argv(self, *remote: str) -> list[str]:
        return ["ssh", *SSH_OPTIONS, "-i", str(self.image.key), "-p", str(self.port),
                "root@127.0.0.1", "--", *remote]

    def ssh(self, *remote: str, check: bool = True, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run one remote command (argv joined by ssh: pass shell-safe words or a script
        through `input` to `bash -s`)."""
        p = subprocess.run(self.ssh_argv(*remote), capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise VmError(f"guest: {' '.join(remote)[:200]} exited {p.returncode}: "
                          f"{(p.stderr or p.stdout).strip()[-500:]}")
        return p

    def script(self, text: str, *, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.ssh("bash", "-euo", "pipefail", "-s", check=check, timeout=timeout,
                        input=text)


def qemu_argv(img: Image, overlay: Path, port: int, console: Path, pidfile: Path, *,
              memory_mb: int = 2048, cpus: int = 2) -> list[str]:
    # -nographic's serial console goes to a file (-serial file:), the monitor nowhere:
    # the process runs in the background with no terminal. romfile= : qemu's PXE option
    # ROM (ipxe-qemu) is a Recommends of qemu-system-x86 and nothing here boots from it.
    return ["qemu-system-x86_64", "-accel", "tcg", "-m", str(memory_mb), "-smp", str(cpus),
            "-display", "none", "-monitor", "none", "-serial", f"file:{console}",
            "-no-reboot", "-pidfile", str(pidfile),
            "-kernel", str(img.kernel), "-initrd", str(img.initrd),
            "-append", "root=/dev/vda rw console=ttyS0 panic=-1 net.ifnames=0",
            "-drive", f"file={overlay},if=virtio,format=qcow2",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-pci,netdev=n0,romfile="]


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Stop qemu by its PID: SIGTERM (it exits at once), SIGKILL if it does not."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def running(img: Image, workdir: Path, *, boot_timeout: float = 300) -> Iterator[Guest]:
    """Boot the image (on a throwaway overlay), wait until SSH answers, yield the guest;
    always stop it (by PID) at the end."""
    workdir.mkdir(parents=True, exist_ok=True)
    overlay = workdir / "overlay.qcow2"
    overlay.unlink(missing_ok=True)
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(img.raw),
          str(overlay)])
    port = free_port()
    console = workdir / "console.log"
    t0 = time.monotonic()
    with open(workdir / "qemu.log", "wb") as qlog:  # qemu keeps its own copy of the fd
        proc = subprocess.Popen(qemu_argv(img, overlay, port, console, workdir / "qemu.pid"),
                                stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT)
    guest = Guest(image=img, port=port, pid=proc.pid, workdir=workdir)

    def _terminated(signum: int, frame: object) -> None:
        raise SystemExit(f"signal {signum}")  # unwinds to the `finally` that stops qemu

    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        while True:
            if proc.poll() is not None:
                raise VmError(f"qemu exited {proc.returncode} while booting: "
                              f"{(workdir / 'qemu.log').read_text()[-500:]}")
            if time.monotonic() - t0 > boot_timeout:
                raise VmError(f"no SSH after {boot_timeout:.0f} s; console: "
                              f"{console.read_text(errors='replace')[-1500:]}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                if guest.ssh("true", check=False, timeout=20).returncode == 0:
                    break
            time.sleep(2)
        guest.boot_s = time.monotonic() - t0
        yield guest
    finally:
        with contextlib.suppress(Exception):
            guest.ssh("systemctl", "poweroff", check=False, timeout=10)
            proc.wait(timeout=15)
        _stop(proc)
        signal.signal(signal.SIGTERM, previous)
        overlay.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "build"
    img, seconds = build()
    print(f"image {img.dir} (" + (f"built in {seconds:.0f} s" if seconds else "cached") + ")")
    if cmd == "boot":
        with running(img, Path(tempfile.mkdtemp(prefix="femdc-vm-"))) as g:
            print(f"booted in {g.boot_s:.1f} s, pid {g.pid}: {' '.join(g.ssh_argv())}")
            input("Enter stops the guest ")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
