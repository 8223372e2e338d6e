"""Unpacking the log archives collect.yml fetches, and the host script that writes them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from femdc_bench.collect import unpack_logs

HOST_FACTS = Path(__file__).parents[2] / "playbooks" / "common" / "files" / "host_facts.py"


def _archive(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_unpack_replaces_the_last_collect_and_only_writes_plain_names(tmp_path: Path) -> None:
    hosts = tmp_path / "logs" / "hosts"
    (hosts / "core-ctl").mkdir(parents=True)
    (hosts / "core-ctl" / "old.log").write_text("from an earlier collect")
    _archive(hosts / "core-ctl.tar.gz", {"nova-api.log": b"api", "../escape.log": b"x",
                                         "/etc/evil.log": b"x", "sub/dir.log": b"x"})
    unpack_logs(hosts)
    assert sorted(p.name for p in (hosts / "core-ctl").iterdir()) == ["nova-api.log"]
    assert (hosts / "core-ctl" / "nova-api.log").read_text() == "api"
    assert not (tmp_path / "logs" / "escape.log").exists()
    assert not list(hosts.glob("*.tar.gz"))


def test_host_facts_archives_the_logs_and_reports_versions(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "log").mkdir(parents=True)
    (work / "log" / "keystone.log").write_text("ks")
    (work / "log" / "notes.txt").write_text("not a log")
    archive = work / "collect-logs.tar.gz"
    out = subprocess.run([sys.executable, str(HOST_FACTS), str(work), str(archive)],
                         capture_output=True, text=True, check=True).stdout
    facts = json.loads(out)
    assert facts["logs"] == 1 and facts["versions"]["kernel"]
    assert set(facts["memory"]) >= {"pss_mb", "rss_mb", "processes", "by_name"}
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["keystone.log"]


def test_host_facts_archives_the_configuration_with_secrets_redacted(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "nova" / "etc").mkdir(parents=True)
    (work / "nova" / "etc" / "nova.conf").write_text(
        "[DEFAULT]\ntransport_url = rabbit://openstack:S3cretRabbit@10.0.0.1:5672/core\n"
        "[keystone_authtoken]\npassword = S3cretNova\nusername = nova\n"
        "[database]\nconnection = mysql+pymysql://nova:S3cretDb@10.0.0.1/nova\n"
        "# password = a comment stays\nmemcache_secret_key=S3cretMc\n")
    (work / "mariadb").mkdir()
    (work / "mariadb" / "my.cnf").write_text("[mysqld]\nport = 3306\n")
    (work / "mariadb" / "root.cnf").write_text("[client]\npassword = S3cretRoot\n")
    archive = work / "collect-logs.tar.gz"
    out = subprocess.run([sys.executable, str(HOST_FACTS), str(work), str(archive)],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["configs"] == 2
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["config-mariadb-my.cnf", "config-nova-nova.conf"]
        f = tar.extractfile("config-nova-nova.conf")
        assert f is not None
        text = f.read().decode()
    assert "S3cret" not in text
    assert "rabbit://openstack:<redacted>@10.0.0.1:5672/core" in text
    assert "password = <redacted>" in text and "username = nova" in text
    assert "mysql+pymysql://nova:<redacted>@10.0.0.1/nova" in text
    assert "# password = a comment stays" in text


STOP_ALL = Path(__file__).parents[2] / "playbooks" / "native" / "files" / "stop_all.py"


def test_stop_all_stops_by_pidfile_and_never_a_process_of_another_name(tmp_path: Path) -> None:
    ours = subprocess.Popen(["sleep", "60"])
    other = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "svc.pid").write_text(f"{ours.pid}\n")
        (tmp_path / "svc.digest").write_text("d")
        (tmp_path / "imposter.pid").write_text(f"{other.pid}\n")  # comm is not "mariadbd"
        stages = [[["svc", "sleep"], ["gone", "python3"]], [["imposter", "mariadbd"]]]
        out = subprocess.run([sys.executable, str(STOP_ALL), str(tmp_path),
                              "femdc-unit-test-none-", json.dumps(stages)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"stopped": ["svc"], "killed": [], "left": []}
        assert ours.wait(timeout=5) is not None
        assert other.poll() is None  # untouched
        assert sorted(p.name for p in tmp_path.iterdir()) == []
    finally:
        for p in (ours, other):
            p.kill()
            p.wait()
