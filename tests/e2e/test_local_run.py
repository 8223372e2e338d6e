"""End to end on the local provider, with real parts only: network namespaces, sshd,
Ansible over SSH, MariaDB, memcached, Keystone under uwsgi, InfluxDB 1.6.

Each test drives the `femdc-bench` CLI as a user would and checks what it leaves behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "femdc_bench.cli"]
BIN = Path(sys.executable).parent


def femdc(results: Path, *args: str, timeout: float = 1200, check: bool = False
          ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"femdc-bench {' '.join(args)} exited {proc.returncode}:\n{why(proc)}")
    return proc


_FULL_LOG = re.compile(r"\(full log: (\S+)\)")
_FAILURE = re.compile(r"^(fatal|failed): \[")


def why(proc: subprocess.CompletedProcess[str], tail: int = 3000) -> str:
    """A failed command's output, plus what ansible printed for each failure in the log
    the error names: on CI that log is gone with the machine, the test output stays."""
    text = f"{proc.stdout[-tail:]}\n{proc.stderr[-tail:]}"
    for path in dict.fromkeys(_FULL_LOG.findall(proc.stdout + proc.stderr)):
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        picked = [i for i, ln in enumerate(lines) if _FAILURE.match(ln)][:6]
        for i in picked:
            text += f"\n--- {path}:{i + 1}\n" + "\n".join(lines[max(0, i - 2):i + 14])
    return text


def write_experiment(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def centralized(times: int = 40) -> dict[str, Any]:
    return {
        "name": "e2e-central",
        "provider": {"type": "local"},
        "sites": [
            {"name": "core", "hosts": [{"name": "ctl", "roles": ["database", "keystone", "load"]}]},
            # two load hosts: each takes its share of the site's load
            {"name": "edge1", "hosts": [{"name": "node", "roles": ["load"]},
                                        {"name": "node2", "roles": ["load"]}]},
        ],
        "deployment": {"method": "native", "keystone": {"centralized": "core"},
                       "database": "per_site"},
        "wan": {"default": {"delay": "25ms"}},
        "workload": {
            "scenarios": [
                {"name": "keystone.authenticate_and_validate_token",
                 "runner": {"type": "times", "times": times, "concurrency": 4}},
                {"name": "keystone.list_users",
                 "runner": {"type": "times", "times": 20, "concurrency": 2}},
                {"name": "keystone.create_and_delete_user",
                 "runner": {"type": "times", "times": 10, "concurrency": 2}},
                {"name": "keystone.create_and_list_projects",
                 "runner": {"type": "times", "times": 10, "concurrency": 2}},
            ],
            "sla": {"failure_rate_max": "0%"},
        },
        "metrics": {"influxdb": "local"},
    }


def keystone_two_sites(name: str, runner: dict[str, Any], delay: str) -> dict[str, Any]:
    """A small experiment: Keystone and its database at core, load from core and edge."""
    return {
        "name": name,
        "provider": {"type": "local"},
        "sites": [
            {"name": "core", "hosts": [{"name": "ctl",
                                        "roles": ["database", "keystone", "load"]}]},
            {"name": "edge", "hosts": [{"name": "node", "roles": ["load"]}]},
        ],
        "deployment": {"method": "native", "keystone": {"centralized": "core"},
                       "database": "per_site", "keystone_workers": 1},
        "wan": {"default": {"delay": delay}},
        "workload": {"scenarios": [
            {"name": "keystone.authenticate_and_validate_token", "runner": runner}],
            "sla": {"failure_rate_max": "0%"}},
        "metrics": {"influxdb": "local"},
    }


def processes_with(*needles: str) -> list[str]:
    """'<pid>: <command line>' of each process (but pytest) whose command line holds
    one of `needles`."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(n in cmd for n in needles) and "pytest" not in cmd:
            out.append(f"{pid}: {cmd[:120]}")
    return out


