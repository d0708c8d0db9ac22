"""Issue 12, ingest side: nothing physically wrong enters the lake, whatever reader it comes through."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from storage import validation
from storage.ingest import _reason_class, ingest_records
from storage.readers import Record, Rejection, read_gnome, read_id_prop_folder, read_optimade
from storage.readers._structure import (
    Cell,
    _fast_p1_cif,
    _pymatgen_cif,
    cell_from_cif,
    structure_fields,
)
from storage.readers.user_formats import cell_from_poscar
from storage.validation import StructureError

KW = {"source": "test", "license": "test-licence"}

ROCK_SALT = "0.0 2.82 2.82\n2.82 0.0 2.82\n2.82 2.82 0.0\n"


def poscar(species_line: str | None, counts: str, coords: list[str], lattice: str = ROCK_SALT) -> str:
    lines = ["a structure", "1.0", lattice.rstrip("\n")]
    if species_line is not None:
        lines.append(species_line)
    lines += [counts, "Direct", *coords]
    return "\n".join(lines) + "\n"


def cif(sites: list[tuple[str, float, float, float]], a: float = 5.64, formula_sum: str | None = None) -> str:
    """A P1 CIF as pymatgen writes it (the fast parser's input)."""
    head = (
        f"data_x\n_symmetry_space_group_name_H-M   'P 1'\n_cell_length_a   {a}\n_cell_length_b   {a}\n"
        f"_cell_length_c   {a}\n_cell_angle_alpha   90\n_cell_angle_beta   90\n_cell_angle_gamma   90\n"
        "_symmetry_Int_Tables_number   1\n"
    )
    if formula_sum is not None:
        head += f"_chemical_formula_sum   '{formula_sum}'\n"
    head += (
        "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\n"
        "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_symmetry_multiplicity\n"
        " _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n"
    )
    rows = "".join(f"  {s}  {s}{i}  1  {x}  {y}  {z}  1\n" for i, (s, x, y, z) in enumerate(sites))
    return head + rows


ROCKSALT_CONV = [
    ("Na", 0.0, 0.0, 0.0),
    ("Na", 0.5, 0.5, 0.0),
    ("Na", 0.5, 0.0, 0.5),
    ("Na", 0.0, 0.5, 0.5),
    ("Cl", 0.5, 0.0, 0.0),
    ("Cl", 0.0, 0.5, 0.0),
    ("Cl", 0.0, 0.0, 0.5),
    ("Cl", 0.5, 0.5, 0.5),
]


def split(items) -> tuple[list[Record], list[Rejection]]:
    items = list(items)
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, Rejection)]


def reason_of(c: Cell) -> str:
    with pytest.raises(StructureError) as info:
        structure_fields(c)
    return str(info.value)


# --- species the file does not name -----------------------------------------------------------------


def test_poscar_without_species_line_is_refused_not_stored_as_h_he() -> None:
    text = poscar(None, "1 1", ["0 0 0", "0.5 0.5 0.5"])
    with pytest.raises(StructureError, match="POSCAR names no species"):
        cell_from_poscar(text)
    named = cell_from_poscar(poscar("Na Cl", "1 1", ["0 0 0", "0.5 0.5 0.5"]))
    assert named.species == ["Na", "Cl"]


@pytest.mark.parametrize("counts", ["2", "1 1 1"])
def test_any_poscar_without_names_is_refused(counts: str) -> None:
    n = sum(int(c) for c in counts.split())
    coords = [f"{i / (n + 1):.3f} 0.1 0.2" for i in range(n)]
    with pytest.raises(StructureError, match="names no species"):
        cell_from_poscar(poscar(None, counts, coords, lattice="5 0 0\n0 5 0\n0 0 5\n"))


# --- distances: one floor for every path ------------------------------------------------------------


def test_duplicated_site_is_refused_by_the_fast_and_the_pymatgen_path_alike() -> None:
    text = cif([("Na", 0.0, 0.0, 0.0), ("Na", 0.0, 0.0, 0.0), ("Cl", 0.5, 0.5, 0.5)])
    # cif22c: a row repeated in one atom-site loop is refused before either path builds a cell
    duplicate = r"sites Na\d and Na\d of the atom-site loop are one Na atom listed twice .*a duplicated row"
    with pytest.raises(StructureError, match=duplicate):
        _fast_p1_cif(text)
    with pytest.raises(StructureError, match=duplicate):
        structure_fields(_pymatgen_cif(text))


