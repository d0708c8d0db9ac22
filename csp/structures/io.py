"""Structure files for people: symmetrised CIF, POSCAR, extxyz, pymatgen JSON, ComputedStructureEntry JSON.

All writers take pymatgen ``Structure`` objects (``storage.query.to_structures`` makes them from lake rows)
and write one file per structure into a folder; :func:`read_structure` reads any of them back, so every
export round-trips: same composition and the same space group at :data:`csp.structures.matching.SYMPREC` (0.1 A).

Energies in ``ComputedStructureEntry`` files are *predicted formation enthalpies* (eV/atom x number of
atoms = eV per cell) from this project's models, not DFT total energies; ``entry.data`` says so in
``energy_kind`` and names the model in ``model_ids``. Do not mix them with Materials Project energies in a
phase diagram without that in mind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csp.errors import InputError
from csp.structures.composition import reduced_formula
from csp.structures.matching import SYMPREC

if TYPE_CHECKING:
    from pymatgen.core import Structure
    from pymatgen.entries.computed_entries import ComputedStructureEntry

#: format name -> file suffix
FORMATS: dict[str, str] = {
    "cif": ".cif",
    "poscar": ".vasp",
    "extxyz": ".extxyz",
    "json": ".json",
    "entry": ".entry.json",
}
ENERGY_KIND = (
    "predicted formation enthalpy (eV/atom from the ALIGNN model) x number of atoms; not a DFT total energy"
)
#: structure properties copied into ``entry.data`` (the result's refined columns among them)
ENTRY_KEYS = (
    "id",
    "campaign_id",
    "p_syn",
    "fitness",
    "spacegroup",
    "family_spacegroup",
    "rank",
    "rank_rule",
    "energy_potential_ev_per_atom",
    "dhf_potential_ev_per_atom",
    "delta_e_mev_per_atom",
    "converged",
    "relax_steps",
    "potential",
)
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """A file-name stem from an id (letters, digits, ``_ . -``)."""
    return _SAFE.sub("_", str(text)).strip("._") or "structure"


def computed_entry(structure: Structure, *, dhf_ev_per_atom: float | None = None) -> ComputedStructureEntry:
    """A ``ComputedStructureEntry`` whose energy is the predicted formation enthalpy x natoms (eV).

    Args:
        structure: the structure; ``structure.properties`` may carry ``dhf_pred_ev_per_atom``,
            ``model_ids``, ``p_syn``, ``fitness``, ``id``, ``campaign_id``.
        dhf_ev_per_atom: overrides the predicted formation enthalpy in eV/atom.

    Raises:
        InputError: no predicted enthalpy (an unscored candidate).
    """
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    props = dict(structure.properties or {})
    dhf = dhf_ev_per_atom if dhf_ev_per_atom is not None else props.get("dhf_pred_ev_per_atom")
    if dhf is None:
        raise InputError("The structure has no predicted formation enthalpy; export scored candidates only.")
    data = {
        "energy_kind": ENERGY_KIND,
        "dhf_pred_ev_per_atom": float(dhf),
        "model_ids": list(props.get("model_ids") or []),
        **{k: props[k] for k in ENTRY_KEYS if k in props},
    }
    entry_id = str(props.get("id")) if props.get("id") is not None else None
    return ComputedStructureEntry(
        structure.copy(properties={}), float(dhf) * len(structure), data=data, entry_id=entry_id
    )


def poscar_comment(structure: Structure, symprec: float = SYMPREC) -> str:
    """The POSCAR's first line: id (or formula) and the space group detected at ``symprec``, e.g.
    ``rank1 GaAs spacegroup 216 F-43m``."""
    from csp.structures.symmetry import analyze

    props = structure.properties or {}
    analyzer = analyze(structure, symprec)
    name = str(props.get("id") or "")
    formula = reduced_formula(structure.composition)
    head = f"{name} {formula}" if name and name != formula else formula
    return f"{head} spacegroup {analyzer.get_space_group_number()} {analyzer.get_space_group_symbol()}"


def write_structure(structure: Structure, path: Path | str, fmt: str, *, symprec: float = SYMPREC) -> Path:
    """Write one structure in ``fmt`` (``cif``, ``poscar``, ``extxyz``, ``json``, ``entry``); returns the path.

    ``cif`` is symmetrised at ``symprec`` (Angstrom): the file states the space group and only the
    asymmetric unit. The POSCAR comment names the space group detected at ``symprec``
    (:func:`poscar_comment`); extxyz ``info`` and JSON ``properties`` carry the structure's scalar
    properties (``spacegroup``: the detected group, when it came from the lake or a campaign result).
    ``extxyz`` needs ASE (the augment extra).

    Raises:
        InputError: unknown format, or ``entry`` for a structure without a predicted enthalpy;
            :class:`csp.structures.symmetry.SymmetryError` (one) for a ``cif`` spglib cannot symmetrise.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "cif":
        from csp.structures.symmetry import write_symmetrised_cif

        write_symmetrised_cif(structure, path, symprec)
    elif fmt == "poscar":
        from pymatgen.io.vasp import Poscar

        Poscar(structure, comment=poscar_comment(structure, symprec)).write_file(path)
    elif fmt == "extxyz":
        _write_extxyz(structure, path)
    elif fmt == "json":
        path.write_text(json.dumps(structure.as_dict(), default=_json_default))
    elif fmt == "entry":
        path.write_text(json.dumps(computed_entry(structure).as_dict(), default=_json_default))
    else:
        raise InputError(f"Unknown export format {fmt!r}; choose from {', '.join([*FORMATS, 'parquet'])}.")
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write_extxyz(structure: Structure, path: Path) -> None:
    try:
        from ase.io import write
        from pymatgen.io.ase import AseAtomsAdaptor
    except ImportError as exc:  # pragma: no cover - ase ships with the augment extra
        raise InputError("extxyz needs ASE: pip install 'alignn-csp[augment]'.") from exc
    atoms = AseAtomsAdaptor.get_atoms(structure.copy(properties={}))
    for key, value in (structure.properties or {}).items():
        if isinstance(value, bool | int | float | str):
            atoms.info[key] = value
    write(path, atoms, format="extxyz")


