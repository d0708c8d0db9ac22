"""Symmetry-constrained candidate generation: families, templates, constraints and true symmetry."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pyxtal.symmetry import Group

from csp.search.generate import (
    Family,
    build_template,
    check_validity,
    crystal_system_of,
    enumerate_families,
    min_distance_ratio,
    sample_valid,
    space_groups,
)
from csp.structures import elements
from csp.structures.composition import parse_composition


def _structure(lattice, numbers, frac):
    return Structure(Lattice(lattice), [int(z) for z in numbers], frac)


def _has_group_symmetry(spacegroup, lattice, numbers, frac, tol=1e-6):
    """Every operation of the space group maps the structure onto itself (same species)."""
    ops = Group(spacegroup).Wyckoff_positions[0].ops
    for op in ops:
        m = op.affine_matrix
        image = frac @ m[:3, :3].T + m[:3, 3]
        d = image[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        close = np.linalg.norm(d @ lattice, axis=-1) < 1e-4
        same = numbers[:, None] == numbers[None, :]
        if not (close & same).any(axis=1).all():
            return False
    return True


def test_space_group_strategies():
    assert space_groups("all") == list(range(1, 231))
    assert space_groups("fixed", "cubic") == list(range(195, 231))
    assert space_groups("fixed", "trigonal")[0] == 143
    assert crystal_system_of(166) == "trigonal"
    with pytest.raises(ValueError, match="crystal system"):
        space_groups("fixed", None)


def test_enumeration_is_seeded_and_feasible():
    comp = parse_composition("GaAs")
    a = enumerate_families(comp, [1, 2, 4], space_groups("fixed", "cubic"), np.random.default_rng(3))
    b = enumerate_families(comp, [1, 2, 4], space_groups("fixed", "cubic"), np.random.default_rng(3))
    assert a == b and len(a) > 10
    for fam in a:
        counts = {}
        for sym, label in fam.sites:
            counts[sym] = counts.get(sym, 0) + int(label[:-1])
        assert counts == {"Ga": fam.formula_units, "As": fam.formula_units}
    zincblende = {("4a", "4c"), ("4a", "4d"), ("4b", "4c"), ("4b", "4d")}
    found = {tuple(sorted(label for _, label in f.sites)) for f in a if f.spacegroup == 216}
    assert found & zincblende


@pytest.mark.parametrize(
    ("formula", "family", "a_exp"),
    [
        ("MgO", Family(4, 225, (("Mg", "4a"), ("O", "4b"))), 4.21),
        ("GaAs", Family(4, 216, (("Ga", "4a"), ("As", "4c"))), 5.65),
        ("BaZrO3", Family(1, 221, (("Ba", "1a"), ("Zr", "1b"), ("O", "3c"))), 4.19),
    ],
)
def test_prototype_families_give_the_space_group(formula, family, a_exp):
    tpl = build_template(family)
    assert tpl.dim == 1  # a cubic cell with all atoms on fixed positions: only the volume is free
    u = np.linspace(0, 1, 11)[:, None]
    batch = tpl.build(u)
    ok, reasons = check_validity(batch.lattices, batch.frac_coords, batch.numbers)
    assert ok.all(), reasons
    assert sorted(batch.numbers.tolist()) == sorted(parse_composition(formula).numbers(family.formula_units))
    a = batch.lattices[:, 0, 0]
    assert a.min() < a_exp < a.max()  # the experimental cell lies inside the volume range
    for b in range(len(u)):
        s = _structure(batch.lattices[b], batch.numbers, batch.frac_coords[b])
        assert SpacegroupAnalyzer(s, symprec=1e-3).get_space_group_number() == family.spacegroup


def test_random_families_have_their_symmetry_and_meet_the_constraints():
    rng = np.random.default_rng(7)
    fams = enumerate_families(parse_composition("MgO"), [1, 2, 4], space_groups("all"), rng)
    picks = rng.choice(len(fams), size=25, replace=False)
    checked = 0
    for k in picks:
        tpl = build_template(fams[k])
        u, valid, _ = sample_valid(tpl, 4, rng, max_draws=512)
        batch = tpl.build(u)
        ok, _ = check_validity(batch.lattices, batch.frac_coords, batch.numbers)
        assert (ok == valid).all()
        for b in np.flatnonzero(ok):
            lat, frac = batch.lattices[b], batch.frac_coords[b]
            assert _has_group_symmetry(fams[k].spacegroup, lat, batch.numbers, frac)
            s = _structure(lat, batch.numbers, frac)
            ratio = s.volume / tpl.reference_volume
            assert 0.5 - 1e-9 <= ratio <= 1.5 + 1e-9
            assert all(20 <= x <= 160 for x in s.lattice.angles)
            dm = s.distance_matrix + np.diag(np.full(len(s), np.inf))
            r = elements.covalent_radius(batch.numbers)
            assert (dm >= 0.5 * (r[:, None] + r[None, :]) - 1e-9).all()
            checked += 1
    assert checked >= 20


def test_validity_reports_reasons():
    tpl = build_template(Family(4, 225, (("Mg", "4a"), ("O", "4b"))))
    batch = tpl.build(np.array([[0.5]]))
    lat = np.concatenate([batch.lattices, batch.lattices * 0.5, batch.lattices])
    frac = np.repeat(batch.frac_coords, 3, axis=0)
    frac[2, 1] = frac[2, 0] + 0.01  # two atoms on top of each other
    skew = np.array([[4.0, 0, 0], [3.9, 0.5, 0], [0, 0, 4.0]])  # gamma ~7 degrees
    lat = np.concatenate([lat, skew[None]])
    frac = np.concatenate([frac, batch.frac_coords])
    ok, reasons = check_validity(lat, frac, batch.numbers)
    assert ok.tolist() == [True, False, False, False]
    assert "volume" in reasons[1]
    assert "too close" in reasons[2] and "Mg-Mg" in reasons[2]
    assert "angle" in reasons[3]


def test_minimum_image_finds_close_images_in_a_skewed_cell():
    # one atom per cell; the shortest image vector is a - b (length ~1 A) although |a| = |b| = 3 A
    lat = np.array([[[3.0, 0, 0], [2.9, 0.6, 0], [0, 0, 3.0]]])
    ratio, _, _ = min_distance_ratio(lat, np.zeros((1, 1, 3)), np.array([12]))
    expected = np.linalg.norm(lat[0, 0] - lat[0, 1]) / elements.covalent_radius(np.array([12]))[0]
    assert ratio[0] == pytest.approx(expected)


def test_rhombohedral_and_monoclinic_settings():
    comp = parse_composition("MgO")
    fams = enumerate_families(comp, [3], [166], np.random.default_rng(0))
    fams += enumerate_families(comp, [2], [12], np.random.default_rng(0))
    assert {f.spacegroup for f in fams} == {166, 12}
    for fam in fams:
        tpl = build_template(fam)
        u, valid, _ = sample_valid(tpl, 3, np.random.default_rng(1))
        batch = tpl.build(u[valid])
        for b in range(len(batch.lattices)):
            s = _structure(batch.lattices[b], batch.numbers, batch.frac_coords[b])
            alpha, _beta, gamma = s.lattice.angles
            if fam.spacegroup == 166:
                assert gamma == pytest.approx(120) and alpha == pytest.approx(90)
            else:
                assert alpha == pytest.approx(90) and gamma == pytest.approx(90)
            assert _has_group_symmetry(fam.spacegroup, batch.lattices[b], batch.numbers, batch.frac_coords[b])


def test_sample_valid_mostly_valid_for_prototypes():
    tpl = build_template(Family(2, 194, (("Mg", "2c"), ("O", "2d"))))
    u, valid, tried = sample_valid(tpl, 64, np.random.default_rng(0))
    assert u.shape == (64, tpl.dim) and valid.all() and tried >= 64
