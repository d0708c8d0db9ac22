"""Campaign budgets with a sense of time: what will run, whether it is sane, and when it will end.

Pure arithmetic (no I/O): the faces measure the time and print what these functions compute.

The bound :data:`MAX_CANDIDATES` (2,000,000 scored structures per campaign) is about a day of scoring
at the rate measured on the shipped models (docs/reliability.md); a larger budget is refused unless
the caller forces it, so a typo such as 10,000 x 100,000 (10^9 structures, years) is caught before
anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from csp.errors import InputError

MAX_CANDIDATES = 2_000_000


@dataclass(frozen=True)
class Budget:
    """What a campaign will score: ``steps`` outer steps (families) of ``inner_steps`` structures."""

    steps: int
    inner_steps: int

    @property
    def candidates(self) -> int:
        return self.steps * self.inner_steps


def planned_budget(outer_steps: int, inner_steps: int, n_families: int | None = None) -> Budget:
    """The outer steps that will actually run: the search stops when every family has been tried."""
    steps = outer_steps if n_families is None else min(outer_steps, n_families)
    return Budget(steps=steps, inner_steps=inner_steps)


def check_budget(budget: Budget, *, force: bool = False, limit: int = MAX_CANDIDATES) -> None:
    """Refuse a budget of more than ``limit`` scored structures unless ``force``.

    Raises:
        InputError: one sentence with the numbers and the way out (smaller budget or ``--force``).
    """
    if budget.candidates > limit and not force:
        raise InputError(
            f"The budget is {budget.steps:,} families x {budget.inner_steps:,} structures = "
            f"{budget.candidates:,} structures, above the bound of {limit:,} (about a day of scoring); "
            "lower --outer-steps/--inner-steps or pass --force."
        )


def check_search_budget(composition: Any, config: Any, *, force: bool = False) -> None:
    """Refuse a search (a :class:`csp.structures.composition.Composition` and a :class:`csp.search.two_stage.SearchConfig`) that
    would score more than :data:`MAX_CANDIDATES` structures, counted over the families that will actually
    run, unless ``force``. Only a large request pays for listing its families.

    Raises:
        InputError: from :func:`check_budget`.
    """
    if force or planned_budget(config.outer_steps, config.inner_steps).candidates <= MAX_CANDIDATES:
        return
    from csp.search.two_stage import campaign_families

    families = campaign_families(composition.reduced()[0], config)
    check_budget(planned_budget(config.outer_steps, config.inner_steps, len(families)))


def eta_seconds(done: int, total: int, seconds: float) -> float | None:
    """Seconds left at the rate so far (``done`` of ``total`` steps took ``seconds``); None before a step."""
    if done <= 0 or seconds <= 0:
        return None
    return max(0.0, (total - done) * seconds / done)


def duration(seconds: float | None) -> str:
    """A short human duration: ``45 s``, ``12 min``, ``3 h 20 min``, ``4 d 2 h``; ``?`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    if s < 90:
        return f"{s} s"
    m = round(s / 60)
    if m < 90:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m:02d} min"
    d, h = divmod(h, 24)
    return f"{d} d {h} h"
