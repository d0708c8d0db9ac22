"""Turn a CIF or an explicit cell into the geometry and symmetry columns of ``structures``.

A CIF is tokenized once, by pymatgen's CIF tokenizer (:mod:`storage.readers._cif_blocks`), and the one data
block that lists atom sites is the structure (an IUCr ``data_global`` block of publication details beside it is
skipped; two blocks of atom sites are refused). Every check below and every declared value (formula, Z,
density) reads that block's values, so a value on the next line, in a text field or before a comment counts.
The mirror's CIFs are almost all P1 cells written by pymatgen; such a block is built directly
(:func:`_p1_cell`), anything else (symmetry operations or a symbol to expand, oxidation-state symbols) by
pymatgen's ``CifParser`` on that block alone.

Before pymatgen expands a CIF, what it would get silently wrong is settled here (issue 22 and its follow-ups),
on both paths alike (:func:`_block_problem`):

- a value the reader interprets that holds a character outside ASCII (``Ｌｉ``, a ``−`` minus sign): pymatgen
  deleted such characters;
- numbers no crystal has (:func:`_declared_problem`, :func:`_site_number_problem`): a cell length that is not
  positive and finite or lies outside 0.5 A to :data:`MAX_CELL_LENGTH_ANGSTROM`, an angle outside (0, 180)
  degrees or angles that close no cell, a declared Z that is not a whole number of at least 1, a declared
  density that is not positive and finite, a coordinate that is no number, not finite or beyond
  :data:`MAX_ABS_FRACTIONAL`, an occupancy that is no number in (0, 1]; pymatgen read a negative length as the
  flipped vector, dropped a site of occupancy ``?``, 0 or -1 and wrapped 1e300 into the cell;
- symmetry operations, under any tag of :data:`SYMOP_TAGS`, that are no crystallographic operation, do not
  form a group modulo lattice translations or are no isometry of the cell (:func:`_operation_problem`):
  pymatgen would apply them and store part of an orbit or atoms at distances the crystal does not have;
- an occupancy within :data:`storage.validation.OCCUPANCY_TOLERANCE` of 1 (0.999, rounding) is a full site,
  further from 1 a partly occupied one, which is refused, as are sites in disorder groups
  (:func:`_disorder_problem`: alternative positions would all be stored);
- an atom-site type symbol that is no element (``OH``, a group) or an isotope (``D``, ``T``) is refused
  with the site's label; pymatgen would drop the site or store deuterium as hydrogen (an element symbol in
  any letter case with a charge, ``NA``, ``NA+1``, is the element);
- a site listed twice in one atom-site loop (one label twice, or one element at one position within
  :data:`SITE_TOLERANCE`: :func:`_duplicate_site_problem`), and a declared symbol and number that name
  different groups (:func:`_symbol_number_problem`), are refused; symmetry images of one site within
  :data:`SITE_TOLERANCE` are one atom (a special position written 0.333, 0.667);
- a CIF with a space-group symbol but no symmetry operations is expanded in the setting its cell and
  symbol say: rhombohedral groups in the rhombohedral setting (``:R``) when the cell is rhombohedral and
  in the hexagonal one (``:H``) when it is hexagonal; a group with two origin choices in the one the file
  names (``:1``/``:2``, ICSD's last word ``S``/``Z``, or ``_space_group.IT_coordinate_system_code``), else in
  each, keeping the one reading that passes :func:`reading_problem` (declared formula with its counts and Z,
  declared density, the distance rule): pymatgen alone expands ``R -3 m :R`` Bi (2 atoms) into 36 atoms 0.78 A
  apart, and origin-choice-2 ``F d -3 m`` Si (8 atoms) into 16. A number without a symbol counts as its
  group's symbol (number 166 on rhombohedral axes is ``R-3m:R``).
Space groups come from spglib directly through :func:`spacegroup_number` (``symprec`` 0.1 Angstrom, angle
tolerance 5 degrees: the same two numbers as ``csp.structures.symmetry``, so the lake and the science agree).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import spglib
from pymatgen.core import Composition, Element, Lattice

from storage.readers._cif_blocks import CifBlockText, ascii_text, structure_block
from storage.readers._common import Item, Record, Rejection, excerpt, one_line, short_token
from storage.splits import reduced_formula_of
from storage.validation import (
    MIN_DISTANCE_ANGSTROM,
    OCCUPANCY_TOLERANCE,
    StructureError,
    cell_parameters_problem,
    check_geometry,
    compare_density,
    compare_formulas,
    density_problem,
    formula_units_problem,
    full_occupancy,
    unmeasured_element_problem,
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
SYMOP_TAGS_PYMATGEN_READS = (
    "_symmetry_equiv_pos_as_xyz",
    "_symmetry_equiv_pos_as_xyz_",
    "_space_group_symop_operation_xyz",
    "_space_group_symop_operation_xyz_",
)
"""The tags pymatgen's ``CifParser.get_symops`` takes symmetry operations from, in its order (it uses the first
that holds operations; a test keeps this list equal to pymatgen's)."""

SYMOP_TAGS = (*SYMOP_TAGS_PYMATGEN_READS, "_space_group_symop.operation_xyz")
"""Every tag the reader takes symmetry operations from and checks: pymatgen's, and the CIF2 spelling pymatgen
does not read (its operations are handed to pymatgen under ``_symmetry_equiv_pos_as_xyz``)."""

MAX_ABS_FRACTIONAL = 10.0
"""Largest magnitude of a fractional coordinate read. An atom of a cell lies in [0, 1); files write a few
values just outside (-0.25, 1.02) and symmetry-generated ones within a cell or two, so 10 leaves room for any
real file. A value such as 12345678901.5 or 1e300 is no position: float64 keeps about 16 significant digits,
so reduced modulo 1 it has 5 digits left, or none, and would be stored as an arbitrary site."""

MAX_CELL_LENGTH_ANGSTROM = 10_000.0
"""Longest cell vector read, Angstrom (1 micrometre). The largest unit cells known, of virus crystals, are under
2,000 A; far longer lengths (1e200) overflow the volume and the plane spacings computed from them."""

SITE_TOLERANCE = 2e-3
"""Largest difference of each fractional coordinate (modulo 1) at which two positions are one: symmetry images of
one written site closer than this are one atom (handed to pymatgen's ``CifParser`` as ``site_tolerance``), and
two sites of one atom-site loop closer than this are a duplicated row. A special position written with three
digits (0.333, 0.667 for 1/3, 2/3) has images up to 1.5e-3 apart (``-x+y`` adds two rounding errors of 5e-4 to
the written one's); pymatgen's own 1e-4 stored each as a second atom 0.005 A away. Distinct atoms are never this
close: 2e-3 of a 100 A cell is 0.2 A."""

METRIC_LENGTH_TOLERANCE = 0.01
"""Largest relative change of a cell length under a listed symmetry operation (cells are written rounded)."""

METRIC_ANGLE_TOLERANCE_DEG = 1.0
"""Largest change of a cell angle under a listed symmetry operation, degrees."""
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


def _p1_cell(block: CifBlockText) -> Cell | None:
    """Build a checked P1 block's cell directly; ``None`` when it needs pymatgen's parser.

    A plain P1 cell (the mirror's DFT CIFs, written by pymatgen) has nothing to expand, and pymatgen's
    ``CifParser`` takes many times as long to build it. Taken here: the identity as the only operation (or none
    and the symbol ``P 1`` or number 1), six plain cell numbers, a type symbol per site that is an element as
    written (no charge). The block has passed :func:`_block_problem`, so its numbers are checked.

    Raises:
        StructureError: for a site that is partly occupied.
    """
    ops = _listed_operations(block.tags)
    if ops is not None:
        if len(ops) != 1 or ops[0].replace(" ", "").lower() != "x,y,z":
            return None
    else:
        hm = (block.scalar("_symmetry_space_group_name_h-m") or "").replace(" ", "")
        if hm != "P1" and block.scalar("_symmetry_int_tables_number") != "1":
            return None
    params = [_cif_value(block.scalar(tag)) for tag in _CELL_TAGS]
    symbols = block.column("_atom_site_type_symbol")
    columns = [block.column(f"_atom_site_fract_{axis}") for axis in "xyz"]
    occupancies = block.column("_atom_site_occupancy")
    labels = block.column("_atom_site_label")
    if None in params or not symbols or any(len(c) != len(symbols) for c in columns):
        return None
    if any(s not in SYMBOL_TO_Z for s in symbols) or (occupancies and len(occupancies) != len(symbols)):
        return None
    coords = [[_cif_value(c[k]) for c in columns] for k in range(len(symbols))]
    if any(x is None for xyz in coords for x in xyz):
        return None
    for k, raw in enumerate(occupancies):
        occupancy = _cif_value(raw)
        if occupancy is None:
            return None
        if not full_occupancy(occupancy):
            label = labels[k] if len(labels) == len(symbols) else symbols[k]
            raise StructureError(_partial_occupancy(occupancy, f"site {label}"))
    lattice = Lattice.from_parameters(*params).matrix  # type: ignore[misc]
    return Cell(np.array(lattice), list(symbols), np.mod(np.array(coords, dtype=float), 1.0))


def _fast_p1_cif(text: str) -> Cell | None:
    """The CIF's cell through :func:`_p1_cell` after every check; ``None`` when it needs pymatgen's parser."""
    return _p1_cell(_checked_block(text))


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
_NUMBER_TAGS = ("_symmetry_int_tables_number", "_space_group_it_number", "_space_group.it_number")
_SETTING_TAGS = ("_space_group.it_coordinate_system_code", "_space_group_it_coordinate_system_code")


def _block(text: str) -> dict[str, Any] | None:
    """The tags of the CIF's structure block (:func:`structure_block`), or ``None`` when it has none or several."""
    try:
        return structure_block(text).tags
    except StructureError:
        return None


