"""Formats a user brings: a folder of CIF/POSCAR files with ``id_prop.csv``, and OPTIMADE responses.

Their structures get one check the mirror's databases do not (``units_check``:
:func:`storage.validation.stretched_cell_problem`): a cell whose lengths look like Bohr is refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

import numpy as np

from storage.readers._common import (
    DuplicateGuard,
    Item,
    Rejection,
    check_energy,
    decode_text,
    excerpt,
    iter_csv,
    short_token,
    visible_text_problem,
)
from storage.readers._optimade_entry import (
    OptimadeAttributes,
    OptimadeSpecies,
    check_attributes,
    check_entry,
    readable_id,
)
from storage.readers._rows import read_text, structure_scalars
from storage.readers._structure import (
    MAX_ABS_FRACTIONAL,
    Cell,
    PendingStructure,
    StructureError,
    cell_from_arrays,
    finish_all,
)
from storage.validation import OCCUPANCY_TOLERANCE, compare_formulas, full_occupancy

_SUFFIXES = ("", ".cif", ".vasp", ".poscar", ".POSCAR")


def _find_structure_file(folder: Path, name: str) -> Path | str:
    """The file ``name`` (with or without a suffix of :data:`_SUFFIXES`) inside ``folder``, else why not.

    A name that leaves the folder is refused before any file is opened: an absolute path, a path through
    ``..`` that ends outside, a NUL byte, or a link (the file or a folder on its way) to a place outside.
    """
    if "\x00" in name:
        return f"file name {name!r} holds a NUL character"
    if PurePath(name).is_absolute() or PureWindowsPath(name).is_absolute():
        return f"file name {name!r} is an absolute path; id_prop.csv may name only files inside its folder"
    if os.path.normpath(name).split(os.sep, 1)[0] == os.pardir:
        return f"file name {name!r} points outside the folder (through '..'); name a file inside it"
    problem = visible_text_problem(name, "file name")
    if problem:
        return problem
    root = folder.resolve()
    irregular = None
    for suffix in _SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            if not candidate.resolve().is_relative_to(root):
                return f"file name {name!r} is a link to a file outside the folder; copy the file into the folder"
            return candidate
        if irregular is None and candidate.exists():  # a folder, a FIFO, a socket, a device
            irregular = candidate
    if irregular is not None:
        kind = "a folder" if irregular.is_dir() else "a FIFO, socket or device"
        return (
            f"{os.path.normpath(irregular.relative_to(folder))!r} is {kind}, not a regular file; "
            "name a structure file"
        )
    return f"no structure file named {name!r} (tried suffixes {list(_SUFFIXES[1:])})"


def cell_from_poscar(text: str) -> Cell:
    """Read a VASP POSCAR/CONTCAR text (element names required), as VASP reads it.

    The text is first normalised: a trailing ``!`` or ``#`` comment after the numbers of a line is cut
    (:func:`without_trailing_comments`), and the scale line, whatever it holds (a factor, a negative cell volume,
    three per-axis factors), is applied to the lattice and to Cartesian positions and rewritten as ``1.0``
    (:func:`unit_scaled`), so pymatgen never interprets a scale itself.

    Raises:
        StructureError: if pymatgen cannot read it, the file names no species (pymatgen would invent
            H, He, ... placeholders), a site is not a known element, a scale, lattice or coordinate line is
            not the finite numbers VASP reads there (:func:`_number_lines_problem`), a count is no whole
            number, or its coordinate block does not hold one line per atom of its counts
            (:func:`_coordinate_problem`: fewer lines, or lines after them that pymatgen would drop).
    """
    from pymatgen.io.vasp import Poscar

    text = without_trailing_comments(text)
    problem = _number_lines_problem(text)
    if problem:
        raise StructureError(problem)
    text = unit_scaled(text)
    problem = _element_line_problem(text) or _counts_problem(text) or _coordinate_problem(text)
    if problem:
        raise StructureError(problem)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structure = Poscar.from_str(text).structure
        except IndexError as exc:  # pymatgen ran past the last line
            raise StructureError(_short_poscar_reason(text)) from exc
        except Exception as exc:  # pymatgen raises its own StructureError, MemoryError, warnings as errors
            detail = " ".join(str(exc).split()) or "the element counts ask for more atoms than memory holds"
            raise StructureError(f"malformed POSCAR: {type(exc).__name__}: {detail}") from exc
    if any("cannot be determined" in str(w.message) for w in caught):
        # pymatgen then names the species H, He, Li, ... in order: never store placeholders
        raise StructureError(
            "POSCAR names no species (no element line after the scale and lattice, and none pymatgen can "
            "read from the comment line); add the VASP 5 element line"
        )
    far = _far_site(structure.cart_coords, structure.frac_coords)
    if far:
        raise StructureError(f"POSCAR coordinates: {far}")
    species = [site.specie.symbol for site in structure]
    isotopes = sorted(ISOTOPES.keys() & set(_element_line(text)))
    if isotopes:
        raise StructureError(
            f"POSCAR element line names the isotope(s) {isotopes} ({', '.join(ISOTOPES[i] for i in isotopes)}); "
            "the lake stores elements only: write H"
        )
    return cell_from_arrays(structure.lattice.matrix, species, structure.frac_coords)


def _short_poscar_reason(text: str) -> str:
    """Why pymatgen ran past a POSCAR's last line: the file is short, or a blank line ends its first block and
    the lines after it are too few for what VASP reads there (a velocity block holds one line per atom)."""
    blocks = [b for b in re.split(r"\n[ \t\r]*\n", text.strip()) if b.strip()]
    if len(blocks) > 1:
        extra = sum(len(b.splitlines()) for b in blocks[1:])
        return (
            f"malformed POSCAR: a blank line after line {len(blocks[0].splitlines())} ends its structure, and "
            f"{extra} more line(s) follow it; VASP reads a block there as the velocities of every atom (one line "
            "each), which these are not: remove them, or put the coordinates before the blank line"
        )
    return (
        f"malformed POSCAR: it ends after {len(text.strip().splitlines())} line(s), before its lattice, "
        "counts, coordinate mode and coordinates are complete"
    )


#: hydrogen's isotopes that pymatgen reads as H without a word: refused, never stored as H silently
ISOTOPES = {"D": "deuterium", "T": "tritium"}

#: an OPTIMADE species name that denotes an isotope, whatever its chemical symbols: a mass number before or
#: after an element symbol (``2H``, ``13C``, ``H-2``), or the words deuterium/tritium/deuteron/triton in any case
_ISOTOPE_NAME = re.compile(r"\d+[A-Za-z][a-z]?|[A-Za-z][a-z]?-\d+|.*(deuter|tritium|triton).*", re.IGNORECASE)
#: ``D``/``T`` (any case), alone or followed by digits (a site label ``D1``): an isotope of hydrogen when the
#: species' chemical symbol is H; ``D``/``T`` alone is refused whatever the symbols (as before)
_HYDROGEN_ISOTOPE_LABEL = re.compile(r"[DT]\d*", re.IGNORECASE)


def isotope_name(name: str, symbols: list[str]) -> bool:
    """Whether an OPTIMADE species ``name`` denotes an isotope (see :data:`_ISOTOPE_NAME`); ``H2`` or ``Li1``
    (an element and a site number) does not."""
    if _ISOTOPE_NAME.fullmatch(name) or name.upper() in ISOTOPES:
        return True
    return bool(_HYDROGEN_ISOTOPE_LABEL.fullmatch(name)) and "H" in symbols


def _isotope_mass(symbols: list[str], mass: list[float] | None) -> bool:
    """Whether an OPTIMADE species' ``mass`` (u, one per chemical symbol; the v1.0 single number arrives as a
    list of one) departs from its element's standard atomic weight by more than 0.5 u: an isotope (deuterium
    is 2.014 u, H 1.008 u)."""
    from pymatgen.core import Element

    if mass is None or len(mass) != len(symbols):
        return False
    try:
        return any(
            abs(float(m) - float(Element(sym).atomic_mass)) > 0.5
            for sym, m in zip(symbols, mass, strict=True)
        )
    except (ValueError, TypeError, KeyError, OverflowError):
        return False


def _element_line_problem(text: str) -> str | None:
    """Why a VASP 5 POSCAR's element line (the sixth) and the counts line after it do not go together, or None:
    a control character in the element line (named), an unknown element symbol (``d``: pymatgen's own message
    was "Can't parse Element or Species"), or more or fewer counts than symbols (``Mg O`` / ``1 1 1`` ended as
    "it ends after 11 lines"). A POSCAR without an element line, or one that wraps it, is left to the reader."""
    from pymatgen.core import Element

    lines = [line.rstrip("\r") for line in text.split("\n")]
    if len(lines) < 7 or not lines[5].split() or _numbers(lines[5].split()):
        return None
    problem = visible_text_problem(lines[5], "POSCAR element line")
    if problem:
        return problem
    try:
        counts = [int(t) for t in lines[6].split("#", 1)[0].split()]
    except ValueError:
        return None  # the element line wraps (more than 20 groups), or the counts are malformed
    symbols = [token.split("_")[0].split("/")[0] for token in lines[5].split()]
    for symbol in symbols:
        element = re.sub(r"[\d.]*[+-]$", "", symbol)  # an oxidation state (O2-, Mg2+) still reads
        if not Element.is_valid_symbol(element):
            proper = element.capitalize()
            hint = (
                f" (element symbols are capitalised: {proper!r})"
                if (Element.is_valid_symbol(proper) and proper not in ISOTOPES and Element(proper).Z < 100)
                else ""
            )
            if not hint and Element.is_valid_symbol(proper) and proper not in ISOTOPES:  # NO: No, Z = 102
                hint = (
                    f" ({proper}, Z = {Element(proper).Z}, is no element of a measured crystal; "
                    f"{element!r} reads as a group: name each element of it, one per site)"
                )
            return f"POSCAR element line names the unknown element symbol {element!r}{hint}"
    if counts and len(counts) != len(symbols):
        return (
            f"POSCAR counts line gives {len(counts)} count(s) for {len(symbols)} element symbol(s) "
            f"({' '.join(symbols)} / {' '.join(map(str, counts))}); give one count per element"
        )
    return None


def _element_line(text: str) -> list[str]:
    """The element symbols of a VASP 5 POSCAR's sixth line (POTCAR suffixes such as ``_sv`` cut off), or []."""
    lines = text.splitlines()
    if len(lines) < 6 or _numbers(lines[5].split()):
        return []
    return [token.split("_")[0].split("/")[0] for token in lines[5].split()]


