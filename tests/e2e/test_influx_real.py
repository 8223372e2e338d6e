"""A real InfluxDB (Debian's influxd 1.6) under a tmp dir: write, read back, restart, spool.

Run: python -m pytest tests/e2e/test_influx_real.py -q  (add -s to see throughput figures)
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from femdc_bench.metrics.client import InfluxTarget, V1Client, connect
from femdc_bench.metrics.reader import InfluxReader
from femdc_bench.metrics.server import INFLUXD, LocalInfluxd
from femdc_bench.metrics.writer import InfluxWriter
from femdc_bench.model import Sample
from tests.one_host import one_host_experiment

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RUN = "run-o'brien\\1"  # quote and backslash: the reader's InfluxQL quoting must hold


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalInfluxd]:
    if not os.access(INFLUXD, os.X_OK):
        pytest.skip(f"{INFLUXD} is not installed")
    d = LocalInfluxd(tmp_path / "influx")

    def cleanup() -> None:
        # Whichever LocalInfluxd object (re)started it, the state file names the PID.
        LocalInfluxd(d.directory).stop()
        d.stop()

    request.addfinalizer(cleanup)
    d.start()
    yield d


def make_samples(n: int, seed: int = 7) -> list[Sample]:
    """n samples over 3 sites x 2 hosts; ~5 % errors; some same-ns starts on one host."""
    rng = random.Random(seed)
    base = 1_763_900_000_000_000_000
    out: list[Sample] = []
    for i in range(n):
        site = f"s{i % 3 + 1}"
        host = f"{site}-h{i % 2}"
        failed = rng.random() < 0.05
        out.append(
            Sample(
                site=site,
                target_site=f"s{(i // 3) % 3 + 1}",
                service="identity",
                operation="authenticate_and_validate_token",
                t0_ns=base + i * 1_000_003,
                duration_ms=rng.lognormvariate(3, 0.4),
                status="error" if failed else "ok",
                error='HTTP 503: "Service Unavailable"\nretry \\ later' if failed else "",
                host=host,
                iteration=i,
            )
        )
    # 20 concurrent iterations that started in the very same ns as an earlier one of the
    # same series (same host and tags): without the tiebreak they would overwrite it
    # (taken from the end, so that they share the sweep point of their twin)
    for j in range(min(20, n // 6)):
        twin = out[n - 1 - 6 * j]
        out.append(replace(twin, iteration=n + j, duration_ms=twin.duration_ms + 1.0))
    return out


def expected_after_tiebreak(samples: list[Sample]) -> list[Sample]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for s in samples:
        key = (s.site, s.host, s.target_site, s.service, s.operation, s.status)
        t = s.t0_ns
        while (key, t) in seen:
            t += 1
        seen.add((key, t))
        out.append(replace(s, t0_ns=t))
    return out


def _key(s: Sample) -> int:
    return s.iteration


def test_write_read_restart(server: LocalInfluxd, tmp_path: Path) -> None:
    url = server.url
    assert url is not None and url.startswith("http://127.0.0.1:")
    state = server.read_state()
    assert state is not None and 8088 not in (state.http_port, state.rpc_port)

    client = connect(InfluxTarget(url=url, database="femdc"))
    assert isinstance(client, V1Client) and client.version.startswith("1.")
    samples = make_samples(1000)
    by_point = {"c1": samples[:500], "c2": samples[500:]}
    n_total = len(samples)

    t = time.perf_counter()
    with InfluxWriter(client, spool_path=tmp_path / "spool.jsonl", batch_size=256) as w:
        for point, ss in by_point.items():
            w.write_samples(ss, run=RUN, experiment="exp", point=point)
    write_s = time.perf_counter() - t
    assert w.stats.sent == n_total and w.spooled_count() == 0 and w.stats.rejected == 0
    assert w.stats.ts_bumped == 20

    reader = InfluxReader(client)
    t = time.perf_counter()
    got = reader.api_samples_by_point(RUN)
    read_s = time.perf_counter() - t
    print(
        f"\n{n_total} points: write {n_total / write_s:,.0f} points/s, "
        f"read {n_total / read_s:,.0f} points/s"
    )
    assert reader.count(RUN) == n_total
    assert reader.count("other-run") == 0
    assert sorted(got) == ["c1", "c2"]
    expected = {p: expected_after_tiebreak(ss) for p, ss in by_point.items()}
    for p in ("c1", "c2"):
        assert sorted(got[p], key=_key) == sorted(expected[p], key=_key)
    assert sorted(reader.api_samples(RUN, point="c2"), key=_key) == sorted(expected["c2"], key=_key)
    client.close()

    # stop: the data stays on disk; a later `report` restarts the server on it
    assert server.stop() is True
    assert not server.is_running()
    assert server.url is None
    later = LocalInfluxd(server.directory)
    url2 = later.start()
    assert later.is_running()
    with connect(InfluxTarget(url=url2, database="femdc")) as client2:
        reader2 = InfluxReader(client2)
        assert reader2.count(RUN) == n_total
        got2 = reader2.api_samples_by_point(RUN)
        for p in ("c1", "c2"):
            assert sorted(got2[p], key=_key) == sorted(expected[p], key=_key)
        # A re-run sweep point replaces its points: delete exactly that point's.
        client2.delete("api", {"run": RUN, "point": "c1"})
        assert sorted(reader2.api_samples_by_point(RUN)) == ["c2"]
        assert reader2.count(RUN) == len(by_point["c2"])
    # start() on a running server returns its URL and starts nothing
    assert LocalInfluxd(server.directory).start() == url2
    assert later.stop() is True


def test_spool_while_stopped_then_replay(server: LocalInfluxd, tmp_path: Path) -> None:
    url = server.url
    assert url is not None
    client = connect(InfluxTarget(url=url, database="femdc"))
    spool = tmp_path / "spool.jsonl"
    w = InfluxWriter(client, spool_path=spool, batch_size=100, retry_interval_s=60)
    first = make_samples(50, seed=1)
    w.write_samples(first, run="r-spool", experiment="exp", point="p")
    w.flush()
    assert InfluxReader(client).count("r-spool") == len(first)

    server.stop()
    later = make_samples(300, seed=2)
    later = [replace(s, t0_ns=s.t0_ns + 10**12, iteration=s.iteration + 10_000) for s in later]
    w.write_samples(later, run="r-spool", experiment="exp", point="p")
    w.close()  # nothing raised: the points are in the spool
    assert w.spooled_count() == len(later)
    assert w.stats.spooled == len(later)

    url2 = LocalInfluxd(server.directory).start()
    # a new writer (e.g. a later `femdc-bench report`) replays the same spool file
    with connect(InfluxTarget(url=url2, database="femdc")) as client2:
        w2 = InfluxWriter(client2, spool_path=spool)
        assert w2.replay_spool() == len(later)
        assert w2.spooled_count() == 0
        reader = InfluxReader(client2)
        assert reader.count("r-spool") == len(first) + len(later)
        got = sorted(reader.api_samples("r-spool"), key=_key)
        assert got == sorted(
            expected_after_tiebreak(first) + expected_after_tiebreak(later), key=_key
        )
    client.close()


def test_stop_from_another_process(server: LocalInfluxd) -> None:
    pid = server.pid
    assert pid is not None
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert str(server.config_path).encode() in f.read()
    code = (
        "import sys; from femdc_bench.metrics.server import LocalInfluxd; "
        "print(LocalInfluxd(sys.argv[1]).stop())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(server.directory)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "True"
    assert not server.is_running()
    state = server.read_state()
    assert state is not None and state.pid is None


def test_store_after_an_outage_loses_nothing(server: LocalInfluxd, tmp_path: Path) -> None:
    """InfluxDB away during a run: what was written meanwhile waits in the run's spool,
    `status` says how much, `store` fails in one line while it is away and, once it is
    back, writes the spool and every point's files again: the counts are exact."""
    import json as _json

    import yaml

    from femdc_bench.metrics import store as metrics_store
    from femdc_bench.metrics.names import EVENT
    from femdc_bench.rundir import Run
    from femdc_bench.workload.sink import JsonlSink

    doc = one_host_experiment({"influxdb": {"url": server.url}})
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(doc))
    results = tmp_path / "results"
    r = Run.create(f, results, run_id="r-store")
    samples = make_samples(300)
    with JsonlSink(str(r.samples_dir("p0") / "s1-h.jsonl")) as sink:
        for s in samples:
            sink.emit(s)
    base = 1_763_900_000_000_000_000
    with open(r.metrics_dir("p0") / "s1-h.jsonl", "w") as out:
        for i in range(50):
            out.write(_json.dumps({"m": "proc", "tags": {"host": "s1-h", "site": "s1",
                                                         "service": "keystone"},
                                   "fields": {"cpu_pct": 1.0 + i}, "t": base + i * 10**9}) + "\n")

    def counts(url: str) -> tuple[int, int]:
        with connect(InfluxTarget(url=url, database="femdc")) as c:
            return (InfluxReader(c).count("r-store"),
                    len(list(c.rows("proc", {"run": "r-store"}))))

    got = metrics_store.store(r)
    assert (got["api@p0"], got["metrics@p0"]) == (len(samples), 50)
    assert counts(server.url or "") == (len(samples), 50)

    # InfluxDB goes away while a writer holds a client: its points go to the run's spool
    url = server.url or ""
    client = connect(InfluxTarget(url=url, database="femdc"))
    assert server.stop() is True
    with InfluxWriter(client, spool_path=metrics_store.spool_file(r)) as w:
        for i in range(5):
            w.write(EVENT, {"run": "r-store", "kind": "fault", "phase": "bench"},
                    {"text": f"during the outage {i}"}, base + i)
    client.close()
    assert metrics_store.spool_waiting(r) == 5
    env = {**os.environ, "FEMDC_RESULTS": str(results), "COLUMNS": "200"}
    cli = [sys.executable, "-m", "femdc_bench.cli"]
    st = subprocess.run([*cli, "status", "r-store"], capture_output=True, text=True, env=env)
    assert "5 points wait" in st.stdout and "femdc-bench store r-store" in st.stdout, st.stdout
    down = subprocess.run([*cli, "store", "r-store"], capture_output=True, text=True, env=env)
    err = (down.stdout + down.stderr).strip().splitlines()
    assert down.returncode == 1 and err and err[-1].startswith("error: InfluxDB:"), err
    assert metrics_store.spool_waiting(r) == 5  # nothing lost by the failed attempt

    # back (on the same data): `store` sends the spool, then rewrites the files' points
    url2 = LocalInfluxd(server.directory).start()
    if url2 != url:  # another port: the experiment names the new URL
        doc["metrics"]["influxdb"]["url"] = url2
        (r.dir / "experiment.yaml").write_text(yaml.safe_dump(doc))
    up = subprocess.run([*cli, "store", "r-store"], capture_output=True, text=True, env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "spooled: 5 points" in up.stdout and f"api@p0: {len(samples)} points" in up.stdout
    assert metrics_store.spool_waiting(r) == 0
    assert counts(url2) == (len(samples), 50)  # no duplicate, none missing
    with connect(InfluxTarget(url=url2, database="femdc")) as c:
        texts = {row.get("text") for row in c.rows(EVENT, {"run": "r-store"})}
    assert {f"during the outage {i}" for i in range(5)} <= texts


def test_a_point_benched_again_after_an_outage_is_not_doubled(
        server: LocalInfluxd, tmp_path: Path) -> None:
    """A bench stored its samples while InfluxDB was away (they wait in the spool); the
    point is then benched again with InfluxDB back: the point holds the new samples
    only. (Deleting the point's points and then writing, as the bench did, sent the old
    ones from the spool first, on top of the new.)"""
    import yaml

    from femdc_bench.metrics import store as metrics_store
    from femdc_bench.rundir import Run
    from femdc_bench.workload.sink import JsonlSink

    doc = one_host_experiment({"influxdb": {"url": server.url}})
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(doc))
    r = Run.create(f, tmp_path / "results", run_id="r-again")
    exp = r.experiment()

    def bench(samples: list[Sample], target: InfluxTarget) -> int:
        for old in r.samples_dir("p0").glob("*"):
            old.unlink()
        with JsonlSink(str(r.samples_dir("p0") / "s1-h.jsonl")) as sink:
            for s in samples:
                sink.emit(s)
        return metrics_store.store_samples(r, exp, target, "p0")

    url = server.url or ""
    assert server.stop() is True  # away during the first bench: 200 samples spooled
    assert bench(make_samples(200, seed=3), InfluxTarget(url=url)) == 220
    assert metrics_store.spool_waiting(r) == 220
    url2 = LocalInfluxd(server.directory).start()
    target = InfluxTarget(url=url2)
    with connect(target) as c:  # the second bench, as bench() begins
        assert metrics_store.replace_point(r, c, "p0") == 220
    second = [replace(s, t0_ns=s.t0_ns + 10**12) for s in make_samples(90, seed=4)]
    assert bench(second, target) == 105
    assert metrics_store.spool_waiting(r) == 0
    with connect(target) as c:
        got = InfluxReader(c).api_samples("r-again")
    assert sorted(got, key=_key) == sorted(expected_after_tiebreak(second), key=_key)