@pytest.mark.parametrize(
    ("sites", "expected"),
    [
        ([("Mg", 0, 0, 0), ("O", 0, 0, 0)], "Mg site 0 and O site 1 are 0.000 A apart"),
        ([("Mg", 0, 0, 0), ("O", 0.05, 0, 0)], "Mg site 0 and O site 1 are 0.282 A apart"),
        ([("Mg", 0, 0, 0), ("O", 0.98, 0.0, 0.0)], "Mg site 0 and O site 1 are 0.113 A apart"),
    ],
)
def test_atoms_closer_than_the_floor_are_refused(sites, expected) -> None:
    reason = reason_of(cell_from_cif(cif(sites, a=5.64)))
    # the distance rule of csp.structures.validity: max(0.5 x (1.41 + 0.70), 0.5) = 1.055 A for Mg-O
    assert reason.startswith(expected) and "closer than 1.05 A" in reason


def test_the_floor_sits_between_overlap_and_the_shortest_real_bond() -> None:
    # H2's 0.74 A bond (the shortest in nature) passes; 0.45 A does not
    lattice = np.diag([3.0, 3.0, 3.0])
    ok = Cell(lattice, ["H", "H"], np.array([[0, 0, 0], [0.74 / 3.0, 0, 0]]))
    assert structure_fields(ok)["nsites"] == 2
    bad = Cell(lattice, ["H", "H"], np.array([[0, 0, 0], [0.45 / 3.0, 0, 0]]))
    assert "0.450 A apart" in reason_of(bad)


def test_a_cell_of_0_1_angstrom_is_refused() -> None:
    with pytest.raises(StructureError, match=r"cell length a = 0.1 A is shorter than 0.5 A"):
        cell_from_cif(cif([("Na", 0, 0, 0)], a=0.1))  # as a CIF declares it
    reason = reason_of(Cell(np.diag([0.1, 0.1, 0.1]), ["Na"], np.array([[0, 0, 0]])))  # as arrays give it
    assert reason.startswith("volume per atom 0.001 A^3 is below 1.5 A^3")


def test_a_thin_needle_cell_is_refused_by_its_self_image() -> None:
    c = Cell(np.diag([0.3, 10.0, 10.0]), ["Na"], np.array([[0, 0, 0]]))
    assert reason_of(c) == (
        "Na site 0 and its own periodic image are 0.300 A apart, closer than 1.66 A (overlapping or duplicated "
        "sites)"
    )


# --- empty space: isolated atoms, slabs, molecules --------------------------------------------------


def test_h_in_a_25_angstrom_box_is_refused() -> None:
    c = Cell(np.eye(3) * 25.0, ["H"], np.array([[0.0, 0.0, 0.0]]))
    assert reason_of(c).startswith("volume per atom 1.562e+04 A^3 is above 150.0 A^3")


def test_a_slab_with_vacuum_is_refused_even_when_dense_enough() -> None:
    # rock salt NaCl, 8 atoms, with 12 A of vacuum along c: 27 A^3/atom would pass the volume bound
    lattice = np.diag([5.64, 5.64, 5.64 + 12.0])
    frac = np.array([[x, y, z * 5.64 / (5.64 + 12.0)] for _, x, y, z in ROCKSALT_CONV])
    c = Cell(lattice, [s for s, *_ in ROCKSALT_CONV], frac)
    reason = reason_of(c)
    assert reason.startswith("an empty slab 14.8 A thick runs parallel to the cell face opposite axis c")


def test_an_isolated_atom_in_a_cage_is_refused() -> None:
    # Na on a 4 A grid over three faces of a 16 A cube (no empty slab wider than 4 A), one Cl at the
    # centre: its nearest neighbour is 8 A away
    grid = {(0, j, k) for j in range(4) for k in range(4)}
    grid |= {(j, 0, k) for j in range(4) for k in range(4)} | {(j, k, 0) for j in range(4) for k in range(4)}
    frac = np.array(sorted(grid), dtype=float) / 4.0
    frac = np.vstack([frac, [[0.5, 0.5, 0.5]]])
    species = ["Na"] * (len(frac) - 1) + ["Cl"]
    lattice = np.eye(3) * 16.0
    assert validation.largest_vacuum(lattice, frac)[0] == pytest.approx(4.0)
    assert reason_of(Cell(lattice, species, frac)) == (
        f"Cl site {len(frac) - 1} has no neighbour within 7.0 A (an isolated atom, not part of a bulk crystal)"
    )


