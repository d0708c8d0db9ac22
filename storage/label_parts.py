"""Labelled structures kept in the repository: compressed Parquet parts of at most a few MB each.

Machine-labelled data (structures and their energies from a universal potential) is the project's own product,
so it is committed (``data/labels/<potential>/part-NNN.parquet`` with a data card beside it; the active loop's
rounds in ``data/labels/active/round-NNN/``, :mod:`storage.active_rounds`) rather than kept only in a lake on a
machine that may be gone. One row per structure (``search``: a campaign's own top structure):

=========================  ==============  ==================================================================
column                     type            meaning
=========================  ==============  ==================================================================
id                         string          the labelling plan's row id (unique per potential)
formula                    string          reduced formula
kind                       string          ``prototype``, ``random``, ``distorted``, ``search``, ``reference`` or ``element``
action                     string          ``relax`` or ``single``
tag                        string          the prototype, family or parent the row came from
potential                  string          the potential's name and version (``chgnet-0.3.0``; ``-active``: the active loop's)
relaxation                 string          ``relaxed``, ``partially_relaxed``, ``unrelaxed``, ``frame`` or ``failed``
energy_ev_per_atom         float64         the potential's energy, eV/atom
energy_initial_ev_per_atom float64         the energy of the relaxation's first frame, eV/atom
fmax_ev_per_angstrom       float64         largest remaining (generalised) force, eV/Angstrom
steps                      float64         relaxation steps taken at this frame
dhf_ev_per_atom            float64         formation enthalpy against the potential's elemental references, eV/atom
lattice                    list<float32>   9 values: row lattice vectors a, b, c, Angstrom
numbers                    list<int8>      atomic numbers of the n sites
frac_coords                list<float32>   3 n values: fractional coordinates, site by site
=========================  ==============  ==================================================================

The functions take and return plain column arrays (numpy), so the science's structure sets convert at the
faces (``flows.augmentation``) and this module needs only pyarrow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from storage.errors import StorageError, writing

STRING_COLUMNS = ("id", "formula", "kind", "action", "tag", "potential", "relaxation")
FLOAT_COLUMNS = (
    "energy_ev_per_atom",
    "energy_initial_ev_per_atom",
    "fmax_ev_per_angstrom",
    "steps",
    "dhf_ev_per_atom",
)
ALL_COLUMNS = (*STRING_COLUMNS, *FLOAT_COLUMNS, "lattice", "numbers", "frac_coords")
#: zstd level: the parts are written once and read many times
COMPRESSION_LEVEL = 19


def _table(columns: Mapping[str, np.ndarray], natoms: np.ndarray, index: np.ndarray) -> pa.Table:
    offsets = np.concatenate([[0], np.cumsum(natoms)]).astype(np.int64)
    starts, stops = offsets[index], offsets[index + 1]
    atoms = (
        np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)]) if len(index) else []
    )
    sizes = stops - starts
    list_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    numbers = pa.ListArray.from_arrays(
        pa.array(list_offsets), pa.array(np.asarray(columns["numbers"])[atoms].astype(np.int8))
    )
    frac = pa.ListArray.from_arrays(
        pa.array(list_offsets * 3),
        pa.array(np.asarray(columns["frac_coords"])[atoms].astype(np.float32).reshape(-1)),
    )
    lattice = pa.FixedSizeListArray.from_arrays(
        pa.array(np.asarray(columns["lattice"])[index].astype(np.float32).reshape(-1)), 9
    )
    data = {name: pa.array(np.asarray(columns[name])[index].astype(str)) for name in STRING_COLUMNS}
    data |= {name: pa.array(np.asarray(columns[name])[index].astype(np.float64)) for name in FLOAT_COLUMNS}
    data |= {"lattice": lattice, "numbers": numbers, "frac_coords": frac}
    return pa.table(data)


def write_label_parts(
    columns: Mapping[str, np.ndarray],
    natoms: np.ndarray,
    out_dir: Path,
    *,
    rows_per_part: int = 40_000,
    append: bool = False,
) -> list[Path]:
    """Write labelled rows as ``out_dir/part-NNN.parquet`` (zstd), each written whole or not at all.

    Args:
        columns: per-row arrays named as in the module table (S rows each), plus ``lattice`` (S, 3, 3),
            ``numbers`` (A,) and ``frac_coords`` (A, 3) for all A atoms, rows in order.
        natoms: (S,) sites per row.
        out_dir: the folder (created); existing ``part-*.parquet`` files there are replaced.
        rows_per_part: rows per file (40,000 small cells make about 6 MB).
        append: keep the folder's parts and number the new ones after the last (a further labelling run
            of the same potential); otherwise existing parts are replaced.

    Returns:
        The written paths.

    Raises:
        StorageError: if a column is missing, the row counts disagree, or (``append``) a row id is already
            in the folder's parts.
    """
    missing = sorted(set(ALL_COLUMNS) - set(columns))
    if missing:
        raise StorageError(f"Labelled rows lack the columns {missing}.")
    natoms = np.asarray(natoms, dtype=np.int64)
    if any(len(columns[c]) != len(natoms) for c in STRING_COLUMNS + FLOAT_COLUMNS):
        raise StorageError("Labelled columns do not all have one value per row.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(out_dir.glob("part-*.parquet"))
    first = 0
    if append:
        first = 1 + max((int(p.stem.split("-")[1]) for p in existing), default=-1)
        held = set()
        for path in existing:
            held.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
        twice = held.intersection(np.asarray(columns["id"]).tolist())
        if twice:
            raise StorageError(
                f"{len(twice)} of these rows are already in {out_dir} (e.g. {sorted(twice)[0]!r}); "
                "nothing was written."
            )
    else:
        for old in existing:
            old.unlink()
    written = []
    for n, start in enumerate(range(0, len(natoms), rows_per_part), start=first):
        index = np.arange(start, min(len(natoms), start + rows_per_part))
        sink = pa.BufferOutputStream()
        pq.write_table(
            _table(columns, natoms, index), sink, compression="zstd", compression_level=COMPRESSION_LEVEL
        )
        path = out_dir / f"part-{n:03d}.parquet"
        tmp = out_dir / f".tmp-{path.name}"
        with writing(out_dir):
            tmp.write_bytes(sink.getvalue().to_pybytes())
            tmp.replace(path)
        written.append(path)
    return written


def label_part_paths(patterns: Sequence[str | Path]) -> list[Path]:
    """The Parquet parts named by ``patterns``: files, folders (their ``part-*.parquet``) or glob patterns.

    Args:
        patterns: e.g. ``["data/labels/chgnet-0.3.0/part-*.parquet"]`` or ``["data/labels/chgnet-0.3.0"]``.

    Returns:
        The distinct paths, sorted.

    Raises:
        StorageError: if no pattern is given or a pattern names no file.
    """
    if not patterns:
        raise StorageError("No labelled Parquet part was given: name files, a folder or a glob pattern.")
    found: set[Path] = set()
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if path.is_dir():
            matched = sorted(path.glob("part-*.parquet"))
        elif path.is_file():
            matched = [path]
        else:
            anchor = Path(path.anchor) if path.is_absolute() else Path()
            pattern_text = str(path.relative_to(anchor)) if path.is_absolute() else str(path)
            matched = (
                sorted(p for p in anchor.glob(pattern_text) if p.is_file()) if pattern_text != "." else []
            )
        if not matched:
            raise StorageError(
                f"{pattern} names no labelled Parquet part; give a file, a folder holding part-*.parquet, "
                "or a glob such as data/labels/chgnet-0.3.0/part-*.parquet."
            )
        found.update(matched)
    return sorted(found)


def read_label_parts(paths: Sequence[Path]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read parts written by :func:`write_label_parts` back as (columns, natoms), the layout it takes.

    Raises:
        StorageError: if no path is given or a file is not such a part.
    """
    if not paths:
        raise StorageError("No labelled Parquet part was given.")
    try:
        table = pa.concat_tables([pq.read_table(Path(p)) for p in paths])
    except (pa.ArrowInvalid, OSError) as exc:
        raise StorageError(f"Not a labelled Parquet part: {exc}") from exc
    missing = sorted(set(ALL_COLUMNS) - set(table.column_names))
    if missing:
        raise StorageError(f"The labelled Parquet parts lack the columns {missing}.")
    numbers = table.column("numbers").combine_chunks()
    natoms = np.asarray(numbers.value_lengths(), dtype=np.int64)
    columns = {name: np.asarray(table.column(name).to_pylist(), dtype=str) for name in STRING_COLUMNS}
    columns |= {name: table.column(name).to_numpy().astype(np.float64) for name in FLOAT_COLUMNS}
    columns["lattice"] = np.asarray(
        table.column("lattice").combine_chunks().flatten(), dtype=np.float64
    ).reshape(-1, 3, 3)
    columns["numbers"] = np.asarray(numbers.flatten(), dtype=np.int64)
    columns["frac_coords"] = np.asarray(
        table.column("frac_coords").combine_chunks().flatten(), dtype=np.float64
    ).reshape(-1, 3)
    return columns, natoms
