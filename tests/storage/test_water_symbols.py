"""Issue 22 F6: water's oxygen and hydrogen written ``Ow``/``OW`` and ``Hw``/``HW`` (hydrate CIFs) read as O and H.

pymatgen's CIF parser builds O and H for them (``storage.readers._structure.pymatgen_site_element``), as it does
for the SHELX labels ``O1W`` and ``H1W``; the check reads them the same way, so the stored structure is the one the
file means and the check and the parser cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storage.readers._structure import cell_from_cif, pymatgen_site_element
from tests.storage.test_group_symbols import read_folder

BRUCITE = (Path(__file__).resolve().parents[1] / "fixtures" / "issue22" / "brucite_deuterium.cif").read_text()


def brucite(o: str, h: str, *, typed: bool = True, formula: str = "") -> str:
    """Brucite, Mg(OH)2 (P -3 m 1, 5 sites), its O and H sites written ``o`` and ``h`` (type symbols, or labels
    with no type-symbol column)."""
    text = BRUCITE.replace("O1 O ", f"O1 {o} ").replace("H1 D ", f"H1 {h} ")
    if not typed:
        text = text.replace("_atom_site_type_symbol\n", "").replace("Mg1 Mg ", "Mg1 ")
        text = text.replace(f"O1 {o} ", f"{o} ").replace(f"H1 {h} ", f"{h} ")
    return text.replace("loop_\n_atom_site_label", f"{formula}loop_\n_atom_site_label")


@pytest.mark.parametrize(
    "symbol, element", [("Ow", "O"), ("OW", "O"), ("Hw", "H"), ("HW", "H"), ("OW1", "O")]
)
def test_pymatgen_builds_water_symbols_as_the_element(symbol, element):
    assert pymatgen_site_element(symbol) == element


def test_water_type_symbols_and_labels_store_the_same_structure_as_o_and_h(tmp_path):
    files = {
        "plain.cif": brucite("O", "H"),
        "ow.cif": brucite("Ow", "Hw"),
        "upper.cif": brucite("OW", "HW"),
        "labels.cif": brucite("OW1", "HW1", typed=False),
    }
    stored, refused = read_folder(tmp_path, files)
    assert refused == {}
    assert stored == {"plain": "Mg(HO)2", "ow": "Mg(HO)2", "upper": "Mg(HO)2", "labels": "Mg(HO)2"}
    reference = cell_from_cif(files["plain.cif"])
    assert sorted(reference.species) == ["H", "H", "Mg", "O", "O"]
    for name in ("ow.cif", "upper.cif", "labels.cif"):
        cell = cell_from_cif(files[name])
        assert cell.species == reference.species
        assert np.allclose(cell.frac_coords, reference.frac_coords)


def test_a_declared_formula_still_has_to_agree_with_water_symbols(tmp_path):
    files = {
        "agrees.cif": brucite("OW", "HW", formula="_chemical_formula_sum 'H2 Mg O2'\n"),
        "tungsten.cif": brucite("OW", "HW", formula="_chemical_formula_sum 'H2 Mg W2'\n"),
    }
    stored, refused = read_folder(tmp_path, files)
    assert stored == {"agrees": "Mg(HO)2"}
    assert refused["tungsten.cif"] == (
        "tungsten.cif: declared formula Mg(HW)2 (H2 Mg W2) disagrees with the sites' formula Mg(HO)2 (missing, "
        "extra or mislabelled sites)"
    )


def test_a_water_symbol_with_more_than_a_site_number_is_still_refused(tmp_path):
    stored, refused = read_folder(tmp_path, {"owx.cif": brucite("OWX", "HW")})
    assert stored == {}
    assert refused["owx.cif"] == (
        "owx.cif: site O1: type symbol 'OWX' is not an element (a group such as OH, or a typo); write one site per atom"
    )
