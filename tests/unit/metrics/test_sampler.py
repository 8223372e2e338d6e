"""The per-service sampler on this machine's real /proc: a service's process tree, its
CPU, RSS and established TCP connections by peer site, host figures; and its parsers."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from femdc_bench.metrics import names as influx
from femdc_bench.metrics import sampler

CHILD = """
import socket, sys, time, os
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if os.fork() == 0:          # a worker, as uwsgi forks them
    time.sleep(60)
t = time.time()
while time.time() - t < 0.6:  # busy: measurable CPU
    pass
print("ready", flush=True)
time.sleep(60)
"""


def test_measurement_names_match_the_writer() -> None:
    assert set(sampler.MEASUREMENTS) == set(influx.SAMPLED)


def test_service_tree_cpu_rss_and_tcp_by_peer(tmp_path: Path) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(port)], stdout=subprocess.PIPE,
                             text=True)
    try:
        conn, _ = srv.accept()
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "keystone.pid").write_text(str(child.pid))
        out = io.StringIO()
        s = sampler.Sampler({"workdir": str(tmp_path), "host": "h1", "site": "s1",
                             "sites_by_address": {"10.0.0.9": "s2"}}, out)
        s.sample()
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        s.sample()
        recs = [json.loads(line) for line in out.getvalue().splitlines()]
        last_t = max(r["t"] for r in recs)
        proc = {r["tags"]["service"]: r["fields"] for r in recs
                if r["m"] == "proc" and r["t"] == last_t}
        ks = proc["keystone"]
        assert ks["procs"] == 2  # the process and its forked worker
        assert ks["cpu_pct"] > 20, ks  # 0.6 s busy within the period
        assert ks["rss_mb"] > 5 and ks["threads"] >= 2
        assert ks["tcp_established"] == 2  # the worker inherited the socket
        assert "femdc-sampler" in proc  # its own overhead
        tcp = [r for r in recs if r["m"] == "tcp" and r["t"] == last_t
               and r["tags"]["service"] == "keystone"]  # (the sampler here is pytest)
        assert [(r["tags"]["service"], r["tags"]["peer_site"], r["fields"]["established"])
                for r in tcp] == [("keystone", "local", 2)]
        host = [r["fields"] for r in recs if r["m"] == "host" and r["t"] == last_t
                and "iface" not in r["tags"]]
        assert host and host[0]["cpu_pct"] >= 0 and host[0]["mem_available_mb"] > 0
        assert all(r["tags"]["host"] == "h1" and r["tags"]["site"] == "s1" for r in recs)
        conn.close()
    finally:
        child.kill()
        child.wait()
        srv.close()


def test_a_dead_service_is_skipped_and_sources_report_once(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "gone.pid").write_text("999999999")
    out = io.StringIO()
    s = sampler.Sampler({"workdir": str(tmp_path), "host": "h", "site": "s",
                         "mariadb_cnf": str(tmp_path / "missing.cnf")}, out)
    s.sample()
    s.sample()  # the database source fails every time: the sampler goes on
    recs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert not [r for r in recs if r["tags"].get("service") == "gone"]
    assert "db" in s.errors and not [r for r in recs if r["m"] == "db"]


def test_detect_sources_from_the_work_directory(tmp_path: Path) -> None:
    (tmp_path / "mariadb").mkdir()
    (tmp_path / "mariadb" / "root.cnf").write_text("[client]\n")
    (tmp_path / "rabbitmq").mkdir()
    (tmp_path / "rabbitmq" / "enabled_plugins").write_text("[rabbitmq_prometheus].\n")
    conf = {"workdir": str(tmp_path), "address": "fd00::5"}
    sampler.detect_sources(conf)
    assert conf["mariadb_cnf"] == str(tmp_path / "mariadb" / "root.cnf")
    assert conf["rabbitmq_metrics_url"] == "http://[fd00::5]:15692/metrics"
    conf = {"workdir": str(tmp_path / "nothing"), "address": "10.0.0.1"}
    sampler.detect_sources(conf)
    assert "mariadb_cnf" not in conf and "rabbitmq_metrics_url" not in conf


def test_proc_net_tcp_addresses() -> None:
    assert sampler._hex_addr("0100007F") == "127.0.0.1"
    assert sampler._hex_addr("0A00A8C0") == "192.168.0.10"
    assert sampler._hex_addr("0000000000000000FFFF00000100007F") == "127.0.0.1"
    assert sampler._hex_addr("00000000000000000000000001000000") == "::1"
    assert sampler._hex_addr("000080FE00000000FF00E302A6C49AFE") == "fe80::2e3:ff:fe9a:c4a6"


def test_prometheus_text_sums_labels() -> None:
    text = ("# HELP rabbitmq_connections x\n# TYPE rabbitmq_connections gauge\n"
            "rabbitmq_connections 12\n"
            'rabbitmq_queue_messages_ready{vhost="a"} 3\n'
            'rabbitmq_queue_messages_ready{vhost="b"} 4.5\n'
            "broken line\n")
    assert sampler.parse_prometheus(text) == {"rabbitmq_connections": 12.0,
                                              "rabbitmq_queue_messages_ready": 7.5}


def test_sigterm_takes_a_last_sample_and_removes_the_pidfile(tmp_path: Path) -> None:
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"workdir": str(tmp_path), "host": "h", "site": "s",
                                "period_s": 30}))
    pidfile, out = tmp_path / "p.pid", tmp_path / "o.jsonl"
    src = Path(sampler.__file__).resolve().parents[2]
    p = subprocess.Popen([sys.executable, "-m", "femdc_bench.metrics.sampler", "--config",
                          str(conf), "--out", str(out), "--pidfile", str(pidfile)],
                         env={**os.environ, "PYTHONPATH": str(src)})
    for _ in range(100):
        if pidfile.exists() and out.exists() and out.stat().st_size:
            break
        time.sleep(0.05)
    t0 = time.monotonic()
    p.terminate()
    assert p.wait(10) == 0
    assert time.monotonic() - t0 < 2  # not a 30 s period
    assert not pidfile.exists()
    stamps = {json.loads(line)["t"] for line in out.read_text().splitlines()}
    assert len(stamps) == 2  # the first and the last sample


def _stats_server(path: Path, answers: list[bytes]) -> socket.socket:
    """uwsgi's stats server as it behaves: each connection gets the JSON, then EOF."""
    import threading

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen()

    def serve() -> None:
        for body in answers:
            conn, _ = srv.accept()
            conn.sendall(body)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def test_requests_served_from_the_uwsgi_stats_socket(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    child = subprocess.Popen(["sleep", "60"])
    doc = {"version": "2.0.28", "workers": [{"id": 1, "requests": 5}, {"id": 2, "requests": 7}]}
    later = {"workers": [{"id": 1, "requests": 15}, {"id": 2, "requests": 17}]}
    srv = _stats_server(tmp_path / "run" / "keystone.stats",
                        [json.dumps(doc).encode(), json.dumps(later).encode(), b"not json"])
    try:
        (tmp_path / "run" / "keystone.pid").write_text(str(child.pid))
        (tmp_path / "run" / "memcached.pid").write_text(str(child.pid))  # no stats socket
        out = io.StringIO()
        s = sampler.Sampler({"workdir": str(tmp_path), "host": "h1", "site": "s1"}, out)
        s.sample()
        time.sleep(0.5)
        s.sample()
        recs = [json.loads(line)["fields"] | json.loads(line)["tags"]
                for line in out.getvalue().splitlines() if '"m":"proc"' in line]
        ks = [r for r in recs if r["service"] == "keystone"]
        assert [r["requests"] for r in ks] == [12, 32]
        assert "requests_per_s" not in ks[0] and 20 / 1.0 < ks[1]["requests_per_s"] < 20 / 0.5
        assert all("requests" not in r for r in recs if r["service"] == "memcached")
        # a garbled answer, then no server at all: no figure, no crash
        assert sampler.uwsgi_requests(str(tmp_path / "run" / "keystone.stats")) is None
        srv.close()
        assert sampler.uwsgi_requests(str(tmp_path / "run" / "keystone.stats")) is None
        assert sampler.uwsgi_requests(str(tmp_path / "run" / "none.stats")) is None
    finally:
        srv.close()
        child.kill()
        child.wait()
