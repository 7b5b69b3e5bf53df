"""The soak, CI-sized: fewer generations, the same faults (a busy worker SIGKILLed, an API
process restarted, a ComfyUI server down, Redis restarted); nothing lost or done twice."""
from __future__ import annotations


def test_a_small_soak_loses_nothing_and_does_nothing_twice():
    from benchmarks.soak import run

    import json

    # its progress lines and every figure are printed, so a failure shows what stalled
    figures = run(jobs=24, users=6, render_s=0.3, comfy_down_s=3.0, timeout_s=240, say=print)
    print(json.dumps(figures, indent=1, default=str))
    assert len(figures["faults"]) == 4, figures
    assert figures["submitted"] == 24, figures
    assert figures["lost"] == 0 and figures["failed"] == 0, figures
    assert figures["completedTwice"] == 0 and figures["filesStoredTwice"] == 0, figures
    assert figures["unexpectedFiveXX"] == [], figures
    assert max(figures["stopSeconds"].values()) < 3, figures["stopSeconds"]
