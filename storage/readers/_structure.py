"""Turn a CIF or an explicit cell into the geometry and symmetry columns of ``structures``.

The mirror's CIFs are almost all P1 cells written by pymatgen, so a small exact parser reads those
(about 20x faster than pymatgen's CIF parser) and anything it does not recognise (symmetry
operations, oxidation-state labels, uncertainties, text fields) goes to pymatgen's ``CifParser``.

Before pymatgen expands a CIF, what it would get silently wrong is settled here (issue 22):

- numbers no crystal has (:func:`_declared_problem`, :func:`_site_number_problem`, the same checks on the fast
  path): a cell length that is not positive and finite, an angle outside (0, 180) degrees or angles that close
  no cell, a declared Z that is not a whole number of at least 1, a declared density that is not positive and
  finite, a NaN or infinite coordinate or occupancy; pymatgen read a negative length as the flipped vector;
- symmetry operations that are no crystallographic operation or do not form a group modulo lattice
  translations (:func:`_operation_problem`): pymatgen would apply them and store part of an orbit;
- an occupancy within :data:`storage.validation.OCCUPANCY_TOLERANCE` of 1 (0.999, rounding) is a full site,
  further from 1 a partly occupied one, which is refused;
- an atom-site type symbol that is no element (``OH``, a group) or an isotope (``D``, ``T``) is refused
  with the site's label; pymatgen would drop the site or store deuterium as hydrogen;
- a CIF with a space-group symbol but no symmetry operations is expanded in the setting its cell and
  symbol say: rhombohedral groups in the rhombohedral setting (``:R``) when the cell is rhombohedral and
  in the hexagonal one (``:H``) when it is hexagonal; a group with two origin choices in the one the file
  names (``:1``/``:2`` or ``_space_group.IT_coordinate_system_code``), else in each, keeping the one
  reading that passes :func:`reading_problem` (declared formula with its counts and Z, declared density,
  the distance rule): pymatgen alone expands ``R -3 m :R`` Bi (2 atoms) into 36 atoms 0.78 A apart, and
  origin-choice-2 ``F d -3 m`` Si (8 atoms) into 16.
Space groups come from spglib directly through :func:`spacegroup_number` (``symprec`` 0.1 Angstrom, angle
tolerance 5 degrees: the same two numbers as ``csp.structures.symmetry``, so the lake and the science agree).
"""

from __future__ import annotations

import math
import multiprocessing
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import spglib
from pymatgen.core import Composition, Element, Lattice

from storage.readers._common import Item, Record, Rejection, excerpt
from storage.validation import (
    OCCUPANCY_TOLERANCE,
    StructureError,
    cell_parameters_problem,
    check_geometry,
    compare_density,
    compare_formulas,
    density_problem,
    formula_units_problem,
    full_occupancy,
)

SYMPREC_ANGSTROM = 0.1
"""Distance tolerance handed to spglib."""

ANGLE_TOLERANCE_DEG = 5.0
"""Angle tolerance handed to spglib (pymatgen's default; spglib's own default differs)."""

SYMBOL_TO_Z: dict[str, int] = {el.symbol: el.Z for el in Element}

_CELL_TAGS = (
    "_cell_length_a",
    "_cell_length_b",
    "_cell_length_c",
    "_cell_angle_alpha",
    "_cell_angle_beta",
    "_cell_angle_gamma",
)
_SYMOP_TAGS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz")
_CRYSTAL_SYSTEMS = (
    (2, "triclinic"),
    (15, "monoclinic"),
    (74, "orthorhombic"),
    (142, "tetragonal"),
    (167, "trigonal"),
    (194, "hexagonal"),
    (230, "cubic"),
)


@dataclass(frozen=True, slots=True)
class Cell:
    """A periodic cell: ``lattice`` (3, 3) rows a, b, c in Angstrom, element symbols, fractional coords."""

    lattice: np.ndarray
    species: list[str]
    frac_coords: np.ndarray


def crystal_system(spacegroup: int) -> str:
    """The crystal system of an international space-group number (1-230)."""
    for last, name in _CRYSTAL_SYSTEMS:
        if spacegroup <= last:
            return name
    raise ValueError(f"space group {spacegroup} is outside 1-230")


