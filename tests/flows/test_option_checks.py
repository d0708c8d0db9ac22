"""Every numeric option and every output path of every `csp` command is checked while the command line is
read (issue 22): a value out of range or not finite, and a path the operating system refuses, end in one
``error:`` line that names the option (numbers: the range and the value; paths: the path and the
operating system's reason), exit 1, and nothing is written. An error writing under a checked output later
is one line too.

The commands are read from the app itself, so a new option is covered (or this test fails) without an edit
here. In process (:func:`tests.flows.cli_process.invoke_csp`): every refusal comes before any work.
"""

from __future__ import annotations

import errno
import math
import os
import types
import typing
from pathlib import Path

import pytest

from flows.checks import output_path
from tests.flows.cli_process import invoke_csp, one_line_error
from tests.storage.history_fixtures import make_history_lake

#: Path options that a command reads, not writes
INPUT_PATHS = {
    ("campaign", "show", "--compare-xrd"),
    ("learn", "run", "--init-run"),  # a run folder the first round fine-tunes (read)
    ("learn", "train", "--init-run"),
    ("learn", "status", "--labels-dir"),  # the rounds to list (read)
}


def leaf_options() -> list[tuple[tuple[str, ...], object]]:
    """``(command path, option)`` for every option of every `csp` command."""
    import typer

    from flows.cli.main import app

    found = []

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))
        if not hasattr(command, "commands"):
            found.extend((path, p) for p in command.params if p.opts and p.opts[0].startswith("--"))

    walk(typer.main.get_command(app), ())
    return found


def _type(option) -> object:
    annotation = option.type_descriptor.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def info(option) -> object:
    return option.type_descriptor.parameter_info


NUMBERS = [(path, opt) for path, opt in leaf_options() if _type(opt) in (int, float)]
OUTPUTS = [(path, opt) for path, opt in leaf_options() if _type(opt) is Path]


def out_of_range(bounds: dict) -> list[str]:
    """Values each numeric option must refuse: below and above its range, and not finite."""
    values = []
    if bounds["low"] is not None:
        values.append(str(int(bounds["low"]) - 1))  # every bound is a whole number
    if bounds["high"] is not None:
        values.append(str(int(bounds["high"]) + 1))
    if not bounds["integer"]:
        values += ["nan", "inf", "-inf"]
    return values


