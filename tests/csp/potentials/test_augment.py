"""Polymorph augmentation: prototype decorations, plans, distortions, labels, the lake round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from csp.potentials.augment import (
    StructureSet,
    distort,
    element_rows,
    elemental_references,
    formation_enthalpies,
    from_rows,
    plan_composition,
    with_formation_enthalpies,
)
from csp.structures.composition import parse_composition
from csp.structures.crystal import Crystal
from csp.structures.prototypes import decorations, find_prototype, load_prototypes


def _min_distance(c: Crystal) -> float:
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice(c.lattice), c.numbers.tolist(), c.frac_coords)
    d = s.distance_matrix + np.eye(len(s)) * 1e9
    return float(d.min()) if len(s) > 1 else float(min(s.lattice.abc))


@pytest.mark.slow
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
    from csp.structures import elements

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
            counts = np.array(
                [
                    np.sum(d.crystal.numbers == z)
                    for z in comp.numbers(1)[np.sort(np.unique(comp.numbers(1), return_index=True)[1])]
                ]
            )
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
    from csp.search.generate import check_validity

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


# --------------------------------------------------------------------------- labelling with CHGNet (CPU)
chgnet = pytest.importorskip("chgnet")


@pytest.fixture(scope="module")
def potential():
    from csp.potentials.relaxer import CHGNetPotential

    return CHGNetPotential("cpu", batch_size=32)


def _nacl_rows():
    from csp.potentials.augment import PlanRow

    rows = [r for r in plan_composition("NaCl", max_prototypes=4, random_structures=1)]
    keep = [r for r in rows if r.tag.startswith(("AB_cF8_225", "AB_cP2_221")) or r.kind == "random"]
    elems = [r for r in element_rows(["Na", "Cl"]) if r.tag in ("A_cI2_229_a", "A_cF4_225_a")]
    lone = Crystal(np.eye(3) * 20.0, [11, 17], [[0, 0, 0], [0.5, 0.5, 0.5]])  # atoms 17 A apart: no graph
    return keep + elems + [PlanRow("NaCl|isolated", "NaCl", "random", "single", "isolated", lone)]


@pytest.mark.slow
def test_label_rows_relaxes_distorts_and_isolates_failures(potential):
    from csp.potentials.relaxer import label_rows, to_structure_set

    rows = _nacl_rows()
    out = label_rows(potential, rows, relax_steps=15, distortions=2, pool=16, frame_every=4)
    s = to_structure_set(out, potential.name)
    by_id = {i: k for k, i in enumerate(s.ids.tolist())}
    assert s.labels["relaxation"][by_id["NaCl|isolated"]] == "failed"  # the bad one alone fails
    assert np.isnan(s.values["energy_ev_per_atom"][by_id["NaCl|isolated"]])
    good = s.labels["relaxation"] != "failed"
    assert np.isfinite(s.values["energy_ev_per_atom"][good]).all()
    for r in rows[:-1]:
        assert r.id in by_id
        if r.action == "relax":
            assert f"{r.id}|initial" in by_id  # first frame kept as an unrelaxed row
            i = by_id[r.id]
            assert s.labels["relaxation"][i] in ("relaxed", "partially_relaxed")
            assert 1 <= s.values["steps"][i] <= (30 if r.kind == "element" else 15)
            # relaxing never raises the energy much above the first frame
            assert s.values["energy_ev_per_atom"][i] <= s.values["energy_initial_ev_per_atom"][i] + 1e-3
            # every 4th intermediate frame is a row of its own, and only intermediate ones
            frames = sorted(int(x.rsplit("|", 1)[1]) for x in by_id if x.startswith(f"{r.id}|frame|"))
            if r.kind == "element":
                assert frames == []  # references are not training data: no frames
            else:
                assert frames == list(range(4, int(s.values["steps"][i]), 4))
                for step in frames:
                    k = by_id[f"{r.id}|frame|{step}"]
                    assert s.labels["relaxation"][k] == "frame" and s.values["steps"][k] == step
                    assert s.kind[k] == r.kind and np.isfinite(s.values["energy_ev_per_atom"][k])
    distorted = [i for i in s.ids if "|distorted|" in i]
    assert len(distorted) == 2 * sum(r.kind == "prototype" for r in rows)  # only prototypes are distorted
    s, refs = with_formation_enthalpies(s, fallback={11: 0.0, 8: -4.9})
    assert set(refs) == {8, 11, 17} and refs[11] != 0.0  # the set's own references win over the fallback
    rock = s.values["dhf_ev_per_atom"][by_id[next(r.id for r in rows if "225" in r.tag)]]
    assert -2.6 < rock < -1.6  # CHGNet's NaCl formation energy (experiment: -2.13 eV/atom)
    assert potential.name.startswith("chgnet-")


@pytest.mark.slow
def test_deadline_stops_and_returns_what_is_done(potential):
    import time

    from csp.potentials.relaxer import label_rows

    rows = _nacl_rows()[:-1]
    out = label_rows(potential, rows, relax_steps=500, fmax=1e-6, pool=4, deadline=time.monotonic() + 3)
    states = {o.row.id: o.relaxation for o in out}
    assert any(v == "partially_relaxed" for v in states.values())
    assert len(out) >= 1


@pytest.mark.slow
def test_labels_land_in_the_lake_once_and_only_when_asked(potential, lake, tmp_path):
    from csp.potentials.relaxer import label_rows, to_structure_set
    from flows.augmentation import ingest_labels
    from flows.models import export_training_set

    s = to_structure_set(label_rows(potential, _nacl_rows(), relax_steps=10, distortions=1), potential.name)
    path = s.save(tmp_path / "labels-00.npz")
    report = ingest_labels(lake, [path], run_id="test")
    assert report.sources == [potential.name]
    assert report.quarantined == 1  # the isolated pair has no energy: quarantined with its reason
    rows = lake.query(
        "SELECT source_id, energy_method, relaxation, relax_steps, license, dhf_dft_ev_per_atom "
        "FROM structures WHERE source = ?",
        [potential.name],
    ).to_pylist()
    assert len(rows) == report.written > 0
    assert {r["energy_method"] for r in rows} == {"mlip"}
    assert not any("|element|" in r["source_id"] for r in rows)  # references are not training data
    assert {r["relaxation"] for r in rows} <= {"relaxed", "partially_relaxed", "unrelaxed"}
    reasons = lake.query("SELECT reason FROM quarantine WHERE source = ?", [potential.name]).to_pylist()
    assert "NaN" in reasons[0]["reason"]
    assert ingest_labels(lake, [path], run_id="again").written == 0  # idempotent
    # an experimental value is never linked to a machine-labelled hypothetical polymorph
    lake.append(
        "experimental_enthalpies",
        [
            dict(
                source="expt_deltae_jha2019", source_id="nacl", license="x", raw_formula="NaCl",
                reduced_formula="NaCl", elements=["Cl", "Na"], dhf_exp_ev_per_atom=-2.13,
                uncertainty_ev_per_atom=None, reference="test", split="test",
            )
        ],
        run_id="test",
    )  # fmt: skip
    link = lake.query("SELECT linked_source, unlinked_reason FROM experimental_linked").to_pylist()
    assert link == [
        {"linked_source": None, "unlinked_reason": "no ingested structure has this reduced formula"}
    ]
    # training exports take machine-learned rows only when the source is named
    plain = export_training_set(lake, tmp_path / "a.npz", kind="dft", exclude=[])
    assert potential.name not in plain.per_source
    mixed = export_training_set(lake, tmp_path / "b.npz", kind="dft", exclude=[], sources=[potential.name])
    assert mixed.per_source == {potential.name: report.written}


def test_polymorph_plan_holds_the_benchmark_types(tmp_path):
    from csp.structures.prototypes import load_prototypes
    from flows.augmentation import POLYMORPH_CASES, polymorph_plan

    polymorph_plan(tmp_path / "poly.npz")
    plan = StructureSet.load(tmp_path / "poly.npz")
    types = {p.label: p.strukturbericht for p in load_prototypes()}
    for formula, ground, competitors in POLYMORPH_CASES:
        found = {types[t.split(":")[0]] for t in plan.tag[plan.formula == formula]}
        assert ground in found and found <= {ground, *competitors}, formula
    assert not set(plan.formula) & {"MgO", "CsI", "RbI", "GaAs", "InP", "CaS"}  # validation compounds


def test_labels_committed_as_parquet_ingest_with_their_enthalpies(lake, tmp_path):
    from csp.potentials.augment import StructureSet
    from flows.augmentation import ingest_labels
    from flows.label_data import export_label_parts

    rows = [r for r in plan_composition("NaCl", max_prototypes=2, random_structures=2) if r.kind != "element"]
    s = from_rows(rows + [r for r in element_rows(["Na", "Cl"]) if r.tag == "A_cF4_225_a"])
    n = len(s)
    s.values = {
        "energy_ev_per_atom": np.linspace(-4.0, -3.0, n),
        "energy_initial_ev_per_atom": np.linspace(-3.5, -2.5, n),
        "fmax_ev_per_angstrom": np.full(n, 0.04),
        "steps": np.arange(n, dtype=float),
    }
    s.labels = {
        "relaxation": np.where(s.kind == "element", "relaxed", "frame"),
        "potential": np.full(n, "chgnet-0.3.0"),
    }
    labels = s.save(tmp_path / "labels-00.npz")
    report = export_label_parts([labels], tmp_path / "parts")
    assert report.rows == n and report.training_rows == n - 2 and report.compositions == 1
    assert report.by_relaxation == {"frame": n - 2, "relaxed": 2}
    assert set(report.references_ev_per_atom) >= {"Na", "Cl"}  # the file's own element rows
    parts = sorted((tmp_path / "parts").glob("*.parquet"))
    assert parts == report.paths
    ingested = ingest_labels(lake, parts, run_id="parts")
    assert ingested.written == n - 2 and ingested.sources == ["chgnet-0.3.0"]
    stored = lake.query(
        "SELECT source_id, dhf_dft_ev_per_atom FROM structures WHERE source = 'chgnet-0.3.0'"
    ).to_pylist()
    back, _ = with_formation_enthalpies(StructureSet.load(labels))
    expected = dict(zip(back.ids.tolist(), back.values["dhf_ev_per_atom"].tolist(), strict=True))
    for row in stored:  # the enthalpies the parts were made with, not recomputed without their references
        assert row["dhf_dft_ev_per_atom"] == pytest.approx(expected[row["source_id"]], abs=1e-9)
    assert ingest_labels(lake, parts, run_id="again").written == 0


def test_committed_labels_summary_counts_what_the_parts_hold():
    import pyarrow.parquet as pq

    from flows.label_data import summarise_parts

    parts = sorted((Path(__file__).resolve().parents[3] / "data/labels/chgnet-0.3.0").glob("part-*.parquet"))
    assert parts, "the committed labelled data is missing"
    small = [min(parts, key=lambda p: p.stat().st_size)]
    summary = summarise_parts(small)
    assert summary["rows"] == pq.ParquetFile(small[0]).metadata.num_rows
    assert sum(summary["by_kind"].values()) == sum(summary["by_relaxation"].values()) == summary["rows"]
    assert 0 < summary["training_rows"] <= summary["rows"] - summary["by_kind"].get("reference", 0)
    assert summary["training_compositions"] <= summary["compositions"]
    q = summary["dhf_quantiles_ev_per_atom"]
    assert q == sorted(q) and q[0] >= -10 and q[-1] <= 10  # training rows lie within 10 eV/atom


def test_random_rows_of_another_seed_get_ids_of_their_own():
    first = [r for r in plan_composition("ZnS", seed=0, max_prototypes=0, random_structures=2) if r.kind == "random"]
    later = [r for r in plan_composition("ZnS", seed=5, max_prototypes=0, random_structures=2) if r.kind == "random"]
    assert [r.id for r in first] == ["ZnS|random|0", "ZnS|random|1"]  # the first plans' ids, unchanged
    assert [r.id for r in later] == ["ZnS|random|s5-0", "ZnS|random|s5-1"]
    protos = [r.id for r in plan_composition("ZnS", seed=5, max_prototypes=2, random_structures=0)]
    assert protos == [r.id for r in plan_composition("ZnS", seed=0, max_prototypes=2, random_structures=0)][:2]