def _fast_p1_cif(text: str) -> Cell | None:
    """Read a plain P1 CIF exactly; ``None`` when the text needs the full CIF parser."""
    scalars: dict[str, str] = {}
    loops: list[tuple[list[str], list[str]]] = []
    lines = text.splitlines()
    n_blocks = 0
    i, n = 0, len(lines)
    while i < n:
        s = lines[i].strip()
        if not s or s.startswith("#"):
            i += 1
        elif s.startswith("data_"):
            n_blocks += 1
            i += 1
        elif s == "loop_":
            tags: list[str] = []
            i += 1
            while i < n and lines[i].strip().startswith("_"):
                tags.append(lines[i].strip().lower())
                i += 1
            rows: list[str] = []
            while i < n:
                s = lines[i].strip()
                if s.startswith(("_", "loop_", "data_", "#")):
                    break
                if s.startswith(";"):
                    return None
                if s:
                    rows.append(s)
                i += 1
            loops.append((tags, rows))
        elif s.startswith("_"):
            parts = s.split(None, 1)
            if len(parts) == 1:
                return None
            scalars[parts[0].lower()] = parts[1].strip()
            i += 1
        else:
            return None
    if n_blocks != 1:
        return None
    symops = next((rows for tags, rows in loops if any(t in _SYMOP_TAGS for t in tags)), None)
    if symops is None:
        hm = scalars.get("_symmetry_space_group_name_h-m", "").strip("'\" ").replace(" ", "")
        if hm != "P1" and scalars.get("_symmetry_int_tables_number") != "1":
            return None
    elif len(symops) != 1 or symops[0].split(None, 1)[-1].strip("'\"").replace(" ", "") != "x,y,z":
        return None
    try:
        params = [float(scalars[tag]) for tag in _CELL_TAGS]
    except (KeyError, ValueError):
        return None
    problem = _declared_problem(scalars)
    if problem:
        raise StructureError(problem)
    atoms = next(((tags, rows) for tags, rows in loops if "_atom_site_fract_x" in tags), None)
    if atoms is None:
        return None
    tags, rows = atoms
    try:
        sym_col = tags.index("_atom_site_type_symbol")
        cols = [tags.index(f"_atom_site_fract_{axis}") for axis in "xyz"]
    except ValueError:
        return None
    occ_col = tags.index("_atom_site_occupancy") if "_atom_site_occupancy" in tags else None
    label_col = tags.index("_atom_site_label") if "_atom_site_label" in tags else None
    species: list[str] = []
    coords: list[list[float]] = []
    for row in rows:
        values = row.split()
        if len(values) != len(tags) or "'" in row or '"' in row:
            return None
        symbol = values[sym_col]
        if symbol not in SYMBOL_TO_Z:
            return None
        try:
            coords.append([float(values[c]) for c in cols])
            occupancy = float(values[occ_col]) if occ_col is not None else 1.0
        except ValueError:
            return None
        label = values[label_col] if label_col is not None else symbol
        for axis, x in zip("xyz", coords[-1], strict=True):
            if not math.isfinite(x):
                raise StructureError(
                    f"site {label}: fractional coordinate {axis} = {x:g} is not a finite number"
                )
        if not full_occupancy(occupancy):
            raise StructureError(_partial_occupancy(occupancy, f"site {label}"))
        species.append(symbol)
    if not species:
        return None
    lattice = Lattice.from_parameters(*params).matrix
    return Cell(np.array(lattice), species, np.mod(np.array(coords, dtype=float), 1.0))


def _partial_occupancy(occupancy: float, where: str) -> str:
    """The reason for a site whose occupancy is not full: partly occupied, above 1 or NaN.

    The site's label is named only for an impossible occupancy; a partial one keeps one kind of reason per
    file set (the ingest summary counts reasons by kind, numbers masked).
    """
    if not math.isfinite(occupancy):
        return f"{where}: occupancy = {occupancy:g} is not a finite number"
    if occupancy > 1.0:
        return (
            f"{where} has occupancy {occupancy:g}, which no site can have (more than 1, beyond the "
            f"{OCCUPANCY_TOLERANCE:g} allowed for rounding)"
        )
    return (
        f"disordered site occupancies are not supported (a site has occupancy {occupancy:g}; within "
        f"{OCCUPANCY_TOLERANCE:g} of 1 counts as full)"
    )


_CHARGE = re.compile(r"(\d+[+-]?|[+-]\d*)$")  # O2-, Fe3+, Fe+3, Ti0: oxidation states
_ISOTOPES = {"D": "deuterium", "T": "tritium"}
_HM_TAGS = ("_symmetry_space_group_name_h-m", "_space_group_name_h-m_alt", "_space_group.name_h-m_alt")
_SETTING_TAGS = ("_space_group.it_coordinate_system_code", "_space_group_it_coordinate_system_code")
_ALL_SYMOP_TAGS = (*_SYMOP_TAGS, "_space_group_symop.operation_xyz")


def _block(text: str) -> dict[str, Any] | None:
    """The one data block of a CIF as lower-case tag -> value(s), or ``None`` (pymatgen then says why)."""
    from pymatgen.io.cif import CifFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            blocks = list(CifFile.from_str(text).data.values())
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None
    return {k.lower(): v for k, v in blocks[0].data.items()} if len(blocks) == 1 else None