def written(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")) if home.exists() else []


# ------------------------------------------------------------------------------------------ numbers


def test_the_app_has_the_numeric_and_output_options_this_file_walks():
    names = {(" ".join(path), opt.opts[0]) for path, opt in NUMBERS + OUTPUTS}
    assert {
        ("campaign run", "--alpha"),
        ("campaign run", "--outer-steps"),
        ("models train", "--epochs"),
    } <= names
    assert {("service up", "--port"), ("augment label", "--time-limit-s"), ("sql", "--max-rows")} <= names
    assert {("campaign export", "--out"), ("sql", "--csv"), ("campaign run", "--export-cif")} <= names
    assert len(NUMBERS) >= 40 and len(OUTPUTS) >= 16


@pytest.mark.parametrize(("path", "option"), NUMBERS, ids=[f"{' '.join(p)} {o.opts[0]}" for p, o in NUMBERS])
def test_every_numeric_option_refuses_values_outside_its_range_in_one_line(tmp_path, path, option):
    bounds = getattr(info(option), "csp_bounds", None)
    assert bounds is not None, "declare it with flows.cli._options.number_option (or a model field's bounds)"
    assert bounds["low"] is not None, "every numeric option has a lower bound"
    flag = option.opts[0]
    for value in out_of_range(bounds):
        home = tmp_path / value
        text = one_line_error(invoke_csp(home, *path, flag, value))
        assert text.startswith(f"error: {flag} must be ") and text.endswith(f", not {value}."), text
        assert written(home) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["campaign", "run", "MgO", "--alpha", "nan"],
            "--alpha must be a finite number from 0 to 1, not nan.",
        ),
        (
            ["campaign", "run", "MgO", "--alpha", "inf"],
            "--alpha must be a finite number from 0 to 1, not inf.",
        ),
        (
            ["campaign", "run", "MgO", "--alpha", "-0.1"],
            "--alpha must be a finite number from 0 to 1, not -0.1.",
        ),
        (
            ["campaign", "run", "MgO", "--alpha", "1.5"],
            "--alpha must be a finite number from 0 to 1, not 1.5.",
        ),
        (
            ["campaign", "run", "MgO", "--outer-steps", "0"],
            "--outer-steps must be an integer from 1 to 10000, not 0.",
        ),
        (
            ["campaign", "run", "MgO", "--inner-steps", "-5"],
            "--inner-steps must be an integer from 1 to 100000, not -5.",
        ),
        (
            ["campaign", "run", "MgO", "--refine-fmax", "inf"],
            "--refine-fmax must be a finite number above 0, not inf.",
        ),
        (
            ["campaign", "run", "MgO", "--refine-fmax", "0"],
            "--refine-fmax must be a finite number above 0, not 0.",
        ),
        (["campaign", "run", "MgO", "--top-k", "0"], "--top-k must be an integer from 1 to 100, not 0."),
        (["campaign", "export", "x", "--top-k", "0"], "--top-k must be an integer of at least 1, not 0."),
        (
            ["models", "train", "--time-limit-s", "nan"],
            "--time-limit-s must be a finite number above 0, not nan.",
        ),
        (
            ["models", "train", "--seed", "-1"],
            "--seed must be an integer from 0 to 9223372036854775807, not -1.",
        ),
        (["service", "up", "--port", "70000"], "--port must be an integer from 1 to 65535, not 70000."),
        (["sql", "SELECT 1", "--max-rows", "-3"], "--max-rows must be an integer of at least 1, not -3."),
        (
            ["campaign", "run", "MgO", "--crystal-system", "hexagonalish"],
            "--crystal-system must be one of triclinic, monoclinic, orthorhombic, tetragonal, trigonal, "
            "hexagonal, cubic, not 'hexagonalish'.",
        ),
        (
            ["campaign", "run", "MgO", "--outer-steps", "abc"],
            "Invalid value for '--outer-steps': Input should be a valid integer",
        ),
    ],
)
def test_the_message_names_the_option_its_range_and_the_value(tmp_path, args, message):
    text = one_line_error(invoke_csp(tmp_path / "home", *args))
    assert text.startswith(f"error: {message}"), text
    assert written(tmp_path / "home") == []


def test_python_and_prefect_requests_get_the_same_sentence():
    """The campaign wiring (Prefect's form, Python) words a refused value as the command line does."""
    from flows.campaigns import CampaignError, validate

    for value, shown in ((math.nan, "nan"), (math.inf, "inf"), (-0.1, "-0.1")):
        with pytest.raises(CampaignError) as refused:
            validate({"composition": "MgO", "alpha": value})
        assert str(refused.value) == f"--alpha must be a finite number from 0 to 1, not {shown}."


# ------------------------------------------------------------------------------------------ outputs


def test_every_path_option_is_a_checked_output_or_a_known_input():
    unchecked = [
        f"{' '.join(path)} {opt.opts[0]}"
        for path, opt in OUTPUTS
        if (*path, opt.opts[0]) not in INPUT_PATHS and getattr(info(opt), "csp_output", None) is None
    ]
    assert not unchecked, "declare output paths with flows.cli._options.output_option"


CHECKED = [(p, o) for p, o in OUTPUTS if (*p, o.opts[0]) not in INPUT_PATHS]


