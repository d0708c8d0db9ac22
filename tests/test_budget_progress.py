"""Budgets with a sense of time (issue 13, fault 6): planned steps, the bound, the ETA, log lines off a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from csp.budget import MAX_CANDIDATES, Budget, check_budget, duration, eta_seconds, planned_budget
from csp.errors import InputError
from flows import campaign_progress
from flows.campaign_progress import ProgressReporter


def test_planned_budget_counts_what_will_run():
    assert planned_budget(200, 300, n_families=83) == Budget(steps=83, inner_steps=300)
    assert planned_budget(20, 300, n_families=83).candidates == 6000
    assert planned_budget(10, 5).candidates == 50


def test_absurd_budgets_are_refused_unless_forced():
    huge = planned_budget(10_000, 100_000)
    with pytest.raises(InputError, match=r"1,000,000,000 structures, above the bound of 2,000,000.*--force"):
        check_budget(huge)
    check_budget(huge, force=True)
    check_budget(planned_budget(83, 300))
    check_budget(Budget(steps=1, inner_steps=MAX_CANDIDATES))


def test_eta_and_durations():
    assert eta_seconds(0, 10, 5.0) is None
    assert eta_seconds(2, 10, 4.0) == pytest.approx(16.0)
    assert [duration(s) for s in (None, 12, 600, 3 * 3600 + 1200, 5 * 86400)] == [
        "?",
        "12 s",
        "10 min",
        "3 h 20 min",
        "5 d 0 h",
    ]


def test_progress_off_a_terminal_logs_lines_with_the_planned_total(monkeypatch):
    clock = iter(float(t) for t in range(0, 10_000, 5))
    monkeypatch.setattr(campaign_progress.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(campaign_progress, "LOG_EVERY_S", 9.0)
    out = io.StringIO()
    reporter = ProgressReporter(Console(file=out, width=200), "campaign c", tty=False)
    for step in range(83):
        reporter(
            {
                "outer_step": step,
                "outer_steps": 200,
                "planned_steps": 83,
                "best_fitness": 0.1,
                "inner_evaluations": 300 * (step + 1),
            }
        )
    text = out.getvalue()
    assert "campaign c: 83 families to try" in text and "estimated time left" in text
    assert "step 83/83" in text and "/200" not in text
    assert "ETA" in text
    assert len(text.splitlines()) > 10  # a line every few steps, not silence