def _site_symbol_problem(block: dict[str, Any]) -> str | None:
    """Why an atom site of the block names no single element (a group such as ``OH``, an isotope), or None."""
    symbols = block.get("_atom_site_type_symbol")
    labels = block.get("_atom_site_label")
    if isinstance(symbols, str):
        symbols = [symbols]
    if isinstance(labels, str):
        labels = [labels]
    if not symbols:  # pymatgen reads the element from the label: an isotope or a group needs a word
        for label in labels or []:
            letters = re.match(r"[A-Za-z]*", label).group(0)
            if letters in _ISOTOPES:
                return f"site {label} is {_ISOTOPES[letters]} ({letters}), which the lake does not store as an element"
            if letters.capitalize() not in SYMBOL_TO_Z:  # e.g. OH1: pymatgen would drop the site
                return (
                    f"site {label}: the CIF has no _atom_site_type_symbol and the label names no element (a "
                    "group such as OH, or a typo); add the type symbols, one site per atom"
                )
        return None
    for k, raw in enumerate(symbols):
        label = labels[k] if labels and k < len(labels) else f"{k + 1}"
        bare = _CHARGE.sub("", raw.strip())
        if bare in _ISOTOPES:
            return (
                f"site {label}: type symbol {raw!r} is {_ISOTOPES[bare]}, which the lake does not store as an "
                "element (write H to store it as hydrogen)"
            )
        if bare not in SYMBOL_TO_Z and not (bare.lower() == bare and bare.capitalize() in SYMBOL_TO_Z):
            return (
                f"site {label}: type symbol {raw!r} is not an element (a group such as OH, or a typo); write "
                "one site per atom"
            )
    return None


_TERM = re.compile(r"([+-]?)\s*(?:(\d+(?:\.\d*)?(?:/\d+(?:\.\d*)?)?)\s*\*?\s*)?([xyz])?")

SYMOP_TOLERANCE = 1e-3
"""Largest difference (fractional, modulo 1) at which two translations of symmetry operations are one."""


def _affine(op: str) -> tuple[np.ndarray, np.ndarray] | str:
    """The linear part (3, 3) and translation (3,) of one ``x,y,z``-style operation, or why it is none."""
    text = str(op).strip().strip("'\"").lower().replace(" ", "")
    parts = text.split(",")
    if len(parts) != 3:
        return f"symmetry operation {op!r} has {len(parts)} components, not 3"
    matrix, shift = np.zeros((3, 3)), np.zeros(3)
    for i, part in enumerate(parts):
        pos = 0
        while pos < len(part):
            m = _TERM.match(part, pos)
            if m is None or m.end() == pos or not (m.group(2) or m.group(3)):
                return f"symmetry operation {op!r} is not an affine map of x, y and z"
            try:
                value = _fraction(m.group(2)) if m.group(2) else 1.0
            except ZeroDivisionError:
                return f"symmetry operation {op!r} divides by zero"
            value = -value if m.group(1) == "-" else value
            if m.group(3):
                matrix[i, "xyz".index(m.group(3))] += value
            else:
                shift[i] += value
            pos = m.end()
        if not part:
            return f"symmetry operation {op!r} is not an affine map of x, y and z"
    if not np.all(np.isin(matrix, (-1.0, 0.0, 1.0))) or abs(abs(np.linalg.det(matrix)) - 1.0) > 1e-9:
        return (
            f"symmetry operation {op!r} is no crystallographic operation (its linear part is "
            f"{matrix.tolist()})"
        )
    return matrix, shift


