"""Formats a user brings: a folder of CIF/POSCAR files with ``id_prop.csv``, and OPTIMADE responses."""

from __future__ import annotations

import json
import os
import warnings
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
)
from storage.readers._rows import read_text, structure_scalars
from storage.readers._structure import (
    Cell,
    PendingStructure,
    StructureError,
    cell_from_arrays,
    finish_all,
)
from storage.validation import full_occupancy

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
    root = folder.resolve()
    for suffix in _SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            if not candidate.resolve().is_relative_to(root):
                return f"file name {name!r} is a link to a file outside the folder; copy the file into the folder"
            return candidate
    return f"no structure file named {name!r} (tried suffixes {list(_SUFFIXES[1:])})"


def cell_from_poscar(text: str) -> Cell:
    """Read a VASP POSCAR/CONTCAR text (element names required).

    Raises:
        StructureError: if pymatgen cannot read it, the file names no species (pymatgen would invent
            H, He, ... placeholders), a site is not a known element, or the file lists more coordinate
            lines than its element counts add up to (pymatgen would drop the extra sites).
    """
    from pymatgen.io.vasp import Poscar

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structure = Poscar.from_str(text).structure
        except Exception as exc:  # pymatgen raises its own StructureError, MemoryError, warnings as errors
            detail = " ".join(str(exc).split()) or "the element counts ask for more atoms than memory holds"
            raise StructureError(f"malformed POSCAR: {type(exc).__name__}: {detail}") from exc
    if any("cannot be determined" in str(w.message) for w in caught):
        # pymatgen then names the species H, He, Li, ... in order: never store placeholders
        raise StructureError(
            "POSCAR names no species (no element line after the scale and lattice, and none pymatgen can "
            "read from the comment line); add the VASP 5 element line"
        )
    species = [site.specie.symbol for site in structure]
    isotopes = sorted(ISOTOPES.keys() & set(_element_line(text)))
    if isotopes:
        raise StructureError(
            f"POSCAR element line names the isotope(s) {isotopes} ({', '.join(ISOTOPES[i] for i in isotopes)}); "
            "the lake stores elements only: write H"
        )
    rows = _coordinate_lines(text)
    if rows is not None and rows > len(species):
        raise StructureError(
            f"POSCAR lists {rows} coordinate lines but its element counts add up to {len(species)} atoms "
            "(fix the counts line; the extra sites would be dropped)"
        )
    return cell_from_arrays(structure.lattice.matrix, species, structure.frac_coords)


#: hydrogen's isotopes that pymatgen reads as H without a word: refused, never stored as H silently
ISOTOPES = {"D": "deuterium", "T": "tritium"}


def _isotope_mass(symbols: list[str], mass: object) -> bool:
    """Whether an OPTIMADE species' ``mass`` (u, one per chemical symbol) departs from its element's standard
    atomic weight by more than 0.5 u: an isotope (deuterium is 2.014 u, H 1.008 u)."""
    from pymatgen.core import Element

    if not isinstance(mass, list) or len(mass) != len(symbols):
        return False
    try:
        return any(
            abs(float(m) - float(Element(sym).atomic_mass)) > 0.5
            for sym, m in zip(symbols, mass, strict=True)
        )
    except (ValueError, TypeError, KeyError):
        return False


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


def _coordinate_lines(text: str) -> int | None:
    """Consecutive lines of three numbers after a POSCAR's coordinate-mode line (None: layout not found)."""
    lines = text.splitlines()
    i = 5  # comment, scale, three lattice rows
    if i < len(lines) and not _numbers(lines[i].split()):
        i += 1  # the element line
    i += 1  # the counts line
    if i < len(lines) and lines[i].strip()[:1] in ("s", "S"):
        i += 1  # selective dynamics
    if i >= len(lines) or lines[i].strip()[:1].lower() not in ("d", "c", "k"):
        return None
    rows = 0
    for line in lines[i + 1 :]:
        parts = line.split()
        if len(parts) < 3 or not _numbers(parts[:3]):
            break
        rows += 1
    return rows


