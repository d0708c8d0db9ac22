"""Inputs at the edges get their true reason in one line: deeply nested filters, huge cells, source names."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest

from storage.ingest import SourceNameError, check_source_name
from storage.optimade import MAX_FILTER_DEPTH, FilterError, translate
from storage.validation import StructureError, check_geometry
from tests.flows.cli_process import invoke_csp, one_line_error


@pytest.mark.parametrize(
    ("filter_", "message"),
    [
        (
            "(" * 200 + "nsites<8" + ")" * 200,
            f"nests parentheses more than {MAX_FILTER_DEPTH} deep (at column 51)",
        ),
        ("NOT " * 400 + "nsites<8", "Malformed filter"),
    ],
)
def test_deep_filters_are_one_line(filter_, message):
    with pytest.raises(FilterError, match=re.escape(message)) as caught:
        translate(filter_)
    assert "\n" not in str(caught.value)


def test_nesting_up_to_the_limit_and_parentheses_in_strings_translate():
    depth = MAX_FILTER_DEPTH
    assert translate("(" * depth + "nsites<8" + ")" * depth).params == (8,)
    assert translate('chemical_formula_reduced="' + "(" * 80 + '"').params == ("(" * 80,)


def test_the_cli_refuses_a_deep_filter_in_one_line(tmp_path):
    result = invoke_csp(tmp_path, "candidates", "query", "(" * 200 + "nsites<8" + ")" * 200)
    assert "nests parentheses more than 50 deep" in one_line_error(result)


def test_a_cell_of_8000_atoms_is_refused_for_its_size_not_its_shape():
    grid = np.stack(np.meshgrid(*[np.arange(20)] * 3, indexing="ij"), -1).reshape(-1, 3) / 20
    with pytest.raises(StructureError) as caught:
        check_geometry(np.eye(3) * 50.0, ["Na"] * len(grid), grid)  # 2.5 A apart, 15.6 A^3 per atom
    message = str(caught.value)
    assert message.startswith("too many atoms: 8000 sites") and "at most 4,472 atoms" in message
    assert "needle" not in message


@pytest.mark.parametrize("name", ["", "   ", "a\tb", "caf\u00e9\u200b", "line\nbreak", " padded"])
def test_empty_blank_and_invisible_source_names_are_refused(name):
    with pytest.raises(SourceNameError) as caught:
        check_source_name(name)
    assert "\n" not in str(caught.value)


def test_nfc_and_nfd_names_are_one_source(tmp_path):
    from pymatgen.core import Lattice, Structure

    from storage.lake import Lake

    folder = tmp_path / "in"
    folder.mkdir()
    Structure(Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(folder / "a.cif")
    )
    (folder / "id_prop.csv").write_text("a.cif,-3.0\n")
    nfc, nfd = (unicodedata.normalize(form, "café") for form in ("NFC", "NFD"))
    assert nfc != nfd and check_source_name(nfd) == nfc
    home = tmp_path / "home"
    for name in (nfc, nfd):
        result = invoke_csp(home, "ingest", "folder", str(folder), "--source", name)
        assert result.returncode == 0, result.stderr
    rows = Lake(home).query("SELECT source FROM structures").to_pylist()
    assert rows == [{"source": nfc}]
    assert "source name is empty" in one_line_error(
        invoke_csp(home, "ingest", "folder", str(folder), "--source", " ")
    )