def _group_problem(ops: list[str], matrices: np.ndarray, shifts: np.ndarray) -> str | None:
    """Why a list of operations (linear parts (n, 3, 3), translations (n, 3)) is no space group, or None.

    A space group's operations, taken modulo lattice translations, hold the identity and every product of
    two of them (``g h``: ``x -> R_g (R_h x + t_h) + t_g``); inverses then follow (a finite set closed under
    products is a group). Translations agree modulo 1 within :data:`SYMOP_TOLERANCE`.
    """

    def wrapped(t: np.ndarray) -> np.ndarray:
        return t - np.round(t)

    def key(linear: np.ndarray) -> np.ndarray:  # a linear part (entries -1, 0, 1) as one integer
        return np.tensordot(np.rint(linear).astype(np.int64) + 1, 3 ** np.arange(9).reshape(3, 3), axes=2)

    keys = key(matrices)
    known, slot = np.unique(keys, return_inverse=True)
    rank = np.zeros(len(ops), dtype=np.int64)  # position of each operation among those of its linear part
    for k in range(len(known)):
        members = np.flatnonzero(slot == k)
        rank[members] = np.arange(len(members))
    table = np.full((len(known), int(rank.max()) + 1, 3), np.nan)  # translations per linear part
    table[slot, rank] = shifts
    at_identity = table[np.searchsorted(known, key(np.eye(3)))] if key(np.eye(3)) in known else table[:0]
    if not np.any(np.all(np.abs(wrapped(at_identity)) < SYMOP_TOLERANCE, axis=-1)):
        return (
            f"the symmetry operations ({len(ops)} listed) do not form a group: the identity 'x,y,z' is "
            "missing (a truncated or mistyped list); list the space group's full set of operations"
        )
    products = key(np.einsum("gij,hjk->ghik", matrices, matrices))  # R_g R_h
    moved = np.einsum("gij,hj->ghi", matrices, shifts) + shifts[:, None, :]  # R_g t_h + t_g
    where = np.clip(np.searchsorted(known, products), 0, len(known) - 1)
    found = known[where] == products
    close = np.all(np.abs(wrapped(table[where] - moved[:, :, None, :])) < SYMOP_TOLERANCE, axis=-1)
    found &= close.any(axis=-1)
    if not found.all():
        g, h = (int(i) for i in np.argwhere(~found)[0])
        return (
            f"the symmetry operations ({len(ops)} listed) do not form a group: {ops[g]!r} after {ops[h]!r} "
            "is none of them (a truncated, mistyped or mixed-setting list); list the space group's full set "
            "of operations"
        )
    return None


def _operation_problem(block: dict[str, Any]) -> str | None:
    """Why the listed symmetry operations are no space group, or None.

    Each operation must be a crystallographic operation (three affine components, coefficients of x, y and
    z in -1, 0, 1, no product such as ``x*y``, determinant +-1), and the list must be a group modulo
    lattice translations (:func:`_group_problem`: the identity and every product of two operations in the
    list). pymatgen would apply any of them and store another crystal (``2x,y,z`` made MgO MgO2; a list
    without its closure generates only part of the orbit).
    """
    for tag in _ALL_SYMOP_TAGS:
        ops = block.get(tag)
        if ops is None:
            continue
        ops = [str(ops)] if isinstance(ops, str) else [str(op) for op in ops]
        parsed = []
        for op in ops:
            affine = _affine(op)
            if isinstance(affine, str):
                return affine
            parsed.append(affine)
        problem = _group_problem(ops, np.array([m for m, _ in parsed]), np.array([t for _, t in parsed]))
        if problem:
            return problem
    return None


def _fraction(text: str) -> float:
    """``"1/2"`` -> 0.5, ``"0.25"`` -> 0.25."""
    top, _, bottom = text.partition("/")
    return float(top) / float(bottom) if bottom else float(top)


def _cif_value(raw: Any) -> float | None:
    """A CIF number as written (quotes and an uncertainty in brackets dropped); None for ``?``, ``.``, a
    missing value or text that is no number (the parser then says why). ``nan`` and ``inf`` are numbers."""
    if not isinstance(raw, str):
        return None
    text = raw.strip().strip("'\"").split("(")[0].strip()
    try:
        return float(text)
    except ValueError:
        return None


def _cif_number(block: dict[str, Any], tag: str) -> float | None:
    """A number of a parsed CIF block (uncertainty in brackets dropped), or None."""
    return _cif_value(block.get(tag))


#: the declared density compared with the cell's (:func:`reading_problem`); ``_exptl_crystal_density_meas`` is not
#: checked: COD writes 0.000 there for "not measured" (a prototype of the mirror does, beside a valid diffrn 5.45)
_DENSITY_TAGS = ("_exptl_crystal_density_diffrn",)


def _declared_problem(tags: dict[str, Any]) -> str | None:
    """Why the numbers a CIF declares (lower-case tag -> text) describe no crystal, else None: cell lengths
    and angles (:func:`storage.validation.cell_parameters_problem`), ``_cell_formula_units_Z``
    (:func:`storage.validation.formula_units_problem`) and ``_exptl_crystal_density_diffrn`` (positive and
    finite)."""
    values = [_cif_value(tags.get(tag)) for tag in _CELL_TAGS]
    problem = cell_parameters_problem(values[:3], values[3:])
    problem = problem or formula_units_problem(_cif_value(tags.get("_cell_formula_units_z")))
    for tag in _DENSITY_TAGS:
        problem = problem or density_problem(_cif_value(tags.get(tag)), tag)
    return problem


