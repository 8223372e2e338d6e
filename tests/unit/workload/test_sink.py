"""SAMPLES.jsonl writing and reading, SLA verdicts, scenario registry. No network."""

from __future__ import annotations

import json
import os
import threading

import pytest

from femdc_bench.model import RunnerSpec, Sample, SlaSpec
from femdc_bench.workload.registry import Registry, UnknownScenario
from femdc_bench.workload.runner import SampleTemplate, run_load
from femdc_bench.workload.sink import JsonlSink, iter_samples
from femdc_bench.workload.sla import evaluate


def sample(i: int, status: str = "ok", ms: float = 1.0) -> Sample:
    return Sample(
        "s1", "s2", "identity", "op", 1_700_000_000_000_000_000 + i, ms, status, "", "h", i
    )


def test_concurrent_emits_give_one_valid_object_per_line(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "out.jsonl")
    with JsonlSink(path, max_buffered=7) as sink:

        def write(base: int) -> None:
            for i in range(500):
                sink.emit(sample(base + i))

        threads = [threading.Thread(target=write, args=(k * 1000,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with open(path) as f:
        lines = f.read().splitlines()
    assert len(lines) == 4000 and sink.written == 4000
    rows = [json.loads(line) for line in lines]
    assert {r["iteration"] for r in rows} == {k * 1000 + i for k in range(8) for i in range(500)}
    assert Sample.from_dict(rows[0]).site == "s1"
    assert len(list(iter_samples(path, strict=True))) == 4000


def test_lines_reach_the_file_before_close(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "out.jsonl")
    sink = JsonlSink(path, flush_interval_s=0.0)
    sink.emit(sample(1))
    with open(path) as f:
        assert json.loads(f.readline())["iteration"] == 1  # a killed agent leaves this line
    sink.close()
    sink.emit(sample(2))  # after close: dropped, no error
    assert len(list(iter_samples(path))) == 1


def test_runner_output_is_valid_jsonl(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "out.jsonl")
    with JsonlSink(path) as sink:
        run_load(
            lambda ctx: None,
            [None, None, None],
            RunnerSpec(type="times", times=250, concurrency=3),
            template=SampleTemplate("s1", "s1", "identity", "noop"),
            emit=sink.emit,
        )
    got = list(iter_samples(path, strict=True))
    assert sorted(s.iteration for s in got) == list(range(250))


def test_torn_last_line_is_skipped_unless_strict(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "out.jsonl")
    good = json.dumps(vars(sample(1)))
    with open(path, "w") as f:
        f.write(good + "\n" + good[:20])
    assert [s.iteration for s in iter_samples(path)] == [1]
    with pytest.raises(ValueError, match=":2:"):
        list(iter_samples(path, strict=True))
    with open(path, "w") as f:
        f.write("{oops}\n" + good + "\n")
    with pytest.raises(ValueError, match=":1:"):
        list(iter_samples(path))


def test_sla_verdict() -> None:
    samples = [sample(i, ms=float(i)) for i in range(1, 101)] + [sample(0, "error")] * 2
    v = evaluate(SlaSpec(failure_rate_max_pct=5.0, p95_ms_max=100.0), samples)
    assert v.passed and v.count == 102 and v.errors == 2
    assert v.p95_ms == pytest.approx(95.05)  # Rally's percentile (workload/percentile.py)
    v = evaluate(SlaSpec(failure_rate_max_pct=1.0, p95_ms_max=50.0), samples)
    assert not v.passed and len(v.reasons) == 2
    assert not evaluate(SlaSpec(), []).passed  # nothing ran
    assert evaluate(SlaSpec(), samples).passed


def test_registry() -> None:
    reg = Registry()

    @reg.scenario("fam.op", service="svc", args={"flag": False, "n": 1, "role": "member"})
    def op(ctx: object) -> None:
        """Doc line."""

    sc = reg.get("fam.op")
    assert sc.operation == "op" and sc.service == "svc" and sc.doc == "Doc line."
    assert sc.run is op and "fam.op" in reg and reg.names() == ["fam.op"]
    assert sc.resolve_args({"n": 2.5}) == {"flag": False, "n": 2.5, "role": "member"}
    with pytest.raises(ValueError, match="unknown arg 'nope'"):
        sc.resolve_args({"nope": 1})
    with pytest.raises(ValueError, match="expects bool"):
        sc.resolve_args({"flag": 1})
    with pytest.raises(ValueError, match="expects int"):
        sc.resolve_args({"n": True})
    with pytest.raises(UnknownScenario, match="known: fam.op"):
        reg.get("fam.other")
    with pytest.raises(ValueError, match="twice"):
        reg.scenario("fam.op", service="svc")(op)
    with pytest.raises(ValueError, match="family"):
        reg.scenario("nofamily", service="svc")