def leftovers(run_dir: Path) -> list[str]:
    """Namespaces, links and processes of this run still on the machine."""
    state = json.loads((run_dir / "provider" / "state.destroyed.json").read_text())
    out = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for h in state["hosts"]:
        if h["netns"] in netns:
            out.append(f"namespace {h['netns']}")
        if f" {h['veth']}@" in links or f" {h['veth']}:" in links:
            out.append(f"veth {h['veth']}")
    if f" {state['bridge']}:" in links:
        out.append(f"bridge {state['bridge']}")
    out += [f"process {p}" for p in processes_with(
        str(run_dir), f"/var/lib/femdc-bench/runs/{run_dir.name}/")]
    if Path(f"/var/lib/femdc-bench/runs/{run_dir.name}").exists():
        out.append("host directories")
    return out


def influx_counts(url: str, run: str) -> dict[tuple[str, str, str], int]:
    r = requests.get(f"{url}/query", params={
        "db": "femdc",
        "q": f"SELECT count(duration_ms) FROM api WHERE run='{run}' "
             "GROUP BY site, target_site, operation"}, timeout=30)
    r.raise_for_status()
    out = {}
    for series in r.json()["results"][0].get("series", []):
        t = series["tags"]
        out[(t["site"], t["target_site"], t["operation"])] = series["values"][0][1]
    return out


def test_validate_rejects_a_broken_file(tmp_path: Path, results: Path) -> None:
    doc = centralized()
    doc["wan"] = {"default": {"delay": 50}}
    f = write_experiment(tmp_path / "bad.yaml", doc)
    proc = femdc(results, "validate", str(f))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{f}: wan.default.delay: expected a duration like '25ms'" in lines[0]
    # Bad input to `run` is refused before anything is created.
    proc = femdc(results, "run", str(f))
    assert proc.returncode == 2
    assert not list(results.iterdir())


