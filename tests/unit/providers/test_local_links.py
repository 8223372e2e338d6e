"""Destroying a local run: a veth whose namespace went first is gone, not an error."""

from __future__ import annotations

import subprocess

import pytest

from femdc_bench.providers import local


def _fake_ip(links: set[str], vanish_on_del: bool):
    def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert args[:2] == ("link", "del")
        name = args[2]
        if vanish_on_del:  # the kernel dropped the peer between the check and the delete
            links.discard(name)
            return subprocess.CompletedProcess(args, 1, "", f'Cannot find device "{name}"')
        return subprocess.CompletedProcess(args, 2, "", "Operation not permitted")
    return ip


def test_a_link_that_vanished_meanwhile_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    links = {"fv1"}
    monkeypatch.setattr(local, "_link_exists", lambda n: n in links)
    monkeypatch.setattr(local, "_ip", _fake_ip(links, vanish_on_del=True))
    assert local._del_link("fv1") is False
    assert local._del_link("absent") is False


def test_a_link_that_stays_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    links = {"fv1"}
    monkeypatch.setattr(local, "_link_exists", lambda n: n in links)
    monkeypatch.setattr(local, "_ip", _fake_ip(links, vanish_on_del=False))
    with pytest.raises(local.ProviderError, match="ip link del fv1: Operation not permitted"):
        local._del_link("fv1")