def _numbers(parts: list[str]) -> bool:
    try:
        [float(x) for x in parts]
    except ValueError:
        return False
    return bool(parts)


def _coordinate_block(lines: list[str]) -> tuple[int, int] | None:
    """``(index of the first coordinate line, number of sites)`` of a POSCAR's first block (comments cut),
    read as pymatgen reads it: VASP 4 counts on the sixth line, or VASP 5/6 element lines (up to 10, when
    more than 20 groups wrap) followed by as many counts lines; None when the layout is not that."""
    found = _counts_line(lines)
    if found is None:
        return None
    counts, start = found
    if not counts or min(counts) < 0 or start >= len(lines):
        return None
    if lines[start][:1] in ("s", "S"):
        start += 1  # selective dynamics
    if start >= len(lines) or lines[start][:1].lower() not in ("d", "c", "k"):
        return None
    return start + 1, sum(counts)


#: what VASP reads on a POSCAR's scale, lattice and coordinate lines, for a refusal
_SCALE_LINE = (
    "the scale line holds 1 number (a scale factor, or a negative cell volume) or 3 (factors for x, y and z)"
)
_LATTICE_LINE = "a lattice line holds the 3 Cartesian components of a cell vector"
_COORDINATE_LINE = "a coordinate line begins with 3 numbers"


