"""The local provider's SSH keys (the run's and each sshd's host key): made whole or
not at all, so that an `up` killed while ssh-keygen ran is finished by the next one."""

from __future__ import annotations

from pathlib import Path

import pytest

from femdc_bench.providers import local


def test_a_key_pair_is_made_once(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    local._keygen(key, "femdc-bench r")
    first = key.read_bytes(), (tmp_path / "id_ed25519.pub").read_bytes()
    assert first[0].startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert first[1].startswith(b"ssh-ed25519 ") and first[1].rstrip().endswith(b"femdc-bench r")
    local._keygen(key, "femdc-bench r")
    assert (key.read_bytes(), (tmp_path / "id_ed25519.pub").read_bytes()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["id_ed25519", "id_ed25519.pub"]


def test_a_half_made_pair_is_made_again(tmp_path: Path) -> None:
    key = tmp_path / "ssh_host_ed25519_key"
    key.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")  # killed mid-write
    (tmp_path / ".ssh_host_ed25519_key.123").write_bytes(b"")  # another CLI's temporary
    local._keygen(key, "c")
    pub = (tmp_path / "ssh_host_ed25519_key.pub").read_text()
    assert pub.startswith("ssh-ed25519 ")
    assert key.read_text().rstrip().endswith("-----END OPENSSH PRIVATE KEY-----")


def test_a_failing_ssh_keygen_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    """ssh-keygen that fails (here: one that only complains) is a ProviderError naming
    the key and what ssh-keygen said, not a CalledProcessError's traceback."""


    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ssh-keygen").write_text("#!/bin/sh\necho 'Saving key failed: disk full' >&2\n"
                                     "exit 1\n")
    (fake / "ssh-keygen").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
    with pytest.raises(local.ProviderError,
                       match=r"^ssh-keygen for .*/id_ed25519 exited 1: Saving key failed"):
        local._keygen(tmp_path / "id_ed25519", "c")