def read_only(monkeypatch, folder: Path) -> None:
    """Make ``folder`` refuse every new file and folder as a read-only file system would (tests run as
    root, where chmod stops no write)."""
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(path, *args, **kwargs):
        if Path(path).parent == folder:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def fake_open(path, *args, **kwargs):
        refuse(path)
        return real_open(path, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


@pytest.mark.parametrize(("path", "option"), CHECKED, ids=[f"{' '.join(p)} {o.opts[0]}" for p, o in CHECKED])
def test_every_output_path_the_system_refuses_is_one_line_naming_path_and_reason(
    tmp_path, monkeypatch, path, option
):
    flag, kind = option.opts[0], info(option).csp_output
    home = tmp_path / "home"
    a_file, a_folder = tmp_path / "a.png", tmp_path / "folder"
    a_file.write_text("keep me")
    a_folder.mkdir()
    cases = [
        ("/proc/csp-x.png", f"Cannot write /proc/csp-x.png: no such file or directory (ENOENT); check the path, "
         f"or choose another {flag}."),
        (f"{a_file}/x.png", f"Cannot write {a_file}/x.png: {a_file} is a file, not a folder (ENOTDIR)"),
        (f"{tmp_path}/no/such/x.png", f"Cannot write {tmp_path}/no/such/x.png: the folder {tmp_path}/no/such does "
         f"not exist (ENOENT); create it first, or choose another {flag}."),
        (f"{tmp_path}/{'x' * 300}.png", "file name too long (ENAMETOOLONG)"),
    ]  # fmt: skip
    if kind == "folder":
        cases.append(
            (str(a_file), f"{flag} {a_file} exists and is not a folder; give a folder for the files.")
        )
    if kind == "file":
        cases.append((str(a_folder), f"{flag} {a_folder} is a folder; give a file name for the output."))
    for value, message in cases:
        text = one_line_error(invoke_csp(home, *path, flag, value))
        assert message in text, text
    assert a_file.read_text() == "keep me" and list(a_folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "folder"]  # nothing made, home included

    read_only(monkeypatch, a_folder)
    reason = "the file system is read-only (EROFS); remount it read-write"
    targets = [a_folder / "new.png"] + ([a_folder] if kind != "file" else [])  # into it, or the folder itself
    for target in targets:
        text = one_line_error(invoke_csp(home, *path, flag, str(target)))
        assert text == f"error: Cannot write {target}: {reason}, or choose another {flag}."


def test_the_check_leaves_nothing_behind(tmp_path):
    folder, file = tmp_path / "existing", tmp_path / "existing.csv"
    folder.mkdir()
    file.write_text("a,b\n")
    for target, kind in ((tmp_path / "new", "folder"), (tmp_path / "new.csv", "file"), (folder, "folder"),
                         (file, "file"), (tmp_path / "either", "file or folder")):  # fmt: skip
        assert output_path(target, "--out", kind) == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "existing.csv"]
    assert list(folder.iterdir()) == [] and file.read_text() == "a,b\n"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return make_history_lake(tmp_path_factory.mktemp("history") / "home")


def test_an_error_writing_under_a_checked_output_is_one_line(history, tmp_path):
    """The path passed its check, but the write still fails: a parquet file over an existing folder, a
    structure file over a folder of the same name."""
    home = history.root
    out = tmp_path / "out"
    out.mkdir()
    text = one_line_error(
        invoke_csp(home, "candidates", "export", "hist-a", "--format", "parquet", "--out", str(out))
    )
    assert text == (
        f"error: Cannot write {out}: a folder of that name is in the way (EISDIR); remove or rename that "
        "folder, or choose another --out."
    )
    (out / "hist-a-rank1.cif").mkdir()
    text = one_line_error(invoke_csp(home, "campaign", "export", "hist-a", "--out", str(out)))
    assert text.startswith(
        f"error: Cannot write {out / 'hist-a-rank1.cif'}: a folder of that name is in the way"
    ), text


def test_a_refusal_of_the_science_while_writing_is_one_line(history, tmp_path, monkeypatch):
    """A command that does not word a csp refusal itself still ends in its one sentence (the root command):
    here the CIF writer finds no space group for a structure of the result."""
    from csp.structures import symmetry

    def no_group(item, path, symprec=None):
        raise symmetry.SymmetryError("No space group is found for MgO at 0.1 A and 5 degrees: degenerate.")

    monkeypatch.setattr(symmetry, "write_symmetrised_cif", no_group)
    text = one_line_error(
        invoke_csp(history.root, "campaign", "export", "hist-a", "--out", str(tmp_path / "o"))
    )
    assert text == "error: No space group is found for MgO at 0.1 A and 5 degrees: degenerate."