# --- declared formula ---------------------------------------------------------------------------------


def test_brucite_without_its_h_sites_is_quarantined_with_both_formulas(tmp_path: Path) -> None:
    text = cif(
        [("Mg", 0, 0, 0), ("O", 0.333, 0.667, 0.22), ("O", 0.667, 0.333, 0.78)], a=4.0, formula_sum="H2 Mg O2"
    )
    line = json.dumps(
        {"id": "brucite", "formula": "Mg(OH)2", "formation_energy_per_atom_eV": -1.9, "cif": text}
    )
    path = tmp_path / "g.jsonl"
    path.write_text(line + "\n")
    records, rejections = split(read_gnome(path, **KW))
    assert records == []
    assert rejections[0].reason == (
        "declared formula Mg(HO)2 (H2 Mg O2) disagrees with the sites' formula MgO2 (missing, extra or "
        "mislabelled sites)"
    )


def test_a_declared_formula_that_agrees_up_to_reduction_passes() -> None:
    text = cif(ROCKSALT_CONV, formula_sum="Na4 Cl4")
    assert validation.compare_formulas("Na4 Cl4", ["Na"] * 4 + ["Cl"] * 4) is None
    assert validation.compare_formulas("NaCl", ["Na", "Cl", "Cl"]) is not None
    assert validation.compare_formulas("?", ["Na"]) is None
    assert structure_fields(cell_from_cif(text))["reduced_formula"] == "NaCl"


# --- OPTIMADE -----------------------------------------------------------------------------------------


def optimade_entry(sid: str, formula: str, lattice, positions, species, **extra) -> dict:
    attrs = {
        "chemical_formula_reduced": formula,
        "lattice_vectors": lattice,
        "cartesian_site_positions": positions,
        "species_at_sites": species,
        "species": [
            {"name": s, "chemical_symbols": [s], "concentration": [1.0]} for s in sorted(set(species))
        ],
        "nperiodic_dimensions": 3,
    }
    attrs.update(extra)
    return {"id": sid, "type": "structures", "attributes": attrs}


GRAPHENE = [[2.46, 0, 0], [-1.23, 2.1304, 0], [0, 0, 20.0]]
GRAPHENE_POS = [[0, 0, 10], [1.23, 0.7101, 10]]
FCC_NACL = [[0, 2.82, 2.82], [2.82, 0, 2.82], [2.82, 2.82, 0]]


def test_optimade_entries_the_product_cannot_represent_are_quarantined(tmp_path: Path) -> None:
    data = [
        optimade_entry("nacl", "ClNa", FCC_NACL, [[0, 0, 0], [2.82, 2.82, 2.82]], ["Na", "Cl"]),
        optimade_entry("graphene-2d", "C", GRAPHENE, GRAPHENE_POS, ["C", "C"], nperiodic_dimensions=2),
        optimade_entry(
            "graphene-types",
            "C",
            GRAPHENE,
            GRAPHENE_POS,
            ["C", "C"],
            nperiodic_dimensions=None,
            dimension_types=[1, 1, 0],
        ),
        optimade_entry("graphene-vacuum", "C", GRAPHENE, GRAPHENE_POS, ["C", "C"]),
        optimade_entry(
            "brucite-noH",
            "H2MgO2",
            [[3.142, 0, 0], [-1.571, 2.721, 0], [0, 0, 4.766]],
            [[0, 0, 0], [0, 1.814, 1.05], [1.571, 0.907, 3.716]],
            ["Mg", "O", "O"],
        ),
        optimade_entry("tiny", "Na", [[0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1]], [[0, 0, 0]], ["Na"]),
        optimade_entry(
            "one-site", "MgO", [[4.2, 0, 0], [0, 4.2, 0], [0, 0, 4.2]], [[0, 0, 0], [0, 0, 0]], ["Mg", "O"]
        ),
        optimade_entry(
            "molecule", "H", [[15, 0, 0], [0, 15, 0], [0, 0, 15]], [[0, 0, 0], [0.74, 0, 0]], ["H", "H"]
        ),
    ]
    path = tmp_path / "response.json"
    path.write_text(json.dumps({"data": data}))
    records, rejections = split(read_optimade(path, **KW))
    assert [r.row["source_id"] for r in records] == ["nacl"]
    reasons = {r.source_id: r.reason for r in rejections}
    assert reasons["graphene-2d"] == (
        "OPTIMADE entry is periodic in 2 dimension(s) (nperiodic_dimensions); only 3-D crystals can be stored"
    )
    assert reasons["graphene-types"].startswith("OPTIMADE entry is periodic in 2 dimension(s)")
    assert reasons["graphene-vacuum"].startswith("an empty slab 20.0 A thick")
    assert reasons["brucite-noH"].startswith(
        "declared formula Mg(HO)2 (H2MgO2) disagrees with the sites' formula MgO2"
    )
    assert reasons["tiny"].startswith("volume per atom 0.001 A^3 is below 1.5 A^3")
    assert reasons["one-site"].startswith("Mg site 0 and O site 1 are 0.000 A apart")
    assert reasons["molecule"].startswith("volume per atom 1687 A^3 is above 150.0 A^3")


