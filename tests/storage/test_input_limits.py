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
    from storage.lake import Lake

    Lake(tmp_path).init()  # `csp candidates query` reads only a lake that exists
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


# --- issue 22 leftovers: one rule for every source name, look-alikes refused ------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("c\u043ed", "mixes the scripts Latin ('c'), Cyrillic ('\u043e')"),  # a Cyrillic o in "cod"
        ("\u03bcSR-data", "mixes the scripts Greek ('\u03bc'), Latin ('S')"),
        ("\u0441\u043e\u0440", "is written in Cyrillic letters that read as the Latin 'cop'"),
        ("\u0391\u0392\u0395", "is written in Greek letters that read as the Latin 'ABE'"),
        ("cod\u2010x", "holds '\u2010' (U+2010, hyphen); use ASCII punctuation"),
        ("cod\u2215x", "holds '\u2215' (U+2215, division slash); use ASCII punctuation"),
        ("cod\u0663", "holds the digit '\u0663' (U+0663); write digits as 0-9"),
        ("cod\u202egnp", "holds the invisible character(s) U+202E"),  # a right-to-left override
        ("cod\u00adx", "holds the invisible character(s) U+00AD"),  # a soft hyphen
        ("\u0301cod", "holds a combining mark U+0301 that follows no letter"),
        ("my  cifs", "holds two spaces in a row"),
        ("x" * 65, "has 65 characters, more than 64"),
        (".", "is made of dots only, which reads as a folder"),
        ("..", "is made of dots only, which reads as a folder"),
        ("my/cifs", "holds '/', so it looks like a path; use '-' or '_' instead"),
        ("my\\cifs", "holds '\\\\', so it looks like a path"),
        ("c:cifs", "holds ':', so it looks like a path"),
        # cif22c: a source name is a plain identifier (letters, digits, '_', '-', '.')
        ("my cifs", "holds ' '; a source name is a plain identifier of letters, digits 0-9, '_', '-'"),
        ("cod\u00a0x", "holds ' '; a source name is a plain identifier"),  # a no-break space is a space
        ("~", "holds '~'; a source name is a plain identifier"),
        ("x*", "holds '*'; a source name is a plain identifier"),
        ("$HOME", "holds '$'; a source name is a plain identifier"),
        ("[bold]x", "holds '[', ']'; a source name is a plain identifier"),
        ("-x", "begins with '-'; begin it with a letter or digit"),
        (".cifs", "begins with '.'; begin it with a letter or digit"),
        ("cifs.", "ends with '.', which Windows drops from a file name"),
        ("con", "is (or begins with) 'con', a device name Windows reserves"),
        ("NUL", "is (or begins with) 'nul', a device name Windows reserves"),
        ("Com1", "is (or begins with) 'com1', a device name Windows reserves"),
        ("aux.cifs", "is (or begins with) 'aux', a device name Windows reserves"),
        ("lpt9", "is (or begins with) 'lpt9', a device name Windows reserves"),
    ],
)
def test_look_alike_and_unbounded_source_names_are_refused(name, reason):
    with pytest.raises(SourceNameError, match=re.escape(reason)) as caught:
        check_source_name(name)
    assert "\n" not in str(caught.value)


#: source names the project ships or registers, and names only like a reserved one (cif22c)
SHIPPED_NAMES = (
    "oqmd_intermetallics", "gnome", "mp_flla2015", "chgnet-0.3.0", "icsd", "expt_deltae_jha2019",
    "jang2020_mp_icsd", "castelli_alt", "console", "com10", "2024.cifs",
)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("\uff43\uff4f\uff44", "cod"),  # full-width letters are the plain ones (NFKC)
        ("\ufb01les", "files"),  # a ligature
        ("caf\u0065\u0301", "caf\u00e9"),  # NFD is NFC
        ("x" * 64, "x" * 64),
        ("donn\u00e9es", "donn\u00e9es"),
        (
            "\u0440\u0443\u0441-\u0434\u0430\u043d\u043d\u044b\u0435",
            "\u0440\u0443\u0441-\u0434\u0430\u043d\u043d\u044b\u0435",
        ),
        ("\u6771\u4eac\u30c7\u30fc\u30bf_set", "\u6771\u4eac\u30c7\u30fc\u30bf_set"),  # Han, Katakana, Latin
        ("\uc11c\uc6b8_data", "\uc11c\uc6b8_data"),  # Hangul and Latin
        ("chgnet-0.3.0-active", "chgnet-0.3.0-active"),
        # cif22c: the shipped and registered source names are plain identifiers
        *((name, name) for name in SHIPPED_NAMES),
    ],
)
def test_source_names_are_stored_in_nfkc_form(name, stored):
    assert check_source_name(name) == stored


@pytest.mark.parametrize(
    ("name", "in_use"),
    [("COD", "cod"), ("c0d", "cod"), ("my_cifs", "my-cifs"), ("gnorne", "gnome"),
     ("lCSD", "ICSD"), ("\uff23\uff2f\uff24", "cod"), ("att_1", "att1"), ("att.1", "att_1"),
     ("mycifs", "my-cifs"), ("my.cifs", "my-cifs"), ("Att-1", "att1")],
)  # fmt: skip
def test_a_name_that_looks_like_one_in_use_is_refused(name, in_use):
    with pytest.raises(SourceNameError, match=re.escape(f"looks like the source {in_use!r} already in use")):
        check_source_name(name, known=["gnome", in_use])
    assert check_source_name(in_use, known=[in_use]) == in_use  # the same name again is the same source


def test_every_ingest_entry_refuses_a_look_alike_of_a_stored_source(tmp_path):
    import json

    from pymatgen.core import Lattice, Structure

    from storage.ingest import ingest_records
    from storage.lake import Lake
    from storage.readers import read_id_prop_folder

    folder = tmp_path / "in"
    folder.mkdir()
    Structure(Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(folder / "a.cif")
    )
    (folder / "id_prop.csv").write_text("a.cif,-3.0\n")
    response = tmp_path / "r.json"
    response.write_text(json.dumps({"data": []}))
    home = tmp_path / "home"
    assert invoke_csp(home, "ingest", "folder", str(folder), "--source", "my-cifs").returncode == 0
    expected = "looks like the source 'my-cifs' already in use"
    for args in (["folder", str(folder)], ["optimade", str(response)]):
        assert expected in one_line_error(invoke_csp(home, "ingest", *args, "--source", "My_CIFs"))
    lake = Lake(home)
    with pytest.raises(SourceNameError, match=expected):  # what the Prefect flows and `csp augment` call
        ingest_records(
            lake, read_id_prop_folder(folder, source="x", license="x"), source="my.cifs", run_id="r"
        )
    reserved = "differs only in case, separators or look-alike characters from 'gnome', which is reserved"
    assert reserved in one_line_error(
        invoke_csp(tmp_path / "fresh", "ingest", "folder", str(folder), "--source", "GNOME")
    )  # the registered sources are reserved before any is ingested
    assert not (tmp_path / "fresh" / "lake").exists()  # a refused name creates no lake
    assert lake.query("SELECT DISTINCT source FROM structures").to_pylist() == [{"source": "my-cifs"}]


def test_every_registered_source_name_is_a_plain_identifier():
    from storage.readers import sources_in_order

    names = {spec.name for spec in sources_in_order()}
    names |= {label for spec in sources_in_order() for label in spec.label_sources or ()}
    assert names and all(check_source_name(name) == name for name in names)