def _number_lines_problem(text: str) -> str | None:
    """Why a POSCAR's scale line (the second), lattice lines (third to fifth) or coordinate lines are not the
    finite numbers VASP reads there, else None, naming the line: a scale line of 2 or 4 numbers or of words
    (pymatgen said "could not convert string to float"), a lattice line of 2 numbers, and a number that is no
    finite float (``1e999`` is infinity: numpy warned before the cell was refused). A file too short to hold
    them is left to the reader."""
    lines = [line.split("#", 1)[0] for line in text.split("\n")]
    if len(lines) < 5:
        return None
    problem = _numbers_problem(lines[1].split(), 2, _SCALE_LINE, sizes=(1, 3))
    for k in (2, 3, 4):
        problem = problem or _numbers_problem(lines[k].split(), k + 1, _LATTICE_LINE, sizes=(3,))
    if problem:
        return problem
    layout = _coordinate_block([line.strip() for line in lines])
    if layout is None:
        return None
    first, atoms = layout
    for k in range(first, min(first + atoms, len(lines))):
        problem = _numbers_problem(lines[k].split()[:3], k + 1, _COORDINATE_LINE)
        if problem:
            return problem
    return None


def _numbers_problem(
    tokens: list[str], line: int, expected: str, *, sizes: tuple[int, ...] = ()
) -> str | None:
    """Why the ``tokens`` of POSCAR line ``line`` (1-based) are not finite numbers (``sizes`` of them, when
    given), else None."""
    shown = " ".join(tokens) or "blank"
    for token in tokens:
        try:
            finite = math.isfinite(float(token))
        except ValueError:
            return f"POSCAR line {line} ({short_token(shown, 40)}) holds {token!r}, which is no number; {expected}"
        if not finite:
            return (
                f"POSCAR line {line} ({short_token(shown, 40)}) holds {token!r}, which is no finite number "
                f"(beyond +-1.8e308, inf or nan); {expected}"
            )
    if sizes and len(tokens) not in sizes:
        return f"POSCAR line {line} ({short_token(shown, 40)}) holds {len(tokens)} numbers; {expected}"
    return None


def _counts_problem(text: str) -> str | None:
    """Why a POSCAR's element counts are impossible, else None: a count that is no whole number (``1 1.0``: the
    counts line is the first line from the sixth on holding a number; pymatgen said "invalid literal for int()"),
    or one of 0 or below (``Na Cl`` / ``1 0`` was stored as sodium metal; ``1 -1`` ended in pymatgen's
    "len(species)=2 != len(coords)=1")."""
    lines = [line.split("#", 1)[0].strip() for line in text.strip("\r\n").splitlines()]
    found = _counts_line(lines)
    if found is None:
        k = next((k for k in range(5, len(lines)) if any(_numbers([t]) for t in lines[k].split())), None)
        bad = (
            None
            if k is None
            else next((t for t in lines[k].split() if not re.fullmatch(r"[+-]?\d+", t)), None)
        )
        if k is None or bad is None:
            return None
        return (
            f"POSCAR line {k + 1} ({short_token(lines[k], 40)}), the counts line, holds {bad!r}; counts are "
            "positive integers, the number of atoms of each element (e.g. 1 1)"
        )
    if not found[0] or min(found[0]) > 0:
        return None
    counts = found[0]
    bad = next(n for n in counts if n <= 0)
    return (
        f"POSCAR counts line ({' '.join(short_token(n) for n in counts)}) gives {short_token(bad)} atoms of a "
        "species; every count must be 1 or more (drop the species from the element and counts lines)"
    )


def _counts_line(lines: list[str]) -> tuple[list[int], int] | None:
    """``(counts, index of the line after the counts)`` as pymatgen finds them, or None."""
    try:
        counts = [int(t) for t in lines[5].split()]
        start = 6
    except (IndexError, ValueError):
        for n in range(1, 11):
            try:
                int(lines[5 + n].split()[0])
            except (IndexError, ValueError):
                continue
            break
        else:
            return None
        try:
            counts = [int(t) for line in lines[5 + n : 5 + 2 * n] for t in line.split()]
        except ValueError:
            return None
        start = 5 + 2 * n
    return counts, start


#: a comment after the numbers of a POSCAR line: VASP reads a line's leading numbers (a Fortran list-directed
#: read), and ``!`` and ``#`` begin comments in VASP input
_TRAILING_COMMENT = re.compile(r"^(\s*[^\s!#][^!#]*?)\s*[!#].*$")


def without_trailing_comments(text: str) -> str:
    """A POSCAR text with each trailing comment cut: ``5.396   ! lattice constant`` reads as ``5.396`` (pymatgen
    cut only ``#`` comments and said "could not convert string to float"). Lines after the first (the free-text
    comment line) are cut at the first ``!`` or ``#`` that follows something else; a line that is only a
    comment is kept as it is, so it still counts as a line where the layout expects numbers."""
    lines = text.split("\n")
    return "\n".join([lines[0], *(_TRAILING_COMMENT.sub(r"\1", line) for line in lines[1:])])


