"""Simulated powder X-ray patterns (pymatgen's ``XRDCalculator``, Cu K-alpha) and their similarity.

What an experimentalist checks first: does the predicted structure give the measured pattern? Patterns are
simulated by pymatgen's :class:`pymatgen.analysis.diffraction.xrd.XRDCalculator` with Cu K-alpha radiation
(1.54184 A, the weighted K-alpha1/K-alpha2 mean), 2-theta from :data:`TWO_THETA` (degrees), intensities
scaled to 100 for the strongest peak.

Similarity score (:func:`similarity`): both patterns are broadened onto one 2-theta grid
(:data:`GRID_STEP_DEG` = 0.02 degrees) by Gaussians of :data:`FWHM_DEG` = 0.3 degrees full width at half
maximum, and compared by the cosine of the two profiles: 1 for identical peak positions and intensities,
near 0 for patterns with no peak in common. A measured profile (many points) is put on the same grid by
linear interpolation, without broadening. Against a measured pattern (:func:`rank_by_pattern`) the cell of
each simulated structure is also scaled uniformly by up to :data:`MAX_STRAIN` (5 %) and the best cosine
is kept: predicted lattices (model or potential) are often 1-3 % off experiment, which moves high-angle
peaks by more than their width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from csp.errors import InputError

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ["FWHM_DEG", "Pattern", "read_pattern", "similarity", "simulate"]

#: 2-theta range of simulated patterns, degrees
TWO_THETA = (10.0, 90.0)
#: Gaussian broadening (full width at half maximum) of stick patterns before comparison, degrees
FWHM_DEG = 0.3
#: step of the comparison grid, degrees
GRID_STEP_DEG = 0.02
#: largest uniform strain of the simulated cell tried when ranking against a measured pattern
MAX_STRAIN = 0.05
#: a file with at least this many points is a measured profile (interpolated, not broadened)
PROFILE_POINTS = 200


@dataclass(frozen=True)
class Pattern:
    """A powder pattern: peak (or profile) positions ``two_theta`` (degrees, (n,)), ``intensity``
    ((n,), strongest 100) and, for simulated patterns, Miller indices of each peak's strongest family."""

    two_theta: np.ndarray
    intensity: np.ndarray
    hkl: tuple[str, ...] = ()

    def strongest(self, n: int = 5) -> list[tuple[float, float, str]]:
        """The ``n`` strongest peaks as (2-theta degrees, intensity, hkl), by 2-theta."""
        order = np.argsort(-self.intensity)[:n]
        return sorted(
            (float(self.two_theta[i]), float(self.intensity[i]), self.hkl[i] if self.hkl else "")
            for i in order
        )


def simulate(structure: Structure, two_theta: tuple[float, float] = TWO_THETA) -> Pattern:
    """The Cu K-alpha powder pattern of ``structure`` (pymatgen ``XRDCalculator``), strongest peak 100."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    found = XRDCalculator(wavelength="CuKa").get_pattern(structure, scaled=True, two_theta_range=two_theta)
    hkl = tuple("".join(str(i) for i in fam[0]["hkl"]) if fam else "" for fam in found.hkls)
    return Pattern(np.asarray(found.x, dtype=float), np.asarray(found.y, dtype=float), hkl)


def read_pattern(path: Path | str) -> Pattern:
    """A measured pattern from a text file of two columns, 2-theta (degrees) and intensity (any scale);
    blank lines and lines starting with ``#`` are skipped, commas or whitespace separate the columns.

    Raises:
        InputError: a missing file, a line that is not two numbers, or fewer than 3 points.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No pattern file {path}: give a two-column 2-theta/intensity text file.")
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.replace(",", " ").split()
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError):
            raise InputError(
                f"{path.name} line {number} is not two numbers (2-theta, intensity): {text[:40]!r}."
            ) from None
    data = np.asarray(rows, dtype=float).reshape(-1, 2)
    if len(data) < 3 or not np.isfinite(data).all():
        raise InputError(f"{path.name} holds {len(data)} finite points; a pattern needs at least 3.")
    data = data[np.argsort(data[:, 0])]
    top = float(data[:, 1].max()) or 1.0
    return Pattern(data[:, 0], 100.0 * data[:, 1] / top)


def _profile(pattern: Pattern, grid: np.ndarray) -> np.ndarray:
    if len(pattern.two_theta) >= PROFILE_POINTS:  # a measured profile
        return np.interp(grid, pattern.two_theta, pattern.intensity, left=0.0, right=0.0)
    sigma = FWHM_DEG / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    diff = grid[:, None] - pattern.two_theta[None, :]
    return (np.exp(-0.5 * (diff / sigma) ** 2) * pattern.intensity[None, :]).sum(axis=1)


def _scaled(pattern: Pattern, scale: float) -> Pattern:
    """The stick pattern of the same cell with every length times ``scale`` (Bragg: d -> scale d)."""
    sin = np.sin(np.radians(pattern.two_theta) / 2.0) / scale
    keep = sin < 1.0
    return Pattern(2.0 * np.degrees(np.arcsin(sin[keep])), pattern.intensity[keep], ())


def similarity(a: Pattern, b: Pattern, *, max_strain: float = 0.0) -> float:
    """Cosine similarity (0..1) of two patterns broadened onto one grid (see the module docstring).

    With ``max_strain`` > 0, ``a`` (a simulated stick pattern) is also tried with its cell lengths scaled
    uniformly by every factor in [1 - max_strain, 1 + max_strain] (steps of 0.001) and the best cosine is
    returned: a predicted lattice a few percent off the measured one still finds its peaks.
    """
    scales = np.arange(1.0 - max_strain, 1.0 + max_strain + 5e-4, 0.001) if max_strain > 0 else [1.0]
    lo = max(min(a.two_theta.min(), b.two_theta.min()) - 3.0, 0.0)
    hi = max(a.two_theta.max(), b.two_theta.max()) + 3.0
    grid = np.arange(lo, hi, GRID_STEP_DEG)
    pb = _profile(b, grid)
    best = 0.0
    for scale in scales:
        pa = _profile(_scaled(a, scale) if scale != 1.0 else a, grid)
        norm = float(np.linalg.norm(pa) * np.linalg.norm(pb))
        best = max(best, float(pa @ pb / norm) if norm > 0 else 0.0)
    return best


def rank_by_pattern(
    structures: Sequence[Structure], measured: Pattern, *, max_strain: float = MAX_STRAIN
) -> list[tuple[int, float]]:
    """(index, similarity) of each structure's simulated pattern against ``measured``, best first
    (:func:`similarity` with ``max_strain``, default :data:`MAX_STRAIN`)."""
    lo, hi = float(measured.two_theta.min()), float(measured.two_theta.max())
    rng = (max(lo, 1.0), min(hi, 170.0)) if hi > lo else TWO_THETA
    wide = (max(rng[0] * (1 - max_strain) - 2.0, 1.0), min(rng[1] * (1 + max_strain) + 2.0, 170.0))
    scores = [
        (i, similarity(simulate(s, wide), measured, max_strain=max_strain)) for i, s in enumerate(structures)
    ]
    return sorted(scores, key=lambda t: (-t[1], t[0]))