def _site_number_problem(block: dict[str, Any]) -> str | None:
    """Why an atom site of a parsed CIF block has a fractional coordinate that is not finite (NaN, inf) or an
    occupancy above 1 (beyond :data:`storage.validation.OCCUPANCY_TOLERANCE`) or not finite, else None."""

    def column(tag: str) -> list[Any]:
        values = block.get(tag)
        return [values] if isinstance(values, str) else list(values or [])

    labels = column("_atom_site_label")
    for tag in ("_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z", "_atom_site_occupancy"):
        for k, raw in enumerate(column(tag)):
            value = _cif_value(raw)
            if value is None or (math.isfinite(value) and (tag != "_atom_site_occupancy" or value <= 1.0)):
                continue
            label = labels[k] if k < len(labels) else str(k + 1)
            if tag == "_atom_site_occupancy" and math.isfinite(value):
                if full_occupancy(value):
                    continue
                return _partial_occupancy(value, f"site {label}")
            name = "occupancy" if tag == "_atom_site_occupancy" else f"fractional coordinate {tag[-1]}"
            return f"site {label}: {name} = {value:g} is not a finite number"
    return None


def _settings(block: dict[str, Any]) -> list[str]:
    """Space-group symbols with a setting (``R-3m:R``, ``Fd-3m:2``) to expand a CIF in; [] to leave it to pymatgen.

    Only for a CIF without symmetry operations whose symbol is rhombohedral or has two origin choices.
    """
    from pymatgen.symmetry.groups import SpaceGroup

    if any(block.get(tag) for tag in _ALL_SYMOP_TAGS):
        return []
    symbol = next((block[t] for t in _HM_TAGS if isinstance(block.get(t), str) and block[t].strip()), "")
    symbol = re.sub(r"[\s_'\"]", "", symbol)
    base, _, code = symbol.partition(":")
    code = code or next((str(block[t]).strip() for t in _SETTING_TAGS if block.get(t)), "")
    if not base:
        return []
    if base.startswith("R"):
        cell = [_cif_number(block, tag) for tag in _CELL_TAGS]
        if None in cell:
            return []
        a, b, c, alpha, beta, gamma = cell
        if max(a, b, c) - min(a, b, c) < 1e-3 and max(alpha, beta, gamma) - min(alpha, beta, gamma) < 1e-2:
            return [f"{base}:R"] if abs(alpha - 90.0) > 1e-2 else []
        return [f"{base}:H"]
    try:
        one, two = SpaceGroup(f"{base}:1"), SpaceGroup(f"{base}:2")
    except ValueError:
        return []
    if {op.as_xyz_str() for op in one.symmetry_ops} == {op.as_xyz_str() for op in two.symmetry_ops}:
        return []
    return [f"{base}:{code}"] if code in ("1", "2") else [f"{base}:1", f"{base}:2"]


def _with_operations(text: str, setting: str) -> str:
    """The CIF with the symmetry operations of ``setting`` written out (pymatgen then uses those)."""
    from pymatgen.symmetry.groups import SpaceGroup

    ops = "\n".join(f"'{op.as_xyz_str()}'" for op in SpaceGroup(setting).symmetry_ops)
    return f"{text.rstrip()}\nloop_\n_symmetry_equiv_pos_as_xyz\n{ops}\n"


def declared_cif_number(text: str, tag: str) -> float | None:
    """A number a CIF declares for ``tag`` (e.g. ``_cell_formula_units_Z``; uncertainty dropped), or None."""
    tag = tag.lower()
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 2 and parts[0].lower() == tag:
            try:
                return float(parts[1].strip("'\"").split("(")[0])
            except ValueError:
                return None
    return None


def reading_problem(
    cell: Cell, *, declared: str = "", cif: str | None = None, geometry: bool = True
) -> str | None:
    """Why a parsed cell contradicts what its file declares or what physics allows, else None.

    Args:
        cell: the parsed cell.
        declared: a formula the input states for the cell (CIF ``_chemical_formula_sum``, OPTIMADE
            ``chemical_formula_reduced``), compared with its counts by
            :func:`storage.validation.compare_formulas`.
        cif: the CIF text, for its ``_cell_formula_units_Z`` and ``_exptl_crystal_density_diffrn``.
        geometry: also run :func:`storage.validation.check_geometry` (distance rule, density, volume).
    """
    z = declared_cif_number(cif, "_cell_formula_units_Z") if cif else None
    whole = z is not None and math.isfinite(z) and z >= 1 and z == int(z)
    problem = compare_formulas(declared, cell.species, formula_units=int(z) if whole else None)
    if problem is not None or not cell.species or not all(s in SYMBOL_TO_Z for s in cell.species):
        return problem
    density = declared_cif_number(cif, "_exptl_crystal_density_diffrn") if cif else None
    problem = compare_density(density, cell.lattice, cell.species)
    if problem is None and geometry:
        try:
            check_geometry(cell.lattice, cell.species, cell.frac_coords)
        except StructureError as exc:
            problem = str(exc)
    return problem