def _scale_factors(lines: list[str]) -> np.ndarray | None:
    """The x, y and z factors a POSCAR's scale line (the second of ``lines``, comments cut) applies to the
    Cartesian components of its lattice vectors and Cartesian positions, as VASP applies them, or None when the
    line is not 1 or 3 numbers (refused before, by :func:`_number_lines_problem`).

    One positive number ``s`` is ``(s, s, s)``; one negative number is the cell volume ``V`` (Angstrom^3), so
    ``s = (V / |det L|)^(1/3)`` for the lattice ``L`` as written; three numbers are per-axis factors (VASP 6).

    Raises:
        StructureError: a scale of 0, a negative volume with a singular lattice, or three factors not all
            positive.
    """
    parts = lines[1].split()
    if len(parts) not in (1, 3) or not _numbers(parts):
        return None
    factors = np.array([float(p) for p in parts])
    if not np.all(np.isfinite(factors)):
        return None
    if len(parts) == 3:
        if not np.all(factors > 0):
            raise StructureError(
                f"POSCAR scale line gives the per-axis factors {' '.join(parts)}; VASP requires all three positive "
                "(a negative single number is a volume, three numbers scale x, y and z)"
            )
        return factors
    scale = float(factors[0])
    if scale == 0:
        raise StructureError(
            "POSCAR scale line is 0; it is a positive factor for the lattice, or a negative number: the cell volume"
        )
    if scale > 0:
        return np.full(3, scale)
    rows = [line.split()[:3] for line in lines[2:5]]
    if not all(len(r) == 3 and _numbers(r) for r in rows):
        return None
    volume = abs(float(np.linalg.det(np.array([[float(t) for t in r] for r in rows]))))
    if not (volume > 0 and math.isfinite(volume)):
        raise StructureError(
            f"POSCAR scale line gives the cell volume {-scale:g} A^3 (a negative scale) but the lattice lines "
            "span no volume (the lattice is singular)"
        )
    return np.full(3, (-scale / volume) ** (1 / 3))


def unit_scaled(text: str) -> str:
    """A POSCAR text (trailing comments cut) with its scale applied and its scale line rewritten as ``1.0``.

    Per the VASP wiki the scale (:func:`_scale_factors`: a factor, a negative cell volume, or three per-axis
    factors) multiplies the Cartesian components of the lattice vectors and, in Cartesian mode, of the positions;
    direct (fractional) positions are left alone. pymatgen applied a negative volume to the lattice but multiplied
    Cartesian positions by the raw negative number (bcc Fe given as ``-23.64`` was stored as R-3m), so the
    scale is applied here, once, for every case. Any text whose scale or lattice lines are not numbers is
    returned as it is.

    Raises:
        StructureError: see :func:`_scale_factors`.
    """
    lines = text.split("\n")
    if len(lines) < 5:
        return text
    factors = _scale_factors(lines)
    if factors is None:
        return text

    def scaled(line: str) -> str:
        tokens = line.split()
        if len(tokens) < 3 or not _numbers(tokens[:3]):
            raise StructureError(f"POSCAR line {line.strip()!r} holds no three numbers to scale")
        xyz = np.array([float(t) for t in tokens[:3]]) * factors
        return " ".join([*(repr(float(v)) for v in xyz), *tokens[3:]])

    out = [lines[0], "1.0", *(scaled(line) for line in lines[2:5]), *lines[5:]]
    clean = [line.split("#", 1)[0].strip() for line in out]
    layout = _coordinate_block(clean)
    if layout is not None and clean[layout[0] - 1][:1].lower() in ("c", "k"):  # Cartesian positions too
        first, atoms = layout
        for k in range(first, min(first + atoms, len(out))):
            out[k] = scaled(out[k])
    return "\n".join(out)


def _coordinate_problem(text: str) -> str | None:
    """Why a POSCAR's coordinate block does not hold exactly one line per atom of its counts, else None.

    pymatgen reads the block up to the first blank line (velocities and predictor-corrector data follow
    blank lines) and takes as many lines as the counts add up to: with fewer it fails with an ``IndexError``,
    and lines after them (more coordinates, a ``# comment`` line and coordinates, coordinates written with
    commas) are dropped without a word. Only a ``Lattice velocities and vectors`` section may follow the
    coordinates in that block.
    """
    block = re.split(r"\n\s*\n", text.strip("\r\n").rstrip(), maxsplit=1)
    raw = block[0].splitlines()
    lines = [line.split("#", 1)[0].strip() for line in raw]
    layout = _coordinate_block(lines)
    if layout is None:
        return None
    start, atoms = layout
    given = len(lines) - start
    if given < atoms:
        after = "a blank line" if len(block) > 1 else "the end of the file"
        return (
            f"POSCAR's element counts add up to {atoms} atoms but only {given} coordinate line(s) follow before "
            f"{after}; add the missing lines or fix the counts line"
        )
    rest = raw[start + atoms :]
    if not rest or lines[start + atoms].lower().startswith("l"):  # Lattice velocities and vectors
        return None
    extra = next((i for i, line in enumerate(rest) if not _numbers(line.split()[:3])), len(rest))
    if extra == len(rest):
        return (
            f"POSCAR lists {atoms + extra} coordinate lines but its element counts add up to {atoms} atoms "
            "(fix the counts line; the extra sites would be dropped)"
        )
    return (
        f"POSCAR has {len(rest)} more line(s) after its {atoms} coordinate lines, the first {rest[0].strip()!r}; "
        "coordinates end with the file or a blank line, and each is three numbers separated by spaces (the "
        "reader would drop these lines: fix the counts line or remove them)"
    )


def _id_prop_source_id(folder: Path, found: Path) -> str:
    """The source id of a structure file of an ``id_prop.csv`` folder: its path inside the folder (``sub/a``
    for ``sub/a.vasp``), without its suffix when that shorter name finds this very file, else with it
    (``a.POSCAR`` beside ``a.vasp``). Each file gets one id, whichever way a row names it (``a``, ``a.vasp``,
    ``./a.vasp``), and no two files share one; an id is always a name ``id_prop.csv`` could use for its file.
    """
    path = Path(os.path.normpath(found.relative_to(folder)))
    if path.suffix in _SUFFIXES[1:]:
        short = path.with_suffix("")
        again = _find_structure_file(folder, str(short))
        if isinstance(again, Path) and os.path.normpath(again) == os.path.normpath(folder / path):
            return short.as_posix()
    return path.as_posix()


