"""Issue 22 follow-up: one malformed OPTIMADE entry is one quarantine row with its reason, never the end of the
ingest; the entry's fields are checked with the specification's types, and against each other."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from storage.ingest import ingest_records
from storage.lake import Lake
from storage.readers import Record, Rejection, read_optimade
from storage.readers.user_formats import anonymous_formula, cell_from_optimade
from storage.validation import StructureError

KW = {"source": "opt", "license": "test"}
CUBE = [[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]]


def lih(sid: object = "lih", **changes: object) -> dict:
    """A rock-salt-like LiH entry (2 sites); ``changes`` replace or add attributes."""
    attrs = {
        "lattice_vectors": CUBE,
        "cartesian_site_positions": [[0, 0, 0], [2, 2, 2]],
        "species_at_sites": ["Li", "H"],
        "species": [
            {"name": "Li", "chemical_symbols": ["Li"], "concentration": [1.0]},
            {"name": "H", "chemical_symbols": ["H"], "concentration": [1.0]},
        ],
        "nperiodic_dimensions": 3,
    }
    attrs.update(changes)
    return {"type": "structures", "id": sid, "attributes": attrs}


def with_species(index: int, **changes: object) -> dict:
    entry = lih(f"species-{index}")
    species = copy.deepcopy(entry["attributes"]["species"])
    species[index].update(changes)
    entry["attributes"]["species"] = species
    return entry


def ingest(tmp_path: Path, *entries: dict) -> tuple[list[str], dict[str, str]]:
    path = tmp_path / "response.json"
    path.write_text(json.dumps({"data": [lih("before"), *entries, lih("after")]}))
    items = list(read_optimade(path, **KW))
    stored = [i.row["source_id"] for i in items if isinstance(i, Record)]
    reasons = {f"{i.row}:{i.source_id}": i.reason for i in items if isinstance(i, Rejection)}
    return stored, reasons


MALFORMED = [
    (with_species(0, concentration=["abc"]), "species[0].concentration[0]: 'abc' is not a number"),
    (with_species(0, concentration=[None]), "species[0].concentration[0]: None is not a number"),
    (with_species(0, concentration=1.0), "species[0].concentration: 1.0 is not a list"),
    (lih("species-str", species="Li"), "attribute species: 'Li' is not a list"),
    (
        lih(
            "species-item-str", species=["Li", {"name": "H", "chemical_symbols": ["H"], "concentration": [1]}]
        ),
        "attribute species[0]: 'Li' is not an object",
    ),
    (with_species(0, chemical_symbols=[None]), "species[0].chemical_symbols[0]: None is not a string"),
    (with_species(0, mass=["abc"]), "species[0].mass[0]: 'abc' is not a number"),
    (with_species(0, name=7), "species[0].name: 7 is not a string"),
    (lih("nsites-float", nsites=5.0), "attribute nsites: 5.0 is not an integer"),
    (lih("nsites-text", nsites="5"), "attribute nsites: '5' is not an integer"),
    (lih("nper-text", nperiodic_dimensions="3"), "attribute nperiodic_dimensions: '3' is not an integer"),
    (
        lih("types-text", nperiodic_dimensions=None, dimension_types="abc"),
        "dimension_types: 'abc' is not a list",
    ),
    (lih("types-two", dimension_types=[1, 1]), "dimension_types: [1, 1] (list should have at least 3 items"),
    (lih("types-2", dimension_types=[1, 1, 2]), "dimension_types[2]: 2 (input should be 0 or 1)"),
    (
        lih("lattice-2", lattice_vectors=CUBE[:2]),
        "lattice_vectors: [[4.0, 0, 0], [0, 4.0, 0]] (list should have",
    ),
    (lih("positions-2d", cartesian_site_positions=[[0, 0], [1, 1]]), "cartesian_site_positions[0]: [0, 0]"),
    (lih("sites-int", species_at_sites=[1, 2]), "species_at_sites[0]: 1 is not a string"),
    (lih("formula-int", chemical_formula_reduced=5), "chemical_formula_reduced: 5 is not a string"),
    (lih("attrs-list") | {"attributes": []}, "malformed OPTIMADE entry attributes: [] is not an object"),
    (lih(["a"]), "malformed OPTIMADE entry id: ['a'] is not a string"),
    (lih(True), "malformed OPTIMADE entry id: True is not a string"),
    (lih("no-lattice") | {"attributes": {"species_at_sites": ["Li"]}}, "lacks attribute 'lattice_vectors'"),
]


@pytest.mark.parametrize(("entry", "reason"), MALFORMED, ids=[str(e["id"])[:20] for e, _ in MALFORMED])
def test_a_malformed_entry_is_one_quarantine_row_and_the_others_are_stored(tmp_path, entry, reason):
    stored, reasons = ingest(tmp_path, entry)
    assert stored == ["before", "after"]
    assert len(reasons) == 1
    (got,) = reasons.values()
    assert reason in got, got
    assert "\n" not in got and "Traceback" not in got


CONTRADICTIONS = [
    (lih("nsites-5", nsites=5), "OPTIMADE entry declares nsites = 5 but lists 2 sites"),
    (
        lih("types-vs-nper", dimension_types=[1, 1, 0]),
        "OPTIMADE entry declares nperiodic_dimensions = 3 but dimension_types [1, 1, 0] has 2 periodic direction(s)",
    ),
    (
        lih(
            "slab-null",
            nperiodic_dimensions=2,
            lattice_vectors=[[4.0, 0, 0], [0, 4.0, 0], [None, None, None]],
        ),
        "OPTIMADE entry is periodic in 2 dimension(s) (nperiodic_dimensions); only 3-D crystals can be stored",
    ),
    (
        lih("null-vector", lattice_vectors=[[4.0, 0, 0], [0, 4.0, 0], [None, None, None]]),
        "OPTIMADE lattice_vectors hold null (a direction that is not periodic); only 3-D crystals can be stored",
    ),
    (
        lih("types-2d", nperiodic_dimensions=None, dimension_types=[1, 1, 0]),
        "OPTIMADE entry is periodic in 2 dimension(s) (dimension_types); only 3-D crystals can be stored",
    ),
    (
        lih("descriptive", chemical_formula_descriptive="LiH2"),
        "chemical_formula_descriptive: declared formula LiH2 (LiH2) disagrees with the sites' formula LiH",
    ),
    (
        lih("anonymous", chemical_formula_anonymous="A2B"),
        "OPTIMADE entry declares chemical_formula_anonymous 'A2B' but its sites give 'AB'",
    ),
    (
        lih("elements", elements=["H", "Na"]),
        "OPTIMADE entry declares elements ['H', 'Na'] but its sites hold",
    ),
    (lih("nelements", nelements=3), "OPTIMADE entry declares nelements = 3 but its sites hold 2 elements"),
    (
        lih("positions-3", cartesian_site_positions=[[0, 0, 0], [2, 2, 2], [1, 1, 1]]),
        "OPTIMADE entry lists 3 cartesian_site_positions but 2 species_at_sites",
    ),
    (
        lih("unknown-site", species_at_sites=["Li", "Hx"]),
        "names ['Hx'] that are not among the entry's species",
    ),
    (
        with_species(0, concentration=[1.0, 0.0]),
        "OPTIMADE species 'Li' gives 2 concentration(s) for 1 chemical symbol(s)",
    ),
    (with_species(1, mass=[1.0, 2.0]), "OPTIMADE species 'H' gives 2 mass(es) for 1 chemical symbol(s)"),
]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (lih(5), "malformed OPTIMADE entry id: 5 is not a string"),
        (lih(0), "malformed OPTIMADE entry id: 0 is not a string"),
        (
            lih("types-true", dimension_types=[True, True, True]),
            "malformed OPTIMADE attribute dimension_types[0]: True is not an integer (and 2 more fault(s))",
        ),
        (
            lih("types-float", dimension_types=[1, 1.0, 1]),
            "malformed OPTIMADE attribute dimension_types[1]: 1.0 is not an integer",
        ),
        (
            lih("types-bool", dimension_types=True),
            "malformed OPTIMADE attribute dimension_types: True is not a list",
        ),
        (
            lih("types-object", dimension_types={"a": 1}),
            "malformed OPTIMADE attribute dimension_types: {'a': 1} is not a list",
        ),
    ],
    ids=["id-5", "id-0", "types-true", "types-float", "types-bool", "types-object"],
)
def test_an_integer_id_or_dimension_types_of_no_integers_is_refused_per_entry(tmp_path, entry, reason):
    """OPTIMADE: ``id`` is a string; ``dimension_types`` a list of 3 integers, each 0 or 1 (issue 22)."""
    stored, reasons = ingest(tmp_path, entry)
    assert stored == ["before", "after"]
    assert list(reasons.values()) == [reason]


@pytest.mark.parametrize(("entry", "reason"), CONTRADICTIONS, ids=[str(e["id"]) for e, _ in CONTRADICTIONS])
def test_fields_that_disagree_with_each_other_or_the_sites_are_refused(tmp_path, entry, reason):
    stored, reasons = ingest(tmp_path, entry)
    assert stored == ["before", "after"]
    (got,) = reasons.values()
    assert reason in got, got


def test_fields_that_agree_are_stored(tmp_path):
    agreeing = lih(
        "agreeing",
        nsites=2,
        dimension_types=[1, 1, 1],
        elements=["H", "Li"],
        nelements=2,
        chemical_formula_descriptive="LiH",
        chemical_formula_anonymous="AB",
        chemical_formula_reduced="HLi",
    )
    stored, reasons = ingest(tmp_path, agreeing)
    assert stored == ["before", "agreeing", "after"] and reasons == {}
    assert anonymous_formula(["Al", "Al", "O", "O", "O"]) == "A3B2"
    assert anonymous_formula([f"E{i}" for i in range(28)]).endswith("ZAaBa")


@pytest.mark.parametrize("mass", [2.014, [2.014]], ids=["v1.0 scalar", "v1.1 list"])
def test_deuterium_by_its_mass_is_refused_in_both_spellings(tmp_path, mass):
    stored, reasons = ingest(tmp_path, with_species(1, mass=mass))
    assert stored == ["before", "after"]
    assert list(reasons.values()) == [
        "OPTIMADE species 'H' is an isotope or gives its own mass; the lake stores elements only (name it by "
        "its element and leave out the mass)"
    ]
    for standard in (1.008, [1.008]):  # hydrogen's own mass, in either spelling, is hydrogen
        assert cell_from_optimade(with_species(1, mass=standard)["attributes"]).species == ["Li", "H"]


@pytest.mark.parametrize(
    "name", ["deuterium", "Deuterium", "tritium", "2H", "3H", "H-2", "13C", "d", "D", "t", "D1", "d2", "T1"]
)
def test_a_species_named_as_an_isotope_is_refused(tmp_path, name):
    entry = with_species(1, name=name)
    entry["attributes"]["species_at_sites"] = ["Li", name]
    stored, reasons = ingest(tmp_path, entry)
    assert stored == ["before", "after"]
    assert list(reasons.values()) == [
        f"OPTIMADE species {name!r} is an isotope or gives its own mass; the lake stores elements only (name it "
        "by its element and leave out the mass)"
    ]


@pytest.mark.parametrize("name", ["H", "H2", "H1", "Li1", "hydrogen", "site-a"])
def test_a_species_label_that_names_no_isotope_still_reads(name):
    entry = with_species(1, name=name)
    entry["attributes"]["species_at_sites"] = ["Li", name]
    assert cell_from_optimade(entry["attributes"]).species == ["Li", "H"]


@pytest.mark.parametrize("mass", [float("nan"), [float("nan")], float("inf"), [float("-inf")]])
def test_a_mass_that_is_not_finite_is_refused(tmp_path, mass):
    stored, reasons = ingest(tmp_path, with_species(1, mass=mass))
    assert stored == ["before", "after"]
    (reason,) = reasons.values()
    assert reason.startswith("OPTIMADE species 'H' gives the mass ") and reason.endswith(
        "not a finite number"
    )


@pytest.mark.parametrize(
    ("sid", "reason"),
    [
        ("mgo-1\u0085", "entry id 'mgo-1\\x85' holds the control or invisible character(s) U+0085"),
        ("mgo-1\u2028", "entry id 'mgo-1\\u2028' holds the control or invisible character(s) U+2028"),
        ("mgo-1\u3000", "entry id 'mgo-1\\u3000' begins or ends with whitespace (U+3000)"),
        ("\xa0mgo-1", "entry id '\\xa0mgo-1' begins or ends with whitespace (U+00A0)"),
        (" mgo-1\t", "entry id ' mgo-1\\t' holds the control or invisible character(s) U+0009"),
        ("mgo-1 ", "entry id 'mgo-1 ' begins or ends with whitespace (U+0020)"),
    ],
)
def test_an_id_is_checked_as_written_never_stripped_first(tmp_path, sid, reason):
    stored, reasons = ingest(tmp_path, lih(sid), lih("mgo-1"))
    assert stored == ["before", "mgo-1", "after"]  # the stripped id was stored, then "mgo-1" was a duplicate
    (got,) = reasons.values()
    assert got.startswith(reason)
    assert reasons == {f"1:{None}": got}  # a refused id is not stored beside its rejection


@pytest.mark.parametrize(
    ("sid", "reason"),
    [
        ("0", None),
        (0, "malformed OPTIMADE entry id: 0 is not a string"),
        ("", "entry has no id"),
        ("   ", "entry has no id"),
        (None, "entry has no id"),
        ("a\x1b[31mred", "entry id 'a\\x1b[31mred' holds the control or invisible character(s) U+001B"),
        ("a\u202eb", "entry id 'a\\u202eb' holds the control or invisible character(s) U+202E"),
    ],
)
def test_ids_are_non_empty_visible_text(tmp_path, sid, reason):
    stored, reasons = ingest(tmp_path, lih(sid))
    if reason is None:
        assert stored == ["before", str(sid), "after"]
        return
    assert stored == ["before", "after"]
    (got,) = reasons.values()
    assert got.startswith(reason) and "\x1b" not in got


def test_control_characters_in_names_and_formulas_are_refused():
    for entry, what in [
        (with_species(0, name="Li\x1b[0m"), "OPTIMADE species name"),
        (lih("f", chemical_formula_reduced="HLi\x07"), "OPTIMADE chemical_formula_reduced"),
    ]:
        with pytest.raises(StructureError, match=what):
            cell_from_optimade(entry["attributes"])


def test_the_ingest_keeps_every_good_entry_and_quarantines_each_bad_one(tmp_path):
    """The reproduction: bad entries between good ones, through the lake; no traceback, one row each."""
    path = tmp_path / "mixed.json"
    bad = [entry for entry, _ in MALFORMED[:5]]
    path.write_text(json.dumps({"data": [lih("before"), *bad, lih("after")]}))
    lake = Lake(tmp_path / "home")
    report = ingest_records(lake, read_optimade(path, **KW), source="opt", run_id="r")
    assert report.written["structures"] == 2 and report.quarantine_written == 5
    assert report.n_read == 7
    rows = lake.query("SELECT row, reason FROM quarantine ORDER BY row").to_pylist()
    assert [r["row"] for r in rows] == [1, 2, 3, 4, 5]


def test_a_fault_the_reader_did_not_foresee_is_one_row_too(tmp_path, monkeypatch):
    import storage.readers.user_formats as user_formats

    def broken(symbols, mass):
        raise ZeroDivisionError("unforeseen")

    monkeypatch.setattr(user_formats, "_isotope_mass", broken)
    stored, reasons = ingest(tmp_path, lih("odd"))
    assert stored == [] and set(reasons.values()) == {
        "unreadable OPTIMADE entry: ZeroDivisionError: unforeseen"
    }


@pytest.mark.parametrize(
    ("position", "reason"),
    [
        ([1e300, 2, 2], "site 1 at [1e+300, 2.0, 2.0] lies more than 10 cell vectors out of the cell"),
        ([41.0, 2, 2], "site 1 at [41.0, 2.0, 2.0] lies more than 10 cell vectors out of the cell"),
        ([-1e17, 2, 2], "site 1 at [-1e+17, 2.0, 2.0] lies more than 10 cell vectors out of the cell"),
    ],
)
def test_a_position_far_out_of_the_cell_is_refused_for_that(tmp_path, position, reason):
    stored, reasons = ingest(tmp_path, lih("far", cartesian_site_positions=[[0, 0, 0], position]))
    assert stored == ["before", "after"]
    (got,) = reasons.values()
    assert got.startswith(f"OPTIMADE cartesian_site_positions: {reason}")  # was "sites 0.000 A apart"
    near = lih("near", cartesian_site_positions=[[0, 0, 0], [38.0, 2, 2]])  # 9.5 cell vectors: wrapped, read
    assert cell_from_optimade(near["attributes"]).species == ["Li", "H"]


@pytest.mark.parametrize("energy", ["-3.0", True], ids=["quoted", "boolean"])
def test_an_energy_that_is_no_json_number_is_refused(tmp_path, energy):
    path = tmp_path / "response.json"
    good = lih("good", _csp_dhf=-0.5)
    path.write_text(json.dumps({"data": [good, lih("bad", _csp_dhf=energy)]}))
    items = list(read_optimade(path, energy_field="_csp_dhf", **KW))
    assert [i.row["source_id"] for i in items if isinstance(i, Record)] == ["good"]
    assert [i.reason for i in items if isinstance(i, Rejection)] == [
        f"formation energy (_csp_dhf) is {energy!r}, not a JSON number"
    ]


# --- cif22c: elements and structure_features as the specification defines them -----------------------------------


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (
            lih("unsorted", elements=["Li", "H"]),  # was stored: the set matched the sites
            "OPTIMADE entry declares elements ['Li', 'H'], which is not sorted: OPTIMADE requires distinct "
            "chemical symbols in alphabetical order (['H', 'Li'])",
        ),
        (
            lih("repeated", elements=["H", "Li", "Li"]),
            "OPTIMADE entry declares elements ['H', 'Li', 'Li'], which repeats a symbol",
        ),
        (
            lih("disorder", structure_features=["disorder"]),  # was stored as ordered LiH
            "OPTIMADE entry declares structure_features ['disorder'] but has no species of more than one "
            "chemical symbol",
        ),
        (
            lih("assemblies", structure_features=["assemblies"]),
            "OPTIMADE entry declares structure_features ['assemblies'] but has no assemblies",
        ),
        (
            lih(
                "implicit",
                structure_features=["implicit_atoms"],
                species=[
                    {"name": "Li", "chemical_symbols": ["Li"], "concentration": [1.0]},
                    {"name": "H", "chemical_symbols": ["H"], "concentration": [1.0]},
                    {"name": "O", "chemical_symbols": ["O"], "concentration": [1.0]},
                ],
            ),
            "OPTIMADE entry declares implicit atoms (structure_features ['implicit_atoms']; species ['O'] at no site)",
        ),
    ],
    ids=["unsorted", "repeated", "disorder", "assemblies", "implicit"],
)
def test_elements_and_structure_features_against_the_specification(tmp_path, entry, reason):
    stored, reasons = ingest(tmp_path, entry)
    assert stored == ["before", "after"]
    [(key, got)] = reasons.items()
    assert key.endswith(f":{entry['id']}")
    assert got.startswith(reason), got


def test_sorted_elements_and_no_structure_features_are_stored(tmp_path):
    entry = lih("plain", elements=["H", "Li"], structure_features=[])
    stored, reasons = ingest(tmp_path, entry)
    assert stored == ["before", "plain", "after"] and reasons == {}


def test_a_disordered_species_is_still_refused_as_disorder(tmp_path):
    entry = with_species(0, chemical_symbols=["Li", "Na"], concentration=[0.5, 0.5])
    entry["attributes"]["structure_features"] = ["disorder"]
    stored, reasons = ingest(tmp_path, entry)
    assert stored == ["before", "after"]
    assert list(reasons.values()) == ["disordered site occupancies are not supported"]


def test_deuterium_as_a_chemical_symbol_is_told_so(tmp_path):
    """chemical_symbols ["D"] was told "unknown element 'D'", where CIF and POSCAR say deuterium."""
    stored, reasons = ingest(tmp_path, with_species(1, chemical_symbols=["D"]))
    assert stored == ["before", "after"]
    assert list(reasons.values()) == [
        "OPTIMADE species 'H' names deuterium (D) as a chemical symbol; the lake stores elements only: write H"
    ]


def test_concentrations_adding_up_to_more_than_one_are_told_so(tmp_path):
    """[0.8, 0.4] was told only that disordered sites are not supported."""
    stored, reasons = ingest(
        tmp_path, with_species(0, chemical_symbols=["Li", "Na"], concentration=[0.8, 0.4])
    )
    assert stored == ["before", "after"]
    assert list(reasons.values()) == [
        "OPTIMADE species 'Li' has concentrations [0.8, 0.4] adding up to 1.2: a site holds at most one atom "
        "(the concentrations must sum to 1 or less)"
    ]