# --- the user folder, end to end ----------------------------------------------------------------------


def test_user_folder_rows_and_reasons(tmp_path: Path, lake) -> None:
    (tmp_path / "ok.vasp").write_text(poscar("Na Cl", "1 1", ["0 0 0", "0.5 0.5 0.5"]))
    (tmp_path / "nonames.vasp").write_text(poscar(None, "1 1", ["0 0 0", "0.5 0.5 0.5"]))
    (tmp_path / "origin.vasp").write_text(
        poscar("Mg O", "1 1", ["0 0 0", "0 0 0"], lattice="4.2 0 0\n0 4.2 0\n0 0 4.2\n")
    )
    (tmp_path / "hbox.vasp").write_text(poscar("H", "1", ["0 0 0"], lattice="25 0 0\n0 25 0\n0 0 25\n"))
    (tmp_path / "dup.cif").write_text(cif([("Na", 0, 0, 0), ("Na", 0, 0, 0), ("Cl", 0.5, 0.5, 0.5)]))
    (tmp_path / "id_prop.csv").write_text(
        "ok.vasp,-2.1\nnonames.vasp,-2.1\norigin.vasp,-1\nhbox.vasp,0\ndup.cif,-2\n"
    )
    report = ingest_records(lake, read_id_prop_folder(tmp_path, **KW), source="test", run_id="r1")
    assert sum(report.written.values()) == 1 and report.written["structures"] == 1
    assert report.n_rejected == 4 and report.quarantine_written == 4
    assert lake.count("structures") == 1 and lake.count("quarantine") == 4
    stored = lake.query("SELECT reduced_formula FROM structures").to_pylist()
    assert stored == [{"reduced_formula": "NaCl"}]
    reasons = sorted(r for r, _ in report.reasons())
    assert reasons == sorted(
        [
            "nonames.vasp: POSCAR names no species (no element line after the scale and lattice, and none "
            "pymatgen can read from the comment line); add the VASP 5 element line",
            "origin.vasp: Mg site 0 and O site 1 are 0.000 A apart, closer than 1.05 A (overlapping or duplicated sites)",
            "hbox.vasp: volume per atom 1.562e+04 A^3 is above 150.0 A^3 (mostly empty space: an isolated atom, "
            "molecule or slab, not a bulk crystal)",
            # cif22c: a row repeated in one atom-site loop is named as a duplicate
            "dup.cif: sites Na0 and Na1 of the atom-site loop are one Na atom listed twice (the same position (0.0, 0.0, "
            "0.0) within 0.002 in fractional coordinates, a duplicated row); list each site once",
        ]
    )


def test_reason_kinds_keep_digits_inside_words() -> None:
    assert _reason_class("'utf-8' codec can't decode byte 0xff in position 12") == (
        "'utf-8' codec can't decode byte 0xff in position N"
    )
    assert (
        _reason_class("Fe2O3 site 3 and O site 12 are 0.31 A apart")
        == "Fe2O3 site N and O site N are N A apart"
    )


# --- plain mistakes on the command line: one line, non-zero exit, no traceback ------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("CSP_HOME", str(tmp_path / "home"))
    return tmp_path


def run_cli(args: list[str]):
    """Run the CLI; ``output`` with rich's line wrapping undone (a terminal as wide as the message)."""
    from flows.cli import app

    result = CliRunner().invoke(app, args)
    result.flat = " ".join(result.output.split())
    return result


