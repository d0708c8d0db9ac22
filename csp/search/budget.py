"""Campaign budgets with a sense of time: what will run, whether it is sane, and when it will end.

Pure arithmetic (no I/O): the faces measure the time and print what these functions compute.

The bound :data:`MAX_CANDIDATES` (2,000,000 scored structures per campaign) is about a day of scoring
at the rate measured on the shipped models (docs/reliability.md); a larger budget is refused unless
the caller forces it, so a typo such as 10,000 x 100,000 (10^9 structures, years) is caught before
anything runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from csp.errors import InputError

MAX_CANDIDATES = 2_000_000
#: Longest the listing of a campaign's families may take before the campaign starts (seconds), unless
#: forced. 120 s: every request within the default 40-atom cap lists in less (the worst, H over all crystal
#: systems with Z 1..40, takes 79 s on the 2-core development machine under load), while listings that
#: grow to ten minutes and more (all systems with cells of 64 atoms: 584 s) are refused in one line
#: before anything is written instead of running silent (:mod:`csp.search.families` has the measurements).
MAX_LISTING_S = 120.0


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


def check_search_budget(
    composition: Any,
    config: Any,
    *,
    force: bool = False,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Refuse a search (a :class:`csp.structures.composition.Composition` and a
    :class:`csp.search.two_stage.SearchConfig`) whose families take longer than :data:`MAX_LISTING_S` to
    list, or that would score more than :data:`MAX_CANDIDATES` structures (counted over the families that
    will actually run), unless ``force``.

    The families are listed here, once (:func:`csp.search.families.plan_families`, kept for the search),
    with ``report`` receiving its progress.

    Raises:
        InputError: from :func:`check_budget`, or :class:`csp.search.families.FamilyListingTimeError`.
    """
    from csp.search.families import plan_families

    limit = None if force else MAX_LISTING_S
    plan = plan_families(composition.reduced()[0], config, report=report, time_limit_s=limit)
    budget = planned_budget(config.outer_steps, config.inner_steps, len(plan.families))
    check_budget(budget, force=force)


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
