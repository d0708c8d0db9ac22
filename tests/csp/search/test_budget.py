"""Budgets with a sense of time (issue 13, fault 6): planned steps, the bound, the ETA."""

from __future__ import annotations

import pytest

from csp.errors import InputError
from csp.search.budget import (
    MAX_CANDIDATES,
    Budget,
    check_budget,
    check_search_budget,
    duration,
    eta_seconds,
    planned_budget,
)


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


@pytest.mark.slow  # listing MgO's cubic families takes about 5 s
def test_the_search_budget_counts_the_families_that_will_run():
    from csp.search.two_stage import SearchConfig, campaign_families
    from csp.structures.composition import parse_composition

    mgo = parse_composition("MgO")
    config = SearchConfig(outer_steps=10_000, inner_steps=300)
    n_families = len(campaign_families(mgo.reduced()[0], config))
    assert n_families * 300 <= MAX_CANDIDATES < 10_000 * 300
    check_search_budget(mgo, config)  # only the families that exist will run
    huge = SearchConfig(outer_steps=10_000, inner_steps=100_000)
    with pytest.raises(InputError, match="above the bound"):
        check_search_budget(mgo, huge)
    check_search_budget(mgo, huge, force=True)