def test_empty_folder_is_a_one_line_error(cli_env: Path) -> None:
    empty = cli_env / "empty"
    empty.mkdir()
    result = run_cli(["ingest", "folder", str(empty), "--source", "mine"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "has no id_prop.csv" in result.flat and "Traceback" not in result.output


def test_missing_mirror_file_is_a_one_line_error(cli_env: Path, monkeypatch) -> None:
    mirror = cli_env / "mirror"
    (mirror / "dft").mkdir(parents=True)
    monkeypatch.setenv("CSP_DATA_MIRROR", str(mirror))
    result = run_cli(["ingest", "run", "--source", "mp_flla2015"])
    assert result.exit_code == 1
    assert "is missing from the data mirror" in result.flat and "Traceback" not in result.output


def test_csv_into_a_missing_folder_is_a_one_line_error(cli_env: Path) -> None:
    run_cli(["lake", "init"])
    target = cli_env / "no" / "such" / "out.csv"
    result = run_cli(["sql", "SELECT 1 AS x", "--csv", str(target)])
    assert result.exit_code == 1
    assert "does not exist (ENOENT); create it first, or choose another --csv." in result.flat
    assert not target.exists()


# --- files a third-party parser chokes on: one quarantine row each, never a traceback -------------------


@pytest.mark.parametrize(
    ("counts", "coords", "reason"),
    [
        # a count below 1: refused before pymatgen (it said "len(species)=2 != len(coords)=1"), ing22d
        ("2 -1", ["0 0 0", "0.5 0.5 0.5"], r"POSCAR counts line \(2 -1\) gives -1 atoms of a species"),
        ("-1 3", ["0 0 0", "0.5 0.5 0.5"], r"POSCAR counts line \(-1 3\) gives -1 atoms of a species"),
        ("1 1", ["0 0", "0.5 0.5 0.5"], "malformed POSCAR: BadPoscarWarning"),  # a short coordinate line
    ],
)
def test_a_poscar_pymatgen_cannot_read_is_a_reason_not_a_traceback(counts, coords, reason) -> None:
    with pytest.raises(StructureError, match=reason):
        cell_from_poscar(poscar("Mg O", counts, coords))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"data":' + "[" * 100_000 + "]" * 100_000 + "}", "malformed JSON: nested too deeply"),
        ('{"data": [{"type": "structures", "id": "x", "attributes": {"nsites": 1' + "0" * 5000 + "}}]}",
         "OPTIMADE entry "),  # 5,000 digits: the entry's own row now, the file is read
    ],
)  # fmt: skip
def test_json_the_parser_refuses_is_one_quarantine_row(tmp_path: Path, text, reason) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    rows = list(read_optimade(path, **KW))
    assert len(rows) == 1 and isinstance(rows[0], Rejection)
    assert rows[0].reason.startswith(reason)


# --- isotopes and attached atoms: refused, never stored as something else -------------------------------


def test_deuterium_in_a_poscar_is_refused_not_stored_as_h() -> None:
    with pytest.raises(StructureError, match=r"isotope\(s\) \['D'\] \(deuterium\)"):
        cell_from_poscar(poscar("Li D", "1 1", ["0 0 0", "0.5 0.5 0.5"]))
    assert cell_from_poscar(poscar("Li H", "1 1", ["0 0 0", "0.5 0.5 0.5"])).species == ["Li", "H"]


def test_optimade_isotopes_and_attached_atoms_are_quarantined(tmp_path: Path) -> None:
    lih = optimade_entry("lih", "HLi", FCC_NACL, [[0, 0, 0], [2.82, 2.82, 2.82]], ["Li", "H"])
    heavy = json.loads(json.dumps(lih), object_hook=dict)
    heavy["id"] = "heavy"
    heavy["attributes"]["species"] = [
        {"name": "H", "chemical_symbols": ["H"], "concentration": [1.0], "mass": [2.014]},
        {"name": "Li", "chemical_symbols": ["Li"], "concentration": [1.0], "mass": [6.94]},
    ]
    attached = json.loads(json.dumps(lih))
    attached["id"] = "attached"
    attached["attributes"]["species"][0]["attached"] = ["H"]
    standard = json.loads(json.dumps(heavy))
    standard["id"] = "standard-masses"
    standard["attributes"]["species"][0]["mass"] = [1.008]
    path = tmp_path / "iso.json"
    path.write_text(json.dumps({"data": [heavy, attached, standard]}))
    records, rejections = split(read_optimade(path, **KW))
    reasons = {r.source_id: r.reason for r in rejections}
    assert "isotope" in reasons["heavy"] and "attached atoms" in reasons["attached"]
    assert [r.row["source_id"] for r in records] == ["standard-masses"]  # an element's own mass is no isotope


