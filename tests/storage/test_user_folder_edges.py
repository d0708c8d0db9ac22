"""Issue 22 follow-up, the user's folder (``id_prop.csv`` plus POSCAR/CIF files): a POSCAR whose coordinate block
does not hold one line per atom is refused with its reason (never cut short silently, never an IndexError);
each refusal says what is wrong with the row or the file, and is filed under the file that holds the fault."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.ingest import ingest_records
from storage.lake import Lake
from storage.readers import Record, Rejection, read_id_prop_folder
from storage.readers.user_formats import cell_from_poscar
from storage.validation import StructureError

KW = {"source": "user", "license": "test"}
HEAD = "LiH\n1.0\n4.0 0.0 0.0\n0.0 4.0 0.0\n0.0 0.0 4.0\nLi H\n{counts}\nDirect\n"


def poscar(*coordinates: str, counts: str = "1 1") -> str:
    return HEAD.format(counts=counts) + "".join(f"{line}\n" for line in coordinates)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            poscar("0 0 0", "0.5 0.5 0.5", "# extra", "0.25 0.25 0.25"),
            "POSCAR has 2 more line(s) after its 2 coordinate lines, the first '# extra'; coordinates end with "
            "the file or a blank line",
        ),
        (
            poscar("0 0 0", "0.5 0.5 0.5", "0.25,0.25,0.25"),
            "POSCAR has 1 more line(s) after its 2 coordinate lines, the first '0.25,0.25,0.25'",
        ),
        (
            poscar("0 0 0", "0.5 0.5 0.5", counts="2 1"),
            "POSCAR's element counts add up to 3 atoms but only 2 coordinate line(s) follow before the end of "
            "the file; add the missing lines or fix the counts line",
        ),
        (
            poscar("0 0 0", "", "0.5 0.5 0.5", "0.5 0.5 0.5"),
            "POSCAR's element counts add up to 2 atoms but only 1 coordinate line(s) follow before a blank line",
        ),
        (
            poscar("0 0 0", "0.5 0.5 0.5", "0.25 0.25 0.25"),
            "POSCAR lists 3 coordinate lines but its element counts add up to 2 atoms",
        ),
        ("vm\n", "malformed POSCAR: it ends after 1 line(s)"),
    ],
    ids=["comment then coordinates", "commas", "fewer lines", "blank inside", "one more line", "one line"],
)
def test_a_coordinate_block_that_is_not_one_line_per_atom_is_refused(text, reason):
    with pytest.raises(StructureError) as caught:
        cell_from_poscar(text)
    assert str(caught.value).startswith(reason), str(caught.value)
    assert "IndexError" not in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        poscar("0 0 0", "0.5 0.5 0.5 ! a comment", counts="1 1"),
        poscar("0 0 0", "0.5 0.5 0.5", "", "0.01 0 0", "0 0 0"),  # a CONTCAR's velocities after a blank line
        poscar("0 0 0", "0.5 0.5 0.5", "   "),  # trailing blank space
        poscar("0 0 0 Li", "0.5 0.5 0.5 H"),
    ],
    ids=["comment on a line", "velocities", "trailing blanks", "labels"],
)
def test_valid_coordinate_blocks_still_read(text):
    assert cell_from_poscar(text).species == ["Li", "H"]


def test_row_faults_and_file_faults_are_told_apart_and_filed_under_their_file(tmp_path):
    (tmp_path / "ok.vasp").write_text(poscar("0 0 0", "0.5 0.5 0.5"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "extra.vasp").write_text(poscar("0 0 0", "0.5 0.5 0.5", "# x", "0.2 0.2 0.2"))
    (tmp_path / "folder.vasp").mkdir()
    os.mkfifo(tmp_path / "fifo.vasp")
    (tmp_path / "esc\x1b[2J.vasp").write_text(poscar("0 0 0", "0.5 0.5 0.5"))
    (tmp_path / "id_prop.csv").write_text(
        "ok.vasp,-0.5\nsub/extra.vasp,-0.5\nfolder.vasp,-0.5\nfifo,-0.5\nok.vasp,-0.5,extra\n"
        "esc\x1b[2J.vasp,-0.5\nmissing.vasp,-0.5\n"
    )
    items = list(read_id_prop_folder(tmp_path, **KW))
    assert [i.row["source_id"] for i in items if isinstance(i, Record)] == ["ok"]
    refused = [(i.file, i.row, i.source_id, i.reason) for i in items if isinstance(i, Rejection)]
    assert refused == [
        (
            "sub/extra.vasp",
            1,
            "sub/extra",
            "extra.vasp: POSCAR has 2 more line(s) after its 2 coordinate lines, the first '# x'; coordinates "
            "end with the file or a blank line, and each is three numbers separated by spaces (the reader "
            "would drop these lines: fix the counts line or remove them)",
        ),
        ("id_prop.csv", 2, "folder", "'folder.vasp' is a folder, not a regular file; name a structure file"),
        (
            "id_prop.csv",
            3,
            "fifo",
            "'fifo.vasp' is a FIFO, socket or device, not a regular file; name a structure file",
        ),
        ("id_prop.csv", 4, "ok.vasp", "record has 3 fields, expected 2: file, energy"),
        (
            "id_prop.csv",
            5,
            None,
            "file name 'esc\\x1b[2J.vasp' holds the control or invisible character(s) U+001B; use visible "
            "characters only",
        ),
        (
            "id_prop.csv",
            6,
            "missing",
            "no structure file named 'missing.vasp' (tried suffixes ['.cif', '.vasp', '.poscar', '.POSCAR'])",
        ),
    ]


def test_a_structure_the_checks_refuse_is_filed_under_its_file_and_read_counts_every_row(tmp_path):
    """The quarantine row of a structure refused after parsing (here two atoms on one spot) names the
    structure's file; the ingest report reads 4 records, writes 1 and quarantines 3."""
    (tmp_path / "ok.vasp").write_text(poscar("0 0 0", "0.5 0.5 0.5"))
    (tmp_path / "overlap.vasp").write_text(poscar("0 0 0", "0 0 0"))
    (tmp_path / "id_prop.csv").write_text("ok.vasp,-0.5\noverlap,-0.5\nok.vasp,abc\nok.vasp,\n")
    lake = Lake(tmp_path / "home")
    report = ingest_records(lake, read_id_prop_folder(tmp_path, **KW), source="user", run_id="r")
    assert (report.n_read, report.written["structures"], report.n_rejected) == (4, 1, 3)
    rows = lake.query("SELECT file, row, source_id, reason FROM quarantine ORDER BY row").to_pylist()
    assert [(r["file"], r["row"], r["source_id"]) for r in rows] == [
        ("overlap.vasp", 1, "overlap"),
        ("id_prop.csv", 2, "ok"),
        ("id_prop.csv", 3, "ok"),
    ]
    assert rows[2]["reason"] == "formation energy is missing (the second field is empty)"


