"""playbooks/grafana/ for real, short of Docker and Grafana (neither installs here).

deploy.yml and destroy.yml run with a local connection and the variables
`grafana/service.py` builds, against a stand-in `docker` first on PATH (it records its
argv; `run` starts a stand-in Grafana from the `--volume` and `--env` arguments) and a
stand-in Grafana that serves what the playbook asks: /api/health, /api/search from the
dashboards its provider file points at (through the mounts), and the datasource's
health (admin's password read from GF_SECURITY_ADMIN_PASSWORD__FILE, then the
datasource URL's /ping). Checked: the files, their owner and modes, the container's
argv, a second deploy replacing the container, a datasource that does not answer
failing the deploy with one line, destroy removing container and directory. Root
(chown to Grafana's uid); ~15 s. `tox -e testbed` or
    python -m pytest -m testbed tests/testbed/test_grafana_playbook.py
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from femdc_bench.experiment import parse
from femdc_bench.grafana import service
from femdc_bench.model import Host, Inventory

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

FAKE_DOCKER = r'''#!PYTHON
import json, os, signal, subprocess, sys, time
state = os.environ["FAKE_DOCKER_STATE"]
with open(os.path.join(state, "argv.jsonl"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
cmd, args = sys.argv[1], sys.argv[2:]
pidfile = os.path.join(state, "grafana.pid")
if cmd == "pull":
    print("Status: Downloaded newer image for " + args[0])
elif cmd == "rm":
    if not os.path.exists(pidfile):
        print("Error: No such container: " + args[-1], file=sys.stderr)
        sys.exit(1)
    pid = int(open(pidfile).read())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):  # gone (or a zombie) before the name is free again
        try:
            if open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        except OSError:
            break
        time.sleep(0.05)
    os.unlink(pidfile)
    print(args[-1])
elif cmd == "run":
    if os.path.exists(pidfile):
        print("Error: the container name is already in use", file=sys.stderr)
        sys.exit(125)
    vols, env = {}, {}
    for flag, value in zip(args, args[1:]):
        if flag == "--volume":
            src, dst, _ = value.split(":")
            vols[dst] = src
        elif flag == "--env":
            k, v = value.split("=", 1)
            env[k] = v
    err = open(os.path.join(state, "grafana.err"), "a")
    p = subprocess.Popen([sys.executable, os.environ["FAKE_GRAFANA"], json.dumps(vols),
                          json.dumps(env)], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=err)
    open(pidfile, "w").write(str(p.pid))
    print("0123456789ab")
else:
    sys.exit(2)
'''

FAKE_GRAFANA = r'''import base64, http.server, json, sys, urllib.request, yaml
vols, env = json.loads(sys.argv[1]), json.loads(sys.argv[2])

def host_path(p):
    for inside, src in vols.items():
        if p == inside or p.startswith(inside + "/"):
            return src + p[len(inside):]
    raise SystemExit("not mounted: " + p)

prov = host_path("/etc/grafana/provisioning")
ds = yaml.safe_load(open(prov + "/datasources/femdc.yaml"))["datasources"][0]
board_dir = host_path(yaml.safe_load(open(prov + "/dashboards/femdc.yaml"))
                      ["providers"][0]["options"]["path"])
password = open(host_path(env["GF_SECURITY_ADMIN_PASSWORD__FILE"])).read()

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        import glob
        if self.path == "/api/health":
            return self.reply(200, {"database": "ok"})
        if self.path == "/api/search?type=dash-db":
            return self.reply(200, [{"uid": json.load(open(f))["uid"]}
                                    for f in sorted(glob.glob(board_dir + "/*.json"))])
        if self.path == "/api/datasources/uid/%s/health" % ds["uid"]:
            auth = "Basic " + base64.b64encode(("admin:" + password).encode()).decode()
            if self.headers.get("Authorization") != auth:
                return self.reply(401, {"message": "Unauthorized"})
            try:
                urllib.request.urlopen(ds["url"] + "/ping", timeout=2)
            except OSError as e:
                return self.reply(400, {"message": "error reading InfluxDB: %s" % e})
            return self.reply(200, {"status": "OK", "message": "datasource is working"})
        self.reply(404, {"message": "not found"})

http.server.HTTPServer(("127.0.0.1", int(env["GF_SERVER_HTTP_PORT"])), H).serve_forever()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Ping(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(204 if self.path == "/ping" else 404)
        self.end_headers()


@pytest.fixture
def influx() -> Iterator[str]:
    srv = http.server.HTTPServer(("127.0.0.1", 0), _Ping)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[dict[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (files owned by Grafana's uid)")
    bin_dir, state = tmp_path / "bin", tmp_path / "docker-state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER.replace("PYTHON", sys.executable, 1))
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "fake_grafana.py").write_text(FAKE_GRAFANA)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "FAKE_DOCKER_STATE": str(state), "FAKE_GRAFANA": str(tmp_path / "fake_grafana.py"),
           "ANSIBLE_HOST_KEY_CHECKING": "false", "ANSIBLE_NOCOLOR": "1"}
    yield env
    pidfile = state / "grafana.pid"
    if pidfile.exists():  # the stand-in Grafana this test started
        os.kill(int(pidfile.read_text()), signal.SIGTERM)


def _exp(url: str, port: int) -> Any:
    doc = yaml.safe_load((ROOT / "topologies" / "central-control.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["provider"] = {"type": "static", "hosts": {
        a: {"address": f"127.0.0.{i}"}
        for i, a in enumerate(("core-ctl", "edge1-node", "edge2-node"), 1)}}
    doc["metrics"] = {"influxdb": {"url": url}, "grafana": {"host": "core-ctl", "port": port}}
    return parse(doc, "x.yaml")


def _play(name: str, extra: dict[str, Any], tmp_path: Path,
          env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    vars_file = tmp_path / "vars.json"
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(extra, f)
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "core-ctl,", "-c", "local", "-e",
         "ansible_python_interpreter=/usr/bin/python3", "-e", f"@{vars_file}",
         str(service.PLAYBOOKS / name)], capture_output=True, text=True, env=env, timeout=300)


def test_deploy_and_destroy_against_stand_ins(tmp_path: Path, stand_in: dict[str, str],
                                              influx: str) -> None:
    port = _free_port()
    exp = _exp(influx, port)
    workdir = tmp_path / "runs" / "r1" / "core-ctl"
    inv = Inventory(provider="static", hosts=(Host(
        alias="core-ctl", address="127.0.0.1", site="core", roles=("keystone",),
        workdir=str(workdir)),))
    extra = service.playbook_vars(exp, inv, run_id="r1", admin_password="pw-0123456789")
    for attempt in (1, 2):  # a second deploy replaces the container
        t0 = time.monotonic()
        p = _play("deploy.yml", extra, tmp_path, stand_in)
        assert p.returncode == 0, p.stdout[-3000:]
        print(f"deploy {attempt}: {time.monotonic() - t0:.1f} s")
    g = workdir / "grafana"
    ds = g / "provisioning" / "datasources" / "femdc.yaml"
    assert yaml.safe_load(ds.read_text())["datasources"][0]["url"] == influx
    st = ds.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (472, 0o400)
    pw = g / "secrets" / "admin-password"
    assert pw.read_text() == "pw-0123456789" and stat.S_IMODE(pw.stat().st_mode) == 0o400
    assert sorted(x.name for x in (g / "dashboards").iterdir()) == [
        "femdc-api.json", "femdc-db-mq.json", "femdc-galera.json", "femdc-services.json"]
    argv = [json.loads(line) for line in
            (Path(stand_in["FAKE_DOCKER_STATE"]) / "argv.jsonl").read_text().splitlines()]
    runs = [a for a in argv if a[0] == "run"]
    assert len(runs) == 2 and runs[0] == extra["femdc_grafana"]["run_argv"][1:]
    assert [a[0] for a in argv] == ["pull", "rm", "run", "pull", "rm", "run"]
    assert "pw-0123456789" not in p.stdout  # no_log on every task that holds it

    # a datasource that does not answer fails the deploy, saying so
    bad = service.playbook_vars(_exp("http://127.0.0.1:9", port), inv, run_id="r1",
                                admin_password="pw-0123456789")
    p = _play("deploy.yml", bad, tmp_path, stand_in)
    assert p.returncode != 0
    assert "does not reach the run's InfluxDB (HTTP 400" in p.stdout

    p = _play("destroy.yml", {"femdc_run": "r1", "femdc_grafana": {
        "name": extra["femdc_grafana"]["name"], "dir": str(g)}}, tmp_path, stand_in)
    assert p.returncode == 0, p.stdout[-3000:]
    assert not g.exists()
    assert not (Path(stand_in["FAKE_DOCKER_STATE"]) / "grafana.pid").exists()
    p = _play("destroy.yml", {"femdc_run": "r1", "femdc_grafana": {
        "name": extra["femdc_grafana"]["name"], "dir": str(g)}}, tmp_path, stand_in)
    assert p.returncode == 0, p.stdout[-3000:]  # nothing left: still fine