def _written_id(name: str) -> str:
    """The id a row whose file was not read is quarantined under: the name, normalised, less its suffix."""
    if not name:
        return name
    path = Path(os.path.normpath(name))
    return (path.with_suffix("") if path.suffix.lower() in _SUFFIXES[1:] else path).as_posix()


def _pending_id_prop(
    folder: Path, source: str, license: str, energy_kind: str
) -> Iterator[PendingStructure | Rejection]:
    table = folder / "id_prop.csv"
    seen = DuplicateGuard()
    for item in iter_csv(table, ("file", "energy"), header=False, columns=["file", "energy"]):
        if isinstance(item, Rejection):
            yield item
            continue
        name = item.fields["file"].strip()
        dhf, reason = check_energy(item.fields["energy"])
        if dhf is None and reason is None:
            reason = "formation energy is missing (the second field is empty)"
        found = None if reason else _find_structure_file(folder, name)  # a name leaving the folder: refused
        if isinstance(found, str):
            reason, found = found, None
        sid = _id_prop_source_id(folder, found) if found is not None else _written_id(name)
        reason = reason or seen.check(sid, item.index)
        if reason or found is None:  # a fault of the row (its energy, a missing file, a duplicate id)
            shown = (
                sid if sid and not visible_text_problem(sid, "id") else None
            )  # never store what was refused
            yield Rejection(table.name, item.index, shown, reason or "no file", excerpt(item.raw))
            continue
        # from here a fault is the structure file's: filed under its name (relative to the folder, suffix
        # included), not under id_prop.csv; the record index stays the id_prop.csv row
        file = os.path.normpath(found.relative_to(folder))
        cell: Cell | None = None
        try:
            text = decode_text(found.read_bytes())
            if found.suffix.lower() != ".cif":
                cell = cell_from_poscar(text)
        except (UnicodeDecodeError, StructureError) as exc:
            yield Rejection(file, item.index, sid or None, str(exc), excerpt(item.raw))
            continue
        row = structure_scalars(
            source=source,
            source_id=sid,
            license=license,
            raw_formula="",
            dhf=dhf,
            energy_kind=energy_kind,
            extra={"file": found.name},
        )
        yield PendingStructure(
            file, item.index, sid, row, cif=None if cell else text, cell=cell, raw=item.raw, units_check=True
        )


