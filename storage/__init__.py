"""The lake: schemas, atomic Parquet writers, DuckDB views and the read-only query API."""

from __future__ import annotations

from pathlib import Path

from storage.errors import StorageError
from storage.lake import Lake, LakeConnection, LakeError, ReadOnlyError

__all__ = ["Lake", "LakeConnection", "LakeError", "ReadOnlyError", "StorageError", "connect"]


def connect(root: Path | str, *, read_only: bool = True) -> LakeConnection:
    """Open a read-only DuckDB connection over the lake at ``root`` (one view per table)."""
    return Lake(root).connect(read_only=read_only)
