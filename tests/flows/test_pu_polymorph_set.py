"""PU sets with hypothetical polymorphs, end to end on real data: the mirror's experimental prototypes as
positives, a slice of the committed CHGNet label parts as hypothetical polymorphs, a tiny CPU training run.

Checked: the siblings of a positive's composition are unlabeled rows; no validation compound is anywhere; no
positive's structure is also an unlabeled row; the PU metrics (TPR, unlabeled fraction, polymorph
discrimination) exist, lie in range, and reach model.json and the card.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from flows.models import TrainParameters, export_training_set
from storage.label_parts import read_label_parts, write_label_parts
from storage.splits import load_exclusions, split_of
from tests.storage.test_lake import structure_row

pytestmark = pytest.mark.mirror
REPO = Path(__file__).resolve().parents[2]
LABELS = REPO / "data" / "labels" / "chgnet-0.3.0"
#: compositions with an experimental-prototype positive and CHGNet decorations, in all three splits
FORMULAS = ("NaCl", "CdI2", "MoC", "ZnS", "BeO", "Ni3Sn", "CaO", "TiN", "CaF2", "AlSb", "CuCl", "SiC", "FeSi")
TINY = [
    "--hidden",
    "16",
    "--alignn-layers",
    "1",
    "--gcn-layers",
    "1",
    "--embedding",
    "16",
    "--head-hidden",
    "16",
]


def _subset(columns: dict, natoms: np.ndarray, index: np.ndarray) -> tuple[dict, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum(natoms)])
    atoms = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in index])
    out = {k: v[index] for k, v in columns.items() if k not in ("numbers", "frac_coords")}
    return out | {"numbers": columns["numbers"][atoms], "frac_coords": columns["frac_coords"][atoms]}, natoms[
        index
    ]


def _label_slice(folder: Path) -> list[Path]:
    """Every row (all frames) of FORMULAS from the committed parts, plus an MgO decoration (a validation
    compound, which must never enter) made from NaCl's rock-salt decoration."""
    columns, natoms = read_label_parts(sorted(LABELS.glob("part-*.parquet")))
    index = np.flatnonzero(np.isin(columns["formula"], FORMULAS))
    sub, n = _subset(columns, natoms, index)
    rock_salt = np.flatnonzero(sub["id"] == "NaCl|proto|AB_cF8_225_a_b:Na,Cl")
    mgo, n_mgo = _subset(sub, n, rock_salt)
    mgo["numbers"] = np.where(mgo["numbers"] == 11, 12, 8)
    mgo["formula"], mgo["id"], mgo["tag"] = (
        ["MgO"],
        ["MgO|proto|AB_cF8_225_a_b:Mg,O"],
        ["AB_cF8_225_a_b:Mg,O"],
    )
    both = {k: np.concatenate([sub[k], np.asarray(mgo[k])]) for k in sub}
    return write_label_parts(both, np.concatenate([n, n_mgo]), folder)


def _planted(source_id: str, formula: str, species: list[str], lattice, frac, label: int) -> dict:
    row = structure_row(source_id, formula)
    row.update(
        source="dft_test",
        elements=sorted(set(species)),
        nsites=len(species),
        species=species,
        lattice_angstrom=list(np.ravel(lattice)),
        frac_coords=frac,
        icsd_label=label,
        split=split_of(formula),
    )
    return row


@pytest.fixture(scope="module")
def pu_set(tmp_path_factory, data_mirror):
    from storage.ingest import ingest_source
    from storage.lake import Lake

    tmp = tmp_path_factory.mktemp("pu")
    lake = Lake(tmp / "home").init()
    ingest_source(lake, "experimental_prototypes", data_mirror, workers=2)
    fcc = 0.5 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    lake.append(
        "structures",
        [  # a DFT copy of the rock-salt positive (must leave), a CsCl-type sibling (stays), a MgO positive
            _planted("nacl-rs", "NaCl", ["Na", "Cl"], 5.70 * fcc, [[0, 0, 0], [0.5, 0.5, 0.5]], 0),
            _planted("nacl-b2", "NaCl", ["Na", "Cl"], 3.40 * np.eye(3), [[0, 0, 0], [0.5, 0.5, 0.5]], 0),
            _planted("mgo-rs", "MgO", ["Mg", "O"], 4.21 * fcc, [[0, 0, 0], [0.5, 0.5, 0.5]], 1),
        ],
        run_id="t",
    )
    exclusions = load_exclusions(data_mirror / "validation" / "table1.json")
    parts = _label_slice(tmp / "labels")
    summary = export_training_set(
        lake,
        tmp / "pu.npz",
        kind="pu",
        exclude=exclusions,
        hypothetical=[str(tmp / "labels" / "part-*.parquet")],
    )
    return summary, parts, exclusions


def _formulas(arrays) -> list[str]:
    """Each structure's reduced formula, from its atomic numbers (pymatgen, independent of the code tested)."""
    from pymatgen.core import Composition, Element

    off = arrays.offsets
    out = []
    for i in range(len(arrays)):
        z, counts = np.unique(arrays.numbers[off[i] : off[i + 1]], return_counts=True)
        elements = {Element.from_Z(int(a)): int(n) for a, n in zip(z, counts, strict=True)}
        out.append(Composition(elements).reduced_formula)
    return out


