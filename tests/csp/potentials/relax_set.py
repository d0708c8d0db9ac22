"""A fixed set of small structures for comparing relaxers: strained, rattled and low-symmetry cells."""

from __future__ import annotations

import numpy as np

from csp.structures.crystal import Crystal

FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


def rocksalt(a: float, z=(12, 8)) -> Crystal:
    """Conventional rock salt (8 atoms), Fm-3m."""
    frac = FCC + [[(p[0] + 0.5) % 1, p[1], p[2]] for p in FCC]
    return Crystal(np.eye(3) * a, [z[0]] * 4 + [z[1]] * 4, frac)


def zincblende(a: float, z=(31, 33)) -> Crystal:
    """Conventional zinc blende (8 atoms), F-43m."""
    frac = FCC + [[p[0] + 0.25, p[1] + 0.25, p[2] + 0.25] for p in FCC]
    return Crystal(np.eye(3) * a, [z[0]] * 4 + [z[1]] * 4, frac)


def primitive_fcc(a: float, basis, numbers) -> Crystal:
    """A two-atom primitive fcc cell."""
    lattice = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    return Crystal(lattice, numbers, basis)


def perovskite(a: float, rattle: float, seed: int) -> Crystal:
    """Cubic SrTiO3 (5 atoms), each atom moved by up to ``rattle`` A (uniform, seeded)."""
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    rng = np.random.default_rng(seed)
    frac = frac + rng.uniform(-rattle, rattle, frac.shape) / a
    return Crystal(np.eye(3) * a, [38, 22, 8, 8, 8], frac)


def wurtzite(a: float, c: float, u: float = 0.38) -> Crystal:
    """Wurtzite ZnO (4 atoms), P6_3mc."""
    lattice = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]])
    frac = [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, u], [2 / 3, 1 / 3, 0.5 + u]]
    return Crystal(lattice, [30, 30, 8, 8], frac)


def rutile(a: float, c: float, x: float = 0.3) -> Crystal:
    """Rutile TiO2 (6 atoms), P4_2/mnm."""
    frac = [
        [0, 0, 0],
        [0.5, 0.5, 0.5],
        [x, x, 0],
        [1 - x, 1 - x, 0],
        [0.5 + x, 0.5 - x, 0.5],
        [0.5 - x, 0.5 + x, 0.5],
    ]
    return Crystal(np.diag([a, a, c]), [22, 22, 8, 8, 8, 8], frac)


def low_symmetry() -> Crystal:
    """A triclinic four-atom MgO cell (P1)."""
    lattice = np.array([[4.1, 0.2, 0.1], [0.3, 4.4, 0.0], [0.1, -0.2, 4.6]])
    frac = [[0, 0, 0], [0.5, 0.5, 0.1], [0.5, 0.1, 0.55], [0.05, 0.5, 0.45]]
    return Crystal(lattice, [12, 12, 8, 8], frac)


def monoclinic() -> Crystal:
    """Rock-salt MgO sheared into a monoclinic cell (8 atoms)."""
    rs = rocksalt(4.3)
    shear = np.array([[1.0, 0.0, 0.06], [0.0, 1.0, 0.0], [0.0, 0.0, 1.02]])
    return Crystal(rs.lattice @ shear, rs.numbers, rs.frac_coords)


def structures() -> dict[str, Crystal]:
    """The set: name -> structure (2 to 8 atoms)."""
    return {
        "MgO-rocksalt-stretched": rocksalt(4.45),
        "MgO-rocksalt-primitive-squeezed": primitive_fcc(4.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [12, 8]),
        "GaAs-zincblende": zincblende(5.9),
        "GaAs-zincblende-primitive": primitive_fcc(5.5, [[0, 0, 0], [0.25, 0.25, 0.25]], [31, 33]),
        "SrTiO3-rattled": perovskite(3.95, 0.08, seed=1),
        "CsCl-stretched": Crystal(np.eye(3) * 4.3, [55, 17], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "ZnO-wurtzite": wurtzite(3.3, 5.2),
        "TiO2-rutile": rutile(4.5, 3.0),
        "MgO-monoclinic": monoclinic(),
        "MgO-triclinic": low_symmetry(),
    }
