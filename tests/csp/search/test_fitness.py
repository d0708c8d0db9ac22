"""The fitness value FV = alpha (1 - P_syn) + (1 - alpha) sigmoid(dHf)."""

import numpy as np
import pytest

from csp.search.fitness import FV_PENALTY, fitness_value, sigmoid, validate_alpha


def test_formula_and_limits():
    p, h = np.array([0.9, 0.1]), np.array([-2.0, 1.0])
    fv, ok = fitness_value(p, h, 0.5)
    expected = 0.5 * (1 - p) + 0.5 / (1 + np.exp(-h))
    assert np.allclose(fv, expected) and ok.all()
    assert np.allclose(fitness_value(p, h, 1.0)[0], 1 - p)
    assert np.allclose(fitness_value(p, h, 0.0)[0], sigmoid(h))


def test_invalid_and_nan_get_the_penalty():
    fv, ok = fitness_value(
        np.array([0.5, np.nan, 0.5]), np.array([0.0, 0.0, 0.0]), 0.5, np.array([True, True, False])
    )
    assert ok.tolist() == [True, False, False]
    assert fv[1] == fv[2] == FV_PENALTY > fv[0]


def test_sigmoid_is_stable():
    assert np.allclose(sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_is_validated(alpha):
    with pytest.raises(ValueError, match="alpha"):
        validate_alpha(alpha)