def _pymatgen_cif(text: str) -> Cell:
    """Read a CIF with pymatgen's parser (symmetry expansion, oxidation states, ...), in the right setting."""
    block = _block(text)
    if block is not None:
        problem = (
            _declared_problem(block)
            or _site_number_problem(block)
            or _site_symbol_problem(block)
            or _operation_problem(block)
        )
        if problem:
            raise StructureError(problem)
        settings = _settings(block)
        if settings:
            readings = [(setting, _pymatgen_cell(_with_operations(text, setting))) for setting in settings]
            if len(readings) == 1:
                return readings[0][1]
            declared = declared_cif_formula(text)
            problems = [reading_problem(cell, declared=declared, cif=text) for _, cell in readings]
            good = [r for r, p in zip(readings, problems, strict=True) if p is None]
            if len(good) > 1:  # prefer the reading with exactly the declared atoms (Si8: 8 sites, not 16)
                exact = [r for r in good if _holds_exactly(r[1], declared, text)]
                good = exact or good
            if len(good) == 1:
                return good[0][1]
            names = " and ".join(f"origin choice {s.rsplit(':', 1)[1]}" for s, _ in readings)
            if not good:
                raise StructureError(
                    f"the CIF names no origin choice and neither reading is sensible: {problems[0]} "
                    f"({names} tried)"
                )
            raise StructureError(
                f"the CIF names no origin choice and both {names} give a sensible cell; write the symmetry "
                "operations or ':1'/':2' after the space-group symbol"
            )
    return _pymatgen_cell(text)


def _holds_exactly(cell: Cell, declared: str, text: str) -> bool:
    """Whether the cell holds exactly the declared formula's atoms (times Z where Z is declared)."""
    from pymatgen.core import Composition as _Composition

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            per = float(_Composition(declared).num_atoms) if declared.strip() else 0.0
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    z = declared_cif_number(text, "_cell_formula_units_Z") or 1.0
    return per > 0 and any(abs(len(cell.species) - k * per) < 1e-3 for k in {1.0, z})


def _pymatgen_cell(text: str) -> Cell:
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser.from_str(text, occupancy_tolerance=1.0 + OCCUPANCY_TOLERANCE)
            structures = parser.parse_structures(primitive=False)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, ZeroDivisionError) as exc:
            detail = "; ".join(str(w.message) for w in caught[:2])
            if "sum to > 1" in str(exc) + detail:
                # pymatgen merges sites on one position and then sees occupancy > 1: same fault as the fast path's
                raise StructureError(
                    "two or more sites share one position, closer than 0.5 A (overlapping or duplicated sites)"
                ) from exc
            raise StructureError(f"malformed CIF: {exc}" + (f" ({detail})" if detail else "")) from exc
    if len(structures) != 1:
        raise StructureError(f"malformed CIF: it holds {len(structures)} structures, one was expected")
    if any("Defaulting to P1" in str(w.message) for w in caught):
        declared = _declared_space_group(text)
        if (
            declared is not None
        ):  # pymatgen read no operations and fell back to P1: the crystal would be wrong
            raise StructureError(
                f"the CIF declares space group {declared} but lists no symmetry operations this reader can "
                "apply (it would be read as P1, a different crystal); add the _symmetry_equiv_pos_as_xyz loop"
            )
    structure = structures[0]
    species: list[str] = []
    for site in structure:
        where = f"site {getattr(site, 'label', None) or site.species.formula}"
        if len(site.species) != 1:
            raise StructureError(
                "disordered site occupancies are not supported (several species share one site)"
            )
        if not full_occupancy(site.species.num_atoms):
            raise StructureError(_partial_occupancy(float(site.species.num_atoms), where))
        symbol = next(iter(site.species)).symbol
        if symbol not in SYMBOL_TO_Z:
            raise StructureError(f"unknown element {symbol!r}")
        species.append(symbol)
    return Cell(structure.lattice.matrix.copy(), species, np.mod(structure.frac_coords, 1.0))


_SPACE_GROUP_TAGS = (
    "_symmetry_space_group_name_h-m", "_space_group_name_h-m_alt", "_symmetry_space_group_name_hall",
    "_space_group_name_hall", "_symmetry_int_tables_number", "_space_group_it_number",
)  # fmt: skip
_P1 = {"p1", "1", "p 1"}


def _declared_space_group(text: str) -> str | None:
    """The space group a CIF declares by symbol, Hall symbol or number when it is not P1 (as written), else
    None."""
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() in _SPACE_GROUP_TAGS:
            value = parts[1].strip().strip("'\"").strip()
            if value and value not in ("?", ".") and " ".join(value.lower().split()) not in _P1:
                return repr(value)
    return None


