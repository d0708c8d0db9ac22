"""Polymorph augmentation: prototype decorations, plans, distortions, labels, the lake round trip."""

from __future__ import annotations

import numpy as np
import pytest

from csp.augment import (
    StructureSet,
    distort,
    element_rows,
    elemental_references,
    formation_enthalpies,
    from_rows,
    plan_composition,
)
from csp.composition import parse_composition
from csp.crystal import Crystal
from csp.prototypes import decorations, find_prototype, load_prototypes


def _min_distance(c: Crystal) -> float:
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice(c.lattice), c.numbers.tolist(), c.frac_coords)
    d = s.distance_matrix + np.eye(len(s)) * 1e9
    return float(d.min()) if len(s) > 1 else float(min(s.lattice.abc))


def test_library_has_the_common_prototypes():
    protos = load_prototypes()
    assert len(protos) > 250
    assert len({p.label for p in protos}) == len(protos)  # labels made unique
    for name, sg_label in [("rock salt", "225"), ("CsCl", "221"), ("zincblende", "216"), ("wurtzite", "186")]:
        assert find_prototype(name).label.split("_")[2] == sg_label
    with pytest.raises(KeyError, match="No prototype"):
        find_prototype("unobtainium")


def test_rock_salt_decoration_of_nacl():
    decos = decorations(parse_composition("NaCl"))
    rock = [d for d in decos if d.prototype.strukturbericht == "B1"]
    assert rock and {d.crystal.num_sites for d in rock} == {2}
    c = rock[0].crystal
    # volume scaled to the sum of the atomic volumes; the cation-anion distance is a/2 of the cubic cell
    from csp import elements

    assert c.volume == pytest.approx(float(elements.atomic_volume(c.numbers).sum()), rel=1e-9)
    a_cubic = (4 * c.volume) ** (1 / 3)
    assert _min_distance(c) == pytest.approx(a_cubic / 2, rel=1e-6)
    assert sorted(c.numbers.tolist()) == [11, 17]


def test_decorations_respect_the_stoichiometry():
    for formula in ("TiO2", "SrTiO3", "MgAl2O4"):
        comp = parse_composition(formula)
        ratio = np.array([n for _, n in comp.counts], dtype=float)
        decos = decorations(comp)
        assert decos, formula
        for d in decos:
            counts = np.array([np.sum(d.crystal.numbers == z) for z in comp.numbers(1)[np.sort(np.unique(comp.numbers(1), return_index=True)[1])]])
            assert np.allclose(counts / counts.sum(), ratio / ratio.sum()), (formula, d.tag)
    assert any(d.prototype.strukturbericht == "E2_1" for d in decorations(parse_composition("SrTiO3")))
    assert any(d.prototype.name == "spinel" for d in decorations(parse_composition("MgAl2O4")))


def test_plan_is_deterministic_and_valid():
    a = plan_composition("ZnS", seed=3, max_prototypes=6, random_structures=3)
    b = plan_composition("ZnS", seed=3, max_prototypes=6, random_structures=3)
    assert [r.id for r in a] == [r.id for r in b]
    assert all(np.allclose(x.crystal.frac_coords, y.crystal.frac_coords) for x, y in zip(a, b, strict=True))
    kinds = [r.kind for r in a]
    assert kinds.count("prototype") == 6 and 1 <= kinds.count("random") <= 3
    assert {r.action for r in a if r.kind == "prototype"} == {"relax"}
    from csp.generate import check_validity

    for r in a:
        if r.kind == "random":
            ok, why = check_validity(r.crystal.lattice[None], r.crystal.frac_coords[None], r.crystal.numbers)
            assert ok[0], why


def test_structure_set_round_trip(tmp_path):
    rows = plan_composition("NaCl", max_prototypes=3, random_structures=1) + element_rows(["Na"])[:2]
    s = from_rows(rows)
    s.values["energy_ev_per_atom"] = np.arange(len(s), dtype=float)
    s.labels["relaxation"] = np.array(["unrelaxed"] * len(s))
    back = StructureSet.load(s.save(tmp_path / "set.npz"))
    assert back.ids.tolist() == s.ids.tolist()
    assert np.allclose(back.frac_coords, s.frac_coords) and np.allclose(back.lattice, s.lattice)
    assert back.values["energy_ev_per_atom"].tolist() == list(range(len(s)))
    sub = back.take([2, 0])
    assert sub.ids.tolist() == [s.ids[2], s.ids[0]]
    assert np.allclose(sub.crystal(0).frac_coords, s.crystal(2).frac_coords)
    with pytest.raises(ValueError, match="unique"):
        from_rows(rows + rows[:1])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(Exception):  # noqa: B017 - numpy raises its own error for a corrupt file
        StructureSet.load(tmp_path / "bad.npz")


def test_distortions_strain_and_displace():
    c = decorations(parse_composition("NaCl"))[0].crystal
    copies = distort(c, np.random.default_rng(0), 5, max_strain=0.04, displacement_angstrom=0.05)
    assert len(copies) == 5
    for d in copies:
        ratio = d.volume / c.volume
        assert 0.88 < ratio < 1.13 and not np.isclose(ratio, 1.0)
        assert np.array_equal(d.numbers, c.numbers)


def test_formation_enthalpy_arithmetic():
    numbers = np.array([11, 17, 11, 11])  # NaCl (2 atoms), Na2 (2 atoms)
    offsets = np.array([0, 2, 4])
    refs = {11: -1.3, 17: -1.8}
    dhf = formation_enthalpies(numbers, offsets, np.array([-3.6, -1.3]), refs)
    assert dhf == pytest.approx([-3.6 + 1.55, 0.0])
    assert np.isnan(formation_enthalpies(np.array([8]), np.array([0, 1]), np.array([-4.0]), refs)[0])
    s = from_rows(element_rows(["Na"])[:3])
    s.values["energy_ev_per_atom"] = np.array([-1.1, -1.3, np.nan])
    assert elemental_references(s) == {11: pytest.approx(-1.3)}
