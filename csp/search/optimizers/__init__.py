"""Optimizers with one ask/tell interface: random search, particle swarm, genetic algorithm, Bayesian.

All of them minimise, work on the unit cube (:class:`ContinuousSpace`) or on a finite set of described
choices (:class:`FiniteSpace`), take an explicit random generator, and save/restore their state as JSON.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from csp.errors import InputError
from csp.search.optimizers._base import ContinuousSpace, FiniteSpace, Optimizer, RandomSearch, Sampler, Space
from csp.search.optimizers._bayes import BayesianOptimization
from csp.search.optimizers._population import GeneticAlgorithm, ParticleSwarm

OptimizerName = Literal["rs", "pso", "ga", "bo"]

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "rs": RandomSearch,
    "pso": ParticleSwarm,
    "ga": GeneticAlgorithm,
    "bo": BayesianOptimization,
}


def make_optimizer(
    name: OptimizerName,
    space: Space,
    rng: np.random.Generator | int,
    sampler: Sampler | None = None,
    **options: Any,
) -> Optimizer:
    """Build an optimizer by name (``"rs"``, ``"pso"``, ``"ga"`` or ``"bo"``) with method options."""
    if name not in OPTIMIZERS:
        raise InputError(f"Unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}.")
    return OPTIMIZERS[name](space, rng, sampler, **options)


__all__ = [
    "OPTIMIZERS",
    "BayesianOptimization",
    "ContinuousSpace",
    "FiniteSpace",
    "GeneticAlgorithm",
    "Optimizer",
    "OptimizerName",
    "ParticleSwarm",
    "RandomSearch",
    "Sampler",
    "Space",
    "make_optimizer",
]
