"""Population methods: particle swarm (PSO) and a genetic algorithm (GA)."""

from __future__ import annotations

from typing import Any

import numpy as np

from csp.search.optimizers._base import Optimizer, Sampler, Space


class ParticleSwarm(Optimizer):
    """Particle swarm optimisation with inertia.

    Each particle moves with ``v <- w v + c1 r1 (p_best - x) + c2 r2 (g_best - x)``, ``x <- x + v``
    (r1, r2 uniform per coordinate), reflecting off the unit-cube walls. ``ask(n)`` advances the next
    ``n`` particles in turn, so batches need not equal the swarm size. In a finite space particles move in
    feature space and each proposal snaps to the nearest choice not yet proposed.

    Args:
        swarm_size: number of particles (default: the size of the first ``ask``).
        w: inertia weight (0.8 as in the paper).
        c1: pull towards the particle's own best.
        c2: pull towards the swarm's best.
        v_max: largest velocity per coordinate.
    """

    name = "pso"

    def __init__(
        self,
        space: Space,
        rng: np.random.Generator | int,
        sampler: Sampler | None = None,
        *,
        swarm_size: int | None = None,
        w: float = 0.8,
        c1: float = 1.5,
        c2: float = 1.5,
        v_max: float = 0.2,
    ) -> None:
        super().__init__(space, rng, sampler)
        self.swarm_size, self.w, self.c1, self.c2, self.v_max = swarm_size, w, c1, c2, v_max
        self.pos = np.zeros((0, self.dim))
        self.vel = np.zeros((0, self.dim))
        self.pbest_x = np.zeros((0, self.dim))
        self.pbest_y = np.zeros(0)
        self.started = np.zeros(0, dtype=bool)
        self.cursor = 0
        self.pending: list[int] = []

    def _init_swarm(self, n: int) -> None:
        size = self.swarm_size or n
        self.swarm_size = size
        self.pos = np.zeros((size, self.dim))
        self.vel = self.rng.uniform(-self.v_max, self.v_max, (size, self.dim))
        self.pbest_x = np.zeros((size, self.dim))
        self.pbest_y = np.full(size, np.inf)
        self.started = np.zeros(size, dtype=bool)

    def _ask(self, n: int) -> np.ndarray:
        if len(self.pos) == 0:
            self._init_swarm(n)
        particles = [(self.cursor + k) % self.swarm_size for k in range(n)]
        self.cursor += n
        fresh = [p for p in particles if not self.started[p]]
        if fresh:
            first = self._random(len(fresh))
            points = self._features(first) if self.finite else first
            self.pos[fresh[: len(points)]] = points
        if np.isfinite(self.pbest_y).any():
            g = self.pbest_x[int(np.argmin(self.pbest_y))]
            for p in particles:
                if not self.started[p] or not np.isfinite(self.pbest_y[p]):
                    continue
                r1, r2 = self.rng.random(self.dim), self.rng.random(self.dim)
                v = self.w * self.vel[p] + self.c1 * r1 * (self.pbest_x[p] - self.pos[p])
                v += self.c2 * r2 * (g - self.pos[p])
                v = np.clip(v, -self.v_max, self.v_max)
                x = self.pos[p] + v
                x = np.where(x < 0, -x, x)
                x = np.where(x > 1, 2 - x, x)
                self.pos[p], self.vel[p] = np.clip(x, 0, 1), v
        self.started[particles] = True
        self.pending = particles
        if self.finite:
            out = self._snap(self.pos[particles])
            self.pending = particles[: len(out)]
            return out
        return self.pos[particles].copy()

    def _tell(self, x: np.ndarray, y: np.ndarray) -> None:
        if len(self.pending) != len(y):  # points that were not asked: history only
            return
        feats = self._features(x)
        for p, f, v in zip(self.pending, feats, y, strict=True):
            self.pos[p] = f
            if v < self.pbest_y[p]:
                self.pbest_x[p], self.pbest_y[p] = f, v
        self.pending = []

    def _state(self) -> dict[str, Any]:
        return {
            "swarm_size": self.swarm_size,
            "pos": self.pos,
            "vel": self.vel,
            "pbest_x": self.pbest_x,
            "pbest_y": [float(v) if np.isfinite(v) else None for v in self.pbest_y],
            "started": self.started.tolist(),
            "cursor": self.cursor,
            "pending": self.pending,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.swarm_size = state["swarm_size"]
        self.pos = np.asarray(state["pos"], dtype=np.float64).reshape(-1, self.dim)
        self.vel = np.asarray(state["vel"], dtype=np.float64).reshape(-1, self.dim)
        self.pbest_x = np.asarray(state["pbest_x"], dtype=np.float64).reshape(-1, self.dim)
        self.pbest_y = np.array([np.inf if v is None else v for v in state["pbest_y"]], dtype=np.float64)
        self.started = np.asarray(state["started"], dtype=bool)
        self.cursor = int(state["cursor"])
        self.pending = [int(p) for p in state["pending"]]


class GeneticAlgorithm(Optimizer):
    """Elitist genetic algorithm: tournament selection, uniform crossover, per-gene reset mutation.

    The population is the ``population_size`` best points told so far; until it is full, proposals are
    random. A child takes each gene from one of two tournament winners (with probability
    ``crossover_rate``, else it copies the first) and each gene is then mutated with probability
    ``mutation_rate`` (0.1 as in the paper) by a Gaussian step of width ``mutation_scale``, reflected
    into [0, 1]. In a finite space children snap to the nearest unproposed
    choice.

    Args:
        population_size: parents kept (default: the size of the first ``ask``).
        mutation_rate: per-gene mutation probability.
        crossover_rate: probability that a child mixes two parents.
        tournament_size: contestants per tournament.
        mutation_scale: standard deviation of a mutation step.
    """

    name = "ga"

    def __init__(
        self,
        space: Space,
        rng: np.random.Generator | int,
        sampler: Sampler | None = None,
        *,
        population_size: int | None = None,
        mutation_rate: float = 0.1,
        crossover_rate: float = 0.9,
        tournament_size: int = 3,
        mutation_scale: float = 0.15,
    ) -> None:
        super().__init__(space, rng, sampler)
        self.population_size, self.mutation_scale = population_size, mutation_scale
        self.mutation_rate, self.crossover_rate, self.tournament_size = (
            mutation_rate,
            crossover_rate,
            tournament_size,
        )

    def _population(self) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(self.Y)
        keep = np.argsort(y, kind="stable")[: self.population_size]
        return self._features(np.asarray(self.X)[keep]), y[keep]

    def _tournament(self, fitness: np.ndarray) -> int:
        contestants = self.rng.integers(0, len(fitness), self.tournament_size)
        return int(contestants[np.argmin(fitness[contestants])])

    def _ask(self, n: int) -> np.ndarray:
        if self.population_size is None:
            self.population_size = n
        if len(self.Y) < self.population_size:
            return self._random(n)
        pop, fit = self._population()
        children = np.empty((n, self.dim))
        for k in range(n):
            a = pop[self._tournament(fit)]
            child = a.copy()
            if self.rng.random() < self.crossover_rate:
                b = pop[self._tournament(fit)]
                mask = self.rng.random(self.dim) < 0.5
                child[mask] = b[mask]
            mutate = self.rng.random(self.dim) < self.mutation_rate
            child[mutate] += self.rng.normal(0.0, self.mutation_scale, int(mutate.sum()))
            child = np.abs(child)
            child = np.where(child > 1, 2 - child, child)
            children[k] = np.clip(child, 0.0, 1.0)
        return self._snap(children) if self.finite else children

    def _state(self) -> dict[str, Any]:
        return {"population_size": self.population_size}

    def _load(self, state: dict[str, Any]) -> None:
        self.population_size = state["population_size"]