def _block_problem(block: CifBlockText) -> str | None:
    """Why the structure block of a CIF must not be read, or None: every check that runs before a cell is built,
    on the fast P1 path and the pymatgen path alike (in a multi-block file, on the block of atom sites)."""
    tags = block.tags
    return (
        _repeated_problem(block)
        or _non_ascii_problem(tags)
        or _cell_value_problem(tags)
        or _declared_problem(tags)
        or _site_number_problem(tags)
        or _dummy_site_problem(tags)
        or _formula_elements_problem(tags)
        or _duplicate_site_problem(tags)
        or _site_symbol_problem(tags)
        or _symbol_number_problem(tags)
        or _disorder_problem(tags)
        or _operation_problem(tags)
    )


#: tags stated twice with different values are refused when they describe the crystal (cell, symmetry, sites,
#: formula, Z, density): pymatgen keeps the last statement only
_CRYSTAL_TAG_PREFIXES = (
    "_atom_site_", "_atom_site.", "_cell_", "_cell.", "_symmetry_", "_space_group", "_chemical_formula",
    "_exptl_crystal_density",
)  # fmt: skip


def _repeated_problem(block: CifBlockText) -> str | None:
    """Why a block stating a crystal's tag twice with different values must not be read, or None.

    pymatgen keeps the last statement of a tag: a second ``_atom_site`` loop replaced the sites of the first
    (urea with its H atoms in a loop of their own was stored as H2), a second loop of symmetry operations or a
    second ``_cell_length_a`` replaced the first. The file does not say which statement is right, so the block
    is refused, naming the tag."""
    for tag, loop in block.repeated:
        if not tag.startswith(_CRYSTAL_TAG_PREFIXES):
            continue
        if loop and tag.startswith(("_atom_site_", "_atom_site.")):
            return (
                f"the CIF lists atom sites in more than one loop ({tag} in two loop_s); only the last loop "
                "would be read and the other sites dropped: list every site in one _atom_site loop"
            )
        if loop and (tag in SYMOP_TAGS or "symop" in tag or "equiv_pos" in tag):
            return (
                f"the CIF lists symmetry operations in more than one loop ({tag} twice); only the last would be "
                "applied: list the space group's operations in one loop"
            )
        return (
            f"the CIF states {tag} more than once with different values; only the last would be read: keep "
            "the one value that belongs to this crystal"
        )
    return None


def _checked_block(text: str) -> CifBlockText:
    """The CIF's structure block after :func:`_block_problem` (a leading byte-order mark is ignored).

    Raises:
        StructureError: for a CIF with no structure block or several, or one a check refuses.
    """
    block = _with_default_angles(structure_block(text.removeprefix("\ufeff")))
    problem = _block_problem(block)
    if problem:
        raise StructureError(problem)
    return block


#: space groups whose symmetry fixes all three cell angles at 90 degrees: orthorhombic, tetragonal, cubic
_RIGHT_ANGLED_GROUPS = frozenset([*range(16, 143), *range(195, 231)])


def _cell_value_problem(tags: dict[str, Any]) -> str | None:
    """Why a cell parameter the CIF states is no number (``?`` unknown, ``.`` inapplicable, a word), else None:
    one line naming the item, where pymatgen repeated "could not convert string to float: '?'" over several
    lines. A parameter the CIF leaves out is settled by :func:`_with_default_angles`."""
    for tag in _CELL_TAGS:
        raw = tags.get(tag)
        if raw is None:
            continue
        if not isinstance(raw, str):
            return (
                f"the CIF gives {tag} more than one value (in a loop); give the cell parameter as one number"
            )
        if _cif_value(raw) is None:
            unit = "A" if "length" in tag else "degrees"
            meaning = {"?": " (unknown)", ".": " (inapplicable)"}.get(raw.strip(), "")
            return (
                f"the CIF gives {tag} as {short_token(raw.strip(), 40)!r}{meaning}, which is no number; a cell "
                f"parameter must be a number ({unit})"
            )
    return None


def _with_default_angles(block: CifBlockText) -> CifBlockText:
    """The block with a left-out cell angle set to the CIF core dictionary's default, 90 degrees, where that
    default cannot be wrong: the declared space group (symbol or number) is orthorhombic, tetragonal or cubic
    (:data:`_RIGHT_ANGLED_GROUPS`), whose symmetry fixes every angle at 90. Elsewhere (P1, a monoclinic or
    hexagonal group, operations alone) a left-out angle is more likely a truncated file than a stated 90, and is
    refused, as is a left-out cell length (no default); pymatgen said "cannot reshape array of size 1 into shape
    (3,3)" over several lines. A block that lists no atom sites, or states every angle, is returned as it is.

    Raises:
        StructureError: one line naming the left-out cell parameter(s).
    """
    tags = block.tags
    if not block.holds_structure:
        return block
    lengths = [t for t in _CELL_TAGS[:3] if t not in tags]
    angles = [t for t in _CELL_TAGS[3:] if t not in tags]
    if lengths:
        raise StructureError(
            f"the CIF gives no {', '.join(lengths)}; a cell length has no default: give a, b and c (Angstrom)"
        )
    if not angles:
        return block
    base = _split_symbol(_written_symbol(tags))[0]
    number = _symbol_number(base) if base and base not in ("?", ".") else None
    number = number or _declared_number(tags)
    if number not in _RIGHT_ANGLED_GROUPS:
        group = f"space group {number}" if number else "no orthorhombic, tetragonal or cubic space group"
        raise StructureError(
            f"the CIF gives no {', '.join(angles)} and declares {group}, whose symmetry does not fix the angles "
            "at 90 degrees; give every cell angle (degrees)"
        )
    head, _, rest = block.text.partition("\n")
    added = "".join(f"{tag} 90\n" for tag in angles)
    return replace(
        block,
        text=f"{head}\n{added}{rest}",
        tags={**tags, **dict.fromkeys(angles, "90")},
        written_tags=block.written_tags | frozenset(angles),
    )


#: tags whose values the reader interprets (numbers, symbols, operations); a value of any other tag (a title, an
#: author's name) may hold any character
_READ_TAGS = frozenset(
    {
        *_CELL_TAGS, "_cell_formula_units_z", "_exptl_crystal_density_diffrn", "_chemical_formula_sum",
        *SYMOP_TAGS, *_HM_TAGS, *_SETTING_TAGS, "_symmetry_space_group_name_hall", "_space_group_name_hall",
        "_space_group.name_hall", "_symmetry_int_tables_number", "_space_group_it_number",
        "_space_group.it_number", "_atom_site_type_symbol", "_atom_site_fract_x", "_atom_site_fract_y",
        "_atom_site_fract_z", "_atom_site_occupancy", "_atom_site_disorder_assembly", "_atom_site_disorder_group",
    }
)  # fmt: skip


def _non_ascii_problem(tags: dict[str, Any]) -> str | None:
    """Why a value the reader interprets holds a character outside ASCII (``Ｌｉ`` in full-width letters, a
    ``−`` minus sign), else None.

    CIF 1.1 values are ASCII. pymatgen deleted such characters (``Ｌｉ`` vanished, ``−0.25`` became 0.25), so a
    look-alike is refused, naming the character and the ASCII spelling its NFKC form gives, rather than read as
    a guess. The site label counts only where it names the element (no ``_atom_site_type_symbol``).
    """
    read = set(_READ_TAGS) | ({"_atom_site_label"} if "_atom_site_type_symbol" not in tags else set())
    labels = tags.get("_atom_site_label")
    labels = [labels] if isinstance(labels, str) else list(labels or [])
    for tag in sorted(read & tags.keys()):
        value = tags[tag]
        values = [value] if isinstance(value, str) else list(value)
        for k, raw in enumerate(values):
            if raw.isascii():
                continue
            char = next(ch for ch in raw if not ch.isascii())
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            plain = unicodedata.normalize("NFKC", raw).replace("\u2212", "-")
            fix = f"write {plain!r}" if plain.isascii() else "write it in ASCII"
            where = f"site {labels[k]}: " if tag.startswith("_atom_site_") and k < len(labels) else ""
            return (
                f"{where}{tag} value {raw!r} holds {char!r} ({name}), a character outside ASCII, which no CIF value "
                f"of this kind has; {fix}"
            )
    return None


def _disorder_problem(tags: dict[str, Any]) -> str | None:
    """Why the atom sites form alternative (disordered) configurations, else None.

    A site with a disorder group (``_atom_site_disorder_group`` other than ``.``, ``?`` or ``0``, SHELX's
    ordered part) or a disorder assembly is one of two or more alternative positions of the same atoms; read
    as written, both alternatives would be stored side by side (two H where the crystal has one), whatever the
    occupancies say.
    """
    labels = tags.get("_atom_site_label")
    labels = [labels] if isinstance(labels, str) else list(labels or [])
    for tag, what in (
        ("_atom_site_disorder_group", "disorder group"),
        ("_atom_site_disorder_assembly", "disorder assembly"),
    ):
        values = tags.get(tag)
        values = [values] if isinstance(values, str) else list(values or [])
        for k, raw in enumerate(values):
            if raw.strip() in ("", ".", "?", "0"):
                continue
            label = labels[k] if k < len(labels) else str(k + 1)
            return (
                f"site {label} is in {what} {raw!r}: the CIF lists alternative positions of a disordered part "
                "of the crystal, which the lake does not store (it would keep every alternative); give one "
                "ordered structure"
            )
    return None