def read_id_prop_folder(
    path: Path, *, source: str, license: str, energy_kind: str = "id_prop_value", workers: int = 1
) -> Iterator[Item]:
    """Stream a CGCNN/ALIGNN-style folder: ``id_prop.csv`` rows ``name,value`` (no header) plus files.

    Each ``name`` is a file in the folder, with or without one of the suffixes ``.cif``, ``.vasp``,
    ``.poscar`` (``POSCAR``-style names work as is); ``.cif`` files are read as CIF, others as POSCAR.
    ``value`` is taken as a formation energy in eV/atom; ``raw_formula`` is the structure's formula.
    A name that leaves the folder (an absolute path, ``../x.cif``, a link to a file outside) is a
    :class:`Rejection` and the file is never read. Files are decoded by
    :func:`storage.readers._common.decode_text` (UTF-8 with or without a byte-order mark, else Latin-1).

    Args:
        path: the folder (or its ``id_prop.csv``).
        source: source name the user chose.
        license: licence string stored on every row.
        energy_kind: what the values are (stored in ``energy_kind``).
        workers: processes that parse CIFs.

    Yields:
        One :class:`Record` or :class:`Rejection` per ``id_prop.csv`` row.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    for item in finish_all(_pending_id_prop(folder, source, license, energy_kind), workers=workers):
        yield _naming_its_file(item)


def _naming_its_file(item: Item) -> Item:
    """``item``, its reason led by the structure file's name when it is a refusal of that file (the one place a
    folder ingest's reasons name their file, whichever check of whichever reader refused it); a refusal of an
    ``id_prop.csv`` row (its energy, a missing file) already says so."""
    if not isinstance(item, Rejection) or item.file == "id_prop.csv":
        return item
    name = PurePath(item.file).name
    if item.reason.startswith(f"{name}: "):
        return item
    return dataclasses.replace(item, reason=f"{name}: {item.reason}")


def cell_from_optimade(attributes: Any) -> Cell:
    """Build a cell from OPTIMADE structure attributes (Cartesian positions in Angstrom).

    The attributes are first checked against the specification's types
    (:func:`storage.readers._optimade_entry.check_attributes`), then against each other: as many positions as
    ``species_at_sites``, ``nsites`` equal to that count, ``nperiodic_dimensions`` equal to the periodic
    ``dimension_types``, every site's name among ``species`` (when given), one concentration per chemical
    symbol, ``elements``, ``nelements`` and the formulas (``chemical_formula_descriptive`` and
    ``chemical_formula_anonymous``; the reduced one is compared when the structure is finished) equal to what
    the sites hold.

    Raises:
        StructureError: on a field of the wrong type or shape, missing attributes, a disordered or vacancy
            species, an isotope (named as one, see :func:`isotope_name`, or with a ``mass``, one number or a
            list, more than 0.5 u off its element's; a mass that is not a finite number), ``attached`` atoms,
            ``assemblies`` (sites that are alternatives of one another),
            fields that disagree with each other or the sites, or an entry periodic in fewer than 3 dimensions.
    """
    attrs = check_attributes(attributes)
    if attrs.assemblies:
        raise StructureError(
            "OPTIMADE entry has assemblies (alternative groups of sites: partial occupancy); disordered "
            "structures are not supported"
        )
    types = attrs.dimension_types
    if (
        attrs.nperiodic_dimensions is not None
        and types is not None
        and sum(types) != attrs.nperiodic_dimensions
    ):
        raise StructureError(
            f"OPTIMADE entry declares nperiodic_dimensions = {attrs.nperiodic_dimensions} but dimension_types "
            f"{types} has {sum(types)} periodic direction(s)"
        )
    for periodic, field in (
        (attrs.nperiodic_dimensions, "nperiodic_dimensions"),
        (types and sum(types), "dimension_types"),
    ):
        if periodic is not None and periodic != 3:
            raise StructureError(
                f"OPTIMADE entry is periodic in {periodic} dimension(s) ({field}); only 3-D crystals can be stored"
            )
    if any(value is None for vector in attrs.lattice_vectors for value in vector):
        raise StructureError(
            "OPTIMADE lattice_vectors hold null (a direction that is not periodic); only 3-D crystals can be stored"
        )
    names = attrs.species_at_sites
    if len(attrs.cartesian_site_positions) != len(names):
        raise StructureError(
            f"OPTIMADE entry lists {len(attrs.cartesian_site_positions)} cartesian_site_positions but "
            f"{len(names)} species_at_sites"
        )
    if attrs.nsites is not None and attrs.nsites != len(names):
        raise StructureError(
            f"OPTIMADE entry declares nsites = {short_token(attrs.nsites)} but lists {len(names)} sites"
        )
    species = _site_symbols(names, attrs.species)
    _check_structure_features(attrs)
    _check_declared_composition(attrs, species)
    lattice = np.asarray(attrs.lattice_vectors, dtype=float)
    cart = np.asarray(attrs.cartesian_site_positions, dtype=float).reshape(-1, 3)
    try:
        frac = np.linalg.solve(lattice.T, cart.T).T
    except np.linalg.LinAlgError as exc:
        raise StructureError("lattice is singular (zero volume)") from exc
    far = _far_site(cart, frac)
    if far:
        raise StructureError(f"OPTIMADE cartesian_site_positions: {far}")
    return cell_from_arrays(lattice, species, frac)


def _far_site(given: np.ndarray, frac: np.ndarray) -> str | None:
    """Why a site's position (``given`` as written, ``frac`` in the cell's vectors) is no position of this
    crystal, or None: one more than :data:`MAX_ABS_FRACTIONAL` cell vectors out, as for CIFs (``1e300`` was
    wrapped modulo 1 onto another site and refused as an overlap). A NaN or infinity is left to the one check
    of every cell (``lattice or coordinates contain NaN or infinity``)."""
    for index, (row, fractional) in enumerate(zip(given, frac, strict=True)):
        finite = np.all(np.isfinite(row)) and np.all(np.isfinite(fractional))
        if finite and np.max(np.abs(fractional)) > MAX_ABS_FRACTIONAL:
            return (
                f"site {index} at {row.tolist()} lies more than {MAX_ABS_FRACTIONAL:g} cell vectors out of the "
                "cell (a position this far out is no site of this crystal)"
            )
    return None


def _site_symbols(names: list[str], species: list[OptimadeSpecies] | None) -> list[str]:
    """The element each site's name stands for (the names themselves when the entry lists no ``species``)."""
    if species is None:
        return list(names)
    symbol_of: dict[str, str] = {}
    for spec in species:
        symbols = spec.chemical_symbols
        if spec.name in symbol_of:
            raise StructureError(f"OPTIMADE species {spec.name!r} is listed more than once in species")
        if len(spec.concentration) != len(symbols):
            raise StructureError(
                f"OPTIMADE species {spec.name!r} gives {len(spec.concentration)} concentration(s) for "
                f"{len(symbols)} chemical symbol(s)"
            )
        if spec.mass is not None and len(spec.mass) != len(symbols):
            raise StructureError(
                f"OPTIMADE species {spec.name!r} gives {len(spec.mass)} mass(es) for {len(symbols)} "
                "chemical symbol(s)"
            )
        if spec.attached or spec.nattached:
            raise StructureError(
                f"OPTIMADE species {spec.name!r} carries attached atoms {spec.attached} that "
                "have no positions; the lake stores every atom at its site (list them as sites)"
            )
        bad_mass = [m for m in spec.mass or [] if not math.isfinite(m)]
        if bad_mass:
            raise StructureError(
                f"OPTIMADE species {spec.name!r} gives the mass {bad_mass[0]}, which is not a finite number"
            )
        isotopes = [sym for sym in symbols if sym in ISOTOPES]
        if isotopes:  # chemical_symbols ["D"]: told as the CIF and POSCAR readers tell it
            raise StructureError(
                f"OPTIMADE species {spec.name!r} names {ISOTOPES[isotopes[0]]} ({isotopes[0]}) as a chemical "
                "symbol; the lake stores elements only: write H"
            )
        total = sum(c for c in spec.concentration if isinstance(c, (int, float)) and math.isfinite(c))
        if total > 1 + OCCUPANCY_TOLERANCE:
            raise StructureError(
                f"OPTIMADE species {spec.name!r} has concentrations {list(spec.concentration)} adding up to "
                f"{total:g}: a site holds at most one atom (the concentrations must sum to 1 or less)"
            )
        if isotope_name(spec.name, symbols) or _isotope_mass(symbols, spec.mass):
            raise StructureError(
                f"OPTIMADE species {spec.name!r} is an isotope or gives its own mass; the lake stores "
                "elements only (name it by its element and leave out the mass)"
            )
        if symbols == ["vacancy"] and spec.name in names:
            raise StructureError(
                f"OPTIMADE species {spec.name!r} is a vacancy, which is no atom: leave the empty site out of "
                "species_at_sites"
            )
        ordered = len(symbols) == 1 and full_occupancy(spec.concentration[0]) and symbols[0] != "vacancy"
        symbol_of[spec.name] = symbols[0] if ordered else ""
    unknown = sorted(set(names) - set(symbol_of))
    if unknown:
        raise StructureError(
            f"OPTIMADE species_at_sites names {unknown} that are not among the entry's species {sorted(symbol_of)}"
        )
    sites = [symbol_of[name] for name in names]
    if not all(sites):
        raise StructureError("disordered site occupancies are not supported")
    return sites


