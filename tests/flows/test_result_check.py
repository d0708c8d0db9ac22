"""The campaign result marks and ranks last what the lake's ingest would refuse (issue 22, trial item 1).

A search row of a tetragonal LiH cell with Li-H 0.85 A (the shared distance rule's 0.795 A passes it, 0.50 x
the shortest Li-H of the reference data does not) with the best fitness must not be rank 1 or shown unmarked;
the physically valid rock salt (a = 4.02 A, Li-H 2.01 A) ranks first.
"""

from __future__ import annotations

import numpy as np

from csp.potentials.result import campaign_result
from storage.validation import structure_problem


def _row(lattice: list[float], numbers: list[int], frac: list[float], outer: int, fitness: float) -> dict:
    return {
        "stage": "outer",
        "outer_step": outer,
        "inner_step": -1,
        "lattice": lattice,
        "numbers": numbers,
        "frac_coords": frac,
        "valid": True,
        "fitness": fitness,
        "dhf_pred_ev_per_atom": fitness,
        "p_syn": 0.5,
        "p_syn_std": 0.1,
        "family_spacegroup": 225,
        "family_wyckoff": "Li:4a H:4b",
    }


SQUEEZED = _row([3, 0, 0, 0, 3, 0, 0, 0, 4], [3, 1], [0, 0, 0, 0, 0, 0.2125], 0, -2.0)  # Li-H 0.85 A
ROCK_SALT = _row(
    (np.eye(3) * 4.02).ravel().tolist(),
    [3, 3, 3, 3, 1, 1, 1, 1],
    [0, 0, 0, 0, 0.5, 0.5, 0.5, 0, 0.5, 0.5, 0.5, 0, 0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0.5, 0, 0, 0, 0.5],
    1,
    -0.5,
)
ROWS = [SQUEEZED, ROCK_SALT]


def test_a_crystal_the_lake_refuses_is_marked_and_ranked_after_the_valid_one():
    result = campaign_result(ROWS, k=5, check=structure_problem)
    assert result.checked
    assert [e.outer_step for e in result.top] == [1, 0]  # the valid cell first, although its FV is worse
    assert result.top[0].check is None
    assert "Li distance 0.850 A" in result.top[1].check  # H-Li, named by the lake's own rule
    assert result.top[1].public()["check"] == result.top[1].check  # in every export and the summary
    assert result.check_line() == (
        "1 of the top 2 fail the lake's physical check (column check; `csp ingest` would refuse them): likely "
        "artefacts of the surrogate models, which the search's looser distance rule lets through "
        "(docs/bad-input.md); ranked after the 1 that pass."
    )
    # the search's own top k keeps its FV order (the paper's answer), marked alike
    assert [(e.outer_step, e.check is None) for e in result.search_top] == [(0, False), (1, True)]
    assert result.check_line("search").startswith("1 of the search's own top 2 fail")
    assert result.public()["check_line"] == result.check_line()


def test_without_a_check_nothing_is_marked_or_moved():
    result = campaign_result(ROWS, k=5)
    assert not result.checked and result.check_line() is None
    assert [(e.outer_step, e.check) for e in result.top] == [(0, None), (1, None)]


def test_the_check_is_the_lakes_own_refusal():
    from storage.validation import StructureError, check_geometry

    e = campaign_result(ROWS, k=5, check=structure_problem).top[1]
    s = e.structure
    try:
        check_geometry(s.lattice.matrix, [x.specie.symbol for x in s], s.frac_coords, units_check=True)
    except StructureError as exc:
        assert str(exc) == e.check
    else:
        raise AssertionError("the lake accepted a Li-H bond of 0.85 A")


def test_campaign_show_says_which_entries_fail_and_why(monkeypatch):
    import io

    from rich.console import Console

    from flows.cli import _result

    out = io.StringIO()
    monkeypatch.setattr(_result, "console", Console(file=out, width=400))
    _result.print_result(campaign_result(ROWS, k=5, check=structure_problem), "c")
    text = out.getvalue()
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert rows[0].rstrip("│ ").endswith("ok")  # rank 1: the valid rock salt
    assert "FAILS: H-Li distance 0.850 A is 0.50 x the shortest H-Li distance" in rows[1]
    assert "1 of the top 2 fail the lake's physical check" in text.replace("\n", " ")
    assert "1 of the search's own top 2 fail" in text.replace("\n", " ")  # unrefined: its top k is not shown