def _pending_id_prop(
    folder: Path, source: str, license: str, energy_kind: str
) -> Iterator[PendingStructure | Rejection]:
    table = folder / "id_prop.csv"
    seen = DuplicateGuard()
    for item in iter_csv(table, ("id", "value"), header=False, columns=["id", "value"]):
        if isinstance(item, Rejection):
            yield item
            continue
        name = item.fields["id"].strip()
        sid = Path(name).stem if Path(name).suffix.lower() in (".cif", ".vasp", ".poscar") else name
        dhf, reason = check_energy(item.fields["value"])
        if dhf is None and reason is None:
            reason = "value is missing"
        found = None if reason else _find_structure_file(folder, name)  # a name leaving the folder: refused
        if isinstance(found, str):
            reason, found = found, None
        reason = reason or seen.check(sid, item.index)
        cell: Cell | None = None
        text = ""
        if not reason and found is not None:
            try:
                text = decode_text(found.read_bytes())
                if found.suffix.lower() != ".cif":
                    cell = cell_from_poscar(text)
            except (UnicodeDecodeError, StructureError) as exc:
                reason = f"{found.name}: {exc}"
        if reason:
            yield Rejection(table.name, item.index, sid or None, reason, excerpt(item.raw))
            continue
        row = structure_scalars(
            source=source,
            source_id=sid,
            license=license,
            raw_formula="",
            dhf=dhf,
            energy_kind=energy_kind,
            extra={"file": found.name if found else None},
        )
        yield PendingStructure(
            table.name, item.index, sid, row, cif=None if cell else text, cell=cell, raw=item.raw
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
    yield from finish_all(_pending_id_prop(folder, source, license, energy_kind), workers=workers)


def cell_from_optimade(attributes: dict[str, Any]) -> Cell:
    """Build a cell from OPTIMADE structure attributes (Cartesian positions in Angstrom).

    Raises:
        StructureError: on missing attributes, a disordered or vacancy species, ``assemblies`` (sites that
            are alternatives of one another), bad shapes, an ``nsites`` that disagrees with the sites, or
            an entry periodic in fewer than 3 dimensions (``nperiodic_dimensions``/``dimension_types``).
    """
    if attributes.get("assemblies"):
        raise StructureError(
            "OPTIMADE entry has assemblies (alternative groups of sites: partial occupancy); disordered "
            "structures are not supported"
        )
    periodic = attributes.get("nperiodic_dimensions")
    if periodic is None and attributes.get("dimension_types") is not None:
        periodic = sum(1 for d in attributes["dimension_types"] if d)
    if periodic is not None and periodic != 3:
        raise StructureError(
            f"OPTIMADE entry is periodic in {periodic} dimension(s) (nperiodic_dimensions); only 3-D "
            "crystals can be stored"
        )
    try:
        lattice = np.asarray(attributes["lattice_vectors"], dtype=float).reshape(3, 3)
        cart = np.asarray(attributes["cartesian_site_positions"], dtype=float).reshape(-1, 3)
        names = list(attributes["species_at_sites"])
    except KeyError as exc:
        raise StructureError(f"OPTIMADE entry lacks attribute {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise StructureError(f"malformed OPTIMADE arrays: {exc}") from exc
    symbol_of: dict[str, str] = {}
    for spec in attributes.get("species") or []:
        symbols = list(spec.get("chemical_symbols") or [])
        if spec.get("attached"):
            raise StructureError(
                f"OPTIMADE species {spec.get('name')!r} carries attached atoms {spec.get('attached')} that "
                "have no positions; the lake stores every atom at its site (list them as sites)"
            )
        if str(spec.get("name")) in ISOTOPES or _isotope_mass(symbols, spec.get("mass")):
            raise StructureError(
                f"OPTIMADE species {spec.get('name')!r} is an isotope or gives its own mass; the lake stores "
                "elements only (name it by its element and leave out the mass)"
            )
        concentration = list(spec.get("concentration") or [1.0])
        if len(symbols) != 1 or not full_occupancy(float(concentration[0])) or symbols[0] == "vacancy":
            symbol_of[str(spec.get("name"))] = ""
        else:
            symbol_of[str(spec.get("name"))] = symbols[0]
    species = [symbol_of.get(name, name) for name in names]
    if any(not s for s in species):
        raise StructureError("disordered site occupancies are not supported")
    declared_sites = attributes.get("nsites")
    if isinstance(declared_sites, int) and declared_sites != len(species):
        raise StructureError(
            f"OPTIMADE entry declares nsites = {declared_sites} but lists {len(species)} sites"
        )
    try:
        frac = np.linalg.solve(lattice.T, cart.T).T
    except np.linalg.LinAlgError as exc:
        raise StructureError("lattice is singular (zero volume)") from exc
    return cell_from_arrays(lattice, species, frac)


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
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, a 4,300-digit integer, nesting too deep
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
        sid = str(entry.get("id") or "").strip()
        attrs = entry.get("attributes") or {}
        dhf, reason = (
            (None, None)
            if energy_field is None
            else check_energy(attrs.get(energy_field), f"formation energy ({energy_field})")
        )
        reason = ("entry has no id" if not sid else None) or reason or seen.check(sid, index)
        cell = None
        if not reason:
            try:
                cell = cell_from_optimade(attrs)
            except StructureError as exc:
                reason = str(exc)
        if reason or cell is None:
            yield Rejection(file, index, sid or None, reason or "unreadable entry", raw)
            continue
        formula = attrs.get("chemical_formula_reduced") or attrs.get("chemical_formula_descriptive") or ""
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
            file,
            index,
            sid,
            row,
            cell=cell,
            raw=raw,
            declared_formula=str(attrs.get("chemical_formula_reduced") or ""),
        )


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