def _duplicate_site_problem(tags: dict[str, Any]) -> str | None:
    """Why one atom-site loop lists a site twice, else None: two rows with one label (a label names one site of
    the loop), or two rows of one type symbol (or, without type symbols, one label's element) whose coordinates
    agree within :data:`SITE_TOLERANCE` modulo 1.

    Read as written, a repeated row was stored as a second atom on the first (a 200-site P1 cell with a row
    repeated was stored with 201 sites). Which row is the right one, and whether the crystal has the atom once,
    the file does not say, so it is refused rather than merged. Sites of different elements on one position are
    a mixed (disordered) site, refused by the other checks.
    """
    from scipy.spatial import cKDTree

    def column(tag: str) -> list[str]:
        values = tags.get(tag)
        return [values] if isinstance(values, str) else list(values or [])

    labels = column("_atom_site_label")
    first: dict[str, int] = {}
    for k, label in enumerate(labels):
        if label in first and label not in ("?", "."):
            return (
                f"sites {first[label] + 1} and {k + 1} of the atom-site loop share the label {label!r} (a "
                "duplicated row, or two sites given one name); list each site once, with its own label"
            )
        first.setdefault(label, k)
    axes = [column(f"_atom_site_fract_{axis}") for axis in "xyz"]
    n = len(axes[0])
    if n < 2 or any(len(c) != n for c in axes):
        return None
    values = [[_cif_value(c[k]) for c in axes] for k in range(n)]
    if any(v is None for row in values for v in row):
        return None
    kinds = column("_atom_site_type_symbol") or [re.match(r"[A-Za-z]*", label).group(0) for label in labels]
    if len(kinds) != n:
        return None
    wrapped = np.mod(np.array(values, dtype=float), 1.0)
    wrapped[wrapped >= 1.0] = 0.0
    pairs = cKDTree(wrapped, boxsize=1.0).query_pairs(SITE_TOLERANCE, p=np.inf, output_type="ndarray")
    same = [
        (int(i), int(j))
        for i, j in np.sort(pairs, axis=1)
        if _CHARGE.sub("", kinds[i].strip()).capitalize() == _CHARGE.sub("", kinds[j].strip()).capitalize()
    ]
    if not same:
        return None
    i, j = min(same)
    first_name, second_name = (labels[k] if len(labels) == n else str(k + 1) for k in (i, j))
    xyz = ", ".join(str(v) for v in values[j])
    return (
        f"sites {first_name} and {second_name} of the atom-site loop are one {kinds[j]} atom listed twice (the same "
        f"position ({xyz}) within {SITE_TOLERANCE:g} in fractional coordinates, a duplicated row); list each site "
        "once"
    )


def _formula_elements_problem(tags: dict[str, Any]) -> str | None:
    """Why the elements of a declared moiety (else structural, IUPAC or analytical) formula, where no sum formula
    is declared, are not those of the atom sites, or None: such a formula that cannot be summed still names its
    elements, so ``'H2 O'`` with O sites only is refused for its missing H."""
    declared = declared_formula_elements(tags)
    if declared is not None and declared[0] == "_chemical_formula_sum":
        return None  # a sum formula is compared in full, counts too (:func:`reading_problem`)
    symbols = tags.get("_atom_site_type_symbol", tags.get("_atom_site.type_symbol"))
    if symbols is None:
        symbols = tags.get("_atom_site_label", tags.get("_atom_site.label"))
    if declared is None or not declared[1] or symbols is None:
        return None
    symbols = [symbols] if isinstance(symbols, str) else list(symbols)
    sites = {re.match(r"[A-Za-z]*", _CHARGE.sub("", s.strip())).group(0).capitalize() for s in symbols}
    sites = {s for s in sites if s in SYMBOL_TO_Z}
    tag, stated = declared
    if not sites or stated == sites:
        return None
    missing, extra = sorted(stated - sites), sorted(sites - stated)
    said = "; ".join(
        part
        for part in (
            f"no site holds {', '.join(missing)}" if missing else "",
            f"the sites hold {', '.join(extra)}, which it does not name" if extra else "",
        )
        if part
    )
    return (
        f"the declared formula ({tag} {_formula_tag(tags, tag.rsplit('_', 1)[1])!r}) names the elements "
        f"{', '.join(sorted(stated))} but {said} (missing, extra or mislabelled sites)"
    )


def _dummy_site_problem(block: dict[str, Any]) -> str | None:
    """Why the atom-site loop cannot be read as it is, or None: a row flagged ``_atom_site_calc_flag dum`` is
    a dummy site (core CIF: a point of the drawing, such as a ring centre, with no atom on it), which a CIF
    parser reads as an atom like any other. The reader reports no notes on a stored row, so the file is
    refused with the site named rather than stored with the dummy row silently dropped."""
    flags = block.get("_atom_site_calc_flag", block.get("_atom_site.calc_flag"))
    if flags is None:
        return None
    flags = [flags] if isinstance(flags, str) else list(flags)
    labels = block.get("_atom_site_label", block.get("_atom_site.label"))
    labels = [labels] if isinstance(labels, str) else list(labels or [])
    dummies = [k for k, flag in enumerate(flags) if str(flag).strip().strip("'\"").lower() == "dum"]
    if not dummies:
        return None
    k = dummies[0]
    name = labels[k] if k < len(labels) else f"{k + 1}"
    more = f" (and {len(dummies) - 1} more)" if len(dummies) > 1 else ""
    return (
        f"site {name}{more} is a dummy site (_atom_site_calc_flag dum: a point with no atom on it), which would be "
        "stored as an atom; delete the dummy row(s) from the atom-site loop to store the crystal"
    )


#: an oxidation state after a type symbol: a sign is required (``O2-``, ``Fe3+``, ``Fe+3``, ``Cl-``), except the
#: neutral ``0`` (``Ti0``); an unsigned number (``NO3``, ``PO4``) is the count of a molecular group
_SIGNED_CHARGE = re.compile(r"(\d+[+-]|[+-]\d*|(?<=[A-Za-z])0)$")
#: one-letter element symbols: an upper-case pair of them (``CO``, ``HO``, ``NH``, ``PO``) reads as an element
#: (Co, Ho, Nh, Po) or as a group of two elements
_ONE_LETTER = frozenset(("H", "B", "C", "N", "O", "F", "P", "S", "K", "V", "Y", "I", "W", "U"))


#: a mixed-valence (fractional) oxidation state after an element: ``Fe2.5+``, ``Mn+3.5``; one element, read as it
_MIXED_VALENCE = re.compile(r"([A-Za-z]{1,2})(?:\d*\.\d+[+-]|[+-]\d*\.\d+)")
#: the largest oxidation state any element shows (Os8+, Ru8+, Xe8+); a larger "charge" is a group's count and charge
MAX_CHARGE = 8


def _charge_problem(letters: str, charge: str) -> str | None:
    """Why a type symbol's charge (``charge``, as written after ``letters``) is no ion's, or None.

    ``O22-`` (peroxide), ``C22-`` (acetylide), ``Hg22+`` (mercury(I)) are a dimer's count and its charge, which
    read as one O, C, Hg atom; ``Fe3+2`` gives a number on both sides of its sign; ``Fe+3+`` two signs."""
    if re.search(r"[+-]", letters):
        return (
            f"not one ion: it gives two charges ({letters}{charge}); a charge is written once, with one sign "
            "(Fe3+ or Fe+3)"
        )
    base = letters.rstrip("0123456789")
    if charge[:1] in ("+", "-") and letters != base and base == base.capitalize() and base in SYMBOL_TO_Z:
        return (
            f"not one ion: it gives a number on both sides of its sign ({letters}{charge}); a charge is written "
            "once, with one sign (Fe3+ or Fe+3)"
        )
    digits = re.sub(r"[+-]", "", charge)
    if digits and int(digits) > MAX_CHARGE and letters == letters.capitalize() and letters in SYMBOL_TO_Z:
        sign = charge[-1] if charge[-1] in "+-" else charge[0]
        return (
            f"not one atom: the charge {charge} is above any ion's (at most {MAX_CHARGE}, Os8+), so it reads as a "
            f"dimer group, {letters}{digits[:-1]} with charge {digits[-1]}{sign} (such as peroxide O2 2-, acetylide "
            "C2 2-, Hg2 2+); write one site per atom"
        )
    return None


def pymatgen_site_element(symbol: str) -> str | None:
    """The element pymatgen's ``CifParser`` builds for an atom-site type symbol (or label), or None for none.

    The parser's own reading is asked (it knows ``NO3`` as N, ``OH`` as no atom, ``NH4`` as nihonium), so the
    reader's check and the structure it stores cannot read a symbol two ways; its warning is swallowed."""
    from pymatgen.io.cif import CifParser

    parser = CifParser.__new__(CifParser)
    parser.warnings = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return parser._parse_symbol(symbol) or None
        except Exception:  # noqa: BLE001 - an unreadable symbol reads as no element
            return None


def _label_group_problem(written: str, sites: frozenset[str]) -> str | None:
    """Why a label (read for want of type symbols) is a chemical formula rather than an element's site name, or
    None. A site name is an element, a site number and an optional suffix (``Fe1``, ``O2a``, ``O1W`` and
    ``H1W``, water's O and H in SHELX, ``H2A``, ``H2C``, riding H atoms); a formula gives a second element its own
    count (``H2O1``, ``N1H4``), or is water or hydronium written out (``H2O``, ``H3O``: H with a count of 2 or
    more before O, unless the file has a site ``O2``, ``O3`` that such a riding-H name refers to). pymatgen
    reads every one of them as its first letters' element (``H2O`` as H: NaCl with a ``H2O`` site became NaH)."""
    found = re.fullmatch(r"([A-Z][a-z]?)(\d+)([A-Z][a-z]?)(\d*)", written)
    if not found or found.group(1) not in SYMBOL_TO_Z or found.group(3) not in SYMBOL_TO_Z:
        return None
    first, count, second, more = found.groups()
    water = first == "H" and second == "O" and int(count) >= 2 and f"O{count}" not in sites
    if not (more or water):
        return None
    return (
        f"a chemical formula, not one element's site name ({first}{count} {second}{more}, a group such as water "
        f"that the CIF parser reads as {first} alone; a site name is an element, a site number and a suffix: "
        "O1W, Fe1, O2a); write one site per atom"
    )


#: water's oxygen or hydrogen as hydrate CIFs name it in a type symbol or label: ``Ow``, ``OW``, ``Hw``, ``HW``, with
#: an optional site number and suffix (``OW1``, ``Hw2a``); read as O and H, as pymatgen builds them and as the SHELX
#: labels ``O1W``, ``H1W`` already are. No element is spelt ``Ow`` or ``Hw``, and ``OW`` / ``HW`` name no group a
#: type symbol would write (tungsten is ``W``), so the reading is not ambiguous; a declared formula still has to agree.
_WATER_SITE = re.compile(r"([OoHh])[Ww](\d+[A-Za-z]?)?")


