"""The family listing before a campaign (issue 22): bounded in time, with progress, listed once.

A fake clock (one second per look at a space group) makes the bound deterministic: the cubic system has
36 groups, so listing Z = 1 takes "36 s" and every further Z another 36.
"""

from __future__ import annotations

import itertools

import pytest

import csp.search.families as families
from csp.search.families import FamilyListingTimeError, plan_families
from csp.search.two_stage import SearchConfig, campaign_families, excluded_by_atom_cap
from csp.structures.composition import parse_composition

H = parse_composition("H")


@pytest.fixture
def clock(monkeypatch):
    """A fresh plan cache and a clock that advances one second each time it is read."""
    ticks = itertools.count()
    monkeypatch.setattr(families, "_PLANS", {})
    monkeypatch.setattr(families.time, "monotonic", lambda: float(next(ticks)))


def test_a_listing_past_the_bound_is_refused_with_what_to_narrow(clock):
    """Z = 1 looks at 36 groups ("36 s"); the 15th group of Z = 2 (space group 209) is looked at at "51 s",
    past the 50 s bound: the families found before it are counted in the message."""
    config = SearchConfig(formula_units=(1, 3), max_atoms=3)
    with pytest.raises(FamilyListingTimeError) as caught:
        plan_families(H, config, time_limit_s=50)
    before = [f for f in campaign_families(H, config) if (f.formula_units, f.spacegroup) < (2, 209)]
    assert str(caught.value) == (
        "Listing the symmetry families of H in the cubic system for Z 1..3 (cells of up to 3 atoms) takes "
        f"more than 50 s: stopped at Z = 2 after 52 s with {len(before)} families; fix the crystal system, "
        "lower --z-max or --max-atoms, or pass --force to list them all."
    )
    assert families._PLANS == {}  # a refused listing is not kept


def test_the_count_beyond_the_cap_stops_at_the_deadline_and_says_so(clock):
    """The search's own families (Z = 1, "36 s") fit the bound; counting the families of Z = 2..10 that the
    1-atom cap leaves out would pass it, so they are reported as not counted instead of refusing."""
    config = SearchConfig(formula_units=(1, 10), max_atoms=1)
    plan = plan_families(H, config, time_limit_s=50)
    assert list(plan.families) == campaign_families(H, config)
    assert plan.excluded == {
        "max_atoms": 1,
        "formula_units": list(range(2, 11)),
        "families": None,
        "space_groups": None,
        "spacegroup_numbers": [],
        "counted": False,
        "bound_s": 50,
    }


def test_progress_is_reported_and_the_plan_is_listed_once(clock):
    seen = []
    config = SearchConfig(formula_units=(1, 2), max_atoms=1)
    plan = plan_families(H, config, report=seen.append, time_limit_s=None)
    assert {s["stage"] for s in seen} == {"search", "beyond the cap"}
    assert [s["spacegroup"] for s in seen if s["stage"] == "search"] == list(range(195, 231))
    assert seen[-1]["formula_units"] == seen[-1]["z_max"] == 2
    assert seen[0]["families"] == 0 and seen[0]["elapsed_s"] == 1.0
    assert plan.excluded == {**excluded_by_atom_cap(H, config), "counted": True}
    assert plan_families(H, config, time_limit_s=0) is plan  # kept: the search does not list them again
