"""The lake: schemas, atomic Parquet writers, DuckDB views and the read-only query API."""

from __future__ import annotations

from pathlib import Path

from storage.errors import StorageError
from storage.lake import Lake, LakeConnection, LakeError, NoLakeError, ReadOnlyError, open_read_only

__all__ = [
    "Lake",
    "LakeConnection",
    "LakeError",
    "NoLakeError",
    "ReadOnlyError",
    "StorageError",
    "connect",
    "open_read_only",
]


def connect(
    root: Path | str, *, read_only: bool = True, inputs: dict[str, Path | str] | None = None
) -> LakeConnection:
    """Open a DuckDB connection over the lake at ``root`` that cannot write (one view per table).

    ``inputs`` names extra files the SQL may read (``{view name: path}``); no other file can be read.
    See :mod:`storage.readonly` for how writing is made impossible.

    Raises:
        NoLakeError: no lake at ``root`` (:func:`open_read_only`; nothing is created).
    """
    return open_read_only(root).connect(read_only=read_only, inputs=inputs)
