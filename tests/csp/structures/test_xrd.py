"""Simulated Cu K-alpha powder patterns and the similarity that ranks structures against a measured one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from csp.errors import InputError
from csp.structures.xrd import rank_by_pattern, read_pattern, similarity, simulate
from tests.conftest import mirror_path
from tests.space_groups import from_spacegroup

MIRROR = mirror_path() / "validation" / "table1"  # CSP_DATA_MIRROR, else ../shared/data (tests/conftest.py)


def polymorphs(a: str, b: str, volume_per_atom: float) -> dict[str, Structure]:
    """Rock salt, zinc blende, CsCl and wurtzite of AB at one volume per atom (A^3)."""
    rs = 2 * (volume_per_atom * 8) ** (1 / 3) / 2
    zb = (volume_per_atom * 8) ** (1 / 3)
    cs = (volume_per_atom * 2) ** (1 / 3)
    aw = (volume_per_atom * 4 / (np.sqrt(3) / 2 * 1.633)) ** (1 / 3)
    return {
        "rock salt": from_spacegroup(225, Lattice.cubic(rs), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "zinc blende": from_spacegroup(216, Lattice.cubic(zb), [a, b], [[0, 0, 0], [0.25] * 3]),
        "CsCl": from_spacegroup(221, Lattice.cubic(cs), [a, b], [[0, 0, 0], [0.5] * 3]),
        "wurtzite": from_spacegroup(
            186, Lattice.hexagonal(aw, 1.633 * aw), [a, b], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.375]]
        ),
    }


def _write(pattern, path: Path, profile: bool) -> Path:
    if profile:  # a measured-looking profile: broadened peaks on a 0.01 degree grid, two-column text
        grid = np.arange(10, 90, 0.01)
        y = sum(
            i * np.exp(-0.5 * ((grid - t) / 0.08) ** 2)
            for t, i in zip(pattern.two_theta, pattern.intensity, strict=True)
        )
        rows = np.column_stack([grid, y])
    else:
        rows = np.column_stack([pattern.two_theta, pattern.intensity])
    np.savetxt(path, rows, header="2theta intensity")
    return path


@pytest.mark.parametrize(
    ("formula", "observed", "volume"), [("MgO", "rock salt", 9.4), ("GaAs", "zinc blende", 22.7)]
)
@pytest.mark.parametrize("profile", [False, True])
def test_the_reference_pattern_picks_the_observed_polymorph(tmp_path, formula, observed, volume, profile):
    reference = Structure.from_file(MIRROR / f"{formula}.cif")
    measured = read_pattern(_write(simulate(reference), tmp_path / "measured.xy", profile))
    cells = polymorphs(*[el.symbol for el in reference.composition.elements], volume)
    names = list(cells)
    ranked = rank_by_pattern(list(cells.values()), measured)
    assert names[ranked[0][0]] == observed, [(names[i], round(s, 3)) for i, s in ranked]
    assert ranked[0][1] > ranked[1][1] + 0.1, ranked


def test_similarity_is_one_for_the_same_pattern_and_symmetric():
    cells = polymorphs("Mg", "O", 9.4)
    a, b = simulate(cells["rock salt"]), simulate(cells["CsCl"])
    assert similarity(a, a) == pytest.approx(1.0)
    assert similarity(a, b) == pytest.approx(similarity(b, a))
    assert simulate(cells["rock salt"]).strongest(1)[0][2] == "200"  # MgO's strongest line, (200) near 42.9
    assert simulate(cells["rock salt"]).strongest(1)[0][0] == pytest.approx(
        2 * np.degrees(np.arcsin(1.54184 / 4.2)), abs=0.5
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10 5\n20 x\n", "line 2 is not two numbers"),
        ("10 5\n", "needs at least 3"),
        (None, "No pattern file"),
    ],
)
def test_bad_pattern_files_are_one_clear_line(tmp_path, text, message):
    path = tmp_path / "p.xy"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_pattern(path)