@contextmanager
def staged_folder(folder: Path | str) -> Iterator[Path]:
    """A hidden folder to write an export into, published at ``folder`` only when the block ends without an
    error: an export that fails half-way (a full disk, a structure spglib cannot symmetrise, Ctrl-C) leaves
    nothing behind, and ``folder`` stays as it was.

    A new ``folder`` is written as the sibling ``.<name>.partial-<hex>`` and renamed into place; an existing
    one gets ``.partial-<hex>`` inside it, whose files are then published by :func:`_publish`: every target
    checked first (a folder in the way refuses the export before any file is published), then each file
    renamed into place (atomic, same file system), with the files it replaces kept aside until all are in,
    so that a failure half-way puts every earlier file back. An ``OSError`` names the file at its final path.
    """
    import os
    import shutil
    import uuid

    folder = Path(folder)
    token = uuid.uuid4().hex[:12]
    existed = folder.is_dir()
    stage = folder / f".partial-{token}" if existed else folder.parent / f".{folder.name}.partial-{token}"
    stage.parent.mkdir(parents=True, exist_ok=True)
    stage.mkdir()
    try:
        yield stage
        if existed or folder.exists():
            folder.mkdir(exist_ok=True)
            _publish(stage, folder)
        else:
            stage.rename(folder)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        for attribute in ("filename", "filename2"):
            name = getattr(exc, attribute)
            if name and stage in Path(os.fsdecode(name)).parents:
                setattr(exc, attribute, str(folder / Path(os.fsdecode(name)).relative_to(stage)))
        raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _publish(stage: Path, folder: Path) -> None:
    """Move every file of ``stage`` into ``folder``, all or none of them.

    Raises:
        IsADirectoryError: a folder of an exported file's name is in ``folder`` (named at its path); nothing
            was published.
        OSError: a rename failed; the files published before it were taken back and the ones they replaced
            restored.
    """
    import errno
    import os
    import shutil

    items = sorted(stage.iterdir())
    for item in items:
        target = folder / item.name
        if target.is_dir() and not target.is_symlink():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    kept = stage / ".replaced"
    done: list[tuple[Path, Path, Path | None]] = []  # (staged file, target, the file it replaced)
    try:
        for item in items:
            target = folder / item.name
            previous = None
            if target.exists() or target.is_symlink():
                kept.mkdir(exist_ok=True)
                previous = kept / item.name
                target.replace(previous)
            done.append((item, target, previous))
            item.replace(target)
    except OSError:
        for item, target, previous in reversed(done):
            if not item.exists() and target.exists():
                target.replace(item)
            if previous is not None and previous.exists():
                previous.replace(target)
        raise
    shutil.rmtree(kept, ignore_errors=True)
    stage.rmdir()


def write_structures(
    structures: Sequence[Structure],
    folder: Path | str,
    fmt: str,
    *,
    names: Sequence[str] | None = None,
    symprec: float = SYMPREC,
) -> list[Path]:
    """Write every structure to ``folder/<name><suffix>``; names default to each structure's ``id``.

    All or nothing (:func:`staged_folder`): the files appear in ``folder`` only once every one is written;
    an error on any of them leaves no file of this export.

    Returns:
        The paths written, in the order of ``structures``.

    Raises:
        InputError: unknown format or no structures; or the error of :func:`write_structure` on a
            structure (nothing written then).
        OSError: the disk refused a write, or a folder of an exported file's name is in the way (the file
            named at its final path; nothing written or published).
    """
    if fmt not in FORMATS:
        raise InputError(f"Unknown export format {fmt!r}; choose from {', '.join([*FORMATS, 'parquet'])}.")
    if not structures:
        raise InputError("No structures to export: the query matched nothing.")
    folder = Path(folder)
    files = []
    for i, structure in enumerate(structures):
        stem = names[i] if names is not None else (structure.properties or {}).get("id") or f"structure-{i}"
        files.append(f"{safe_name(stem)}{FORMATS[fmt]}")
    with staged_folder(folder) as stage:
        for name, structure in zip(files, structures, strict=True):
            try:
                write_structure(structure, stage / name, fmt, symprec=symprec)
            except OSError as exc:  # a writer that does not say which file: the one being written
                if not exc.filename:
                    exc.filename = str(stage / name)
                raise
    return [folder / name for name in files]


def read_structure(path: Path | str) -> Structure:
    """Read back any file :func:`write_structure` writes (the format comes from the suffix).

    Raises:
        InputError: a suffix this module does not write.
    """
    path = Path(path)
    name = path.name
    if name.endswith(".entry.json"):
        from pymatgen.entries.computed_entries import ComputedStructureEntry

        return ComputedStructureEntry.from_dict(json.loads(path.read_text())).structure
    if name.endswith(".json"):
        from pymatgen.core import Structure

        return Structure.from_dict(json.loads(path.read_text()))
    if name.endswith(".extxyz"):
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(read(path, format="extxyz"))
    if name.endswith(".cif"):
        from pymatgen.io.cif import CifParser

        return CifParser(path).parse_structures(primitive=False)[0]
    if name.endswith(".vasp"):
        from pymatgen.io.vasp import Poscar

        return Poscar.from_file(path).structure
    raise InputError(f"Cannot read {path.name}: expected one of {', '.join(FORMATS.values())}.")
