"""The ask/tell interface shared by every optimizer, and the two kinds of search space."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from csp.errors import InputError

#: Draws ``n`` points of a continuous space: ``sampler(n, rng) -> (n, d)`` in [0, 1]^d.
Sampler = Callable[[int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class ContinuousSpace:
    """The unit cube [0, 1]^dim; ``ask`` returns float arrays of shape (n, dim)."""

    dim: int


@dataclass(frozen=True, eq=False)
class FiniteSpace:
    """A finite set of choices (e.g. symmetry families), each described by a feature row in [0, 1]^k.

    ``ask`` returns int64 indices of shape (n,); a choice is proposed at most once. Population methods move
    in feature space and snap to the nearest choice not yet proposed.
    """

    features: np.ndarray

    def __post_init__(self) -> None:
        f = np.asarray(self.features, dtype=np.float64)
        if f.ndim != 2 or len(f) == 0:
            raise InputError("A finite space needs a non-empty (choices, features) array.")
        object.__setattr__(self, "features", f)

    @property
    def size(self) -> int:
        return len(self.features)


Space = ContinuousSpace | FiniteSpace


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    return value


class Optimizer(ABC):
    """Minimise a black-box function by ask/tell.

    ``ask(n)`` proposes ``n`` points (continuous: (n, d) floats in [0, 1]; finite: (n,) indices, possibly
    fewer when the space is exhausted); ``tell(x, y)`` reports their values (lower is better). ``tell`` may
    also be given points that were not asked (for example stored evaluations), which every optimizer
    accepts. ``state_dict()`` is JSON-serialisable and ``load_state_dict`` restores the optimizer exactly,
    random generator included.

    Args:
        space: the search space.
        rng: a ``numpy.random.Generator`` or an int seed.
        sampler: random proposals for a continuous space (default: uniform); the search passes a sampler
            that rejects candidates violating the constraints.
    """

    name = "base"

    def __init__(self, space: Space, rng: np.random.Generator | int, sampler: Sampler | None = None) -> None:
        self.space = space
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.sampler = sampler
        self.X: list[Any] = []  # every told point (list of floats, or an int index)
        self.Y: list[float] = []
        self.proposed: set[int] = set()  # finite spaces: indices asked or told

    # ---- helpers shared by the methods
    @property
    def finite(self) -> bool:
        return isinstance(self.space, FiniteSpace)

    @property
    def dim(self) -> int:
        return self.space.features.shape[1] if self.finite else self.space.dim

    def _random(self, n: int) -> np.ndarray:
        """``n`` random proposals: points (continuous) or unproposed indices (finite)."""
        if self.finite:
            free = np.setdiff1d(
                np.arange(self.space.size), np.fromiter(self.proposed, int, len(self.proposed))
            )
            picks = self.rng.choice(free, size=min(n, len(free)), replace=False) if len(free) else free
            return np.asarray(picks, dtype=np.int64)
        if self.sampler is not None:
            return np.asarray(self.sampler(n, self.rng), dtype=np.float64).reshape(n, self.dim)
        return self.rng.random((n, self.dim))

    def _snap(self, points: np.ndarray) -> np.ndarray:
        """Nearest unproposed choice to each feature-space point, no choice twice (finite spaces)."""
        taken = set(self.proposed)
        out = []
        for p in np.atleast_2d(points):
            d = np.linalg.norm(self.space.features - p, axis=1)
            for i in np.argsort(d, kind="stable"):
                if int(i) not in taken:
                    taken.add(int(i))
                    out.append(int(i))
                    break
        return np.asarray(out, dtype=np.int64)

    def _features(self, x: np.ndarray) -> np.ndarray:
        """Feature-space coordinates of asked/told points (identity for continuous spaces)."""
        if self.finite:
            return self.space.features[np.asarray(x, dtype=np.int64).reshape(-1)]
        return np.asarray(x, dtype=np.float64).reshape(-1, self.dim)

    # ---- public interface
    def ask(self, n: int) -> np.ndarray:
        """Propose ``n`` points (fewer only when a finite space runs out)."""
        if n < 1:
            raise InputError(f"ask needs n >= 1, got {n}.")
        x = self._ask(n)
        if self.finite:
            self.proposed.update(int(i) for i in x)
        return x

    def tell(self, x: np.ndarray, y: np.ndarray) -> None:
        """Report values ``y`` (n,) of points ``x`` (lower is better; non-finite values are not allowed)."""
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if not np.isfinite(y).all():
            raise InputError("tell needs finite values; give invalid candidates a penalty value instead.")
        if self.finite:
            x = np.asarray(x, dtype=np.int64).reshape(-1)
            self.proposed.update(int(i) for i in x)
            self.X += [int(i) for i in x]
        else:
            x = np.clip(np.asarray(x, dtype=np.float64).reshape(-1, self.dim), 0.0, 1.0)
            self.X += x.tolist()
        if len(x) != len(y):
            raise InputError(f"tell got {len(x)} points but {len(y)} values.")
        self.Y += y.tolist()
        self._tell(x, y)

    @property
    def best(self) -> tuple[Any, float]:
        """The best told point and its value."""
        if not self.Y:
            raise InputError("Nothing has been told yet.")
        k = int(np.argmin(self.Y))
        return self.X[k], self.Y[k]

    def state_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (history, method state and random generator state)."""
        return _to_jsonable(
            {
                "name": self.name,
                "X": self.X,
                "Y": self.Y,
                "proposed": sorted(self.proposed),
                "rng": self.rng.bit_generator.state,
                "method": self._state(),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot made by :meth:`state_dict` of the same kind of optimizer."""
        if state.get("name") != self.name:
            raise InputError(f"State belongs to optimizer {state.get('name')!r}, not {self.name!r}.")
        self.X = list(state["X"])
        self.Y = [float(v) for v in state["Y"]]
        self.proposed = {int(i) for i in state["proposed"]}
        self.rng.bit_generator.state = state["rng"]
        self._load(state["method"])

    # ---- method hooks
    @abstractmethod
    def _ask(self, n: int) -> np.ndarray: ...

    def _tell(self, x: np.ndarray, y: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Update method state after the base class recorded (x, y)."""

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore method state."""


class RandomSearch(Optimizer):
    """Random search: every proposal is an independent random draw."""

    name = "rs"

    def _ask(self, n: int) -> np.ndarray:
        return self._random(n)