@pytest.mark.slow  # the module's lake takes ~30 s to build
def test_siblings_are_unlabeled_and_validation_compounds_are_nowhere(pu_set):
    from csp.models.dataset import load_arrays

    summary, _, exclusions = pu_set
    arrays = load_arrays(summary.path)
    formulas = _formulas(arrays)
    assert not set(formulas) & set(exclusions)  # MgO (lake and labels) and the other 16 left out
    assert not any("MgO" in i for i in arrays.ids)
    by_formula = defaultdict(lambda: {0: [], 1: []})
    for f, label, i in zip(formulas, arrays.target.astype(int), arrays.ids, strict=True):
        by_formula[f][label].append(str(i))
    # every chosen composition keeps its positive(s) and has hypothetical siblings among the unlabeled rows
    for formula in FORMULAS:
        assert by_formula[formula][1], formula
    nacl = by_formula["NaCl"][0]
    assert "dft_test:nacl-b2" in nacl  # a DFT sibling stays
    assert (
        sum(i.startswith("chgnet-0.3.0:NaCl|proto|AB_cF8_216_c_a") for i in nacl) == 1
    )  # 2 decorations, 1 row
    assert not any("|frame|" in i or i.endswith("|initial") for i in arrays.ids)  # last frames only
    hyp = summary.hypothetical
    assert hyp["hypothetical_added"] > 0 and hyp["compositions_in_two_splits"] == 0
    assert all(hyp["compositions_with_siblings_hypothetical"][s] > 0 for s in ("train", "val", "test"))
    assert summary.per_source["chgnet-0.3.0"] == hyp["hypothetical_added"]
    assert hyp["left_out"]["validation compound"] == 1


@pytest.mark.slow  # the module's lake takes ~30 s to build
def test_no_positive_structure_is_also_unlabeled(pu_set):
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from csp.models.dataset import load_arrays, to_crystals

    summary, _, _ = pu_set
    arrays = load_arrays(summary.path)
    ids = set(map(str, arrays.ids))
    # the DFT copy of rock-salt NaCl and the CHGNet rock-salt decorations are the positive itself
    assert "dft_test:nacl-rs" not in ids
    assert not any(i.startswith("chgnet-0.3.0:NaCl|proto|AB_cF8_225_a_b") for i in ids)
    formulas = _formulas(arrays)
    crystals = to_crystals(arrays)
    matcher = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5)
    checked = 0
    for f in set(formulas):
        rows = [i for i, g in enumerate(formulas) if g == f]
        positives = [crystals[i].to_pymatgen() for i in rows if arrays.target[i] == 1]
        for i in (i for i in rows if arrays.target[i] == 0):
            checked += len(positives)
            assert not any(matcher.fit(crystals[i].to_pymatgen(), p) for p in positives), arrays.ids[i]
    assert checked > 20


@pytest.mark.slow
def test_tiny_cpu_run_writes_the_pu_metrics_to_model_json_and_card(pu_set, tmp_path):
    from csp.models.onnx_export import export_checkpoint
    from csp.models.training.__main__ import main
    from flows.model_card import model_card
    from flows.models import summary_dict

    summary, _, _ = pu_set
    run = tmp_path / "run"
    args = ["pu", "--data", str(summary.path), "--out", str(run), "--epochs", "1", "--n-bags", "4"]
    assert main([*args, "--batch-size", "64", "--siblings-every-bag", *TINY]) == 0
    info = json.loads((run / "metrics.json").read_text())
    assert info["settings"]["pu_siblings_every_bag"] is True
    for split in ("validation", "test"):
        m = info["metrics"][split]
        assert 0 <= m["tpr_at_0.5"] <= 1 and 0 <= m["unlabeled_fraction_at_0.5"] <= 1
        poly = m["polymorphs"]
        assert poly["compositions"] >= 1 and 0 <= poly["positive_highest"] <= 1
        assert 0 < poly["random_baseline"] < 1
        assert "chgnet-0.3.0" in poly["per_sibling_source"]
    meta_path = export_checkpoint(run, tmp_path / "onnx")
    meta = json.loads(meta_path.read_text())
    assert meta["metrics"]["test"]["polymorphs"] == info["metrics"]["test"]["polymorphs"]
    meta["dataset"] = summary_dict(summary)
    card = model_card(
        "X-pu", meta, info, "csp models train pu --hypothetical-polymorphs data/labels/chgnet-0.3.0"
    )
    assert "| test polymorph discrimination |" in card.split("## Model")[0]
    assert "- hypothetical polymorphs (unlabeled):" in card


def test_train_command_reproduces_the_pu_polymorph_options():
    import typer.main

    from flows.cli import app

    params = TrainParameters(
        mode="pu", name="x-pu", sources=["gnome"], siblings_every_bag=True,
        hypothetical_polymorphs=["data/labels/chgnet-0.3.0/part-*.parquet"],
    )  # fmt: skip
    command = params.command()
    assert "--siblings-every-bag" in command and "'data/labels/chgnet-0.3.0/part-*.parquet'" in command
    train = typer.main.get_command(app).commands["models"].commands["train"]
    ctx = train.make_context("train", [w.strip("'") for w in command.split()[3:]])
    values = {k: v for k, v in ctx.params.items() if k != "export_model"}
    assert TrainParameters(**values) == params
    assert params.train_args("cpu")["pu_siblings_every_bag"] is True


def test_hypothetical_polymorphs_are_refused_outside_pu_and_for_missing_files(lake, tmp_path):
    from storage.errors import StorageError

    with pytest.raises(ValueError, match="PU training sets only"):
        export_training_set(lake, tmp_path / "x.npz", kind="dft", exclude=[], hypothetical=[str(LABELS)])
    with pytest.raises(StorageError, match="names no labelled Parquet part"):
        export_training_set(
            lake, tmp_path / "x.npz", kind="pu", exclude=[], hypothetical=["no/such/*.parquet"]
        )
