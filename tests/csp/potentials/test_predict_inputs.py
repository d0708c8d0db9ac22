"""``csp.predict``, the Python front door, refuses a bad request before any search (issue 22): a top-k size
that is no whole number of at least 1, and a configuration with a value out of range or not finite."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

import csp
from csp.errors import InputError
from csp.search.two_stage import SearchConfig


class NoScorer:
    """TEST FIXTURE ONLY: a scorer that fails the test if the search ever asks it for anything."""

    def __getattr__(self, name):
        raise AssertionError(f"the request should have been refused before scoring ({name})")


@pytest.mark.parametrize("k", [0, -1, 2.5, math.nan, True, "5"])
def test_predict_refuses_a_bad_k_before_searching(k):
    with pytest.raises(InputError) as refused:
        csp.predict("MgO", SearchConfig(outer_steps=1, inner_steps=2), NoScorer(), k=k)
    assert str(refused.value) == f"k must be an integer of at least 1, not {k!r}."


def test_a_numpy_integer_k_is_a_whole_number():
    from csp.potentials.result import campaign_result

    assert campaign_result([], k=np.int64(3)).top == []  # accepted; no row scored, nothing ranked


@pytest.mark.parametrize(
    ("field", "value"),
    [("alpha", math.nan), ("alpha", math.inf), ("alpha", -0.1), ("alpha", 1.5), ("refine_fmax", math.inf),
     ("inner_penalty_ev_per_atom", math.nan), ("family_time_budget_s", math.inf), ("outer_steps", 0)],
)  # fmt: skip
def test_a_configuration_out_of_range_or_not_finite_is_refused(field, value):
    with pytest.raises(ValidationError) as refused:
        SearchConfig(**{field: value})
    assert [e["loc"] for e in refused.value.errors()] == [(field,)]