def cell_from_cif(text: str) -> Cell:
    """Parse one CIF into a :class:`Cell` (a leading byte-order mark is ignored).

    Raises:
        StructureError: if the CIF is malformed, partly occupied (more than
            :data:`storage.validation.OCCUPANCY_TOLERANCE` from 1), names an unknown element, declares numbers
            no crystal has (cell lengths in Angstrom, angles in degrees, Z, densities in g/cm^3, coordinates),
            or lists symmetry operations that form no group.
    """
    if not isinstance(text, str) or not text.strip():
        raise StructureError("malformed CIF: the CIF text is empty")
    text = text.removeprefix("\ufeff")  # a byte-order mark decoded as text
    return _fast_p1_cif(text) or _pymatgen_cif(text)


def cell_from_arrays(lattice: Any, species: Iterable[str], frac_coords: Any) -> Cell:
    """Build a :class:`Cell` from explicit arrays, checking shapes and element symbols.

    Raises:
        StructureError: if the arrays are inconsistent or a symbol is not an element.
    """
    try:
        lat = np.asarray(lattice, dtype=float).reshape(3, 3)
        frac = np.asarray(frac_coords, dtype=float).reshape(-1, 3)
    except (TypeError, ValueError) as exc:
        raise StructureError(f"malformed structure arrays: {exc}") from exc
    symbols = [str(s) for s in species]
    if len(symbols) != len(frac):
        raise StructureError(f"structure has {len(symbols)} species but {len(frac)} positions")
    return Cell(lat, symbols, np.mod(frac, 1.0))


def spacegroup_number(
    lattice: np.ndarray, frac_coords: np.ndarray, numbers: Iterable[int], *, symprec: float = SYMPREC_ANGSTROM
) -> int | None:
    """The storage package's one space-group detection (spglib at ``symprec`` Angstrom and
    :data:`ANGLE_TOLERANCE_DEG`); ``None`` when spglib finds no group.

    Args:
        lattice: (3, 3) row-vector cell in Angstrom.
        frac_coords: (n, 3) fractional coordinates.
        numbers: n atomic numbers.
    """
    cell = (np.asarray(lattice, dtype=float), np.asarray(frac_coords, dtype=float), [int(z) for z in numbers])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            symbol = spglib.get_spacegroup(cell, symprec=symprec, angle_tolerance=ANGLE_TOLERANCE_DEG)
        except (RuntimeError, ValueError, TypeError, spglib.SpglibError):
            symbol = None
    return int(symbol.rsplit("(", 1)[1].rstrip(")")) if symbol else None


def check_cell(cell: Cell) -> None:
    """Refuse a cell whose numbers describe no crystal, before anything is computed from them.

    Raises:
        StructureError: for no sites, an unknown element, a lattice or coordinate that is NaN or infinite,
            or a singular lattice (zero volume).
    """
    if not cell.species:
        raise StructureError("structure has no sites")
    unknown = sorted({s for s in cell.species if s not in SYMBOL_TO_Z})
    if unknown:
        raise StructureError(f"unknown element {unknown[0]!r}")
    if not (np.isfinite(cell.lattice).all() and np.isfinite(cell.frac_coords).all()):
        raise StructureError("lattice or coordinates contain NaN or infinity")
    if not float(abs(np.linalg.det(cell.lattice))) > 1e-6:
        raise StructureError("lattice is singular (zero volume)")


def structure_fields(cell: Cell, *, symprec: float = SYMPREC_ANGSTROM) -> dict[str, Any]:
    """The composition, geometry and symmetry columns of a ``structures`` row.

    Raises:
        StructureError: for an empty cell, non-finite numbers, a singular lattice, an unknown element or
            a geometry :func:`storage.validation.check_geometry` refuses (overlapping atoms, absurd
            volume per atom, vacuum, isolated atoms).
    """
    check_cell(cell)
    volume = float(abs(np.linalg.det(cell.lattice)))
    check_geometry(cell.lattice, cell.species, cell.frac_coords)
    numbers = [SYMBOL_TO_Z[s] for s in cell.species]
    spacegroup = spacegroup_number(cell.lattice, cell.frac_coords, numbers, symprec=symprec)
    counts = Counter(cell.species)
    elements = sorted(counts)
    return {
        "reduced_formula": Composition(dict(counts)).reduced_formula,
        "elements": elements,
        "nelements": len(elements),
        "nsites": len(cell.species),
        "spacegroup": spacegroup,
        "crystal_system": crystal_system(spacegroup) if spacegroup else None,
        "lattice_angstrom": [float(x) for x in cell.lattice.reshape(9)],
        "species": list(cell.species),
        "frac_coords": [[float(x) for x in xyz] for xyz in cell.frac_coords],
        "volume_angstrom3": volume,
    }