def _symbol_element_problem(
    raw: str, *, label: bool, declared: set[str] | None, sites: frozenset[str] = frozenset()
) -> str | None:
    """Why one atom site's type symbol (``label`` False) or, with no type symbols, its label names no single
    element as the structure is built, or None. ``declared`` holds the elements of a declared formula (None
    without one): it resolves an upper-case pair such as ``CO`` that is both an element and two."""
    written = raw.strip()
    water = _WATER_SITE.fullmatch(written)
    if water and pymatgen_site_element(written) == water.group(1).upper():
        return None  # Ow, OW, HW1: water's O or H, as the parser builds it (the O1W of SHELX labels likewise)
    if label:
        letters = re.match(r"[A-Za-z]*", written).group(0)
        if letters in _ISOTOPES:
            return f"{_ISOTOPES[letters]} ({letters}), which the lake does not store as an element"
        problem = _label_group_problem(written, sites)
        if problem:
            return problem
    else:
        if written in ("?", "."):
            said = "unknown" if written == "?" else "inapplicable"
            return (
                f"{said} ({written!r}): the CIF does not say which element the site holds; write its element"
            )
        mixed = _MIXED_VALENCE.fullmatch(written)  # Fe2.5+: a mixed-valence site of one element reads
        charge = None if mixed else _SIGNED_CHARGE.search(written)
        letters = mixed.group(1) if mixed else _SIGNED_CHARGE.sub("", written)
        if letters in _ISOTOPES:
            return (
                f"{_ISOTOPES[letters]}, which the lake does not store as an element (write H to store it as "
                "hydrogen)"
            )
        problem = _charge_problem(letters, charge.group(0) if charge else "")
        if problem:
            return problem
        numbered = re.fullmatch(r"([A-Za-z]+)(\d+)", letters)
        if (
            numbered
        ):  # Fe1 (an element in its own letter case, a site number) reads; NO3, PO4, CO3, NH4 do not
            base = numbered.group(1)
            if base != base.capitalize() or base not in SYMBOL_TO_Z:
                if (
                    charge and charge.group(0) != "0"
                ):  # PO4-3, SO4-2: the sign is there; the symbol is a group
                    return (
                        f"not an element: a molecular group with a charge ({letters} with charge "
                        f"{charge.group(0)}); a type symbol is one element with an optional charge (Fe3+); "
                        "write one site per atom"
                    )
                return (
                    "not an element (a molecular group? an unsigned number after a type symbol is no charge: a "
                    "charge needs its sign, Fe3+; a site number follows an element written as one, Fe1); write "
                    "one site per atom"
                )
            letters = base
    element = letters.capitalize()
    if element not in SYMBOL_TO_Z:  # OH, H2O, XX: pymatgen would drop the site or read another element
        return "not an element (a group such as OH, or a typo); write one site per atom"
    built = pymatgen_site_element(written)
    if built != element:  # NO3: letters No (nobelium), built as N
        read = f"builds {built}" if built else "drops the site"
        return (
            f"not one element (its letters {letters!r} read as {element}, but the CIF parser {read}); write one "
            "site per atom"
        )
    if (
        len(letters) == 2
        and letters.isupper()
        and {letters[0], letters[1]} <= _ONE_LETTER
        and not (declared and element in declared)
    ):
        if unmeasured_element_problem([element]):  # NH (nihonium), CN (copernicium): only the group is real
            return (
                f"not an element: upper-case {letters!r} reads as the group {letters[0]}+{letters[1]} (the element "
                f"{element} has no measured crystal structure); a molecular group is not supported: write one "
                "site per atom"
            )
        return (
            f"ambiguous: upper-case {letters!r} is the element {element} or the group {letters[0]}+{letters[1]} "
            f"(write {element} for the element, or one site per atom; a declared _chemical_formula_sum naming "
            f"{element} also decides it)"
        )
    return None


def _site_symbol_problem(block: dict[str, Any]) -> str | None:
    """Why an atom site of the block names no single element (a group such as ``OH``, ``NO3``, an isotope), or None.

    A type symbol is an element symbol in any letter case with an optional signed charge (``Na``, ``NA``,
    ``Na+``, ``NA+1``, ``Cl1-``, the neutral ``Ti0``): FullProf and SHELX write upper case, which pymatgen reads
    as the element; an element written in its own letter case may carry a site number (``Fe1``, ``Co3``), a
    number after anything else is a group's count (``NO3``, ``PO4``, ``CO3``, ``NH4``) and is refused. The element the check reads must be the one the CIF parser builds
    (:func:`pymatgen_site_element`); an upper-case pair of one-letter symbols (``CO``, ``HO``) needs a declared
    formula naming the element. A label read for want of type symbols may carry a site number (``Fe1``,
    ``O2a``)."""
    symbols = block.get("_atom_site_type_symbol", block.get("_atom_site.type_symbol"))
    labels = block.get("_atom_site_label", block.get("_atom_site.label"))
    if isinstance(symbols, str):
        symbols = [symbols]
    if isinstance(labels, str):
        labels = [labels]
    found = declared_formula_elements(block)
    declared = found[1] if found else None
    if not symbols:  # pymatgen reads the element from the label
        for label in labels or []:
            problem = _symbol_element_problem(
                label, label=True, declared=declared, sites=frozenset(str(x).strip() for x in labels)
            )
            if problem:
                if problem.startswith(tuple(_ISOTOPES.values())):
                    return f"site {label} is {problem}"
                return f"site {label}: the CIF has no _atom_site_type_symbol and the label is {problem}"
        return None
    for k, raw in enumerate(symbols):
        label = labels[k] if labels and k < len(labels) else f"{k + 1}"
        problem = _symbol_element_problem(raw, label=False, declared=declared)
        if problem:
            return f"site {label}: type symbol {raw!r} is {problem}"
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


def _written_symbol(tags: dict[str, Any]) -> str:
    """The Hermann-Mauguin symbol the CIF declares, as written ("" when none)."""
    return next((tags[t] for t in _HM_TAGS if isinstance(tags.get(t), str) and tags[t].strip()), "")


def _declared_number(tags: dict[str, Any]) -> int | None:
    """The space-group number the CIF declares, when it is a whole number in 1-230, else None."""
    text = next((tags[t] for t in _NUMBER_TAGS if isinstance(tags.get(t), str) and tags[t].strip()), "")
    number = _cif_value(text) if text else None
    if number is None or not math.isfinite(number) or number != int(number) or not 1 <= number <= 230:
        return None
    return int(number)


def _split_symbol(written: str) -> tuple[str, str, bool]:
    """A written symbol (``'R -3 m H'``, ``'F d -3 m :2'``) as (symbol without spaces or setting, the setting
    code as written or ICSD's last word means it, whether the setting was ICSD's last word)."""
    symbol = re.sub(r"[\s_'\"]", "", written)
    recased = _symbol_case(symbol)
    symbol, recased = recased, recased != symbol
    base, _, code = symbol.partition(":")
    icsd = len(base) > 2 and base[-1] in _ICSD_SETTINGS and not code
    if recased and not icsd:  # 'f m -3 m': expanded here, as pymatgen reads no symbol in other letter case
        return base, code, True
    if icsd:
        base, code = base[:-1], _ICSD_SETTINGS[base[-1]]
    return base, code, icsd


_GLIDES = frozenset("abcdemn")


def _symbol_case(symbol: str) -> str:
    """A Hermann-Mauguin symbol (spaces removed) in its letter case: the lattice letter upper case, mirror and glide
    letters (``m a b c d e n``) lower case, a setting letter (ICSD's ``H R S Z``, ``:H``) upper case. A symbol
    written all in lower or upper case (``f m -3 m``, ``F M -3 M``) names the same group; pymatgen knew neither
    and read the file as P1. Text that starts with no lattice letter is returned as it is."""
    if not symbol or symbol[0].upper() not in "PABCFIR":
        return symbol
    rest = "".join(
        (c.lower() if c.lower() in _GLIDES else c.upper()) if c.isascii() and c.isalpha() else c
        for c in symbol[1:]
    )
    return symbol[0].upper() + rest


@lru_cache(maxsize=512)
def _symbol_number(base: str) -> int | None:
    """The international number of a symbol (spaces and setting removed, as :func:`_split_symbol` gives it), or
    None for a symbol pymatgen cannot expand. Cached: the mirror's files repeat a few symbols."""
    from pymatgen.symmetry.groups import SpaceGroup

    known = _pymatgen_symbol(base)
    if known is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return (SpaceGroup(known) if _known_symbol(known) else SpaceGroup(f"{known}:1")).int_number
        except ValueError:
            return None


def _symbol_number_problem(tags: dict[str, Any]) -> str | None:
    """Why the declared Hermann-Mauguin symbol and the declared space-group number name different groups, else
    None (also when either is missing or the symbol is one pymatgen cannot expand).

    Without listed operations pymatgen expanded the sites by one of them and ignored the other ('F m -3 m' with
    number 221 was read as F m -3 m); the file does not say which is right."""
    written, number = _written_symbol(tags), _declared_number(tags)
    base, _, _ = _split_symbol(written)
    if number is None or not base or base in ("?", "."):
        return None
    symbol_number = _symbol_number(base)
    if symbol_number is None or symbol_number == number:
        return None
    other, _ = _number_group(number)
    return (
        f"the CIF declares space group {written.strip()!r} (number {symbol_number}) and space-group number "
        f"{number} ({other}), two different groups; fix the symbol or the number"
    )


def _listed_operations(tags: dict[str, Any]) -> list[str] | None:
    """The symmetry operations pymatgen would apply: those of the first tag of :data:`SYMOP_TAGS` that holds
    any (all of them are checked alike by :func:`_operation_problem`), or None when none is listed."""
    for tag in SYMOP_TAGS:
        ops = tags.get(tag)
        if ops:
            return [str(ops)] if isinstance(ops, str) else [str(op) for op in ops]
    return None


