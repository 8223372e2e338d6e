"""The run's state: where its time went (RunState.phase_times)."""

from __future__ import annotations

from femdc_bench.rundir import PhaseState, RunState


def test_phase_times_in_the_order_they_ran() -> None:
    st = RunState(run_id="r", experiment="e", experiment_file="e.yaml", created=0.0)
    assert st.phase_times() == ""
    st.phases = {
        "bench@p1": PhaseState("done", started=300.0, seconds=61.04),
        "up": PhaseState("done", started=10.0, seconds=12.3),
        "check@p1": PhaseState("failed", started=290.0, seconds=8.0),
        "deploy": PhaseState("done", started=23.0, seconds=180.0),
        "report": PhaseState("running", started=400.0),  # not ended: not counted
    }
    assert st.phase_times() == ("up 12.3 s, deploy 180.0 s, check@p1 8.0 s (failed), "
                                "bench@p1 61.0 s; 261.3 s in all")
