"""The paper's fitness value: FV = alpha * (1 - P_syn) + (1 - alpha) * sigmoid(dHf); lower is better.

Both terms lie in [0, 1], so every valid candidate has FV in [0, 1]. Invalid candidates (rejected by the
constraints, or never scored) get :data:`FV_PENALTY`, worse than any valid value, and are flagged.
"""

from __future__ import annotations

import numpy as np

from csp.errors import InputError

#: Fitness given to invalid candidates; every valid fitness lies in [0, 1].
FV_PENALTY = 2.0


def validate_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float, or raise ``ValueError`` if it is not a number in [0, 1]."""
    value = float(alpha)
    if not 0.0 <= value <= 1.0:
        raise InputError(
            f"alpha must lie in [0, 1] (0 = enthalpy only, 1 = synthesizability only), got {alpha}."
        )
    return value


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
) -> tuple[np.ndarray, np.ndarray]:
    """Fitness of a batch of candidates.

    Args:
        p_syn: synthesizability probabilities in [0, 1] (B,).
        dhf_ev_per_atom: formation enthalpies in eV/atom (B,).
        alpha: weight of synthesizability, in [0, 1].
        valid: optional (B,) flags; invalid or non-finite candidates get :data:`FV_PENALTY`.

    Returns:
        ``fitness`` (B,) and the ``valid`` flags (B,) actually used.
    """
    alpha = validate_alpha(alpha)
    p = np.asarray(p_syn, dtype=np.float64)
    h = np.asarray(dhf_ev_per_atom, dtype=np.float64)
    flags = np.ones(p.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).copy()
    flags &= np.isfinite(p) & np.isfinite(h)
    fv = np.full(p.shape, FV_PENALTY)
    fv[flags] = alpha * (1.0 - np.clip(p[flags], 0.0, 1.0)) + (1.0 - alpha) * sigmoid(h[flags])
    return fv, flags