def _operation_problem(tags: dict[str, Any]) -> str | None:
    """Why the listed symmetry operations are no space group of this cell, or None.

    Read from every tag of :data:`SYMOP_TAGS` (pymatgen's four and the CIF2 spelling). Each operation must be
    a crystallographic operation (three affine components, coefficients of x, y and z in -1, 0, 1, no product
    such as ``x*y``, determinant +-1); the list must be a group modulo lattice translations
    (:func:`_group_problem`: the identity and every product of two operations in the list); each operation
    must be an isometry of the cell (:func:`_metric_problem`); and two tags may not list different groups.
    pymatgen would apply any of them and store another crystal (``2x,y,z`` made MgO MgO2; a list without its
    closure generates only part of the orbit; 3-fold operations on a cubic cell store atoms at distances the
    crystal does not have).
    """
    groups: dict[str, frozenset[tuple[int, ...]]] = {}
    for tag in SYMOP_TAGS:
        ops = tags.get(tag)
        if not ops:
            continue
        ops = [str(ops)] if isinstance(ops, str) else [str(op) for op in ops]
        parsed = []
        for op in ops:
            affine = _affine(op)
            if isinstance(affine, str):
                return affine
            parsed.append(affine)
        matrices, shifts = np.array([m for m, _ in parsed]), np.array([t for _, t in parsed])
        trivial = (
            len(parsed) == 1 and np.array_equal(matrices[0], np.eye(3)) and not shifts.any()
        )  # P1: 'x,y,z'
        problem = (
            None if trivial else _group_problem(ops, matrices, shifts) or _metric_problem(ops, matrices, tags)
        )
        if problem:
            return problem
        groups[tag] = frozenset(
            (
                *np.rint(m).astype(int).ravel().tolist(),
                *(np.rint(np.mod(t, 1.0) * 1000).astype(int) % 1000).tolist(),
            )
            for m, t in parsed
        )
    if len(set(groups.values())) > 1:
        first, *others = groups
        other = next(t for t in others if groups[t] != groups[first])
        return (
            f"the CIF lists two different sets of symmetry operations, under {first} ({len(groups[first])}) and "
            f"{other} ({len(groups[other])}); only one would be applied: keep the one that belongs to this cell"
        )
    if groups:
        return _declared_group_problem(tags, next(iter(groups.values())))
    return None


def _op_keys(ops: Iterable[Any]) -> frozenset[tuple[int, ...]]:
    """pymatgen ``SymmOp``s as the keys :func:`_operation_problem` gives listed operations (modulo 1)."""
    return frozenset(
        (
            *np.rint(op.rotation_matrix).astype(int).ravel().tolist(),
            *(np.rint(np.mod(op.translation_vector, 1.0) * 1000).astype(int) % 1000).tolist(),
        )
        for op in ops
    )


def _symbol_groups(tags: dict[str, Any]) -> tuple[str, list[frozenset[tuple[int, ...]]]]:
    """The declared Hermann-Mauguin symbol as written and the operation sets (keys of :func:`_op_keys`) of each
    setting pymatgen knows for it (its own reading of the symbol, and the other origin choice or axes); no sets
    for a symbol pymatgen cannot expand."""
    from pymatgen.symmetry.groups import SYMM_DATA

    written = _written_symbol(tags)
    symbol = re.sub(r"[\s_'\"]", "", written)
    if not symbol or symbol in ("?", "."):
        return written, []
    base, _, _code = symbol.partition(":")
    encoded = {re.sub(r"[\s_]", "", key): key for key in SYMM_DATA["space_group_encoding"]}
    icsd = len(base) > 2 and base[-1] in _ICSD_SETTINGS and base not in encoded and base[:-1] in encoded
    key = encoded.get(base[:-1] if icsd else base)
    if key is None:
        return written, []
    sets = []
    for setting in (key, f"{key}:1", f"{key}:2", f"{key}:H", f"{key}:R"):
        try:
            sets.append(_op_keys(setting_operations(setting)))
        except ValueError:
            continue
    return written, sets


