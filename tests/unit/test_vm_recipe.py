"""The pure parts of the VM stand-in (tests/testbed/vm.py): which mirror apt uses, the
recipe's cache key, qemu's command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.testbed import vm


def _etc(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_mirror_from_deb822_skips_security_disabled_and_other_suites(tmp_path: Path) -> None:
    etc = _etc(tmp_path, {"sources.list.d/debian.sources": (
        "Types: deb\n# a comment\nURIs: http://disabled.invalid/debian\nSuites: bookworm\n"
        "Components: main\nEnabled: no\n\n"
        "Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nURIs: http://security.invalid/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: /usr/share/keyrings/x.gpg\n")})
    assert vm.apt_mirror("bookworm", etc) == "http://mirror.invalid/debian"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    etc = _etc(tmp_path, {"sources.list": (
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb http://security.invalid/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.invalid/debian bookworm main non-free\n")})
    assert vm.apt_mirror("bookworm", etc) == "http://one.invalid/debian"


def test_no_mirror_is_an_error(tmp_path: Path) -> None:
    etc = _etc(tmp_path, {"sources.list": "deb http://x.invalid/debian trixie main\n"})
    with pytest.raises(vm.VmError, match="no deb source for bookworm"):
        vm.apt_mirror("bookworm", etc)


def test_recipe_hash_names_the_cache_and_follows_the_packages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    h = vm.recipe_hash()
    assert vm.image(Path("/c")).dir == Path("/c") / h
    monkeypatch.setattr(vm, "GUEST_PACKAGES", (*vm.GUEST_PACKAGES, "tcpdump"))
    assert vm.recipe_hash() != h


def test_qemu_forwards_ssh_on_loopback_only() -> None:
    argv = vm.qemu_argv(vm.Image(Path("/c/h")), Path("/w/o.qcow2"), 40022, Path("/w/c.log"),
                        Path("/w/q.pid"))
    assert argv[:3] == ["qemu-system-x86_64", "-accel", "tcg"]
    netdev = argv[argv.index("-netdev") + 1]
    assert netdev == "user,id=n0,hostfwd=tcp:127.0.0.1:40022-:22"
    assert argv[argv.index("-kernel") + 1] == "/c/h/vmlinuz"
    assert "file=/w/o.qcow2,if=virtio,format=qcow2" in argv
