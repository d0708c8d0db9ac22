"""A campaign's progress is honest about refinement (issue 22, trial item 3): the search's ETA says refinement
follows, and refinement, which took ~56 s after "ETA 0 s" in silence, has its own start line and progress."""

from __future__ import annotations

from flows import campaign_progress
from flows.campaign_progress import ProgressReporter


def _step(i: int, n: int = 3) -> dict:
    return {"outer_step": i, "outer_steps": n, "best_fitness": 0.1, "inner_evaluations": 10 * (i + 1),
            "scored_now": 10 * (i + 1)}  # fmt: skip


def test_the_search_eta_names_the_refinement_that_follows_and_refinement_reports_its_progress(monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(campaign_progress.time, "monotonic", lambda: clock["t"])
    lines: list[str] = []
    reporter = ProgressReporter(None, "campaign c", tty=False, log=lines.append, refine_n=32)
    for i in range(3):
        clock["t"] += 10.0
        reporter(_step(i))
    estimate = next(line for line in lines if "estimated" in line)
    assert estimate.endswith(
        "estimated time left for the search 10 s, then refinement of up to 32 structures"
    )
    assert lines[-1] == (
        "campaign c: family 3/3, best FV 0.1000, 30 structures scored, ETA 0 s, then refinement of up to 32 "
        "structures, elapsed 30 s"
    )
    reporter({"phase": "refine", "done": 0, "total": 4, "potential": "chgnet-0.3.0"})
    assert lines[-1] == (
        "campaign c: search done; refining 4 structures with chgnet-0.3.0 (timed once the first is finished)"
    )
    for done in range(1, 5):
        clock["t"] += 12.0
        reporter({"phase": "refine", "done": done, "total": 4, "potential": "chgnet-0.3.0"})
    assert lines[-4:] == [
        "campaign c: refining 1/4, ETA 36 s, elapsed 42 s",
        "campaign c: refining 2/4, ETA 24 s, elapsed 54 s",
        "campaign c: refining 3/4, ETA 12 s, elapsed 66 s",
        "campaign c: refining 4/4, ETA 0 s, elapsed 78 s",
    ]


def test_without_refinement_the_eta_is_the_search_alone():
    lines: list[str] = []
    reporter = ProgressReporter(None, "campaign c", tty=False, log=lines.append)
    for i in range(3):
        reporter(_step(i))
    assert all("refinement" not in line for line in lines)
