"""The training-array format (``.npz``) that the lake exports and training reads (numpy only).

Arrays (S structures, A = sum of their atoms):

* ``natoms`` (S,) int32, ``lattice`` (S, 3, 3) float32 (row vectors, Angstrom),
* ``numbers`` (A,) int16, ``frac_coords`` (A, 3) float32,
* ``target`` (S,) float32: eV/atom for regression, 0/1 for PU labels (1 = positive),
* ``split`` (S,) int8: 0 train, 1 validation, 2 test,
* ``source`` (S,) int16 indexing ``source_names`` (array of str), ``ids`` (S,) str,
* ``fidelity`` (S,) int8: the level of theory of each row's target, an index into :data:`FIDELITIES`
  (0 ``dft``: DFT, experiment, or any reference-quality label; 1 ``mlip``: a universal interatomic
  potential's label, the lake's ``energy_method = 'mlip'``). Files written before fidelities existed
  have no ``fidelity`` array and load as all-DFT (zeros).
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
#: fidelity index -> name; 0 is the reference level (DFT) that inference and the exported model use
FIDELITIES = ("dft", "mlip")
DFT, MLIP = 0, 1

__all__ = [
    "DFT",
    "FIDELITIES",
    "MLIP",
    "TEST",
    "TRAIN",
    "VALIDATION",
    "CrystalArrays",
    "align_composition_split",
    "composition_keys",
    "compositions_in_two_splits",
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
    fidelity: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.fidelity is None:  # no fidelity recorded: every row is DFT
            object.__setattr__(self, "fidelity", np.zeros(len(self.natoms), dtype=np.int8))
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
            fidelity=self.fidelity[index],
        )

    def with_split(self, split: np.ndarray) -> CrystalArrays:
        """The same rows with another ``split`` array ((S,) of 0/1/2)."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return CrystalArrays(**{**fields, "split": np.asarray(split, dtype=np.int8)})

    def fidelity_counts(self, rows: np.ndarray | None = None) -> dict[str, int]:
        """``{fidelity name: rows}`` over ``rows`` (indices; all rows if None), fidelities present only."""
        values = self.fidelity if rows is None else self.fidelity[rows]
        return {
            FIDELITIES[f]: int((values == f).sum()) for f in range(len(FIDELITIES)) if (values == f).any()
        }

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
        if self.fidelity.any():  # all-DFT arrays keep the hash they had before fidelities existed
            digest.update(b"fidelity" + np.ascontiguousarray(self.fidelity).tobytes())
        return digest.hexdigest()


def _validate(a: CrystalArrays) -> None:
    S = len(a.natoms)
    for name in ("lattice", "target", "split", "source", "ids", "fidelity"):
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
    if S and not np.isin(a.fidelity, np.arange(len(FIDELITIES))).all():
        raise InputError(
            f"Array 'fidelity' may only hold {', '.join(f'{i} ({n})' for i, n in enumerate(FIDELITIES))}."
        )


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
    fidelity: np.ndarray | None = None,
    compress: bool = False,
) -> Path:
    """Validate and write the arrays to ``path`` (an ``.npz``, zip-compressed with ``compress``).

    ``fidelity`` (S,) (0 dft, 1 mlip; see :data:`FIDELITIES`) defaults to all-DFT; an all-DFT file is
    written without it (byte for byte the file written before fidelities existed).

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
        fidelity=None if fidelity is None else np.asarray(fidelity, dtype=np.int8),
    )
    names = [name for name in arrays.__dataclass_fields__ if name != "fidelity" or arrays.fidelity.any()]
    path = Path(path)
    with path.open("wb") as fh:  # all-DFT arrays are written without 'fidelity', as before fidelities existed
        save = np.savez_compressed if compress else np.savez
        save(fh, **{name: getattr(arrays, name) for name in names})
    return path


def load_arrays(path: Path) -> CrystalArrays:
    """Read and validate an ``.npz`` written by :func:`save_arrays` (or the lake's exporter).

    A file without ``fidelity`` (written before fidelities existed) loads as all-DFT.

    Raises:
        InputError: a missing array, or arrays that fail the checks of :class:`CrystalArrays`.
    """
    with np.load(Path(path), allow_pickle=False) as data:
        missing = sorted(set(CrystalArrays.__dataclass_fields__) - set(data.files) - {"fidelity"})
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
            fidelity=data["fidelity"].astype(np.int8) if "fidelity" in data.files else None,
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
    fidelity: Sequence[int] | None = None,
) -> CrystalArrays:
    """Pack crystals and targets into :class:`CrystalArrays`.

    Args:
        crystals: the structures.
        target: one value per structure (eV/atom, or 0/1 PU labels).
        split: one of 0/1/2 per structure; all training (0) if omitted.
        source: one source name per structure, or one name for all.
        ids: one identifier per structure; "0", "1", ... if omitted.
        fidelity: one of 0 (dft) / 1 (mlip) per structure; all DFT if omitted.
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
        fidelity=None if fidelity is None else np.asarray(fidelity, dtype=np.int8),
    )


def composition_keys(arrays: CrystalArrays) -> np.ndarray:
    """(S,) int64 key of each structure's reduced composition (equal keys: the same composition).

    The key hashes the sorted (atomic number, count / gcd of counts) pairs, so ``Mg2O2`` and ``MgO`` share
    one key; it is the composition the lake's split hashes (its reduced formula), read from ``numbers``.
    """
    keys = np.empty(len(arrays), dtype=np.int64)
    off = arrays.offsets
    for i in range(len(arrays)):
        z, counts = np.unique(arrays.numbers[off[i] : off[i + 1]], return_counts=True)
        reduced = counts // np.gcd.reduce(counts)
        digest = hashlib.blake2b(np.stack([z, reduced]).astype(np.int64).tobytes(), digest_size=8).digest()
        keys[i] = int.from_bytes(digest, "little", signed=True)
    return keys


def compositions_in_two_splits(arrays: CrystalArrays) -> int:
    """Number of reduced compositions whose rows lie in more than one split (0: no composition leaks)."""
    if len(arrays) == 0:
        return 0
    pairs = np.unique(np.stack([composition_keys(arrays), arrays.split.astype(np.int64)], axis=1), axis=0)
    _, per_composition = np.unique(pairs[:, 0], return_counts=True)
    return int((per_composition > 1).sum())


def align_composition_split(arrays: CrystalArrays) -> tuple[CrystalArrays, int]:
    """Put every row of one reduced composition into one split, whatever its fidelity.

    The lake's export already does this (its split is a hash of the reduced formula, the same for every
    source: ``storage.splits.split_of``); this is for arrays made elsewhere. Each composition takes the
    split of its first DFT row (fidelity 0), so the DFT rows' split, and with it every DFT metric, is
    unchanged wherever a composition's DFT rows agree; a composition without DFT rows takes the split of
    its first row. Rows are never dropped.

    Args:
        arrays: the training arrays.

    Returns:
        The arrays with the new ``split``, and the number of rows whose split changed.
    """
    keys = composition_keys(arrays)
    # first DFT row of each composition wins; then the first row of compositions without DFT rows
    order = np.lexsort((np.arange(len(arrays)), arrays.fidelity != DFT))
    first: dict[int, int] = {}
    for i in order:
        first.setdefault(int(keys[i]), int(arrays.split[i]))
    split = np.array([first[int(k)] for k in keys], dtype=np.int8)
    return arrays.with_split(split), int((split != arrays.split).sum())