#: what each flag of ``structure_features`` says an entry has (OPTIMADE: a flag MUST be present if and only if
#: the entry uses the feature)
_FEATURES = {
    "disorder": "species of more than one chemical symbol (a mixed or vacancy-sharing site)",
    "assemblies": "assemblies (alternative groups of sites)",
    "site_attachments": "species with attached atoms",
    "implicit_atoms": "species at no site (atoms whose positions the entry leaves out)",
}


def _check_structure_features(attrs: OptimadeAttributes) -> None:
    """``structure_features``, where given, against the entry.

    Called once the species passed :func:`_site_symbols`, which refuses a species of several symbols or with
    attached atoms (assemblies are refused before): a flag of :data:`_FEATURES` that remains names a feature the
    fields do not have ('disorder' on an entry whose every species is one element at a full site: a disordered
    structure flattened by the provider, or a wrong flag), so the entry is refused rather than stored as an
    ordered crystal. ``implicit_atoms`` with a species at no site is refused too: the crystal has atoms the
    positions leave out. The list must be sorted, as the specification requires."""
    features = attrs.structure_features or []
    at_sites = set(attrs.species_at_sites)
    unplaced = sorted(s.name for s in attrs.species or [] if s.name not in at_sites)
    for flag in features:
        if flag == "implicit_atoms" and unplaced:
            raise StructureError(
                f"OPTIMADE entry declares implicit atoms (structure_features {features}; species {unplaced} at "
                "no site): the crystal has atoms without positions, which the lake cannot store"
            )
        if flag in _FEATURES:
            raise StructureError(
                f"OPTIMADE entry declares structure_features {features} but has no {_FEATURES[flag]}: every "
                f"species is one element at full occupancy, so the flag {flag!r} contradicts the fields "
                "(fix the flag or the species)"
            )
    if features != sorted(features):
        raise StructureError(
            f"OPTIMADE entry declares structure_features {features}, not sorted alphabetically as the OPTIMADE "
            "specification requires"
        )


#: how far a declared ``elements_ratios`` item may lie from the sites' atom fraction (rounding to 3 decimals)
RATIO_TOLERANCE = 1e-3


def _ratios_problem(attrs: OptimadeAttributes, species: list[str]) -> str | None:
    """Why OPTIMADE ``elements_ratios`` (one atom fraction per symbol of ``elements``, in its order; without
    ``elements``, per element of the sites in alphabetical order, as ``elements`` would list them) disagree with
    the sites' fractions by more than :data:`RATIO_TOLERANCE`, or have another length, else None. A NaN ratio
    disagrees."""
    ratios = attrs.elements_ratios
    if ratios is None or not species:
        return None
    symbols = attrs.elements if attrs.elements is not None else sorted(set(species))
    if len(ratios) != len(symbols):
        return (
            f"OPTIMADE entry declares {len(ratios)} elements_ratios for {len(symbols)} elements {symbols}; "
            "give one atom fraction per element"
        )
    counts = Counter(species)
    actual = [counts[s] / len(species) for s in symbols]
    if all(abs(r - a) <= RATIO_TOLERANCE for r, a in zip(ratios, actual, strict=True)):
        return None
    return (
        f"OPTIMADE entry declares elements_ratios [{', '.join(short_token(r) for r in ratios)}] for {symbols} but "
        f"its sites give [{', '.join(f'{a:.6g}' for a in actual)}] (missing, extra or mislabelled sites, or a "
        "wrong declaration)"
    )


def _check_declared_composition(attrs: OptimadeAttributes, species: list[str]) -> None:
    """``elements``, ``nelements``, ``elements_ratios`` (within :data:`RATIO_TOLERANCE`), the descriptive, Hill
    and anonymous formulas, where given, against the sites.

    ``chemical_formula_hill`` is compared as counts, not as spelling: OPTIMADE defines it as the structure's
    formula scaled to "the most chemically relevant unit" (``C6H6`` for a cell of benzene molecules), which may be
    reduced or not, so it must name the sites' elements in their proportions and the cell must hold a whole
    number of it (``H3Li`` for a LiH cell, or ``Si16`` for 8 Si sites, disagree); its Hill order is not checked.

    ``elements`` must also be as the OPTIMADE specification defines it: distinct symbols in alphabetical order
    (``["O", "Mg"]`` or ``["Mg", "Mg", "O"]`` is no such list, written by hand or mangled)."""
    present = sorted(set(species))
    if attrs.elements is not None and attrs.elements != sorted(set(attrs.elements)):
        fault = "repeats a symbol" if len(set(attrs.elements)) < len(attrs.elements) else "is not sorted"
        raise StructureError(
            f"OPTIMADE entry declares elements {attrs.elements}, which {fault}: OPTIMADE requires distinct "
            f"chemical symbols in alphabetical order ({sorted(set(attrs.elements))})"
        )
    if attrs.elements is not None and sorted(set(attrs.elements)) != present:
        raise StructureError(
            f"OPTIMADE entry declares elements {attrs.elements} but its sites hold {present}"
        )
    if attrs.nelements is not None and attrs.nelements != len(present):
        raise StructureError(
            f"OPTIMADE entry declares nelements = {short_token(attrs.nelements)} but its sites hold {len(present)} elements"
        )
    problem = _reduced_order_problem(attrs.chemical_formula_reduced)
    if problem:
        raise StructureError(problem)
    if attrs.chemical_formula_descriptive:
        problem = compare_formulas(attrs.chemical_formula_descriptive, species)
        if problem:
            raise StructureError(f"chemical_formula_descriptive: {problem}")
    if attrs.chemical_formula_hill:
        problem = compare_formulas(attrs.chemical_formula_hill, species, unit=True)
        if problem:
            raise StructureError(f"chemical_formula_hill: {problem}")
    problem = _ratios_problem(attrs, species)
    if problem:
        raise StructureError(problem)
    anonymous = (attrs.chemical_formula_anonymous or "").strip()
    if anonymous and species and anonymous != anonymous_formula(species):
        raise StructureError(
            f"OPTIMADE entry declares chemical_formula_anonymous {anonymous!r} but its sites give "
            f"{anonymous_formula(species)!r}"
        )