# --- a declared space group the reader cannot apply is refused, never read as P1 --------------------------

MGO_CIF_HEAD = """data_a
_cell_length_a 4.212
_cell_length_b 4.212
_cell_length_c 4.212
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
"""
MGO_CIF_SITES = """loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Mg1 Mg 0 0 0
O1 O 0.5 0.5 0.5
"""


@pytest.mark.parametrize(
    "declared",
    [
        "_symmetry_space_group_name_H-M 'Q 9 9'",  # no such symbol
        "_symmetry_space_group_name_Hall '-F 4 2 3'",  # a Hall symbol alone
        "_symmetry_Int_Tables_number 231",  # no such number
        "_space_group_name_H-M_alt 'P n -3 m Q'",  # no such setting ('P n -3 m S', ICSD's origin 1, reads)
    ],
)
def test_a_space_group_the_reader_cannot_apply_is_refused_not_read_as_p1(declared) -> None:
    with pytest.raises(StructureError, match="lists no symmetry operations this reader can apply"):
        cell_from_cif(MGO_CIF_HEAD + declared + "\n" + MGO_CIF_SITES)


def test_a_p1_cif_without_operations_still_reads() -> None:
    for declared in ("_symmetry_space_group_name_H-M 'P 1'", "_symmetry_Int_Tables_number 1", ""):
        assert sorted(cell_from_cif(MGO_CIF_HEAD + declared + "\n" + MGO_CIF_SITES).species) == ["Mg", "O"]


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ("'2x,y,z'", "is no crystallographic operation"),  # pymatgen made MgO MgO2
        ("'x*y,y,z'", "is not an affine map"),
        ("'x,y'", "has 2 components, not 3"),  # pymatgen moved O to (1/2, 1/2, 0)
        ("'__import__(\"os\"),y,z'", "is not an affine map"),
    ],
)
def test_a_symmetry_operation_that_is_no_isometry_is_refused(operation, reason) -> None:
    ops = f"loop_\n_symmetry_equiv_pos_as_xyz\n'x,y,z'\n{operation}\n"
    with pytest.raises(StructureError, match=reason):
        cell_from_cif(MGO_CIF_HEAD + ops + MGO_CIF_SITES)


HEXAGONAL_HEAD = MGO_CIF_HEAD.replace("_cell_angle_gamma 90", "_cell_angle_gamma 120.00").replace(
    "_cell_length_c 4.212", "_cell_length_c 6.1"
)


@pytest.mark.parametrize(
    ("head", "operations"),
    [
        (
            HEXAGONAL_HEAD,
            ["x,y,z", "-y,x-y,z+1/3", "-x+y,-x,z+2/3", "-x,-y,z+1/2", "y,-x+y,z+5/6", "x-y,x,z+1/6"],
        ),  # P 61 on its hexagonal cell
        (
            MGO_CIF_HEAD,
            ["x,y,z", "-x,y+0.5,-z+1/2", "-x,-y,-z", "x,-y+1/2,z+0.5"],
        ),  # P 21/c, decimals, fractions
        (
            HEXAGONAL_HEAD,
            ["x,y,z", "x+0.3333,y+0.6667,z+0.6667", "x+0.66667,y+0.33333,z+0.33333"],
        ),  # R centring, rounded
    ],
)
def test_hexagonal_and_translated_operations_still_read(head, operations) -> None:
    ops = "loop_\n_symmetry_equiv_pos_as_xyz\n" + "".join(f"'{op}'\n" for op in operations)
    assert _operation_problem_of(head + ops + MGO_CIF_SITES) is None


def _operation_problem_of(text: str):
    from storage.readers._structure import _block, _operation_problem

    return _operation_problem(_block(text))


def test_a_label_that_names_no_element_without_type_symbols_is_refused() -> None:
    sites = (
        MGO_CIF_SITES.replace("_atom_site_type_symbol\n", "").replace("Mg1 Mg", "Mg1").replace("O1 O", "OH1")
    )
    with pytest.raises(StructureError, match="site OH1: the CIF has no _atom_site_type_symbol"):
        cell_from_cif(MGO_CIF_HEAD + sites)
    plain = (
        MGO_CIF_SITES.replace("_atom_site_type_symbol\n", "").replace("Mg1 Mg", "Mg1").replace("O1 O", "O1")
    )
    assert sorted(cell_from_cif(MGO_CIF_HEAD + plain).species) == ["Mg", "O"]