def test_centralized_run_kept_used_and_destroyed(tmp_path: Path, results: Path) -> None:
    exp = write_experiment(tmp_path / "central.yaml", centralized())
    run_id = "e2e-central"
    t0 = time.monotonic()
    proc = femdc(results, "run", str(exp), "--keep", "--run-id", run_id, check=True)
    first_run_s = time.monotonic() - t0
    run_dir = results / run_id
    assert "SLA met" in proc.stdout
    assert "read back from InfluxDB" in proc.stdout
    state = json.loads((run_dir / "state.json").read_text())
    assert {k: v["status"] for k, v in state["phases"].items()} == {
        "up": "done", "deploy": "done", "emulate@p0": "done", "check@p0": "done",
        "bench@p0": "done", "report": "done", "backup": "done"}
    # The WAN was applied and measured: 25 ms one way is 50 ms of RTT between the sites.
    check = json.loads((run_dir / "wan" / "p0" / "check.json").read_text())
    assert check["ok"] and len(check["pairs"]) == 2
    for pair in check["pairs"]:
        assert abs(pair["measured_ms"] - 50.0) <= 2.5, pair

    # Every iteration is in InfluxDB, per (site, target, operation), as the report says.
    expected = {
        "authenticate_and_validate_token": 40, "list_users": 20,
        "create_and_delete_user": 10, "create_and_list_projects": 10}
    url = state["metrics_url"]
    counts = influx_counts(url, run_id)
    assert counts == {(site, "core", op): n for site in ("core", "edge1")
                      for op, n in expected.items()}
    report = json.loads((run_dir / "report.json").read_text())
    for row in report["rows"]:
        assert row["count"] == counts[(row["site"], row["target_site"], row["operation"])]
        assert row["errors"] == 0
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["iterations_per_s"] > 0
    # The report verb reads InfluxDB again and agrees.
    again = json.loads(femdc(results, "report", run_id, "--json", check=True).stdout)
    assert again["rows"] == report["rows"]
    # The run wrote its HTML report and said where; it renders offline in Chromium.
    assert f"HTML report: {run_dir / 'report.html'}" in proc.stderr.replace("\n", ""), \
        proc.stderr[-3000:]
    html_report_checked(run_dir / "report.html", tmp_path / "chromium", report)
    # export --format parquet loads in pandas with the report's counts
    parquet_export_checked(results, run_id, tmp_path / "export.parquet", report)

    # The values stored are the measured ones (same durations as the raw samples).
    raw = [json.loads(line) for f in (run_dir / "samples" / "p0").glob("*.jsonl")
           for line in f.read_text().splitlines() if line.strip()]
    r = requests.get(f"{url}/query", params={
        "db": "femdc", "q": f"SELECT sum(duration_ms) FROM api WHERE run='{run_id}'"},
        timeout=30).json()
    assert r["results"][0]["series"][0]["values"][0][1] == pytest.approx(
        sum(s["duration_ms"] for s in raw), rel=1e-9)

    # Manifest and secrets.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["openstack"]["keystone"] == "30.0.0"
    assert manifest["influxdb"]["version"].startswith("1.")
    assert oct((run_dir / "clouds.yaml").stat().st_mode & 0o777) == "0o600"
    password = json.loads((run_dir / "secrets.json").read_text())["admin"]
    for log in (run_dir / "logs").rglob("*.log"):
        assert password not in log.read_text(errors="replace"), log
    assert password not in proc.stdout + proc.stderr

    # The kept deployment answers the OpenStack client, from every site's cloud.
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(run_dir / "clouds.yaml")}
    for cloud in ("core", "edge1"):
        tok = subprocess.run([str(BIN / "openstack"), "--os-cloud", cloud, "token", "issue",
                              "-f", "json"], capture_output=True, text=True, env=env,
                             timeout=120)
        assert tok.returncode == 0, tok.stderr
        assert json.loads(tok.stdout)["id"]

    # up and deploy again are harmless; the second deploy reuses the venv.
    venvs = list(Path("/var/cache/femdc-bench/venvs").glob("openstack-*/.femdc-lock.sha256"))
    before = {p: p.stat().st_mtime for p in venvs}
    femdc(results, "up", run_id, check=True)
    t0 = time.monotonic()
    femdc(results, "deploy", run_id, check=True)
    second_deploy_s = time.monotonic() - t0
    assert {p: p.stat().st_mtime for p in venvs} == before
    print(f"\nfirst run (up+deploy+bench+report): {first_run_s:.0f}s; "
          f"second deploy: {second_deploy_s:.0f}s")
    femdc(results, "report", run_id, check=True)

    rally_tasks_on_a_kept_run(results, run_id, run_dir)
    report = json.loads((run_dir / "report.json").read_text())

    # destroy leaves nothing of the run but its results directory.
    proc = femdc(results, "destroy", run_id, check=True)
    assert "removed" in proc.stderr
    assert leftovers(run_dir) == []
    assert (run_dir / "influxdb").is_dir()
    # The report still works afterwards: InfluxDB is restarted on the kept data, then
    # stopped. (It exits 1: the last task's SLA was failed on purpose.)
    proc = femdc(results, "report", run_id, "--json")
    assert proc.returncode == 1, proc.stderr
    again = json.loads(proc.stdout)
    assert again["rows"] == report["rows"]
    assert leftovers(run_dir) == []
    backup_and_restore(tmp_path, results, run_id, run_dir, again["rows"])


def html_report_checked(page: Path, out_dir: Path, report: dict[str, Any]) -> None:
    """The page of a real run: under 5 MB, every section, the report's exact counts, and
    in a headless Chromium with no network: no console message, no request, every chart
    drawn; the screenshot is kept in `out_dir`."""
    from tests.chromium import check_page

    html = page.read_text()
    size = page.stat().st_size
    assert size < 5_000_000, size
    for text in ("SLA met", "Sites, hosts, roles and regions", "Heat map", "Timeline per point",
                 "CPU % per service", "database queries/s", "load profile", "90%ile",
                 "measured / target RTT"):
        assert text in html, text
    for row in report["rows"]:
        assert f"<td class=n>{row['count']}</td></tr>" in html, row
    chk = check_page(page, out_dir)
    assert chk.ready and chk.ready["empty"] == 0 and chk.ready["charts"] >= 20, chk.ready
    assert chk.console == [] and chk.requests == [] and chk.external_refs == []
    print(f"\nreport.html: {size / 1e6:.2f} MB, {chk.ready['charts']} charts; "
          f"screenshot {chk.screenshot}")


