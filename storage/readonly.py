"""A DuckDB connection that cannot write: the one that runs user SQL (``csp sql``, ``storage.connect``).

Refusing statement kinds cannot be complete (DuckDB runs the statement inside ``EXPLAIN ANALYZE``, inside
``CALL``, through table functions...), so this connection is built so that no statement can change a file:

* the catalog is in memory; nothing is attached from disk;
* DuckDB's own file access is switched off: ``enable_external_access = false`` and the local file system
  disabled (``disabled_filesystems = 'LocalFileSystem'``), so ``COPY ... TO``, ``EXPORT DATABASE``,
  ``ATTACH 'file'``, ``INSTALL``/``LOAD``, ``read_text``, ``glob`` and friends fail with a permission
  error; spilling to a temporary directory is off (``temp_directory = ''``) and extensions are neither
  installed nor loaded on demand;
* the configuration is locked (``lock_configuration = true``): ``SET``, ``RESET`` and ``PRAGMA`` cannot
  undo any of this;
* the lake's Parquet parts, and any named input file, are opened by pyarrow in this process (Python, not
  SQL, decides which files are read) and handed to DuckDB as registered Arrow datasets; the views are
  defined over those.

So user SQL reads exactly the lake's tables and the inputs it was given by name, and no file by path:
``read_text('/etc/passwd')``, ``glob('/**')`` and ``read_parquet('<any path>')`` are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

#: applied in this order; ``lock_configuration`` must come last
SANDBOX_SETTINGS: tuple[tuple[str, str], ...] = (
    ("autoinstall_known_extensions", "false"),
    ("autoload_known_extensions", "false"),
    ("allow_community_extensions", "false"),
    ("allow_persistent_secrets", "false"),
    ("temp_directory", "''"),
    ("enable_external_access", "false"),
    ("disabled_filesystems", "'LocalFileSystem'"),
)

#: file suffixes a named input may have, and the pyarrow dataset format that reads them
INPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".arrow": "ipc", ".feather": "ipc"}


def sandboxed_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with file access off and the configuration not yet locked.

    Register the Arrow datasets and create the views, then call :func:`lock` before running user SQL.
    """
    con = duckdb.connect(":memory:")
    try:
        for name, value in SANDBOX_SETTINGS:
            con.execute(f"SET {name} = {value}")
    except BaseException:
        con.close()
        raise
    return con


def lock(con: duckdb.DuckDBPyConnection) -> None:
    """Lock the configuration: no later SET/RESET/PRAGMA can turn file access back on."""
    con.execute("SET lock_configuration = true")


def parquet_dataset(paths: list[Path], schema: pa.Schema) -> ds.Dataset:
    """The given Parquet files as one dataset with ``schema`` (columns a file lacks read as nulls).

    Raises:
        FileNotFoundError: if a file vanished (a compaction merged it); list again and retry.
    """
    return ds.dataset([p.as_posix() for p in paths], schema=schema, format="parquet")


def input_dataset(path: Path | str) -> ds.Dataset:
    """A named input file (Parquet, CSV or Arrow IPC) as a dataset; raises ``ValueError`` otherwise."""
    file = Path(path).expanduser().resolve()
    fmt = INPUT_FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise ValueError(f"Input {file.name} is not one of {sorted(INPUT_FORMATS)}; convert it first.")
    if not file.is_file():
        raise ValueError(f"Input {file} is not a file.")
    return ds.dataset(file.as_posix(), format=fmt)


def register_all(con: duckdb.DuckDBPyConnection, datasets: dict[str, Callable[[], ds.Dataset]]) -> None:
    """Register each dataset (built now, so the file listing is fresh) under its name."""
    for name, build in datasets.items():
        con.register(name, build())
