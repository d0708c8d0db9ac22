"""The training-array format (``.npz``) that the lake exports and training reads (numpy only).

Arrays (S structures, A = sum of their atoms):

* ``natoms`` (S,) int32, ``lattice`` (S, 3, 3) float32 (row vectors, Angstrom),
* ``numbers`` (A,) int16, ``frac_coords`` (A, 3) float32,
* ``target`` (S,) float32: eV/atom for regression, 0/1 for PU labels (1 = positive),
* ``split`` (S,) int8: 0 train, 1 validation, 2 test,
* ``source`` (S,) int16 indexing ``source_names`` (array of str), ``ids`` (S,) str.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csp.errors import InputError
from csp.structures.crystal import Crystal

TRAIN, VALIDATION, TEST = 0, 1, 2

__all__ = [
    "TEST",
    "TRAIN",
    "VALIDATION",
    "CrystalArrays",
    "from_crystals",
    "load_arrays",
    "save_arrays",
    "to_crystals",
]


@dataclass(frozen=True)
class CrystalArrays:
    """Structures, targets and metadata as flat arrays (see the module docstring)."""

    natoms: np.ndarray
    lattice: np.ndarray
    numbers: np.ndarray
    frac_coords: np.ndarray
    target: np.ndarray
    split: np.ndarray
    source: np.ndarray
    source_names: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        _validate(self)

    def __len__(self) -> int:
        return len(self.natoms)

    @property
    def offsets(self) -> np.ndarray:
        """(S + 1,) start of each structure's atoms in ``numbers`` / ``frac_coords``."""
        return np.concatenate([[0], np.cumsum(self.natoms, dtype=np.int64)])

    def subset(self, index: np.ndarray) -> CrystalArrays:
        """The structures at ``index`` (integer indices or a boolean mask), in that order."""
        index = np.arange(len(self))[index]
        off = self.offsets
        atoms = np.concatenate([np.arange(off[i], off[i + 1]) for i in index]) if len(index) else []
        atoms = np.asarray(atoms, dtype=np.int64)
        return CrystalArrays(
            natoms=self.natoms[index],
            lattice=self.lattice[index],
            numbers=self.numbers[atoms],
            frac_coords=self.frac_coords[atoms],
            target=self.target[index],
            split=self.split[index],
            source=self.source[index],
            source_names=self.source_names,
            ids=self.ids[index],
        )

    def element_rows(self) -> dict[int, int]:
        """``{atomic number: structures containing it}`` (a structure counts once per element)."""
        structure = np.repeat(np.arange(len(self), dtype=np.int64), self.natoms)
        pairs = np.unique(structure * 256 + np.asarray(self.numbers, dtype=np.int64))
        z, counts = np.unique(pairs % 256, return_counts=True)
        return {int(a): int(n) for a, n in zip(z, counts, strict=True)}

    def save(self, path: Path) -> Path:
        """Write these arrays with :func:`save_arrays`."""
        return save_arrays(path, **{name: getattr(self, name) for name in self.__dataclass_fields__})

    def content_hash(self) -> str:
        """sha256 over the structure and target arrays (training-data lineage)."""
        digest = hashlib.sha256()
        for name in ("natoms", "lattice", "numbers", "frac_coords", "target", "split", "source"):
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        digest.update("\n".join(map(str, self.ids)).encode())
        return digest.hexdigest()


def _validate(a: CrystalArrays) -> None:
    S = len(a.natoms)
    for name in ("lattice", "target", "split", "source", "ids"):
        if len(getattr(a, name)) != S:
            raise InputError(f"Array '{name}' has {len(getattr(a, name))} rows but natoms has {S}.")
    if a.lattice.shape[1:] != (3, 3):
        raise InputError(f"Array 'lattice' must have shape (S, 3, 3), got {a.lattice.shape}.")
    if S and a.natoms.min() < 1:
        raise InputError("Every structure needs at least one atom (natoms >= 1).")
    total = int(a.natoms.sum())
    if len(a.numbers) != total or a.frac_coords.shape != (total, 3):
        raise InputError(
            f"natoms sums to {total} but numbers has {len(a.numbers)} rows and frac_coords "
            f"{a.frac_coords.shape}."
        )
    for name in ("lattice", "frac_coords", "target"):
        if not np.isfinite(getattr(a, name)).all():
            raise InputError(f"Array '{name}' contains NaN or infinity.")
    if total and (a.numbers.min() < 1 or a.numbers.max() > 118):
        raise InputError("Array 'numbers' must hold atomic numbers in 1..118.")
    if S and not np.isin(a.split, (TRAIN, VALIDATION, TEST)).all():
        raise InputError("Array 'split' may only hold 0 (train), 1 (validation) or 2 (test).")
    if S and (a.source.min() < 0 or a.source.max() >= len(a.source_names)):
        raise InputError("Array 'source' indexes past 'source_names'.")