def parquet_export_checked(results: Path, run_id: str, out: Path,
                           report: dict[str, Any]) -> None:
    import pandas as pd

    femdc(results, "export", run_id, "--format", "parquet", "--out", str(out), check=True)
    it = pd.read_parquet(out / "iterations.parquet")
    got = it.groupby(["site", "target_site", "operation"]).agg(
        n=("status", "size"), err=("status", lambda s: int((s != "ok").sum())))
    assert {k: (int(v.n), int(v.err)) for k, v in got.iterrows()} == {
        (r["site"], r["target_site"], r["operation"]): (r["count"], r["errors"])
        for r in report["rows"]}
    servers = pd.read_parquet(out / "servers.parquet")
    assert {"proc", "host"} <= set(servers.measurement)


def backup_and_restore(tmp_path: Path, results: Path, run_id: str, run_dir: Path,
                       rows: list[dict[str, Any]]) -> None:
    """`backup` of the destroyed run, then `restore` into a fresh results directory and
    a fresh InfluxDB: the same points per measurement, and `report` prints the same
    rows. No generated secret is in the archive."""
    import io
    import tarfile

    archive = tmp_path / "b" / f"{run_id}.backup.tar.gz"
    femdc(results, "backup", run_id, "--out", str(archive), check=True)
    assert leftovers(run_dir) == []  # the InfluxDB it started is stopped again
    secrets = [v for v in json.loads((run_dir / "secrets.json").read_text()).values()
               if isinstance(v, str) and len(v) >= 8]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        blobs = [(n, tar.extractfile(n).read()) for n in names  # type: ignore[union-attr]
                 if tar.getmember(n).isfile()]
    assert f"{run_id}/SHA256SUMS" in names and f"{run_id}/clouds.yaml" not in names
    assert any(n.startswith(f"{run_id}/logs/hosts/") and "config-keystone" in n for n in names)
    leaks = [n for n, data in blobs for s in secrets if s.encode() in data]
    assert leaks == [], leaks
    meta = json.loads(dict(blobs)[f"{run_id}/backup.json"])
    assert meta["points"]["api"] > 0 and meta["points"]["event"] > 0

    fresh = tmp_path / "restored"
    proc = femdc(fresh, "restore", str(archive), check=True)
    print(f"\nbackup/restore: {meta['points']}")
    restored = json.loads(femdc(fresh, "report", run_id, "--json").stdout)
    assert restored["rows"] == rows
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(fresh) not in ps  # its InfluxDB was stopped again
    # a damaged archive is refused with one line
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(bad, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            if m.name.endswith("report.json"):
                data = data.replace(b"p0", b"p9")
            dst.addfile(m, io.BytesIO(data))
    proc = femdc(tmp_path / "restored2", "restore", str(bad))
    assert proc.returncode == 2 and "does not match its checksum" in proc.stderr, proc.stderr


TASKS = Path(__file__).with_name("tasks")


def openstack_names(run_dir: Path, cloud: str, kind: str) -> list[str]:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(run_dir / "clouds.yaml")}
    proc = subprocess.run([str(BIN / "openstack"), "--os-cloud", cloud, kind, "list",
                           "-f", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [r["Name"] for r in json.loads(proc.stdout)]


def rally_tasks_on_a_kept_run(results: Path, run_id: str, run_dir: Path) -> None:
    """Rally task files on the kept deployment: from every site (each load host its
    share), contexts made and cleaned, rps, Rally's SLAs, exit codes, and an export that
    a real Rally imports."""
    # v2 YAML with Jinja2 args, from every site
    proc = femdc(results, "bench", run_id, "--task", str(TASKS / "keystone.yaml"),
                 "--task-args", '{"times": 8}', check=True)
    assert "SLA met" in proc.stdout
    # `run` checked p0's WAN minutes ago and nothing touched the rules since: reused
    assert "WAN check of p0 reused" in proc.stdout, proc.stdout[-2000:]
    events = [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines()]
    assert any(e["phase"] == "check" and "reused" in e["text"] for e in events)
    # every load host's session went straight to its bench daemon, warm since the deploy,
    # through the run's SSH master connection (no process started on the host for it)
    timings = json.loads((run_dir / "samples" / "p0" / "start.json").read_text())["timings"]
    load_hosts = {a for a, h in timings["hosts"].items() if h["daemon"]}
    assert load_hosts == {"core-ctl", "edge1-node", "edge1-node2"}, timings
    assert all(timings["hosts"][a]["via"] == "direct" for a in load_hosts), timings
    rep = json.loads((run_dir / "report.json").read_text())
    wls = {(r["site"], r["workload"]): r for r in rep["rows"] if not r.get("action")}
    names = ("create_and_list_users", "add_and_remove_user_role",
             "authenticate_user_and_validate_token")
    for site in ("core", "edge1"):
        got = {r["operation"].split(".")[-1]: (r["count"], r["errors"])
               for (s, _), r in wls.items() if s == site}
        assert got == dict(zip(names, ((8, 0), (6, 0), (30, 0)), strict=True)), got
    crit = {(r["site"], r["criterion"]) for r in rep["sla_results"] if r["success"]}
    assert {("edge1", c) for c in ("max_avg_duration", "max_avg_duration_per_atomic",
                                   "outliers", "max_seconds_per_iteration")} <= crit
    raw = [json.loads(line) for f in (run_dir / "samples" / "p0").glob("*.jsonl")
           for line in f.read_text().splitlines() if line.strip()]
    its = [r for r in raw if not r.get("action")]
    # edge1's two load hosts shared every workload of the site
    for op in names:
        hosts = {r["host"] for r in its if r["site"] == "edge1" and op in r["operation"]}
        assert hosts == {"edge1-node", "edge1-node2"}, (op, hosts)
    # the rps workload held its rate: 10/s per site, 5/s on each of edge1's hosts (each
    # host runs its own schedule, from the end of its previous workload)
    for host, asked in (("core-ctl", 10.0), ("edge1-node", 5.0), ("edge1-node2", 5.0)):
        t = sorted(r["t0_ns"] for r in its
                   if r["host"] == host and "validate_token" in r["operation"])
        rate = (len(t) - 1) / ((t[-1] - t[0]) / 1e9)
        assert 0.9 * asked <= rate <= 1.1 * asked, (host, rate)
    # what the contexts and the scenarios made is gone
    for kind in ("user", "project", "role"):
        left = [n for n in openstack_names(run_dir, "core", kind) if n.startswith("femdc-")]
        assert left == [], (kind, left)

    # export, then a real Rally imports it and renders its report
    export = run_dir / "export.rally.json"
    proc = femdc(results, "export", run_id, "--format", "rally-json", "--out", str(export),
                 check=True)
    doc = json.loads(export.read_text())
    workloads = [w for t in doc["tasks"] for st in t["subtasks"] for w in st["workloads"]]
    assert len(workloads) == 6 and all(w["pass_sla"] for w in workloads)
    rally_import(export, run_dir / "rally")

    # v1 JSON from one site, an SLA it cannot meet: exit 1 naming it
    proc = femdc(results, "bench", run_id, "--task", str(TASKS / "keystone-v1.json"),
                 "--from", "edge1", "--recheck")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # measured, not reused: a check phase ran and no second "reused" event was added
    events = [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines()]
    assert sum(e["phase"] == "check" and "reused" in e["text"] for e in events) == 1
    assert any(e["phase"] == "check" and e["text"] == "done" for e in events[-12:])
    out = proc.stdout + proc.stderr
    assert "SLA not met" in out and "max_seconds_per_iteration" in out, out
    rows = json.loads((run_dir / "report.json").read_text())["rows"]  # from InfluxDB
    assert [(r["site"], r["operation"], r["count"]) for r in rows if not r.get("action")] \
        == [("edge1", "KeystoneBasic.create_user", 4)], rows
    assert len(list(run_dir.glob("experiment.*.yaml"))) == 2  # each bench --task kept one

    # anything unsupported: exit 2, one line naming it, the run untouched
    before = (run_dir / "experiment.yaml").read_bytes()
    proc = femdc(results, "bench", run_id, "--task", str(TASKS / "unsupported.yaml"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = (proc.stdout + proc.stderr).strip()
    assert "unsupported.yaml: subtasks[0].contexts.murano_packages: unsupported context" in err
    assert len(err.splitlines()) == 1, err
    assert (run_dir / "experiment.yaml").read_bytes() == before


def rally_import(export: Path, work: Path) -> None:
    """`rally task import` and `rally task report` of a real Rally (5.1.x, own venv)."""
    from tests.benchmarks.driver_vs_rally import DEFAULT_RALLY_VENV, ensure_rally

    rally = ensure_rally(Path(DEFAULT_RALLY_VENV))
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "rally.conf"
    conf.write_text(f"[database]\nconnection = sqlite:///{work / 'rally.sqlite'}\n")
    env = {**os.environ, "HOME": str(work)}

    def cli(*args: str) -> str:
        p = subprocess.run([str(rally), "--config-file", str(conf), *args],
                           capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, f"rally {' '.join(args)}: {p.stdout[-2000:]}{p.stderr[-2000:]}"
        return p.stdout

    cli("db", "create")
    cli("env", "create", "--name", "femdc")  # no platform: import needs no cloud
    out = cli("task", "import", "--file", str(export), "--env", "femdc")
    uuids = re.findall(r"Task UUID: ([0-9a-f-]{36})", out)
    assert len(uuids) == 1, out  # one task: one sweep point
    html = work / "report.html"
    cli("task", "report", "--uuid", uuids[0], "--out", str(html))
    text = html.read_text()
    assert "create_and_list_users" in text and "from edge1 to core" in text
    # Rally reads our SLA verdicts back (exit 0: every criterion passed)
    out = cli("task", "sla-check", "--uuid", uuids[0])
    assert "max_avg_duration_per_atomic" in out and "FAIL" not in out, out


def per_site(duration: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "e2e-persite",
        "provider": {"type": "local"},
        "sites": [{"name": "site[1-2]",
                   "hosts": [{"name": "ctl", "roles": ["database", "keystone", "load"]}]}],
        "deployment": {"method": "native", "keystone": "per_site", "database": "per_site"},
        "workload": {
            "scenarios": [{"name": "keystone.authenticate_and_validate_token",
                           "runner": {"type": "duration", "duration": duration,
                                      "concurrency": 2},
                           "from": "all", "to": "all"}],
            "sla": {"failure_rate_max": "0%"},
        },
    }
    return doc


def test_ctrl_c_stops_the_load_and_tears_down(tmp_path: Path, results: Path) -> None:
    exp = write_experiment(tmp_path / "long.yaml", per_site("600s"))
    run_id = "e2e-interrupt"
    env = {**os.environ, "FEMDC_RESULTS": str(results)}
    proc = subprocess.Popen([*CLI, "run", str(exp), "--run-id", run_id], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state_file = results / run_id / "state.json"
    # The controller writes the common start time once every agent is set up: wait for
    # it, then let the agents load Keystone for a while (not a fixed delay from the bench
    # phase's start: on a slow machine the agents' setup alone may take longer).
    start_file = results / run_id / "samples" / "p0" / "start.json"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if state_file.exists() and start_file.exists():
            bench = json.loads(state_file.read_text())["phases"].get("bench@p0", {})
            if bench.get("status") == "running":
                break
        if proc.poll() is not None:
            pytest.fail(f"run ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(1)
    else:
        proc.kill()
        pytest.fail("the load never started")
    start_ns = json.loads(start_file.read_text())["start_ns"]
    time.sleep(max(0.0, (start_ns - time.time_ns()) / 1e9) + 15)
    t_sig = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    stop_s = time.monotonic() - t_sig
    assert proc.returncode == 130, err[-2000:]
    run_dir = results / run_id
    state = json.loads(state_file.read_text())
    assert state["status"] == "destroyed"
    assert state["phases"]["bench@p0"]["status"] == "interrupted"
    assert leftovers(run_dir) == []
    # What was measured before Ctrl-C is in InfluxDB.
    report = json.loads(femdc(results, "report", run_id, "--json").stdout)
    assert sum(r["count"] for r in report["rows"]) > 0
    assert stop_s < 240
