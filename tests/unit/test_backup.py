"""The backup archive: what goes in (and what never does), secrets redacted, checksums
verified on open, hostile archives refused."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from femdc_bench import backup as bk

LINES = [("api", f"api,run=r1,site=s1 duration_ms={i}.5,iteration={i}i {1000 + i}")
         for i in range(5)] + [("event", 'event,run=r1,kind=phase text="start" 7')]


def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "r1"
    for rel, text in {
        "experiment.yaml": "name: x\n", "state.json": "{}", "report.json": '{"rows": []}',
        "secrets.json": json.dumps({"admin": "AdminPassw0rdXYZ", "db": "DbPassw0rd123"}),
        "clouds.yaml": "password: AdminPassw0rdXYZ\n", "ssh/id_ed25519": "KEY",
        "provider/state.json": "{}", "influxdb/data/x": "raw", "tmp/vars.json": "{}",
        "logs/deploy.log": "ok\nconnect with DbPassw0rd123 and DbPassw0rd123\n",
        "logs/hosts/h1/config-nova-nova.conf": "password = <redacted>\n",
        "samples/p0/h1.jsonl": "{}\n",
    }.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
    return d


def test_round_trip_with_exclusions_and_redaction(tmp_path: Path) -> None:
    d = run_dir(tmp_path)
    res = bk.write_archive(d, "r1", iter(LINES), tmp_path / "out" / "r1.tar.gz")
    assert res.points == {"api": 5, "event": 1} and res.redactions == 2
    assert (res.path.stat().st_mode & 0o777) == 0o600
    o = bk.open_archive(res.path)
    assert o.run_id == "r1" and o.meta["points"] == {"api": 5, "event": 1}
    assert bk.influx_lines(o) == [line for _, line in LINES]
    names = set(o.members)
    assert {"experiment.yaml", "report.json", "logs/deploy.log", "samples/p0/h1.jsonl",
            "logs/hosts/h1/config-nova-nova.conf", "backup.json", "SHA256SUMS"} <= names
    assert not names & {"secrets.json", "clouds.yaml", "ssh/id_ed25519",
                        "provider/state.json", "influxdb/data/x", "tmp/vars.json"}
    assert all(b"Passw0rd" not in data for data in o.members.values())
    assert o.members["logs/deploy.log"] == b"ok\nconnect with <redacted> and <redacted>\n"
    dest = tmp_path / "restored" / "r1"
    assert bk.extract_files(o, dest) == len(names) - 2  # not SHA256SUMS, not influx/
    assert (dest / "report.json").read_text() == '{"rows": []}'
    with pytest.raises(bk.BackupError, match="exists"):
        bk.extract_files(o, dest)


def test_archive_is_0600_from_its_first_byte(tmp_path: Path) -> None:
    """The .part file is private while it is written (not chmod'ed afterwards), even under a
    permissive umask and over a crashed backup's world-readable .part."""
    out = tmp_path / "r1.tar.gz"
    part = out.with_name(out.name + ".part")
    part.write_text("left by a crash")
    part.chmod(0o644)
    modes: list[int] = []

    def lines() -> Iterator[tuple[str, str]]:
        modes.append(part.stat().st_mode & 0o777)  # the archive is open, nothing written yet
        yield from LINES

    old = os.umask(0o022)
    try:
        bk.write_archive(run_dir(tmp_path), "r1", lines(), out)
    finally:
        os.umask(old)
    assert modes == [0o600]
    assert (out.stat().st_mode & 0o777) == 0o600 and not part.exists()


def test_line_protocol_is_split_into_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setattr(bk, "LINES_PER_FILE", 2)
    res = bk.write_archive(run_dir(tmp_path), "r1", iter(LINES), tmp_path / "a.tar.gz")
    o = bk.open_archive(res.path)
    assert sorted(n for n in o.members if n.startswith("influx/")) == [
        "influx/points-0001.lp", "influx/points-0002.lp", "influx/points-0003.lp"]
    assert len(bk.influx_lines(o)) == 6


def _rewrite(src: Path, dst: Path, edit: dict[str, bytes | None],
             extra: tuple[tarfile.TarInfo, bytes] | None = None) -> None:
    with tarfile.open(src) as a, tarfile.open(dst, "w:gz") as b:
        for m in a.getmembers():
            data = a.extractfile(m).read()  # type: ignore[union-attr]
            short = m.name.split("/", 1)[1]
            if short in edit:
                if edit[short] is None:
                    continue
                data = edit[short]  # type: ignore[assignment]
                m.size = len(data)
            b.addfile(m, io.BytesIO(data))
        if extra:
            b.addfile(extra[0], io.BytesIO(extra[1]))


@pytest.mark.parametrize("case, message", [
    ("tampered", "report.json does not match its checksum"),
    ("missing", "missing logs/deploy.log"),
    ("traversal", "unexpected member"),
    ("no-sums", "no SHA256SUMS"),
])
def test_damaged_or_hostile_archives_are_refused(tmp_path: Path, case: str, message: str
                                                 ) -> None:
    good = bk.write_archive(run_dir(tmp_path), "r1", iter(LINES), tmp_path / "g.tar.gz").path
    bad = tmp_path / "bad.tar.gz"
    if case == "tampered":
        _rewrite(good, bad, {"report.json": b'{"rows": [1]}'})
    elif case == "missing":
        _rewrite(good, bad, {"logs/deploy.log": None})
    elif case == "traversal":
        info = tarfile.TarInfo("r1/../../etc/cron.d/x")
        info.size = 1
        _rewrite(good, bad, {}, (info, b"x"))
    else:
        _rewrite(good, bad, {"SHA256SUMS": None})
    with pytest.raises(bk.BackupError, match=message):
        bk.open_archive(bad)


def test_not_an_archive(tmp_path: Path) -> None:
    f = tmp_path / "x.tar.gz"
    f.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(bk.BackupError, match="not a femdc-bench backup"):
        bk.open_archive(f)
