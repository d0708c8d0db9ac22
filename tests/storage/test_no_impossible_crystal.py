"""Issue 22 leftovers, ingest side: no impossible crystal enters the lake, and no valid file is refused.

Each test ingests tiny files through the reader a user brings them with (``id_prop.csv`` folders, OPTIMADE
JSON) into a real lake and asserts the quarantine row with its reason, or the structure stored as it is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from storage.ingest import ingest_records
from storage.lake import Lake
from storage.readers import read_id_prop_folder, read_optimade
from storage.validation import OCCUPANCY_TOLERANCE

HEAD = """data_mgo
_cell_length_a 4.212
_cell_length_b 4.212
_cell_length_c 4.212
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
"""
P1 = "_symmetry_space_group_name_H-M 'P 1'\n"  # read by the fast parser
INVERSION = "loop_\n_symmetry_equiv_pos_as_xyz\n'x,y,z'\n'-x,-y,-z'\n"  # read by pymatgen
SITES = """loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Mg1 Mg 0 0 0 {occupancy}
O1 O 0.5 0.5 0.5 1
"""


def mgo(symmetry: str = P1, *, extra: str = "", occupancy: str = "1", head: str = HEAD) -> str:
    return head + symmetry + extra + SITES.format(occupancy=occupancy)


def ingest_folder(tmp_path: Path, files: dict[str, str | bytes], id_prop: str | None = None):
    """Ingest a folder holding ``files`` (``id_prop.csv`` lists each at -1 eV/atom unless given); returns
    ``(stored rows, quarantine rows)`` of the lake."""
    folder = tmp_path / "folder"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    if id_prop is None:
        id_prop = "".join(f"{name},-1.0\n" for name in files)
    (folder / "id_prop.csv").write_text(id_prop)
    lake = Lake(tmp_path / "home")
    ingest_records(lake, read_id_prop_folder(folder, source="t", license="x"), source="t", run_id="r")
    stored = lake.query("SELECT source_id, reduced_formula, nsites, spacegroup FROM structures").to_pylist()
    quarantined = lake.query("SELECT source_id, reason FROM quarantine ORDER BY row").to_pylist()
    return stored, quarantined


def only_reason(tmp_path: Path, text: str | bytes) -> str:
    """The one quarantine reason of a folder holding ``text`` as ``a.cif``, after the file name it begins with."""
    stored, quarantined = ingest_folder(tmp_path, {"a.cif": text})
    assert stored == [] and len(quarantined) == 1, (stored, quarantined)
    reason = quarantined[0]["reason"]
    assert reason.startswith("a.cif: "), reason  # a folder's refusal of a file names the file
    return reason.removeprefix("a.cif: ")


def stored_mgo(tmp_path: Path, text: str | bytes, *, nsites: int = 2, spacegroup: int = 221) -> None:
    """Assert the file is stored as MgO (by default the two-site CsCl-type cell of :func:`mgo`)."""
    stored, quarantined = ingest_folder(tmp_path, {"a.cif": text})
    assert quarantined == [], quarantined
    assert stored == [
        {"source_id": "a", "reduced_formula": "MgO", "nsites": nsites, "spacegroup": spacegroup}
    ]


# --- 1. symmetry operations that form no group ----------------------------------------------------------


def operations(*ops: str) -> str:
    return "loop_\n_symmetry_equiv_pos_as_xyz\n" + "".join(f"'{op}'\n" for op in ops)


@pytest.mark.parametrize(
    ("ops", "reason"),
    [
        (
            ("-x,-y,-z",),
            "the symmetry operations (1 listed) do not form a group: the identity 'x,y,z' is missing",
        ),
        (("x,y,z", "y,-x,z"), "'y,-x,z' after 'y,-x,z' is none of them"),  # a 4-fold without its square
        (("x,y,z", "x+1/3,y,z"), "'x+1/3,y,z' after 'x+1/3,y,z' is none of them"),  # no lattice translation
        (
            ("x,y,z", "-x,-y,-z", "x,y+1/2,z+1/2", "x+1/2,y,z+1/2"),
            "after",
        ),  # F centring without x+1/2,y+1/2,z
    ],
)
def test_symmetry_operations_that_form_no_group_are_quarantined(tmp_path, ops, reason) -> None:
    got = only_reason(tmp_path, mgo(operations(*ops)))
    assert got.startswith("the symmetry operations") and "do not form a group" in got and reason in got
    assert got.endswith("list the space group's full set of operations")


def test_a_whole_space_group_missing_one_operation_is_quarantined(tmp_path) -> None:
    from pymatgen.symmetry.groups import SpaceGroup

    ops = [op.as_xyz_str() for op in SpaceGroup("F m -3 m").symmetry_ops]
    stored_mgo(tmp_path / "whole", mgo(operations(*ops)), nsites=8, spacegroup=225)  # rock salt
    reason = only_reason(tmp_path / "one-short", mgo(operations(*ops[:-1])))
    assert reason.startswith("the symmetry operations (191 listed) do not form a group")


# --- 4. numbers no crystal can have ----------------------------------------------------------------------


def edit(tag: str, value: str) -> str:
    return HEAD.replace(next(line for line in HEAD.splitlines() if line.startswith(tag)), f"{tag} {value}")


@pytest.mark.parametrize("symmetry", [P1, INVERSION], ids=["fast-parser", "pymatgen"])
@pytest.mark.parametrize(
    ("head", "extra", "reason"),
    [
        (edit("_cell_length_a", "-4.212"), "", "cell length a = -4.212 A is not a positive finite length"),
        (edit("_cell_length_b", "0"), "", "cell length b = 0 A is not a positive finite length"),
        (edit("_cell_length_c", "nan"), "", "cell length c = nan A is not a positive finite length"),
        (edit("_cell_length_a", "inf"), "", "cell length a = inf A is not a positive finite length"),
        (
            edit("_cell_angle_alpha", "NaN"),
            "",
            "cell angle alpha = nan degrees is not between 0 and 180 degrees",
        ),
        (
            edit("_cell_angle_beta", "270"),
            "",
            "cell angle beta = 270 degrees is not between 0 and 180 degrees",
        ),
        (
            edit("_cell_angle_alpha", "170").replace("_cell_angle_beta 90", "_cell_angle_beta 40"),
            "",
            "cell angles 170, 40, 90 degrees close no cell",
        ),
        (HEAD, "_cell_formula_units_Z 0\n", "declared Z (_cell_formula_units_Z) = 0 is not a whole number"),
        (HEAD, "_cell_formula_units_Z -2\n", "declared Z (_cell_formula_units_Z) = -2 is not a whole number"),
        (
            HEAD,
            "_cell_formula_units_Z nan\n",
            "declared Z (_cell_formula_units_Z) = nan is not a whole number",
        ),
        (
            HEAD,
            "_cell_formula_units_Z 0.5\n",
            "declared Z (_cell_formula_units_Z) = 0.5 is not a whole number",
        ),
        (
            HEAD,
            "_exptl_crystal_density_diffrn 0\n",
            "declared _exptl_crystal_density_diffrn = 0 g/cm^3 is not",
        ),
        (HEAD, "_exptl_crystal_density_diffrn NaN\n", "declared _exptl_crystal_density_diffrn = nan g/cm^3"),
        (
            HEAD,
            "_exptl_crystal_density_diffrn -3.58\n",
            "declared _exptl_crystal_density_diffrn = -3.58 g/cm^3",
        ),
    ],
)
def test_impossible_cell_numbers_are_quarantined_with_their_reason(
    tmp_path, symmetry, head, extra, reason
) -> None:
    assert only_reason(tmp_path, mgo(symmetry, extra=extra, head=head)).startswith(reason)


@pytest.mark.parametrize("symmetry", [P1, INVERSION], ids=["fast-parser", "pymatgen"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_coordinate_that_is_not_finite_is_quarantined(tmp_path, symmetry, value) -> None:
    text = mgo(symmetry).replace("O1 O 0.5 0.5 0.5", f"O1 O {value} 0.5 0.5")
    reason = only_reason(tmp_path, text)
    assert reason == f"site O1: fractional coordinate x = {float(value):g} is not a finite number"


def test_declared_z_and_density_that_agree_still_read(tmp_path) -> None:
    extra = "_chemical_formula_sum 'Mg O'\n_cell_formula_units_Z 1\n_exptl_crystal_density_diffrn 0.896\n"
    extra += "_exptl_crystal_density_meas 0.000\n"  # COD's "not measured" (a prototype of the mirror has it)
    stored_mgo(tmp_path / "fast", mgo(P1, extra=extra))
    stored_mgo(tmp_path / "pymatgen", mgo(INVERSION, extra=extra.replace("0.896", "0.896(2)")))


def test_optimade_lattice_or_positions_that_are_not_finite_are_quarantined(tmp_path) -> None:
    def entry(sid: str, lattice, positions) -> dict:
        return {
            "id": sid,
            "type": "structures",
            "attributes": {
                "lattice_vectors": lattice,
                "cartesian_site_positions": positions,
                "species_at_sites": ["Mg", "O"],
                "species": [
                    {"name": "Mg", "chemical_symbols": ["Mg"], "concentration": [1.0]},
                    {"name": "O", "chemical_symbols": ["O"], "concentration": [1.0]},
                ],
                "chemical_formula_reduced": "MgO",
            },
        }

    cube = [[4.212, 0, 0], [0, 4.212, 0], [0, 0, 4.212]]
    sites = [[0, 0, 0], [2.106, 2.106, 2.106]]
    text = json.dumps(
        {
            "data": [
                entry("good", cube, sites),
                entry("nan-lattice", [[float("nan"), 0, 0], [0, 4.212, 0], [0, 0, 4.212]], sites),
                entry("inf-position", cube, [[0, 0, 0], [float("inf"), 2.106, 2.106]]),
                entry("zero-vector", [[0, 0, 0], [0, 4.212, 0], [0, 0, 4.212]], sites),
            ]
        }
    )
    path = tmp_path / "mgo.json"
    path.write_text(text)
    lake = Lake(tmp_path / "home")
    ingest_records(lake, read_optimade(path, source="t", license="x"), source="t", run_id="r")
    stored = lake.query("SELECT source_id FROM structures").to_pylist()
    reasons = {
        r["source_id"]: r["reason"]
        for r in lake.query("SELECT source_id, reason FROM quarantine").to_pylist()
    }
    assert stored == [{"source_id": "good"}]
    assert reasons == {
        "nan-lattice": "lattice or coordinates contain NaN or infinity",
        "inf-position": "lattice or coordinates contain NaN or infinity",
        "zero-vector": "lattice is singular (zero volume)",
    }


# --- 5. valid files a reader refused ----------------------------------------------------------------------


@pytest.mark.parametrize("symmetry", [P1, INVERSION], ids=["fast-parser", "pymatgen"])
@pytest.mark.parametrize(
    "encode",
    [
        lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),  # UTF-8 with a byte-order mark
        lambda text: text.encode("latin-1"),  # Latin-1 author names
        lambda text: text.encode("cp1252"),  # Windows-1252
        lambda text: text.encode("utf-16"),  # UTF-16 with its mark
    ],
    ids=["utf8-bom", "latin-1", "cp1252", "utf-16"],
)
def test_a_cif_with_a_bom_or_in_latin1_reads(tmp_path, symmetry, encode) -> None:
    authors = (
        "_publ_author_name 'M\u00fcller, Jos\u00e9'\n_publ_section_title\n;\nOxyde de magn\u00e9sium\n;\n"
    )
    stored_mgo(tmp_path, encode(mgo(symmetry, extra=authors)))


def test_binary_data_is_still_refused_as_no_text(tmp_path) -> None:
    reason = only_reason(tmp_path, mgo().encode() + b"\x00\x01\x02\x81")
    assert reason.startswith("'utf-8 or latin-1' codec can't decode byte 0x00")


def test_an_id_prop_csv_and_an_optimade_file_with_a_bom_read(tmp_path) -> None:
    stored, quarantined = ingest_folder(tmp_path, {"a.cif": mgo()}, id_prop="\ufeffa.cif,-1.0\n")
    assert quarantined == [] and [r["source_id"] for r in stored] == ["a"]
    path = tmp_path / "bom.json"
    doc = {
        "data": [
            {
                "id": "x",
                "type": "structures",
                "attributes": {
                    "lattice_vectors": [[4.212, 0, 0], [0, 4.212, 0], [0, 0, 4.212]],
                    "cartesian_site_positions": [[0, 0, 0], [2.106, 2.106, 2.106]],
                    "species_at_sites": ["Mg", "O"],
                    "species": [
                        {"name": "Mg", "chemical_symbols": ["Mg"], "concentration": [0.999]},
                        {"name": "O", "chemical_symbols": ["O"], "concentration": [1.0]},
                    ],
                },
            }
        ]
    }
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    items = list(read_optimade(path, source="t", license="x"))
    assert [type(i).__name__ for i in items] == ["Record"] and items[0].row["species"] == ["Mg", "O"]


@pytest.mark.parametrize("symmetry", [P1, INVERSION], ids=["fast-parser", "pymatgen"])
@pytest.mark.parametrize("occupancy", ["0.999", "0.9999", "0.995(3)", "1.005", "1.0"])
def test_an_occupancy_rounded_near_1_reads_as_full(tmp_path, symmetry, occupancy) -> None:
    assert OCCUPANCY_TOLERANCE == 0.01
    stored_mgo(tmp_path, mgo(symmetry, occupancy=occupancy))


@pytest.mark.parametrize("symmetry", [P1, INVERSION], ids=["fast-parser", "pymatgen"])
@pytest.mark.parametrize(
    ("occupancy", "reason"),
    [
        (
            "0.9",
            "disordered site occupancies are not supported (a site has occupancy 0.9; within 0.01 of 1",
        ),
        (
            "0.98",
            "disordered site occupancies are not supported (a site has occupancy 0.98; within 0.01 of 1",
        ),
        ("1.5", "site Mg1 has occupancy 1.5, which no site can have"),
    ],
)
def test_a_partial_occupancy_stays_refused(tmp_path, symmetry, occupancy, reason) -> None:
    assert only_reason(tmp_path, mgo(symmetry, occupancy=occupancy)).startswith(reason)


# --- 3. id_prop.csv names outside the folder ----------------------------------------------------------------


def test_id_prop_rows_naming_files_outside_the_folder_are_quarantined_unread(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    rock_salt = Structure(Lattice.cubic(4.212), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rock_salt.to(filename=str(outside / "x.cif"))  # a valid crystal: stored only if it were read
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    rock_salt.to(filename=str(folder / "sub" / "inside.cif"))
    os.symlink(outside / "x.cif", folder / "link.cif")
    os.symlink(outside, folder / "linked-folder")
    os.symlink(folder / "sub" / "inside.cif", folder / "inner-link.cif")
    rows = [
        "../outside/x.cif",
        str(outside / "x.cif"),
        "link.cif",
        "linked-folder/x.cif",
        "sub/../../outside/x",
        "sub/inside.cif",
        "inner-link",
    ]
    stored, quarantined = ingest_folder(tmp_path, {}, id_prop="".join(f"{r},-1.0\n" for r in rows))
    assert [r["source_id"] for r in stored] == ["sub/inside", "inner-link"]
    assert [r["reason"] for r in quarantined] == [
        "file name '../outside/x.cif' points outside the folder (through '..'); name a file inside it",
        f"file name '{outside / 'x.cif'}' is an absolute path; id_prop.csv may name only files inside its folder",
        "file name 'link.cif' is a link to a file outside the folder; copy the file into the folder",
        "file name 'linked-folder/x.cif' is a link to a file outside the folder; copy the file into the folder",
        "file name 'sub/../../outside/x' points outside the folder (through '..'); name a file inside it",
    ]
