"""The paper's fitness value: FV = alpha * (1 - P_syn) + (1 - alpha) * sigmoid(dHf); lower is better.

Both terms lie in [0, 1], so every valid candidate has FV in [0, 1]. Invalid candidates (rejected by the
constraints, or never scored) get :data:`FV_PENALTY`, worse than any valid value, and are flagged.

**Spread penalty (beyond the paper).** With an enthalpy ensemble, each candidate has the members' mean
``mu`` and population standard deviation ``sigma`` (both eV/atom). The enthalpy the search minimises is
then the pessimistic bound

    dHf_pen = mu + kappa * sigma                              (eV/atom; kappa >= 0 is dimensionless)

so FV = alpha (1 - P_syn) + (1 - alpha) sigmoid(mu + kappa sigma): of two candidates with equal mean the
one the members disagree on ranks lower, and the search is not drawn to where the model is unsure (where
a long search finds the model's errors: the exploitation gap). ``kappa`` is the campaign's
``spread_penalty`` (:class:`csp.search.parameters.SearchParameters`); 0 (the default) is the paper's
fitness exactly. The same ``dHf_pen`` is the inner stage's objective and picks each family's best
structure (:mod:`csp.search.two_stage`). A single model has sigma = 0, so the penalty changes nothing.
"""

from __future__ import annotations

import numpy as np

from csp.errors import InputError

#: Fitness given to invalid candidates; every valid fitness lies in [0, 1].
FV_PENALTY = 2.0


def validate_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float, or raise ``ValueError`` (an :class:`~csp.errors.InputError`) if it is
    not a number in [0, 1]."""
    value = float(alpha)
    if not 0.0 <= value <= 1.0:
        raise InputError(
            f"alpha must lie in [0, 1] (0 = enthalpy only, 1 = synthesizability only), got {alpha}."
        )
    return value


def validate_spread_penalty(kappa: float) -> float:
    """Return ``kappa`` as a float, or raise :class:`~csp.errors.InputError` unless it is finite and >= 0.

    Args:
        kappa: weight of the enthalpy spread in ``dHf_pen = mu + kappa * sigma`` (dimensionless).
    """
    try:
        value = float(kappa)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value >= 0.0):
        raise InputError(
            f"spread_penalty (kappa) must be a finite number >= 0 (0: no penalty, 1: one standard deviation "
            f"of the enthalpy ensemble added to its mean), got {kappa!r}."
        )
    return value


def pessimistic_enthalpy(
    dhf_ev_per_atom: np.ndarray, dhf_std_ev_per_atom: np.ndarray | None, kappa: float
) -> np.ndarray:
    """``dHf_pen = mu + kappa * sigma`` in eV/atom (see the module docstring).

    Args:
        dhf_ev_per_atom: (B,) enthalpy ``mu`` (an ensemble's mean), eV/atom.
        dhf_std_ev_per_atom: (B,) spread ``sigma`` (population std over the members), eV/atom; None (no
            spread known) counts as 0, and so does any spread when ``kappa`` is 0.
        kappa: the spread penalty (finite, >= 0).

    Returns:
        (B,) float64 penalised enthalpies; NaN where ``kappa`` > 0 and the spread is NaN or negative.

    Raises:
        InputError: ``kappa`` not finite or negative.
    """
    kappa = validate_spread_penalty(kappa)
    h = np.asarray(dhf_ev_per_atom, dtype=np.float64)
    if kappa == 0.0 or dhf_std_ev_per_atom is None:
        return h.copy()
    std = np.asarray(dhf_std_ev_per_atom, dtype=np.float64)
    std = np.where(std >= 0, std, np.nan)  # a negative spread is a scorer bug: never a bonus
    return h + kappa * std


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function 1 / (1 + exp(-x))."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def fitness_value(
    p_syn: np.ndarray,
    dhf_ev_per_atom: np.ndarray,
    alpha: float,
    valid: np.ndarray | None = None,
    *,
    dhf_std_ev_per_atom: np.ndarray | None = None,
    spread_penalty: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fitness of a batch of candidates: alpha (1 - P_syn) + (1 - alpha) sigmoid(mu + kappa sigma).

    Args:
        p_syn: synthesizability probabilities in [0, 1] (B,).
        dhf_ev_per_atom: formation enthalpies ``mu`` in eV/atom (B,) (an ensemble's mean).
        alpha: weight of synthesizability, in [0, 1].
        valid: optional (B,) flags; invalid or non-finite candidates get :data:`FV_PENALTY`.
        dhf_std_ev_per_atom: optional (B,) enthalpy spread ``sigma`` in eV/atom (population std over the
            ensemble's members); None counts as 0.
        spread_penalty: ``kappa`` >= 0 (dimensionless); 0 gives the paper's FV.

    Returns:
        ``fitness`` (B,) and the ``valid`` flags (B,) actually used (with ``kappa`` > 0, a NaN spread
        makes a candidate invalid).

    Raises:
        InputError: ``alpha`` outside [0, 1], or ``spread_penalty`` not finite or negative.
    """
    alpha = validate_alpha(alpha)
    p = np.asarray(p_syn, dtype=np.float64)
    h = pessimistic_enthalpy(dhf_ev_per_atom, dhf_std_ev_per_atom, spread_penalty)
    flags = np.ones(p.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).copy()
    flags &= np.isfinite(p) & np.isfinite(h)
    fv = np.full(p.shape, FV_PENALTY)
    fv[flags] = alpha * (1.0 - np.clip(p[flags], 0.0, 1.0)) + (1.0 - alpha) * sigmoid(h[flags])
    return fv, flags
