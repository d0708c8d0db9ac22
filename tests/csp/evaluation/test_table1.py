"""The success test and the explanation of a miss, on small real structures (no campaign, no lake)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from csp.evaluation.table1 import MISS_REASONS, Reference, accuracy, column_key, explain_miss, judge_result
from csp.structures.symmetry import analyze
from tests.space_groups import from_spacegroup

A = 4.212


def rocksalt(a: float = A, c: float | None = None) -> Structure:
    s = from_spacegroup("Fm-3m", Lattice.cubic(a), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if c is not None:
        s = Structure(Lattice.from_parameters(a, a, c, 90, 90, 90), s.species, s.frac_coords)
    return s


def zincblende() -> Structure:
    return from_spacegroup("F-43m", Lattice.cubic(4.6), ["Mg", "O"], [[0, 0, 0], [0.25, 0.25, 0.25]])


def wurtzite() -> Structure:
    return from_spacegroup(
        "P6_3mc", Lattice.hexagonal(3.3, 5.3), ["Mg", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.38]]
    )


MGO = Reference(
    formula="MgO",
    crystal_system="cubic",
    spacegroup=225,
    structure=rocksalt(),
    lattice_exp=(A,),
    dhf_exp=-3.1176,
    paper={"fixed_a0.5": True, "all_a0.5": False},
)


def entry(rank: int, structure: Structure, **values) -> SimpleNamespace:
    conv = analyze(structure).get_conventional_standard_structure()
    a, b, c = conv.lattice.abc
    number = analyze(structure).get_space_group_number()
    return SimpleNamespace(
        rank=rank,
        structure=structure,
        spacegroup=number,
        spacegroup_symbol=analyze(structure).get_space_group_symbol(),
        a=a,
        b=b,
        c=c,
        dhf_pred_ev_per_atom=values.get("dhf", -3.0),
        energy_potential_ev_per_atom=values.get("energy", -6.0 + rank),
        dhf_potential_ev_per_atom=None,
        fitness=0.1 * rank,
        exploitation_gap_ev_per_atom=values.get("gap", 0.1 * rank),
    )


def row(step: int, structure: Structure) -> dict:
    return {
        "outer_step": step,
        "stage": "outer",
        "spacegroup": analyze(structure).get_space_group_number(),
        "lattice": structure.lattice.matrix.ravel().tolist(),
        "numbers": [site.specie.Z for site in structure],
        "frac_coords": np.asarray(structure.frac_coords).ravel().tolist(),
    }


def result(ranking: list[SimpleNamespace]) -> SimpleNamespace:
    return SimpleNamespace(top=ranking, search_top=ranking, refined=True)


def others(n: int, start: int = 1) -> list[SimpleNamespace]:
    return [entry(start + i, zincblende() if i % 2 else wurtzite()) for i in range(n)]


def test_judge_result_finds_the_reference_with_its_errors():
    ranking = [entry(1, zincblende()), entry(2, rocksalt(4.3), dhf=-3.0)]
    judged = judge_result(MGO, ranking)
    assert judged["found"] and judged["rank"] == 2 and judged["judged_by"] == "structure"
    assert judged["lattice_error_pct"] == pytest.approx(100 * (4.3 - A) / A, rel=1e-3)
    assert judged["dhf_error_pct"] == pytest.approx(100 * 0.1176 / 3.1176, rel=1e-3)
    assert judged["top_spacegroups"] == [216, 225]
    assert not judge_result(MGO, [entry(1, zincblende())])["found"]


def test_srcu_is_judged_by_crystal_system():
    srcu = Reference("SrCu", "hexagonal", None, None, (), -0.01, {})
    assert srcu.judged_by == "crystal system"
    assert srcu.matches(wurtzite()) and not srcu.matches(rocksalt())
    assert srcu.lattice_error_pct(3.3, 5.3) is None and not srcu.matches_loosely(wurtzite())


def test_a_reference_ranked_sixth_names_the_five_that_beat_it():
    ranking = [*others(5), entry(6, rocksalt(), gap=0.0)]
    miss = explain_miss(MGO, result(ranking), refined=True, outer_rows=[])
    assert miss["reason"] == "ranked below top 5" and miss["rank"] == 6
    assert [b["rank"] for b in miss["beaten_by"]] == [1, 2, 3, 4, 5]
    assert miss["beaten_by"][0]["gap_ev_per_atom"] == pytest.approx(0.1)
    assert miss["match"]["spacegroup"] == 225


def test_a_strained_reference_in_the_top_5_matched_only_outside_the_tolerance():
    ranking = [entry(1, rocksalt(A, 1.3 * A)), *others(3, start=2)]
    assert not MGO.matches(ranking[0].structure) and MGO.matches_loosely(ranking[0].structure)
    miss = explain_miss(MGO, result(ranking), refined=True, outer_rows=[])
    assert miss["reason"] == "outside tolerance" and miss["rank"] == 1
    assert "225 expected" in miss["detail"]


@pytest.mark.parametrize(("refined_steps", "reason"), [([], "not refined"), ([7], "relaxed away")])
def test_a_produced_reference_not_in_the_refined_ranking(refined_steps, reason):
    ranking = others(4)
    outer = [row(3, zincblende()), row(7, rocksalt())]
    refined_rows = [{"source_outer_step": s, "stage": "refined"} for s in refined_steps]
    miss = explain_miss(
        MGO, result(ranking), refined=True, outer_rows=outer, refined_rows=refined_rows, refine_top_n=2
    )
    assert miss["reason"] == reason


def test_never_produced_says_whether_an_inner_structure_matched():
    miss = explain_miss(
        MGO, result(others(3)), refined=False, outer_rows=[row(1, zincblende())], inner_hit=True
    )
    assert miss["reason"] == "never produced" and "inner structure" in miss["detail"]
    assert set(MISS_REASONS) >= {miss["reason"]}


def test_accuracy_per_column_with_spread_and_the_papers_percentage():
    refs = {"MgO": MGO, "X": Reference("X", "cubic", 225, None, (), None, {"fixed_a0.5": False})}
    records = [
        {"formula": f, "strategy": "fixed", "alpha": 0.5, "refine": True, "seed": s, "found": found}
        for f, s, found in [("MgO", 0, True), ("X", 0, False), ("MgO", 1, True), ("X", 1, True)]
    ]
    (col,) = accuracy(records, refs)
    assert col["per_seed_pct"] == {"0": 50.0, "1": 100.0}
    assert col["mean_pct"] == 75.0 and col["std_pct"] == pytest.approx(np.std([50, 100], ddof=1))
    assert col["paper_pct"] == 50.0 and col["compounds"] == 2
    assert column_key("all", 0) == "all_a0" and column_key("fixed", 0.5) == "fixed_a0.5"
    (base,) = accuracy([{**r, "alpha": None} for r in records], refs)
    assert base["paper_pct"] is None