def test_a_remote_influxdb_refusing_the_run_is_one_line_before_anything(
        tmp_path: Path, server: LocalInfluxd) -> None:
    """Issue 10, item 2: a remote InfluxDB (a real influxd 1.x, auth enabled) that
    refuses the credentials, or whose database the user may not use or create, stops
    `run` before anything exists: exit 2, one line naming metrics.influxdb, no secret
    in it. The right credentials and database pass the same check."""
    import requests
    import yaml

    url0 = server.url
    assert url0
    server.stop()
    conf = tmp_path / "auth.conf"
    text = server.config_path.read_text()
    assert "auth-enabled = false" in text
    conf.write_text(text.replace("auth-enabled = false", "auth-enabled = true"))
    proc = subprocess.Popen([INFLUXD, "-config", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url0}/ping", timeout=1).status_code == 204:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "influxd with auth did not answer"
            time.sleep(0.2)
        admin = ("femdc-admin", "admin-pw-" + os.urandom(6).hex())
        bench_pw = "bench-pw-" + os.urandom(6).hex()

        def q(stmt: str, auth: tuple[str, str] | None = admin) -> None:
            r = requests.post(f"{url0}/query", params={"q": stmt}, auth=auth, timeout=10)
            assert r.status_code == 200 and "error" not in r.text, (stmt, r.text)

        # the first user of an auth-enabled 1.x server may be created without auth
        q(f"CREATE USER \"{admin[0]}\" WITH PASSWORD '{admin[1]}' WITH ALL PRIVILEGES",
          auth=None)
        q(f"CREATE USER bench WITH PASSWORD '{bench_pw}'")
        q("CREATE DATABASE femdc_ok")
        q("GRANT ALL ON femdc_ok TO bench")
        doc = one_host_experiment()
        cases = {  # (database, password) -> refused?
            "wrong password": ("femdc_ok", "not-" + bench_pw, True),
            "database it may not create": ("femdc_other", bench_pw, True),
            "right credentials and database": ("femdc_ok", bench_pw, False),
        }
        results = tmp_path / "results"
        for name, (db, pw, refused) in cases.items():
            exp = tmp_path / f"{name.replace(' ', '-')}.yaml"
            exp.write_text(yaml.safe_dump({**doc, "metrics": {"influxdb": {
                "url": url0, "database": db, "username_env": "T_INFLUX_USER",
                "password_env": "T_INFLUX_PASSWORD"}}}))
            env = {**os.environ, "FEMDC_RESULTS": str(results), "T_INFLUX_USER": "bench",
                   "T_INFLUX_PASSWORD": pw}
            if refused:
                t0 = time.monotonic()
                p = subprocess.run([sys.executable, "-m", "femdc_bench.cli", "run", str(exp),
                                    "--run-id", "r1"], env=env,
                                   capture_output=True, text=True, timeout=120)
                lines = (p.stdout + p.stderr).strip().splitlines()
                print(f"\n{name}: exit {p.returncode} in {time.monotonic() - t0:.1f} s: "
                      f"{lines[-1] if lines else ''}")
                assert p.returncode == 2, (name, p.stdout, p.stderr)
                assert len(lines) == 1 and f"{exp}: metrics.influxdb: expected an " \
                    "InfluxDB that answers and accepts this run" in lines[0], (name, lines)
                assert pw not in lines[0] and admin[1] not in lines[0]
                assert not (results / "r1").exists(), name
            else:
                check = ("import sys; from femdc_bench.experiment import load; "
                         "from femdc_bench.metrics.target import check_metrics_target; "
                         "check_metrics_target(load(sys.argv[1])); print('accepted')")
                p = subprocess.run([sys.executable, "-c", check, str(exp)], env=env,
                                   capture_output=True, text=True, timeout=60)
                assert p.returncode == 0 and "accepted" in p.stdout, (p.stdout, p.stderr)
    finally:
        proc.kill()
        proc.wait()
