"""The CLI's campaign progress (issue 13, fault 6): the planned total, an estimate, ETA and log lines off a
terminal."""

from __future__ import annotations

import io

from rich.console import Console

from flows import campaign_progress
from flows.campaign_progress import ProgressReporter


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