def _declared_group_problem(tags: dict[str, Any], listed: frozenset[tuple[int, ...]]) -> str | None:
    """Why the listed operations (keys modulo lattice translations) are not the space group the CIF declares by
    symbol or number, or None.

    A declared symbol pymatgen can expand must name the same group in one of its settings: as many operations
    (modulo lattice translations) with the same linear parts (origin choices differ in translations only); a
    declared number must have as many operations as its group in the conventional setting (a third of them for
    a rhombohedral group on rhombohedral axes). 'F m -3 m' with the 48 operations of Pm-3m read a CsCl-type
    cell of 2 sites; 'F m -3 m' with only 'x,y,z' read the asymmetric unit as the crystal.
    """
    written, sets = _symbol_groups(tags)
    rotations = {k[:9] for k in listed}
    if sets and not any(len(s) == len(listed) and {k[:9] for k in s} == rotations for s in sets):
        orders = "/".join(str(n) for n in sorted({len(s) for s in sets}))
        return (
            f"the CIF declares space group {written.strip()!r} ({orders} operations) but lists {len(listed)} "
            "symmetry operations of another group; the crystal would be expanded by the listed ones: fix the "
            "symbol or the operations"
        )
    number = _declared_number(tags)
    if number is None:
        return None
    symbol, order = _number_group(number)
    orders = {order, order // 3} if symbol.startswith("R") else {order}
    if len(listed) not in orders:
        shown = "/".join(str(n) for n in sorted(orders))
        return (
            f"the CIF declares space group number {number} ({symbol}, {shown} operations) but lists "
            f"{len(listed)} symmetry operations of another group; fix the number or the operations"
        )
    return None


def _metric_problem(ops: list[str], matrices: np.ndarray, tags: dict[str, Any]) -> str | None:
    """Why a symmetry operation (linear parts (n, 3, 3) on fractional coordinates) is no isometry of the cell the
    tags declare, else None (also when the cell cannot be read: the other checks say why).

    An operation ``x -> R x + t`` keeps every distance only if ``R^T G R = G`` for the metric tensor ``G``
    (``G_ij = a_i . a_j``). ``R^T G R`` is the metric of the cell the operation makes of the declared one; its
    lengths may differ by :data:`METRIC_LENGTH_TOLERANCE` and its angles by :data:`METRIC_ANGLE_TOLERANCE_DEG`
    (cells are written rounded). Hexagonal operations on a cubic cell (``-y,x-y,z`` turns gamma = 90 into
    135 degrees) or tetragonal ones on an orthorhombic cell fail.
    """
    values = [_cif_value(tags.get(tag)) for tag in _CELL_TAGS]
    if None in values or cell_parameters_problem(values[:3], values[3:]):
        return None
    lengths = np.array(values[:3], dtype=float)
    angles = np.array(values[3:], dtype=float)
    metric = _metric_tensor(lengths, angles)
    moved = np.einsum("nji,jk,nkl->nil", matrices, metric, matrices)  # R^T G R for each operation
    new_lengths, new_angles = _cell_of_metric(moved)
    bad = (np.abs(new_lengths / lengths - 1.0) > METRIC_LENGTH_TOLERANCE).any(axis=1)
    bad |= (np.abs(new_angles - angles) > METRIC_ANGLE_TOLERANCE_DEG).any(axis=1)
    if not bad.any():
        return None
    k = int(np.flatnonzero(bad)[0])

    def cell(ls: np.ndarray, angs: np.ndarray) -> str:
        return f"{', '.join(f'{x:.4g}' for x in ls)} A, {', '.join(f'{x:.4g}' for x in angs)} degrees"

    return (
        f"symmetry operation {ops[k]!r} does not fit the cell: it turns a, b, c, alpha, beta, gamma = "
        f"{cell(lengths, angles)} into {cell(new_lengths[k], new_angles[k])} (no isometry of this cell: an "
        "operation of another crystal system or setting); list the operations of this cell's space group"
    )


def _metric_tensor(lengths: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """(3, 3) metric tensor ``G_ij = a_i . a_j`` of cell lengths (a, b, c) and angles (alpha, beta, gamma)."""
    a, b, c = lengths
    cos_alpha, cos_beta, cos_gamma = np.cos(np.radians(angles_deg))
    return np.array(
        [
            [a * a, a * b * cos_gamma, a * c * cos_beta],
            [a * b * cos_gamma, b * b, b * c * cos_alpha],
            [a * c * cos_beta, b * c * cos_alpha, c * c],
        ]
    )


def _cell_of_metric(metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell lengths (..., 3) and angles alpha, beta, gamma in degrees (..., 3) of metric tensors (..., 3, 3)."""
    lengths = np.sqrt(np.clip(np.diagonal(metric, axis1=-2, axis2=-1), 0.0, None))
    pairs = ((1, 2), (0, 2), (0, 1))
    with np.errstate(all="ignore"):
        cosines = np.stack(
            [metric[..., i, j] / (lengths[..., i] * lengths[..., j]) for i, j in pairs], axis=-1
        )
    return lengths, np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


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
    and angles (:func:`storage.validation.cell_parameters_problem`; a length above
    :data:`MAX_CELL_LENGTH_ANGSTROM` too), ``_cell_formula_units_Z``
    (:func:`storage.validation.formula_units_problem`) and ``_exptl_crystal_density_diffrn`` (positive and
    finite)."""
    values = [_cif_value(tags.get(tag)) for tag in _CELL_TAGS]
    problem = cell_parameters_problem(values[:3], values[3:])
    for name, value in zip("abc", values[:3], strict=True):
        if not problem and value is not None and value > MAX_CELL_LENGTH_ANGSTROM:
            problem = _long_cell(f"cell length {name}", value)
        if not problem and value is not None and value < MIN_DISTANCE_ANGSTROM:
            problem = (
                f"cell length {name} = {value:g} A is shorter than {MIN_DISTANCE_ANGSTROM:g} A (every atom would "
                f"be closer than {MIN_DISTANCE_ANGSTROM:g} A to its own periodic image: a unit or typing error)"
            )
    problem = problem or formula_units_problem(_cif_value(tags.get("_cell_formula_units_z")))
    for tag in _DENSITY_TAGS:
        problem = problem or density_problem(_cif_value(tags.get(tag)), tag)
    return problem


def _long_cell(what: str, length: float) -> str:
    return (
        f"{what} = {length:g} A is longer than {MAX_CELL_LENGTH_ANGSTROM:g} A, longer than any crystal's unit "
        "cell (a unit or typing error)"
    )


def _site_number_problem(tags: dict[str, Any]) -> str | None:
    """Why an atom site's numbers cannot be read as they are written, else None.

    A fractional coordinate must be a number (``?``, ``.`` or text is not: pymatgen failed, or read ``.`` as 0),
    finite and at most :data:`MAX_ABS_FRACTIONAL` in size (1e300 was wrapped modulo 1 into an arbitrary site).
    An occupancy must be a finite number in (0, 1] (1 + :data:`storage.validation.OCCUPANCY_TOLERANCE`
    allowed for rounding): pymatgen dropped a site written ``?``, ``.``, 0 or -1 (LiH with Li at -1 was stored
    as H2), and no site may be dropped. A partial occupancy is refused later, by the path that builds the cell.
    """

    def column(tag: str) -> list[Any]:
        values = tags.get(tag)
        return [values] if isinstance(values, str) else list(values or [])

    labels = column("_atom_site_label")
    for tag in ("_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z", "_atom_site_occupancy"):
        occupancy = tag == "_atom_site_occupancy"
        name = "occupancy" if occupancy else f"fractional coordinate {tag[-1]}"
        for k, raw in enumerate(column(tag)):
            value = _cif_value(raw)
            label = labels[k] if k < len(labels) else str(k + 1)
            if value is not None and not math.isfinite(value):
                return f"site {label}: {name} = {value:g} is not a finite number"
            if occupancy:
                if value is None or value <= 0.0:
                    shown = f"{value:g}" if value is not None else repr(raw)
                    return (
                        f"site {label}: occupancy {shown} is not a number in (0, 1] (read as written, the site "
                        "would be dropped); give the site's occupancy, 1 for a full site"
                    )
                if value > 1.0 and not full_occupancy(value):
                    return _partial_occupancy(value, f"site {label}")
            elif value is None:
                return f"site {label}: {name} {raw!r} is not a number; give the site's position"
            elif abs(value) > MAX_ABS_FRACTIONAL:
                return (
                    f"site {label}: {name} = {value:g} lies outside -{MAX_ABS_FRACTIONAL:g} to "
                    f"{MAX_ABS_FRACTIONAL:g} (a fractional coordinate lies in [0, 1); one this large is no "
                    "position, or has lost its digits)"
                )
    return None


#: ICSD writes the setting as a last word of the Hermann-Mauguin symbol: H/R for the hexagonal/rhombohedral
#: axes of a rhombohedral group, S/Z for origin choice 1/2 ('R -3 m H', 'F d -3 m Z'); no symbol ends in
#: these letters otherwise
_ICSD_SETTINGS = {"H": "H", "R": "R", "S": "1", "Z": "2"}


def _settings(tags: dict[str, Any]) -> list[str]:
    """Space-group symbols with a setting (``R-3m:R``, ``Fd-3m:2``) to expand a CIF in; [] to leave it to pymatgen.

    Only for a CIF without symmetry operations whose symbol is rhombohedral, has two origin choices, or names
    its setting as ICSD does (a last word H, R, S or Z). A number with no symbol counts as its group's symbol:
    number 166 on a cell with a = b = c and alpha = beta = gamma != 90 is R-3m in the rhombohedral setting
    (pymatgen expanded it with the hexagonal operations, which fit no such cell).

    Raises:
        StructureError: for a rhombohedral symbol whose setting (``:H``, ``H``) contradicts its cell's shape.
    """
    if any(tags.get(tag) for tag in SYMOP_TAGS):
        return []
    written = _written_symbol(tags)
    base, code, icsd = _split_symbol(written)
    number = _declared_number(tags)
    if (
        not base and number is not None
    ):  # a number alone reads as its symbol ('166': R-3m, axes from the cell)
        written, base = str(number), _number_group(number)[0].split(":")[0]
    code = code or next((str(tags[t]).strip() for t in _SETTING_TAGS if tags.get(t)), "")
    if not base:
        return []
    known = _pymatgen_symbol(base)
    if known and known != base:  # a short or old symbol ('P 21/n', 'F d 3 m') pymatgen does not expand
        base, icsd = known, True
    if base.startswith("R"):
        cell = [_cif_number(tags, tag) for tag in _CELL_TAGS]
        if None in cell:
            return []
        a, b, c, alpha, beta, gamma = cell
        rhombohedral = (
            max(a, b, c) - min(a, b, c) < 1e-3 and max(alpha, beta, gamma) - min(alpha, beta, gamma) < 1e-2
        )
        if rhombohedral and abs(alpha - 90.0) <= 1e-2:  # a cube: pymatgen's own reading
            return [f"{base}:{code.upper()}"] if code.upper() in ("H", "R") else []
        shape = "R" if rhombohedral else "H"
        if code.upper() in ("H", "R") and code.upper() != shape:
            axes = {"H": "hexagonal", "R": "rhombohedral"}
            raise StructureError(
                f"the space-group symbol {written!r} names the {axes[code.upper()]} setting but the cell "
                f"(a, b, c = {a:g}, {b:g}, {c:g} A; alpha, beta, gamma = {alpha:g}, {beta:g}, {gamma:g} degrees) "
                f"has {axes[shape]} axes; fix the symbol or the cell"
            )
        return [f"{base}:{shape}"]
    try:
        one, two = setting_operations(f"{base}:1"), setting_operations(f"{base}:2")
    except ValueError:
        return [base] if icsd and _known_symbol(base) else []
    if {op.as_xyz_str() for op in one} == {op.as_xyz_str() for op in two}:
        return [base] if icsd else []
    return [f"{base}:{code}"] if code in ("1", "2") else [f"{base}:1", f"{base}:2"]


def _pymatgen_symbol(symbol: str) -> str | None:
    """A symbol (spaces removed) pymatgen's ``SpaceGroup`` expands for a written Hermann-Mauguin symbol, or None.

    The symbol itself when pymatgen knows it; an old cubic symbol with ``-3`` for ``3`` ('Fd3m' -> 'Fd-3m');
    else the full symbol of the first setting in spglib's table (its standard one, b-unique for a monoclinic
    group) whose full symbol without its '1' axes is the one written ('P21/n' -> 'P12_1/n1')."""
    import spglib

    plain = symbol.replace("_", "")
    candidates = [symbol]
    old_cubic = re.sub(r"(?<=[a-z])3", "-3", symbol)
    if old_cubic != symbol:
        candidates.append(old_cubic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Full symbol not available, falling back to short ..."
        return _pymatgen_symbol_of(symbol, plain, candidates, spglib)


def _pymatgen_symbol_of(symbol: str, plain: str, candidates: list[str], spglib: Any) -> str | None:
    for candidate in candidates:
        if _known_symbol(candidate) or _known_symbol(f"{candidate}:1"):
            return candidate
    for hall in range(1, 531):
        kind = spglib.get_spacegroup_type(hall)
        if kind is None:
            continue
        full = kind.international_full
        short = "".join(part for part in full.split() if part != "1").replace("_", "")
        if short == plain:
            written = full.replace(" ", "")
            return written if _known_symbol(written) else None
    return None


def _known_symbol(symbol: str) -> bool:
    """Whether pymatgen's ``SpaceGroup`` knows the symbol (spaces removed)."""
    return _held_space_group(symbol) is not None


@lru_cache(maxsize=1024)
def _held_space_group(symbol: str) -> Any:
    """pymatgen's ``SpaceGroup(symbol)`` (None for a symbol it does not know), built once per process and held.

    Building one expands its operations (up to half a second for a cubic group) and pymatgen's own instance
    cache holds them only weakly; held here, the ``SpaceGroup(symbol)`` that ``CifParser.get_symops`` builds
    for a CIF expanded from the same symbol is that cached instance, not a rebuild.
    """
    from pymatgen.symmetry.groups import SpaceGroup

    try:
        return SpaceGroup(symbol)
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def setting_operations(setting: str) -> tuple[Any, ...]:
    """The symmetry operations (pymatgen ``SymmOp``s) of a space-group setting (``'F d -3 m:2'``, ``'R-3m:R'``),
    in the order ``SpaceGroup(setting).symmetry_ops`` yields them, built once per process.

    pymatgen rebuilds them for every new ``SpaceGroup`` (its instance cache holds them weakly), up to half a
    second for a group of 192 operations. The cached operations are copies whose matrices are read-only, in a
    tuple: nothing can change them for the next caller.

    Raises:
        ValueError: for a setting pymatgen does not know (not cached).
    """
    from pymatgen.core.operations import SymmOp
    from pymatgen.symmetry.groups import SpaceGroup

    frozen = []
    for op in SpaceGroup(setting).symmetry_ops:
        copy = SymmOp(op.affine_matrix.copy(), tol=op.tol)
        copy.affine_matrix.setflags(write=False)
        frozen.append(copy)
    return tuple(frozen)


@lru_cache(maxsize=256)
def _number_group(number: int) -> tuple[str, int]:
    """The symbol and order of pymatgen's ``SpaceGroup.from_int_number(number)``, built once per process (the
    group held too, as :func:`_held_space_group` holds one, for ``CifParser``'s own ``from_int_number``).

    Raises:
        ValueError: for a number outside 1..230 (not cached).
    """
    from pymatgen.symmetry.groups import SpaceGroup

    group = SpaceGroup.from_int_number(number)
    _HELD_NUMBER_GROUPS[number] = group
    return group.symbol, group.order


_HELD_NUMBER_GROUPS: dict[int, Any] = {}


def _with_operations(text: str, setting: str) -> str:
    """The CIF with the symmetry operations of ``setting`` written out (pymatgen then uses those)."""
    return _with_operation_list(text, [op.as_xyz_str() for op in setting_operations(setting)])


def _with_operation_list(text: str, ops: list[str]) -> str:
    """The CIF with ``ops`` written out under ``_symmetry_equiv_pos_as_xyz`` (the tag pymatgen reads first)."""
    listed = "\n".join(f"'{op}'" for op in ops)
    return f"{text.rstrip()}\nloop_\n_symmetry_equiv_pos_as_xyz\n{listed}\n"


def declared_cif_number(text: str, tag: str) -> float | None:
    """A number the CIF's structure block declares for ``tag`` (e.g. ``_cell_formula_units_Z``; read by the CIF
    tokenizer: on the next line, in a text field or before a comment too; uncertainty dropped), or None."""
    try:
        return _cif_value(structure_block(text).scalar(tag.lower()))
    except StructureError:
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
    if problem is None and whole and cif and not _stated_formula(declared):
        problem = _formula_units_problem(cell.species, int(z))
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


def _stated_formula(declared: str) -> bool:
    text = (declared or "").strip().strip("'\"").strip()
    return bool(text) and text not in ("?", ".")


def _formula_units_problem(species: list[str], z: int) -> str | None:
    """Why a cell's sites cannot hold ``z`` formula units (CIF ``_cell_formula_units_Z`` with no formula stated),
    or None: each element's count must be a whole multiple of Z (its formula unit is the counts divided by Z).
    'Z 4' with a Na and a Cl site (the operations of another group expanded too few sites) holds no 4 units."""
    if z <= 1 or not species:
        return None
    counts = Counter(species)
    if all(n % z == 0 for n in counts.values()):
        return None
    shown = " ".join(f"{el}{n}" for el, n in sorted(counts.items()))
    return (
        f"the CIF declares Z = {z} formula units but its {len(species)} sites ({shown}) cannot hold {z} whole "
        "formula units (missing, extra or mis-expanded sites)"
    )


def _pymatgen_cif(text: str) -> Cell:
    """Read a CIF with pymatgen's parser after every check (:func:`_checked_block`), in the right setting."""
    return _pymatgen_block(_checked_block(text))


def _pymatgen_block(block: CifBlockText) -> Cell:
    """Build a checked structure block's cell with pymatgen's parser (symmetry expansion, oxidation states, ...).

    pymatgen parses the block alone (a ``data_global`` block beside it is no part of the structure), with the
    operations the checks read: those of a tag pymatgen does not read (``_space_group_symop.operation_xyz``) are
    written out under ``_symmetry_equiv_pos_as_xyz``, and a symbol without operations is expanded in the setting
    :func:`_settings` gives.
    """
    text = ascii_text(block.text)
    ops = _listed_operations(block.tags)
    if ops is not None and not any(tag in block.written_tags for tag in SYMOP_TAGS_PYMATGEN_READS):
        text = _with_operation_list(text, ops)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen: "Full symbol not available" for a mapped short symbol
        settings = _settings(block.tags)
        problem = _setting_fit_problem(settings[0], block.tags) if settings else None
        expanded = [(setting, _with_operations(text, setting)) for setting in settings]
    if settings:
        if problem:
            raise StructureError(problem)
        readings = [(setting, _pymatgen_cell(setting_text)) for setting, setting_text in expanded]
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
                f"the CIF names no origin choice and neither reading is sensible: {problems[0]} ({names} tried)"
            )
        raise StructureError(
            f"the CIF names no origin choice and both {names} give a sensible cell; write the symmetry "
            "operations or ':1'/':2' after the space-group symbol"
        )
    return _pymatgen_cell(text)


def _setting_fit_problem(setting: str, tags: dict[str, Any]) -> str | None:
    """Why the operations of a space-group setting (``R-3m:H``) are no isometries of the declared cell, or None."""
    ops = setting_operations(setting)
    matrices = np.array([op.rotation_matrix for op in ops])
    problem = _metric_problem([op.as_xyz_str() for op in ops], matrices, tags)
    return f"space group {setting}: {problem}" if problem else None


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


def _applied_operation_problem(parser: Any, text: str) -> str | None:
    """Why the operations pymatgen applied (listed, or generated from a space-group symbol, Hall symbol or number)
    are no isometries of the declared cell, or None.

    Listed operations are checked before parsing (:func:`_operation_problem`); operations pymatgen generated from
    a symbol or number were never compared with the cell ('P 6/m m m' on a cubic cell stored NaCl3). The same
    check (:func:`_metric_problem`) runs on the very operations pymatgen applied."""
    ops = list(getattr(parser, "symmetry_operations", None) or [])
    if not ops:
        return None
    try:
        tags = structure_block(text).tags
    except StructureError:
        return None
    if any(tags.get(tag) for tag in SYMOP_TAGS):
        return None  # listed operations: checked by _operation_problem
    matrices = np.array([op.rotation_matrix for op in ops])
    problem = _metric_problem([op.as_xyz_str() for op in ops], matrices, tags)
    if problem is None:
        return None
    declared = _declared_space_group(text) or "(none)"
    return f"space group {declared}, expanded from its symbol or number: {problem}"


def _pymatgen_cell(text: str) -> Cell:
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser.from_str(
                text, occupancy_tolerance=1.0 + OCCUPANCY_TOLERANCE, site_tolerance=SITE_TOLERANCE
            )
            structures = parser.parse_structures(primitive=False)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, ZeroDivisionError) as exc:
            detail = "; ".join(str(w.message) for w in caught[:2])
            if "sum to > 1" in str(exc) + detail:
                # pymatgen merges sites on one position and then sees occupancy > 1: same fault as the fast path's
                raise StructureError(
                    "two or more sites share one position, closer than 0.5 A (overlapping or duplicated sites)"
                ) from exc
            raise StructureError(
                one_line(f"malformed CIF: {exc}" + (f" ({detail})" if detail else ""))
            ) from exc
    if len(structures) != 1:
        raise StructureError(f"malformed CIF: it holds {len(structures)} structures, one was expected")
    problem = _applied_operation_problem(parser, text)
    if problem:
        raise StructureError(problem)
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
    "_symmetry_space_group_name_h-m", "_space_group_name_h-m_alt", "_space_group.name_h-m_alt",
    "_symmetry_space_group_name_hall", "_space_group_name_hall", "_space_group.name_hall",
    "_symmetry_int_tables_number", "_space_group_it_number", "_space_group.it_number",
)  # fmt: skip
_P1 = {"p1", "1", "p 1"}


def _declared_space_group(text: str) -> str | None:
    """The space group the CIF's structure block declares by symbol, Hall symbol or number when it is not P1
    (as written), else None."""
    try:
        block = structure_block(text)
    except StructureError:
        return None
    for tag in _SPACE_GROUP_TAGS:
        value = (block.scalar(tag) or "").strip()
        if value and value not in ("?", ".") and " ".join(value.lower().split()) not in _P1:
            return repr(value)
    return None


def cell_from_cif(text: str) -> Cell:
    """Parse one CIF into a :class:`Cell` (a leading byte-order mark is ignored).

    The structure is the one data block that lists atom sites (an IUCr ``data_global`` block of publication
    details beside it is skipped); every check of :func:`_block_problem` runs on that block first.

    Raises:
        StructureError: if the CIF is malformed or holds several structures, is partly occupied (more than
            :data:`storage.validation.OCCUPANCY_TOLERANCE` from 1) or disordered, names an unknown element, an
            isotope or a value outside ASCII, declares numbers no crystal has (cell lengths in Angstrom, angles
            in degrees, Z, densities in g/cm^3, coordinates, occupancies), or lists symmetry operations that
            form no group or do not fit its cell.
    """
    if not isinstance(text, str) or not text.strip():
        raise StructureError("malformed CIF: the CIF text is empty")
    block = _checked_block(text)
    return _p1_cell(block) or _pymatgen_block(block)


#: the one reason for a lattice or coordinate that is NaN or infinite (:func:`cell_from_arrays`, :func:`check_cell`)
NON_FINITE = "lattice or coordinates contain NaN or infinity"


def cell_from_arrays(lattice: Any, species: Iterable[str], frac_coords: Any) -> Cell:
    """Build a :class:`Cell` from explicit arrays, checking shapes and that every number is finite.

    Args:
        lattice: (3, 3) row-vector cell in Angstrom.
        species: n element symbols.
        frac_coords: (n, 3) fractional coordinates (wrapped into [0, 1)).

    Raises:
        StructureError: if the arrays are inconsistent, a number is out of a float's range, or a lattice or
            coordinate value is NaN or infinite (refused before any arithmetic warns of it).
    """
    try:
        lat = np.asarray(lattice, dtype=float).reshape(3, 3)
        frac = np.asarray(frac_coords, dtype=float).reshape(-1, 3)
    except OverflowError:  # a 400-digit integer: no float holds it
        raise StructureError(
            "malformed structure arrays: a number is out of range (beyond +-1.8e308)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise StructureError(f"malformed structure arrays: {excerpt(str(exc), 120)}") from exc
    symbols = [str(s) for s in species]
    if len(symbols) != len(frac):
        raise StructureError(f"structure has {len(symbols)} species but {len(frac)} positions")
    if not (np.isfinite(lat).all() and np.isfinite(frac).all()):  # before np.mod warns of an infinity
        raise StructureError(NON_FINITE)
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
    from csp.structures.symmetry import quiet_spglib

    cell = (np.asarray(lattice, dtype=float), np.asarray(frac_coords, dtype=float), [int(z) for z in numbers])
    with quiet_spglib(), warnings.catch_warnings():  # spglib's C lines (spglib: ...) never reach the terminal
        warnings.simplefilter("ignore")
        try:
            symbol = spglib.get_spacegroup(cell, symprec=symprec, angle_tolerance=ANGLE_TOLERANCE_DEG)
        except (RuntimeError, ValueError, TypeError, spglib.SpglibError):
            symbol = None
    return int(symbol.rsplit("(", 1)[1].rstrip(")")) if symbol else None


def check_cell(cell: Cell) -> None:
    """Refuse a cell whose numbers describe no crystal, before anything is computed from them.

    Raises:
        StructureError: for no sites, an unknown element or one past
            :data:`storage.validation.HEAVIEST_MEASURED_Z`, a lattice or coordinate that is NaN or infinite, a
            cell vector longer than :data:`MAX_CELL_LENGTH_ANGSTROM`, or a singular lattice (zero volume).
    """
    if not cell.species:
        raise StructureError("structure has no sites")
    unknown = sorted({s for s in cell.species if s not in SYMBOL_TO_Z})
    if unknown:
        raise StructureError(f"unknown element {unknown[0]!r}")
    heavy = unmeasured_element_problem(cell.species)
    if heavy:
        raise StructureError(heavy)
    if not (np.isfinite(cell.lattice).all() and np.isfinite(cell.frac_coords).all()):
        raise StructureError(NON_FINITE)
    with np.errstate(all="ignore"):  # a length of 1e200 overflows; the result is checked right here
        lengths = np.hypot(np.hypot(cell.lattice[:, 0], cell.lattice[:, 1]), cell.lattice[:, 2])
        volume = float(abs(np.linalg.det(cell.lattice)))
    longest = int(np.argmax(lengths))
    if not lengths[longest] <= MAX_CELL_LENGTH_ANGSTROM:
        raise StructureError(_long_cell(f"cell vector {'abc'[longest]}", float(lengths[longest])))
    if not volume > 1e-6:
        raise StructureError("lattice is singular (zero volume)")


def structure_fields(
    cell: Cell, *, symprec: float = SYMPREC_ANGSTROM, pair_floor: bool = True, units_check: bool = False
) -> dict[str, Any]:
    """The composition, geometry and symmetry columns of a ``structures`` row.

    ``pair_floor`` and ``units_check`` are :func:`storage.validation.check_geometry`'s (``pair_floor`` False only
    for generated label structures; ``units_check`` True only for the files a user hands us).

    Raises:
        StructureError: for an empty cell, non-finite numbers, a singular lattice, an unknown element or
            a geometry :func:`storage.validation.check_geometry` refuses (overlapping atoms, absurd
            volume per atom, vacuum, isolated atoms).
    """
    check_cell(cell)
    volume = float(abs(np.linalg.det(cell.lattice)))
    check_geometry(
        cell.lattice, cell.species, cell.frac_coords, pair_floor=pair_floor, units_check=units_check
    )
    numbers = [SYMBOL_TO_Z[s] for s in cell.species]
    spacegroup = spacegroup_number(cell.lattice, cell.frac_coords, numbers, symprec=symprec)
    counts = Counter(cell.species)
    elements = sorted(counts)
    return {
        "reduced_formula": reduced_formula_of(Composition(dict(counts))),
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
    return reduced_formula_of(comp), sorted(el.symbol for el in comp), natoms


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
        pair_floor: apply :func:`storage.validation.pair_floor_problem` (every file and database; False only
            for the project's own generated label structures).
        units_check: apply :func:`storage.validation.stretched_cell_problem` (a cell in Bohr): True for the files
            a user hands us (:mod:`storage.readers.user_formats`), False for the mirror's databases.
    """

    file: str
    index: int
    source_id: str
    row: dict[str, Any]
    cif: str | None = None
    cell: Cell | None = None
    raw: str = field(default="", repr=False)
    declared_formula: str = ""
    pair_floor: bool = True
    units_check: bool = False


#: the core CIF formula tags (``_chemical_formula_<kind>``), in the order the first one declared is compared with
#: the sites: the sum, the moiety, then the structural, IUPAC and analytical formulas
FORMULA_KINDS = ("sum", "moiety", "structural", "iupac", "analytical")


def declared_cif_formula(text: str) -> str:
    """The formula the CIF's structure block declares for its sites, read by the CIF tokenizer (on the next line,
    in a text field, before a comment), or ``""``: ``_chemical_formula_sum``; without it, the
    ``_chemical_formula_moiety`` summed over its parts (:func:`moiety_sum`), else the first of the
    ``_chemical_formula_structural`` (``Mg(OH)2``), ``_chemical_formula_iupac`` (``[Co (N H3)6] Cl3``) and
    ``_chemical_formula_analytical`` formulas that pymatgen reads (:data:`FORMULA_KINDS`). A file declaring
    ``H2 O`` only as its moiety, IUPAC or analytical formula with one O site is missing its H atoms, like one
    declaring it as its sum."""
    try:
        block = structure_block(text)
    except StructureError:
        return ""
    found = _formula_tag(block.tags, "sum")
    if found:
        return found
    moiety = _formula_tag(block.tags, "moiety")
    summed = moiety_sum(moiety) if moiety else None
    if summed:
        return summed
    for kind in FORMULA_KINDS[2:]:
        written = _formula_tag(block.tags, kind)
        if written and not moiety and _readable_formula(written):
            return written
    return ""


def _formula_tag(tags: dict[str, Any], kind: str) -> str:
    """The value of ``_chemical_formula_<kind>`` (or its CIF2 spelling), stripped, or ``""``."""
    for tag in (f"_chemical_formula_{kind}", f"_chemical_formula.{kind}"):
        value = tags.get(tag)
        if isinstance(value, str) and value.strip() not in ("", "?", "."):
            return value.strip()
    return ""


def _readable_formula(text: str) -> bool:
    from pymatgen.core import Composition as _Composition

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _Composition(text).num_atoms > 0
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


_MOIETY_PART = re.compile(r"^(\d+(?:\.\d+)?)?\s*\((.*)\)$")
_MOIETY_ATOM = re.compile(r"^([A-Z][a-z]?)(\d+(?:\.\d+)?)?$")
_MOIETY_CHARGE = re.compile(r"^\d*[+-]$")


def moiety_sum(text: str) -> str | None:
    """A CIF moiety formula (``'2(C6 H6), H2 O'``: parts separated by commas, each with an optional multiplier
    before its parentheses, charges such as ``2+`` or ``-`` as their own tokens) as one sum formula
    (``C12 H14 O``), or None when a token is none of those (the formula is then compared by its elements only,
    :func:`declared_formula_elements`)."""
    counts: dict[str, float] = {}
    for part in text.strip().strip("'\"").split(","):
        part = part.strip()
        match = _MOIETY_PART.match(part)
        times, inner = (float(match.group(1) or 1), match.group(2)) if match else (1.0, part)
        tokens = inner.split()
        if not tokens:
            return None
        for token in tokens:
            if _MOIETY_CHARGE.match(token):
                continue
            atom = _MOIETY_ATOM.match(re.sub(r"\d*[+-]$", "", token) if token[-1] in "+-" else token)
            if not atom or atom.group(1) not in SYMBOL_TO_Z:
                return None
            counts[atom.group(1)] = counts.get(atom.group(1), 0.0) + times * float(atom.group(2) or 1)
    return " ".join(f"{el}{n:g}" for el, n in counts.items()) if counts else None


def declared_formula_elements(tags: dict[str, Any]) -> tuple[str, set[str]] | None:
    """``(tag, elements)`` of the first formula the block declares (:data:`FORMULA_KINDS`: sum, moiety, structural,
    IUPAC, analytical): every element symbol written in it (``Mg(OH)2``: Mg, O, H), or None when it declares
    none."""
    for kind in FORMULA_KINDS:
        text = _formula_tag(tags, kind)
        if text:
            found = {s for s in re.findall(r"[A-Z][a-z]?", text) if s in SYMBOL_TO_Z}
            return f"_chemical_formula_{kind}", found
    return None


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
        fields = structure_fields(cell, pair_floor=item.pair_floor, units_check=item.units_check)
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
    """The ``_chemical_formula_structural`` (else ``_chemical_formula_sum``) of the CIF's structure block, or
    ``""``."""
    try:
        block = structure_block(text)
    except StructureError:
        return ""
    for tag in ("_chemical_formula_structural", "_chemical_formula_sum"):
        value = (block.scalar(tag) or "").strip()
        if value:
            return value
    return ""


def finish_all(items: Iterable[PendingStructure | Rejection], *, workers: int = 1) -> Iterator[Item]:
    """Finish pending structures in input order, in ``workers`` processes when ``workers`` > 1.

    No library warning reaches the user's terminal: pymatgen's (``No Pauling electronegativity for He``, a CIF
    parser's notes) are swallowed while a reader makes its pending structures and while each is finished; a
    refusal is said in the item's reason, never on stderr."""
    pending = _quietly(items)
    if workers <= 1:
        for item in pending:
            yield _finish_quietly(item)
        return
    yield from _pooled_in_order(_finish_quietly, pending, workers)


def _quietly(items: Iterable[Any]) -> Iterator[Any]:
    """``items``, each one made with warnings ignored (a step at a time: the filter is not held across yields)."""
    iterator = iter(items)
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def _finish_quietly(item: PendingStructure | Rejection) -> Item:
    """:func:`finish_structure` with warnings ignored (module-level, so a worker process can run it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return finish_structure(item)


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
    yield from _pooled_in_order(parse, cifs, workers)


def _pooled_in_order(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """``map(fn, items)`` in ``workers`` forked processes, in order, a bounded batch at a time.

    The pool never holds a task beyond the batch being yielded: a consumer that stops early (``islice``, an
    error) closes the pool with no task in flight. ``Pool.imap`` fed straight from ``items`` could hang
    there: its feeder thread blocked on a task the terminated workers never took, and the pool's exit
    waited on it forever.
    """
    batch_size = workers * 64 * 4
    iterator = iter(items)
    from csp.pool_workers import ignore_sigint  # Ctrl-C: the parent alone handles it and terminates the pool

    with multiprocessing.get_context("fork").Pool(workers, initializer=ignore_sigint) as pool:
        while batch := list(itertools.islice(iterator, batch_size)):
            yield from pool.map(fn, batch, chunksize=64)