_REDUCED_TERM = re.compile(r"([A-Z][a-z]?)(\d*)")


def _reduced_order_problem(reduced: str | None) -> str | None:
    """Why an OPTIMADE ``chemical_formula_reduced`` breaks the specification's element order, else None: its
    symbols must be in alphabetical order (``HLi``, not ``LiH``; a client matching ``"HLi"`` would miss it). Its
    counts are compared with the sites when the structure is finished."""
    text = (reduced or "").strip()
    terms = _REDUCED_TERM.findall(text)
    symbols = [symbol for symbol, _ in terms]
    if not terms or symbols == sorted(symbols):
        return None
    ordered = "".join(f"{symbol}{count}" for symbol, count in sorted(terms))
    return (
        f"OPTIMADE entry declares chemical_formula_reduced {short_token(text)!r}, whose elements are not in "
        f"alphabetical order as OPTIMADE requires (write {short_token(ordered)!r})"
    )


def anonymous_formula(species: list[str]) -> str:
    """OPTIMADE's anonymous formula of the sites: reduced counts, largest first, named A, B, ... (``LiH`` is
    ``AB``, ``Al2O3`` is ``A3B2``)."""
    counts = sorted(Counter(species).values(), reverse=True)
    divisor = math.gcd(*counts)
    letters = [
        chr(ord("A") + i % 26) + ("" if i < 26 else chr(ord("a") + i // 26 - 1)) for i in range(len(counts))
    ]
    return "".join(
        f"{letter}{n // divisor if n // divisor > 1 else ''}"
        for letter, n in zip(letters, counts, strict=True)
    )


def _pending_optimade(
    path: Path, source: str, license: str, energy_field: str | None
) -> Iterator[PendingStructure | Rejection]:
    text, error = read_text(path)
    file = path.name
    if error:
        yield Rejection(file, 0, None, f"{error}; an OPTIMADE response cannot be read in part", "")
        return
    if not text.strip():
        yield Rejection(file, 0, None, "file is empty (no records)", "")
        return
    try:
        doc = json.loads(text, parse_int=_json_int)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, nesting too deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        yield Rejection(file, 0, None, f"malformed JSON: {reason}", excerpt(text))
        return
    data = doc.get("data") if isinstance(doc, dict) else None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        yield Rejection(file, 0, None, "OPTIMADE response has no 'data' list", excerpt(text))
        return
    if not data:
        yield Rejection(file, 0, None, "file is empty (no records)", "")
    seen = DuplicateGuard()
    for index, entry in enumerate(data):
        raw = excerpt(json.dumps(entry)[:2000])
        if not isinstance(entry, dict) or entry.get("type") != "structures":
            yield Rejection(file, index, None, "entry is not of type 'structures'", raw)
            continue
        try:
            checked = check_entry(entry)
        except StructureError as exc:
            yield Rejection(file, index, readable_id(entry.get("id")), str(exc), raw)
            continue
        sid, attrs = checked.id, checked.attributes
        dhf, reason = (
            (None, None)
            if energy_field is None
            else _json_energy(attrs.get(energy_field), f"formation energy ({energy_field})")
        )
        reason = reason or seen.check(sid, index)
        cell = None
        if not reason:
            try:
                cell = cell_from_optimade(attrs)
            except StructureError as exc:
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - a fault this reader did not foresee: one row, not the end
                reason = f"unreadable OPTIMADE entry: {type(exc).__name__}: {exc}"
        if reason or cell is None:
            yield Rejection(file, index, sid, reason or "unreadable entry", raw)
            continue
        reduced = attrs.get("chemical_formula_reduced") or ""
        formula = reduced or attrs.get("chemical_formula_descriptive") or ""
        skip = {"lattice_vectors", "cartesian_site_positions", "species_at_sites", "species", "nsites"}
        extra = {k: v for k, v in attrs.items() if k not in skip and isinstance(v, str | int | float | bool)}
        row = structure_scalars(
            source=source,
            source_id=sid,
            license=license,
            raw_formula=str(formula),
            dhf=dhf,
            energy_kind=f"optimade:{energy_field}" if energy_field else None,
            extra=extra,
        )
        yield PendingStructure(
            file, index, sid, row, cell=cell, raw=raw, declared_formula=str(reduced), units_check=True
        )


def _json_energy(value: Any, what: str) -> tuple[float | None, str | None]:
    """:func:`check_energy` for a JSON value: a JSON number only (text such as ``"-3.0"`` or a boolean is
    refused: a JSON document that quotes its numbers or says ``true`` is not read by guessing)."""
    if isinstance(value, str | bool):
        return None, f"{what} is {value!r}, not a JSON number"
    return check_energy(value, what)


def _json_int(text: str) -> int | float:
    """A JSON integer; one of more than 4,000 digits becomes +-inf (Python refuses to convert it to ``int``, which
    would refuse the whole file), so that the entry holding it is quarantined as out of range on its own."""
    return int(text) if len(text) <= 4000 else float(text)


def read_optimade(
    path: Path, *, source: str, license: str, energy_field: str | None = None, workers: int = 1
) -> Iterator[Item]:
    """Stream the structures of a saved OPTIMADE ``/structures`` response (JSON, plain or gzip).

    Args:
        path: the response file.
        source: source name the user chose.
        license: licence string stored on every row.
        energy_field: attribute holding a formation energy in eV/atom (OQMD: ``"_oqmd_delta_e"``);
            ``None`` stores no energy.
        workers: processes (entries are already cells; kept for the common signature).

    Yields:
        One :class:`Record` or :class:`Rejection` per entry of ``data``.
    """
    yield from finish_all(_pending_optimade(Path(path), source, license, energy_field), workers=workers)