def composition_fields(formula: str) -> tuple[str, list[str], float]:
    """Reduced formula, sorted element symbols and number of atoms of a formula as written.

    Raises:
        StructureError: if the formula cannot be read or names an unknown element.
    """
    text = (formula or "").strip()
    if not text:
        raise StructureError("formula is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            comp = Composition(text)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            symbol = getattr(exc, "args", [""])[0]
            raise StructureError(f"cannot read formula {text!r}: {symbol}") from exc
    for el in comp:
        symbol = getattr(el, "symbol", str(el))
        if not isinstance(el, Element) or symbol not in SYMBOL_TO_Z:
            raise StructureError(f"unknown element {symbol!r}")
    natoms = float(comp.num_atoms)
    if not natoms > 0 or not math.isfinite(natoms):
        raise StructureError(f"formula {text!r} has no atoms")
    return comp.reduced_formula, sorted(el.symbol for el in comp), natoms


# --- building structure rows, serially or in a process pool ------------------------------------------


@dataclass(slots=True)
class PendingStructure:
    """A structure record whose scalar columns are known and whose cell still has to be parsed.

    Attributes:
        file: file name for a rejection.
        index: 0-based record index in the file.
        source_id: the record's id.
        row: every ``structures`` column except the ones :func:`structure_fields` computes.
        cif: the CIF text, or ``None`` when ``cell`` is given.
        cell: an explicit cell (JSON structures), or ``None``.
        raw: text for an excerpt if the record is rejected.
        declared_formula: a formula the input states for the whole structure (OPTIMADE
            ``chemical_formula_reduced``); a CIF's ``_chemical_formula_sum`` is read from ``cif``.
    """

    file: str
    index: int
    source_id: str
    row: dict[str, Any]
    cif: str | None = None
    cell: Cell | None = None
    raw: str = field(default="", repr=False)
    declared_formula: str = ""


def declared_cif_formula(text: str) -> str:
    """The ``_chemical_formula_sum`` written in a CIF (the formula of the sites listed), or ``""``."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.lower().startswith("_chemical_formula_sum"):
            return stripped[len("_chemical_formula_sum") :].strip().strip("'\"").strip()
    return ""


def finish_structure(item: PendingStructure | Rejection) -> Item:
    """Parse a pending structure into a :class:`Record`, or a :class:`Rejection` saying why not."""
    if isinstance(item, Rejection):
        return item
    try:
        cell = item.cell if item.cell is not None else cell_from_cif(item.cif or "")
        check_cell(cell)
        declared = item.declared_formula or (declared_cif_formula(item.cif) if item.cif else "")
        mismatch = reading_problem(cell, declared=declared, cif=item.cif, geometry=False)
        if mismatch:
            raise StructureError(mismatch)
        fields = structure_fields(cell)
    except StructureError as exc:
        return Rejection(item.file, item.index, item.source_id, str(exc), excerpt(item.raw or item.cif or ""))
    except Exception as exc:  # noqa: BLE001 - a third-party parser may raise anything; keep the batch alive
        return Rejection(
            item.file,
            item.index,
            item.source_id,
            f"malformed structure: {type(exc).__name__}: {exc}",
            excerpt(item.raw or item.cif or ""),
        )
    row = {**item.row, **fields}
    if not row.get("raw_formula"):
        row["raw_formula"] = fields["reduced_formula"]
    return Record("structures", row)


def cif_formula(text: str) -> str:
    """The ``_chemical_formula_structural`` (else ``_chemical_formula_sum``) written in a CIF, or ``""``."""
    for tag in ("_chemical_formula_structural", "_chemical_formula_sum"):
        start = text.find(tag)
        if start >= 0:
            line = text[start + len(tag) : text.find("\n", start) if "\n" in text[start:] else None]
            return line.strip().strip("'\"").strip()
    return ""


def finish_all(items: Iterable[PendingStructure | Rejection], *, workers: int = 1) -> Iterator[Item]:
    """Finish pending structures in input order, in ``workers`` processes when ``workers`` > 1."""
    if workers <= 1:
        for item in items:
            yield finish_structure(item)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(finish_structure, items, chunksize=64)


def _fields_or_reason(text: str) -> dict[str, Any] | str:
    try:
        return structure_fields(cell_from_cif(text))
    except StructureError as exc:
        return str(exc)


def parse_many(
    cifs: Iterable[str], *, workers: int = 1, parse: Callable[[str], dict[str, Any] | str] = _fields_or_reason
) -> Iterator[dict[str, Any] | str]:
    """Parse many CIF texts, in order, optionally in a process pool.

    Args:
        cifs: CIF texts.
        workers: processes to use (1 parses in this process).
        parse: the per-text function (module-level, so it can be sent to workers).

    Yields:
        Per text, the dict of :func:`structure_fields` columns, or the reason (a string) it failed.
    """
    if workers <= 1:
        yield from map(parse, cifs)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(parse, cifs, chunksize=64)
