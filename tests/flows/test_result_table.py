"""`csp campaign show`'s table of the one result: its footnote names the quantity its column shows (fault F7:
an FV-ranked table's column "ΔdHf model to rank 1" had a footnote beginning "ΔE:")."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from flows.cli import _result


def _entry(rank: int) -> SimpleNamespace:
    return SimpleNamespace(
        rank=rank, spacegroup_symbol="Fm-3m", spacegroup=225, delta_e_mev_per_atom=12.5 * (rank - 1),
        energy_potential_ev_per_atom=-3.1, converged=True, dhf_pred_ev_per_atom=-2.9, p_syn=0.8,
        p_syn_std=0.1, fitness=0.02, a=4.2, b=4.2, c=4.2, wyckoff="Mg:4a O:4b", source_family="", duplicates=0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("refined", "column", "kind"),
    [
        (False, "ΔdHf model to rank 1 (meV/atom)", "the models' predicted formation enthalpy dHf"),
        (True, "ΔE to rank 1 (meV/atom)", "energy of chgnet per atom of the relaxed structure"),
    ],
)
def test_the_footnote_names_the_column_it_explains(monkeypatch, refined, column, kind):
    out = io.StringIO()
    monkeypatch.setattr(_result, "console", Console(file=out, width=300))
    result = SimpleNamespace(
        top=[_entry(1), _entry(2)], search_top=[], formula="MgO", rank_rule="FV", refined=refined,
        energy_kind=kind, refinement_line=lambda: "", checked=False, check_line=lambda which="final": None,
    )  # fmt: skip
    monkeypatch.setattr(_result, "_print_search_top", lambda result: None)
    _result.print_result(result, "c")
    text = out.getvalue()
    assert column in text
    footnote = next(line for line in text.splitlines() if "above rank 1" in line)
    assert footnote.startswith(f"{column.split(' to rank 1')[0]}: {kind}, above rank 1."), footnote
    if not refined:
        assert "ΔE" not in text