def save_arrays(
    path: Path,
    *,
    natoms: np.ndarray,
    lattice: np.ndarray,
    numbers: np.ndarray,
    frac_coords: np.ndarray,
    target: np.ndarray,
    split: np.ndarray,
    source: np.ndarray,
    source_names: Sequence[str],
    ids: Sequence[str],
    compress: bool = False,
) -> Path:
    """Validate and write the arrays to ``path`` (an ``.npz``, zip-compressed with ``compress``).

    Returns:
        The path written.
    """
    arrays = CrystalArrays(
        natoms=np.asarray(natoms, dtype=np.int32),
        lattice=np.asarray(lattice, dtype=np.float32).reshape(-1, 3, 3),
        numbers=np.asarray(numbers, dtype=np.int16),
        frac_coords=np.asarray(frac_coords, dtype=np.float32).reshape(-1, 3),
        target=np.asarray(target, dtype=np.float32),
        split=np.asarray(split, dtype=np.int8),
        source=np.asarray(source, dtype=np.int16),
        source_names=np.asarray(list(source_names), dtype=str),
        ids=np.asarray(list(ids), dtype=str),
    )
    path = Path(path)
    with path.open("wb") as fh:
        save = np.savez_compressed if compress else np.savez
        save(fh, **{name: getattr(arrays, name) for name in arrays.__dataclass_fields__})
    return path


def load_arrays(path: Path) -> CrystalArrays:
    """Read and validate an ``.npz`` written by :func:`save_arrays` (or the lake's exporter)."""
    with np.load(Path(path), allow_pickle=False) as data:
        missing = sorted(set(CrystalArrays.__dataclass_fields__) - set(data.files))
        if missing:
            raise InputError(f"{path} lacks the arrays {missing}; re-export it with save_arrays.")
        return CrystalArrays(
            natoms=data["natoms"].astype(np.int32),
            lattice=data["lattice"].astype(np.float32),
            numbers=data["numbers"].astype(np.int16),
            frac_coords=data["frac_coords"].astype(np.float32),
            target=data["target"].astype(np.float32),
            split=data["split"].astype(np.int8),
            source=data["source"].astype(np.int16),
            source_names=data["source_names"].astype(str),
            ids=data["ids"].astype(str),
        )


def to_crystals(arrays: CrystalArrays) -> list[Crystal]:
    """One :class:`Crystal` per structure."""
    off = arrays.offsets
    return [
        Crystal(
            arrays.lattice[i], arrays.numbers[off[i] : off[i + 1]], arrays.frac_coords[off[i] : off[i + 1]]
        )
        for i in range(len(arrays))
    ]


def from_crystals(
    crystals: Sequence[Crystal],
    target: Sequence[float],
    *,
    split: Sequence[int] | None = None,
    source: Sequence[str] | str = "unknown",
    ids: Sequence[str] | None = None,
) -> CrystalArrays:
    """Pack crystals and targets into :class:`CrystalArrays`.

    Args:
        crystals: the structures.
        target: one value per structure (eV/atom, or 0/1 PU labels).
        split: one of 0/1/2 per structure; all training (0) if omitted.
        source: one source name per structure, or one name for all.
        ids: one identifier per structure; "0", "1", ... if omitted.
    """
    S = len(crystals)
    names = [source] * S if isinstance(source, str) else list(source)
    source_names = sorted(set(names))
    lookup = {name: i for i, name in enumerate(source_names)}
    return CrystalArrays(
        natoms=np.array([c.num_sites for c in crystals], dtype=np.int32),
        lattice=np.array([c.lattice for c in crystals], dtype=np.float32).reshape(S, 3, 3),
        numbers=np.concatenate([c.numbers for c in crystals]).astype(np.int16),
        frac_coords=np.concatenate([c.frac_coords for c in crystals]).astype(np.float32),
        target=np.asarray(target, dtype=np.float32),
        split=np.zeros(S, dtype=np.int8) if split is None else np.asarray(split, dtype=np.int8),
        source=np.array([lookup[n] for n in names], dtype=np.int16),
        source_names=np.asarray(source_names, dtype=str),
        ids=np.array([str(i) for i in range(S)] if ids is None else list(ids), dtype=str),
    )