def test_the_cli_summary_reads_every_row(tmp_path):
    from tests.flows.cli_process import invoke_csp

    (tmp_path / "in").mkdir()
    folder = Path(tmp_path / "in")
    (folder / "ok.vasp").write_text(poscar("0 0 0", "0.5 0.5 0.5"))
    (folder / "id_prop.csv").write_text("ok.vasp,-0.5\nok.vasp,-0.5,x\nnone.vasp,-1\n")
    result = invoke_csp(tmp_path / "home", "ingest", "folder", str(folder), "--source", "user")
    assert result.returncode == 0, result.stderr
    assert "│ user   │    3 │       1 │           2 │" in result.stdout


def test_files_of_one_stem_are_distinct_structures_under_their_path(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("good.vasp", "sub/good.vasp", "good.POSCAR"):
        (tmp_path / name).write_text(poscar("0 0 0", "0.5 0.5 0.5"))
    (tmp_path / "id_prop.csv").write_text(
        "good.vasp,-3.0\nsub/good.vasp,-0.9\ngood.POSCAR,-3.1\n./sub//good.vasp,-1\ngood,-2\n"
    )
    items = list(read_id_prop_folder(tmp_path, **KW))
    stored = [(i.row["source_id"], i.row["dhf_dft_ev_per_atom"]) for i in items if isinstance(i, Record)]
    assert stored == [("good", -3.0), ("sub/good", -0.9), ("good.POSCAR", -3.1)]
    refused = [(i.source_id, i.reason) for i in items if isinstance(i, Rejection)]
    assert refused == [  # one file named twice, whichever way, is one id
        ("sub/good", "duplicate source_id 'sub/good' in this file (first at record 1)"),
        ("good", "duplicate source_id 'good' in this file (first at record 0)"),
    ]


@pytest.mark.parametrize("line", ["1e300 2 2", "2 -41 2"])
def test_a_poscar_position_far_out_of_the_cell_is_refused_for_that(line):
    text = poscar("0 0 0", line).replace("Direct", "Cartesian")
    with pytest.raises(StructureError, match=r"POSCAR coordinates: site 1 at \[.*\] lies more than 10 cell"):
        cell_from_poscar(text)


def _with_lines(elements: str, counts: str) -> str:
    return poscar("0 0 0", "0.5 0.5 0.5").replace("Li H\n1 1\n", f"{elements}\n{counts}\n")


@pytest.mark.parametrize(
    ("elements", "counts", "reason"),
    [
        (
            "Mg O",
            "1 1 1",
            "POSCAR counts line gives 3 count(s) for 2 element symbol(s) (Mg O / 1 1 1); give one count per element",
        ),
        (
            "Mg O Li",
            "1 1",
            "POSCAR counts line gives 2 count(s) for 3 element symbol(s) (Mg O Li / 1 1); give one count per element",
        ),
        (
            "Mg O\x1b[31m",
            "1 1",
            "POSCAR element line 'Mg O\\x1b[31m' holds the control or invisible character(s) U+001B",
        ),
        ("Li d", "1 1", "POSCAR element line names the unknown element symbol 'd'"),
        ("mg O", "1 1", "POSCAR element line names the unknown element symbol 'mg' (element symbols are capitalised: 'Mg')"),
        ("Li Xx", "1 1", "POSCAR element line names the unknown element symbol 'Xx'"),
    ],
)
def test_an_element_line_and_counts_that_do_not_go_together_say_why(elements, counts, reason):
    with pytest.raises(StructureError) as caught:
        cell_from_poscar(_with_lines(elements, counts))
    assert str(caught.value).startswith(reason)


@pytest.mark.parametrize("elements", ["Mg O", "Mg2+ O2-", "Mg_pv O_s", "Mg/abc O"])
def test_element_lines_that_read_still_read(elements):
    assert cell_from_poscar(_with_lines(elements, "1 1")).species == ["Mg", "O"]
