"""Lake -> training arrays: exclusions honoured, splits kept, experiment linked to structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flows.models import export_training_set
from tests.storage.test_lake import structure_row


def exp_row(source_id: str, formula: str, value: float, split: str) -> dict:
    return dict(
        source="expt_deltae_jha2019",
        source_id=source_id,
        license="x",
        raw_formula=formula,
        reduced_formula=formula,
        elements=sorted({"Mg", "O"}),
        dhf_exp_ev_per_atom=value,
        uncertainty_ev_per_atom=None,
        reference="test",
        split=split,
    )


def _fill(lake):
    rows = []
    for i, formula in enumerate(["MgO", "CaO", "SrO", "BaO", "ZnO"]):
        row = structure_row(f"s{i}", formula, energy=-1.0 - i)
        row["source"] = "mp_flla2015"
        row["icsd_label"] = i % 2
        rows.append(row)
    castelli = structure_row("p1", "CdO", energy=1.5)
    castelli["source"] = "castelli_cdvae"
    lake.append("structures", [*rows, castelli], run_id="t")
    lake.append(
        "experimental_enthalpies",
        [
            exp_row("1", "CaO", -3.3, "train"),
            exp_row("2", "MgO", -3.1, "test"),
            exp_row("3", "NaCl", -2.1, "train"),
        ],
        run_id="t",
    )


def test_dft_export_excludes_validation_compounds(lake, tmp_path):
    from csp.models.dataset import load_arrays

    _fill(lake)
    summary = export_training_set(lake, tmp_path / "dft.npz", kind="dft", exclude={"MgO"})
    arrays = load_arrays(summary.path)
    assert summary.rows == 4 and summary.excluded_rows == 1
    assert "mp_flla2015:s0" not in set(arrays.ids)  # MgO left out
    assert "castelli_cdvae" not in set(arrays.source_names)  # other energy scale not mixed in
    np.testing.assert_allclose(sorted(arrays.target), [-5.0, -4.0, -3.0, -2.0])
    assert len(summary.sha256) == 64


def test_exp_export_uses_linked_structures_and_file_split(lake, tmp_path):
    from csp.models.dataset import load_arrays

    _fill(lake)
    summary = export_training_set(lake, tmp_path / "exp.npz", kind="exp", exclude=set())
    arrays = load_arrays(summary.path)
    # NaCl has no structure, so it cannot be a training row
    assert sorted(arrays.ids) == ["expt_deltae_jha2019:1", "expt_deltae_jha2019:2"]
    by_id = dict(zip(arrays.ids, arrays.split, strict=True))
    assert by_id["expt_deltae_jha2019:2"] == 2  # the file's test row stays in test
    linked = lake.query("SELECT source_id, link_method, unlinked_reason FROM experimental_linked ORDER BY 1")
    reasons = {r["source_id"]: (r["link_method"], r["unlinked_reason"]) for r in linked.to_pylist()}
    assert reasons["1"][0].startswith("lowest DFT formation enthalpy")
    assert reasons["3"] == (None, "no ingested structure has this reduced formula")


def test_pu_export_labels(lake, tmp_path):
    from csp.models.dataset import load_arrays

    _fill(lake)
    summary = export_training_set(lake, tmp_path / "pu.npz", kind="pu", exclude={"MgO"})
    arrays = load_arrays(summary.path)
    assert set(np.unique(arrays.target)) == {0.0, 1.0}
    assert summary.rows == 5


def test_dft_export_gives_universal_potential_rows_fidelity_1(lake, tmp_path):
    from csp.models.dataset import FIDELITIES, load_arrays
    from storage.training_sets import FIDELITY_CODES

    _fill(lake)
    labelled = []
    for i, formula in enumerate(["CaO", "CaO", "SrO"]):
        row = structure_row(f"m{i}", formula, energy=-2.0 + i)
        row.update(source="chgnet-0.3.0", energy_method="mlip", relaxation="unrelaxed")
        labelled.append(row)
    lake.append("structures", labelled, run_id="t")
    sources = ["mp_flla2015", "chgnet-0.3.0"]
    summary = export_training_set(lake, tmp_path / "mf.npz", kind="dft", exclude={"MgO"}, sources=sources)
    arrays = load_arrays(summary.path)
    fidelity = dict(zip(arrays.ids.tolist(), arrays.fidelity.tolist(), strict=True))
    assert fidelity["chgnet-0.3.0:m0"] == 1 and fidelity["mp_flla2015:s1"] == 0  # s1: energy_method not set
    assert summary.per_fidelity == {"dft": 4, "mlip": 3}
    by_id = dict(zip(arrays.ids.tolist(), arrays.split.tolist(), strict=True))
    assert by_id["chgnet-0.3.0:m0"] == by_id["mp_flla2015:s1"]  # CaO: one formula hash for every source
    assert [FIDELITIES[code] for code in FIDELITY_CODES.values()] == list(FIDELITY_CODES)  # csp's codes

    plain = export_training_set(lake, tmp_path / "dft.npz", kind="dft", exclude={"MgO"})
    assert plain.per_fidelity == {"dft": 4}
    with np.load(plain.path) as data:
        assert "fidelity" not in data.files  # all-DFT sets keep the layout they had


def test_linked_dft_enthalpies_and_ingested_sources(lake):
    from storage.ingest import ingested_sources
    from storage.training_sets import linked_dft_enthalpies

    _fill(lake)
    linked = linked_dft_enthalpies(lake)
    # keyed as the training arrays' ids; NaCl has no structure, so no DFT value
    assert linked == {
        "expt_deltae_jha2019:1": -2.0,
        "expt_deltae_jha2019:2": -1.0,
        "expt_deltae_jha2019:3": None,
    }
    assert ingested_sources(lake) == {"castelli_cdvae": 1, "expt_deltae_jha2019": 3, "mp_flla2015": 5}


def test_a_stored_row_todays_geometry_rule_refuses_is_left_out_and_counted(lake, tmp_path):
    """A lake keeps rows written under an older ingest rule (Cu and Hf 1.50 A apart passed before the
    element-aware distance rule); the training set re-checks them, so the graph builder never meets one."""
    from csp.models.dataset import load_arrays
    from csp.models.training import dataset_graphs

    _fill(lake)
    stale = structure_row("old", "HfCu", energy=-0.2)
    stale.update(source="mp_flla2015", elements=["Cu", "Hf"], species=["Cu", "Hf"],
                 frac_coords=[[0, 0, 0], [0.358, 0, 0]])  # fmt: skip
    lake.append("structures", [stale], run_id="t")
    summary = export_training_set(lake, tmp_path / "dft.npz", kind="dft", exclude={"MgO"})
    assert summary.geometry_refused == 1 and summary.excluded_rows == 1 and summary.rows == 4
    arrays = load_arrays(summary.path)
    assert "mp_flla2015:old" not in set(arrays.ids)
    assert len(dataset_graphs(arrays, k=4).natoms) == 4


def test_hypothetical_structures_of_each_kind_join_as_their_own_group(tmp_path):
    """Prototype decorations join by their last frame (grouped by prototype); the search generator's random
    structures and an active round's search structures join each as its own group; frames, references and
    elements never join."""
    from storage.label_parts import read_label_parts, write_label_parts
    from storage.training_sets import hypothetical_polymorphs

    repo = Path(__file__).resolve().parents[2]
    parts = sorted((repo / "data" / "labels" / "chgnet-0.3.0").glob("part-00[04].parquet"))
    parts += sorted((repo / "data" / "labels" / "active").glob("round-001/part-*.parquet"))
    columns, natoms = read_label_parts(parts)
    wanted = {"NaCl", "Li6Br3N"}
    index = np.flatnonzero(np.isin(columns["formula"], sorted(wanted)))
    offsets = np.concatenate([[0], np.cumsum(natoms)])
    atoms = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in index])
    sub = {k: v[index] for k, v in columns.items() if k not in ("numbers", "frac_coords")}
    sub |= {"numbers": columns["numbers"][atoms], "frac_coords": columns["frac_coords"][atoms]}
    write_label_parts(sub, natoms[index], tmp_path)
    got = hypothetical_polymorphs(sorted(tmp_path.glob("part-*.parquet")), exclude=["MgO"])
    ids = [str(i).split(":", 1)[1] for i in got.rows.arrays["ids"]]
    kinds = dict(zip(ids, got.kinds, strict=True))
    by_kind = {k: [i for i in ids if kinds[i] == k] for k in ("prototype", "random", "search")}
    assert all(by_kind.values()), {k: len(v) for k, v in by_kind.items()}
    relaxation = dict(zip(map(str, sub["id"]), map(str, sub["relaxation"]), strict=True))
    assert {relaxation[i] for i in by_kind["prototype"]} <= {"relaxed", "partially_relaxed"}
    assert {relaxation[i] for i in by_kind["random"]} == {"unrelaxed"}
    assert any(i.endswith("|initial") for i in by_kind["search"])  # the structure as the search found it
    assert any(i.endswith("|relaxed") for i in by_kind["search"])
    assert not any(relaxation[i] == "frame" for i in ids) and not any(i.startswith("ref|") for i in ids)
    labels = dict(zip(ids, got.prototype, strict=True))
    assert all(labels[i] == f"{kinds[i]}:{i}" for i in by_kind["random"] + by_kind["search"])
    assert all(labels[i] == i.split("|")[2].split(":")[0] for i in by_kind["prototype"])  # AB_cF8_225_a_b
    assert (got.rows.arrays["target"] == 0).all()
