"""Clock offsets from timestamp exchanges (femdc_bench/clocks.py): the pure part."""

from __future__ import annotations

from pathlib import Path

import pytest

from femdc_bench.clocks import REMOTE, ClockError, best_offset, ssh_argv
from femdc_bench.model import Host


def test_the_shortest_exchange_is_kept() -> None:
    # host 5 ms ahead; the second exchange has the shortest round trip (2 ms)
    ms = 1_000_000
    o = best_offset([(0, 10 * ms, 10 * ms), (100 * ms, 106 * ms, 102 * ms),
                     (200 * ms, 207 * ms, 206 * ms)])
    assert o.offset_ms == pytest.approx(5.0)
    assert o.uncertainty_ms == pytest.approx(1.0)
    assert o.exchanges == 3
    assert o.measured_at_ns == 102 * ms


def test_a_host_behind_is_negative() -> None:
    o = best_offset([(1_000_000_000, 500_000_000, 1_000_400_000)])
    assert o.offset_ms == pytest.approx(-500.2)
    assert o.uncertainty_ms == pytest.approx(0.2)


def test_no_or_inverted_exchange_is_an_error() -> None:
    with pytest.raises(ClockError):
        best_offset([])
    with pytest.raises(ClockError):
        best_offset([(10, 5, 9)])


def test_to_dict_is_json_ready() -> None:
    d = best_offset([(0, 1_234_567, 2_000_000)]).to_dict()
    assert d == {"offset_ms": 0.235, "uncertainty_ms": 1.0, "exchanges": 1,
                 "measured_at_ns": 2_000_000}


def test_ssh_argv_uses_the_hosts_key_port_and_user() -> None:
    h = Host(alias="edge1-1", address="10.231.0.5", site="edge1", roles=("load",),
             ssh_user="bench", ssh_port=2222, ssh_key="/r/ssh/id")
    argv = ssh_argv(h)
    assert argv[0] == "ssh" and argv[-2:] == ["bench@10.231.0.5", REMOTE]
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-i") + 1] == "/r/ssh/id"
    assert "BatchMode=yes" in argv


def test_ssh_argv_goes_through_the_runs_master(tmp_path: Path) -> None:
    h = Host(alias="core-ctl", address="10.231.0.2", site="core", roles=("load",))
    argv = ssh_argv(h, tmp_path)
    assert f"ControlPath={tmp_path}/s-%C" in argv and "ControlMaster=auto" in argv
    assert not any(a.startswith("ControlPath") for a in ssh_argv(h))
