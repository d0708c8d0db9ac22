"""The lake: append-only Parquet parts per table, read through DuckDB views.

Layout under a lake root::

    <root>/lake/<table>/part-<utc>-<uuid>.parquet            (unpartitioned tables)
    <root>/lake/candidates/<campaign_id>/part-<...>.parquet   (candidates, one folder per campaign)
    <root>/catalog.duckdb                                      (views for the DuckDB shell)

Writers write ``.tmp-*.parquet`` and rename it into place, so a reader never sees half a part and a
killed writer loses at most the batch in flight. Every table folder starts with an empty, typed
seed part, so views never glob an empty folder. Views keep the first row per key (``KEYS``), so a
retried batch or an interrupted compaction never shows a row twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage import readonly
from storage.errors import StorageError, describe_message_failure, writing
from storage.schemas import EMPTY_IS_NULL, KEYS, SCHEMAS
from storage.splits import MOLECULAR_NAMES_SQL

#: tables stored one folder per value of this column
PARTITION_BY: dict[str, str] = {"candidates": "campaign_id"}
_SEED_NAME = "part-00000000T000000-seed.parquet"
_SAFE_PART = re.compile(r"[^A-Za-z0-9_.-]")
_VANISHED_PART_RETRIES = 8
_COMPACTION_LOCK = ".compaction.lock"
#: a temporary part older than this (seconds) was left by a killed writer; younger ones are in flight
STALE_TMP_S = 3600.0
T = TypeVar("T")
_ALLOWED_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


_NO_FILES = (
    "Refused: the query reads or writes a file by path or changes a setting; lake SQL reads only the "
    "lake's views (and files passed by name as inputs) and cannot write."
)


def default_home() -> Path:
    """The lake root when ``CSP_HOME`` is unset: ``$XDG_DATA_HOME/csp``, else ``~/.local/share/csp`` (the one
    place this default lives; the CLI's settings and :mod:`storage.query` both use it)."""
    base = os.environ.get("XDG_DATA_HOME")
    return (Path(base) if base else Path.home() / ".local" / "share") / "csp"


class LakeError(StorageError, RuntimeError):
    """A lake operation could not be carried out (the message says why and what to do)."""


class NoLakeError(LakeError):
    """A read of a lake that does not exist: nothing was created (one-line message, :func:`no_lake_message`)."""


def no_lake_message(root: Path) -> str:
    """The one line every reader gives for a missing lake."""
    return f"no lake at {root}: run `csp ingest run` or set CSP_HOME"


def open_read_only(root: Path | str) -> Lake:
    """The lake at ``root`` for reading: the one rule every read-only entry point shares (``csp sql``,
    ``csp candidates``, ``csp campaign list|show``, :mod:`storage.query`). Creates nothing.

    Raises:
        NoLakeError: ``root`` holds no lake (no ``lake/`` folder); writers (:meth:`Lake.init`) create it.
    """
    return Lake(root).require()


class ReadOnlyError(LakeError):
    """A statement that would write was sent through the read-only query API."""


@dataclass(frozen=True)
class CompactionReport:
    table: str
    parts_before: int
    parts_after: int
    rows: int


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(table: pa.Table, folder: Path) -> Path:
    """Write ``table`` as a new part in ``folder``: temporary name, fsync, rename.

    Raises:
        DiskWriteError: the disk refused the write (full, read-only, no permission); the temporary
            file is removed and no part appears.
    """
    token = uuid.uuid4().hex[:12]
    tmp = folder / f".tmp-{token}.parquet"
    final = folder / f"part-{_utc_stamp()}-{token}.parquet"
    with writing(folder):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, tmp, compression="zstd")
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            tmp.replace(final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)  # a half-written part frees its space at once
            raise
    _fsync_dir(folder)
    return final


def _partition_folder_name(value: Any) -> str:
    text = _SAFE_PART.sub("_", str(value))
    if not text or text.startswith("."):
        raise LakeError(f"Partition value {value!r} cannot name a folder.")
    return text


def check_read_only(sql: str) -> None:
    """Raise :class:`ReadOnlyError` unless every statement in ``sql`` only reads."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise LakeError(f"The query could not be parsed: {_one_line_duckdb(exc)}") from exc
    if not statements:
        raise LakeError("The query is empty.")
    for statement in statements:
        if statement.type not in _ALLOWED_STATEMENTS:
            # the statement's own first word: DuckDB types INSTALL as LOAD and names ATTACH's type in capitals
            words = statement.query.split()
            kind = words[0].upper() if words else statement.type.name
            article = "an" if kind[:1] in "AEIOU" else "a"
            raise ReadOnlyError(
                f"Refused {article} {kind} statement: the query interface is read-only; "
                "the lake is changed only by the ingest, training and campaign flows."
            )


def _one_line_duckdb(exc: BaseException) -> str:
    """DuckDB's message on one line, without advice the read-only interface refuses (``SET
    max_expression_depth``: every SET is refused here)."""
    text = " ".join(str(exc).split())
    if "max_expression_depth" in text:
        text = re.sub(r"\s*Use \"?SET max_expression_depth[^.]*\.?", "", text).rstrip()
        text += " (the query nests too deeply for the read-only interface: flatten it)"
    return text


def _vanished(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError) or "No such file" in str(exc)


def retry_vanished_parts(action: Callable[[], T], refresh: Callable[[], None] | None = None) -> T:
    """Run ``action`` again when a Parquet part it listed vanished before it was opened.

    A compaction in another process may delete a part between a listing and the opening of the file;
    the merged part is already in place by then, so listing again (``refresh``) and running again reads
    a consistent set (the views keep one row per key). Any other error is raised as a ``LakeError``.
    """
    for attempt in range(_VANISHED_PART_RETRIES):
        try:
            return action()
        except (LakeError, duckdb.Error, FileNotFoundError) as exc:
            if not _vanished(exc) or attempt == _VANISHED_PART_RETRIES - 1:
                raise (exc if isinstance(exc, LakeError) else LakeError(f"The query failed: {exc}")) from exc
            time.sleep(0.05 * (attempt + 1))
            if refresh is not None:
                retry_vanished_parts(refresh)
    raise AssertionError("unreachable")


class LakeConnection:
    """A DuckDB connection that cannot write, with one view per lake table (plus derived views).

    Built by :meth:`Lake.connect` (see :mod:`storage.readonly`): an in-memory catalog over Arrow datasets
    of the lake's parts, DuckDB's file access off and its configuration locked. The statement check of
    :func:`check_read_only` only gives a friendlier first message.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, refresh: Callable[[], None] | None = None) -> None:
        self._con = con
        self._refresh = refresh

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a read-only statement with bound parameters; returns a DuckDB relation."""
        check_read_only(sql)
        try:
            return self._con.sql(sql, params=params)
        except duckdb.PermissionException as exc:
            raise ReadOnlyError(_NO_FILES) from exc
        except duckdb.Error as exc:
            raise LakeError(f"The query failed: {_one_line_duckdb(exc)}") from exc

    def _fetch(self, sql: str, params: Sequence[Any] | dict[str, Any] | None, how: str) -> Any:
        def run() -> Any:
            relation = self.execute(sql, params)
            try:
                return relation.to_arrow_table() if how == "arrow" else relation.df()
            except duckdb.PermissionException as exc:
                raise ReadOnlyError(_NO_FILES) from exc

        return retry_vanished_parts(run, self._refresh)

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run a read-only query and return an Arrow table."""
        return self._fetch(sql, params, "arrow")

    def df(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a read-only query and return a pandas DataFrame."""
        return self._fetch(sql, params, "df")

    def tables(self) -> list[str]:
        rows = self._con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name"
        ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> LakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Lake:
    """A lake rooted at ``root``: append-only writers, compaction, and read-only connections."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    # ------------------------------------------------------------------ layout
    @property
    def lake_dir(self) -> Path:
        return self.root / "lake"

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def exists(self) -> bool:
        """Whether a writer made this lake (its ``lake/`` folder exists); readers never create it."""
        return self.lake_dir.is_dir()

    def require(self) -> Lake:
        """This lake, if it exists.

        Raises:
            NoLakeError: it does not (nothing is created).
        """
        if not self.exists:
            raise NoLakeError(no_lake_message(self.root))
        return self

    def table_dir(self, table: str) -> Path:
        if table not in SCHEMAS:
            raise LakeError(f"Unknown table {table!r}; the lake has {sorted(SCHEMAS)}.")
        return self.lake_dir / table

    def _glob(self, table: str) -> str:
        base = self.table_dir(table)
        pattern = "*/part-*.parquet" if table in PARTITION_BY else "part-*.parquet"
        return (base / pattern).as_posix()

    def _seed_path(self, table: str) -> Path:
        base = self.table_dir(table)
        return (base / "_seed" / _SEED_NAME) if table in PARTITION_BY else base / _SEED_NAME

    def init(self) -> Lake:
        """Create the folders and the empty typed seed part of every table (idempotent).

        A seed written by an older schema is rewritten, so columns added since (nullable) appear in the
        views as nulls for the parts written before them.
        """
        for table, schema in SCHEMAS.items():
            seed = self._seed_path(table)
            if not seed.exists() or pq.read_schema(seed).names != schema.names:
                tmp = seed.with_name(f".tmp-seed-{uuid.uuid4().hex[:8]}.parquet")
                with writing(seed.parent):
                    try:
                        seed.parent.mkdir(parents=True, exist_ok=True)
                        pq.write_table(schema.empty_table(), tmp)
                        tmp.replace(seed)
                    except BaseException:
                        with contextlib.suppress(OSError):
                            tmp.unlink(missing_ok=True)
                        raise
        return self

    def parts(self, table: str) -> list[Path]:
        """Data parts of ``table`` (the empty seed excluded)."""
        base = self.table_dir(table)
        pattern = "*/part-*.parquet" if table in PARTITION_BY else "part-*.parquet"
        return sorted(p for p in base.glob(pattern) if p.name != _SEED_NAME)

    # ------------------------------------------------------------------ writing
    def _to_table(self, table: str, rows: Iterable[dict[str, Any]] | pa.Table, run_id: str) -> pa.Table:
        return _empty_as_null(table, self._typed_table(table, rows, run_id))

    def _typed_table(self, table: str, rows: Iterable[dict[str, Any]] | pa.Table, run_id: str) -> pa.Table:
        schema = SCHEMAS[table]
        now = datetime.now(UTC)
        if isinstance(rows, pa.Table):
            data = rows
            if "run_id" not in data.column_names:
                data = data.append_column("run_id", pa.array([run_id] * data.num_rows, pa.string()))
            if "written_at" not in data.column_names:
                data = data.append_column(
                    "written_at", pa.array([now] * data.num_rows, schema.field("written_at").type)
                )
            missing = [n for n in schema.names if n not in data.column_names]
            if missing:
                raise LakeError(f"Rows for {table!r} lack the columns {missing}.")
            return data.select(schema.names).cast(schema)
        filled = []
        for row in rows:
            unknown = set(row) - set(schema.names)
            if unknown:
                raise LakeError(
                    f"Rows for {table!r} have columns the schema does not declare: {sorted(unknown)}."
                )
            filled.append({"run_id": run_id, "written_at": now, **row})
        try:
            return pa.Table.from_pylist(filled, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise LakeError(f"Rows for {table!r} do not fit its schema: {exc}") from exc

    def _drop_stored_keys(self, table: str, data: pa.Table, glob: str) -> pa.Table:
        keys = list(KEYS[table])
        con = duckdb.connect()
        try:
            con.register("batch", data.append_column("_ord", pa.array(range(data.num_rows), pa.int64())))
            on = " AND ".join(f'b."{k}" IS NOT DISTINCT FROM s."{k}"' for k in keys)
            key_cols = ", ".join(f'"{k}"' for k in keys)
            # keep the first occurrence of each key within the batch, then drop keys already stored
            sql = (
                f"SELECT b.* FROM (SELECT * FROM batch "
                f"QUALIFY row_number() OVER (PARTITION BY {key_cols} ORDER BY _ord) = 1) b "
                f"ANTI JOIN (SELECT {key_cols} FROM read_parquet(?)) s ON {on} ORDER BY b._ord"
            )
            result = con.sql(sql, params=[glob]).to_arrow_table()
        finally:
            con.close()
        return result.drop_columns(["_ord"]).cast(SCHEMAS[table])

    def append(
        self,
        table: str,
        rows: Iterable[dict[str, Any]] | pa.Table,
        *,
        run_id: str,
        dedupe: bool = True,
    ) -> int:
        """Append rows to ``table`` as new part(s); returns how many rows were written.

        With ``dedupe`` (the default) rows whose key is already stored, or repeated within the
        batch, are skipped, so re-running an ingest or a campaign step writes nothing twice.
        """
        self.init()
        data = self._to_table(table, rows, run_id)
        if data.num_rows == 0:
            return 0
        column = PARTITION_BY.get(table)
        groups: list[tuple[Path, pa.Table]] = []
        if column is None:
            groups.append((self.table_dir(table), data))
        else:
            for value in data.column(column).unique().to_pylist():
                mask = pc.equal(data.column(column), pa.scalar(value, data.schema.field(column).type))
                folder = self.table_dir(table) / _partition_folder_name(value)
                groups.append((folder, data.filter(mask)))
        written = 0
        for folder, group in groups:
            if dedupe:
                with writing(folder):
                    folder.mkdir(parents=True, exist_ok=True)
                glob = (folder / "part-*.parquet").as_posix()
                has_parts = any(folder.glob("part-*.parquet"))
                source = glob if has_parts else self._seed_path(table).as_posix()
                group = retry_vanished_parts(
                    lambda t=table, g=group, src=source: self._drop_stored_keys(t, g, src)
                )
            if group.num_rows:
                _write_atomic(group, folder)
                written += group.num_rows
        return written

    # ------------------------------------------------------------------ reading
    def _view_sql(self, table: str, source: str | None = None) -> str:
        keys = ", ".join(f'"{k}"' for k in KEYS[table])
        glob = self._glob(table).replace("'", "''")
        scan = source or f"read_parquet('{glob}', union_by_name = true)"
        return (
            f"SELECT {_columns_sql(table)} FROM {scan} "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY written_at) = 1"
        )

    def _create_views(self, con: duckdb.DuckDBPyConnection) -> None:
        for table in SCHEMAS:
            con.execute(f"CREATE OR REPLACE VIEW {table} AS {self._view_sql(table)}")
        con.execute(f"CREATE OR REPLACE VIEW campaigns AS {CAMPAIGNS_SQL}")
        con.execute(f"CREATE OR REPLACE VIEW experimental_linked AS {LINK_SQL}")

    def _datasets(self, inputs: dict[str, Path | str]) -> dict[str, Callable[[], Any]]:
        def table_dataset(table: str) -> Callable[[], Any]:
            def build() -> Any:  # the seed if a writer made it; the schema types an empty table either way
                seed = self._seed_path(table)
                files = ([seed] if seed.exists() else []) + self.parts(table)
                return readonly.parquet_dataset(files, SCHEMAS[table])

            return build

        def input_file(path: Path | str) -> Callable[[], Any]:
            return lambda: readonly.input_dataset(path)

        built: dict[str, Callable[[], Any]] = {f"_parts_{t}": table_dataset(t) for t in SCHEMAS}
        built.update({f"_input_{name}": input_file(path) for name, path in inputs.items()})
        return built

    def connect(
        self, *, read_only: bool = True, inputs: dict[str, Path | str] | None = None
    ) -> LakeConnection:
        """Open a connection that cannot write, with a view per table (sees the parts present now).

        Args:
            read_only: must be True (the lake is written only through :meth:`append` and the flows).
            inputs: extra files the SQL may read, as ``{view name: path}`` (Parquet, CSV or Arrow IPC);
                no other file outside the lake can be read.

        Raises:
            NoLakeError: the lake does not exist (a read creates nothing: no folder, no seed).
            LakeError: for ``read_only=False`` or an unusable input.
        """
        if not read_only:
            raise LakeError("Lake connections are read-only; write through Lake.append or the flows.")
        inputs = dict(inputs or {})
        for name in inputs:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name) or name in SCHEMAS or name in _DERIVED:
                raise LakeError(f"Input name {name[:64]!r} must be a new SQL identifier (not a lake table).")
        self.require()
        datasets = self._datasets(inputs)
        con = readonly.sandboxed_connection()

        def refresh() -> None:
            readonly.register_all(con, datasets)

        try:
            try:
                retry_vanished_parts(refresh)
            except ValueError as exc:
                raise LakeError(str(exc)) from exc
            for table in SCHEMAS:
                con.execute(f"CREATE VIEW {table} AS {self._view_sql(table, source=f'_parts_{table}')}")
            for name in inputs:
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM _input_{name}")
            con.execute(f"CREATE VIEW campaigns AS {CAMPAIGNS_SQL}")
            con.execute(f"CREATE VIEW experimental_linked AS {LINK_SQL}")
            readonly.lock(con)
        except BaseException:
            con.close()
            raise
        return LakeConnection(con, refresh)

    def query(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        inputs: dict[str, Path | str] | None = None,
    ) -> pa.Table:
        """Run one read-only query (see :meth:`connect`) and return an Arrow table."""
        with self.connect(inputs=inputs) as con:
            return con.arrow(sql, params)

    def count(self, table: str) -> int:
        with self.connect() as con:
            return int(
                con.arrow(f"SELECT count(*) AS n FROM {self.table_dir(table).name}").column("n")[0].as_py()
            )

    def refresh_catalog(self) -> Path:
        """Write ``catalog.duckdb`` with the same views, for the DuckDB shell and BI tools."""
        self.init()
        tmp = self.catalog_path.with_name(f".tmp-catalog-{uuid.uuid4().hex[:8]}.duckdb")
        try:
            con = duckdb.connect(str(tmp))
            try:
                retry_vanished_parts(lambda: self._create_views(con))
            finally:
                con.close()
            with writing(self.catalog_path):
                tmp.replace(self.catalog_path)
        except duckdb.IOException as exc:  # DuckDB reports a full or read-only disk as its own error
            raise LakeError(describe_message_failure(str(exc), self.catalog_path)) from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        return self.catalog_path

    # ------------------------------------------------------------------ maintenance
    def compact(self, table: str, *, partition: str | None = None) -> CompactionReport:
        """Merge the parts of ``table`` (per partition) into one, losing and duplicating no row.

        Safe beside writers, readers and other compactions:

        * a folder is merged only under its claim, an exclusive ``flock`` on ``<folder>/.compaction.lock``
          (released by the kernel on any exit); a folder another compaction holds is skipped, so two
          compactions never list, merge or delete the same parts;
        * only the parts listed under the claim are merged and then deleted; parts written meanwhile stay;
        * temporary files (``.tmp-*``, a writer's part in flight) are never read; they are deleted only
          when older than :data:`STALE_TMP_S` (left by a killed writer);
        * the merged part is in place before a listed part is deleted, and the views keep one row per
          key, so a reader sees every row at every moment (a reader whose listed part vanished lists again).

        ``partition`` limits a partitioned table (candidates) to one value (a campaign id).
        """
        self.init()
        base = self.table_dir(table)
        if partition is not None:
            folders = [base / _partition_folder_name(partition)]
        elif table in PARTITION_BY:
            folders = [p for p in base.iterdir() if p.is_dir() and p.name != "_seed"]
        else:
            folders = [base]
        before = after = rows = 0
        for folder in folders:
            if not folder.is_dir():
                continue
            with writing(folder), _claim(folder) as claimed:
                if not claimed:
                    continue
                b, a, r = self._compact_folder(table, folder)
                before, after, rows = before + b, after + a, rows + r
                _remove_stale_tmp(folder)
        return CompactionReport(table=table, parts_before=before, parts_after=after, rows=rows)

    def _compact_folder(self, table: str, folder: Path) -> tuple[int, int, int]:
        keys = ", ".join(f'"{k}"' for k in KEYS[table])
        parts = sorted(p for p in folder.glob("part-*.parquet") if p.name != _SEED_NAME)
        if len(parts) <= 1:
            return len(parts), len(parts), sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        con = duckdb.connect()
        try:
            merged = con.sql(
                f"SELECT {_columns_sql(table)} FROM read_parquet(?, union_by_name = true) "
                f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY written_at) = 1 "
                f"ORDER BY written_at",
                params=[[p.as_posix() for p in parts]],
            ).to_arrow_table()
            distinct = con.execute(
                f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM read_parquet(?, union_by_name = true))",
                [[p.as_posix() for p in parts]],
            ).fetchall()[0][0]
        finally:
            con.close()
        merged = merged.select(SCHEMAS[table].names).cast(SCHEMAS[table])
        if merged.num_rows != distinct:
            raise LakeError(f"Compaction of {folder} would change the row count; nothing was changed.")
        _write_atomic(merged, folder)
        for part in parts:
            part.unlink(missing_ok=True)
        _fsync_dir(folder)
        return len(parts), 1, merged.num_rows


def _columns_sql(table: str) -> str:
    """The select list of a table's view: every column, with the :data:`storage.schemas.EMPTY_IS_NULL`
    columns' '' (older parts) read as null."""
    empty = EMPTY_IS_NULL.get(table, ())
    replaced = [f'nullif("{c}", \'\') AS "{c}"' for c in empty]
    if "reduced_formula" in SCHEMAS[table].names:  # an element as its symbol, in rows of older ingests too
        replaced.append(f'{MOLECULAR_NAMES_SQL} AS "reduced_formula"')
    if not replaced:
        return "*"
    return f"* REPLACE ({', '.join(replaced)})"


def _empty_as_null(table: str, data: pa.Table) -> pa.Table:
    """``data`` with '' in the table's :data:`storage.schemas.EMPTY_IS_NULL` columns written as null."""
    for name in EMPTY_IS_NULL.get(table, ()):
        column = data.column(name)
        index = data.schema.get_field_index(name)
        data = data.set_column(
            index, data.schema.field(index), pc.if_else(pc.equal(column, ""), None, column)
        )
    return data


@contextlib.contextmanager
def _claim(folder: Path) -> Iterator[bool]:
    """Hold the folder's compaction lock if nobody else does; yields whether it was taken."""
    fd = os.open(folder / _COMPACTION_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _remove_stale_tmp(folder: Path) -> None:
    """Delete temporary parts a killed writer left behind (older than ``STALE_TMP_S``), never fresh ones."""
    now = time.time()
    for tmp in folder.glob(".tmp-*.parquet"):
        with contextlib.suppress(FileNotFoundError):
            if now - tmp.stat().st_mtime > STALE_TMP_S:
                tmp.unlink(missing_ok=True)


#: each campaign's latest event
CAMPAIGNS_SQL = (
    "SELECT * FROM campaign_events QUALIFY row_number() OVER (PARTITION BY campaign_id ORDER BY seq DESC) = 1"
)
#: views derived from the tables (names a named input may not take)
_DERIVED = ("campaigns", "experimental_linked")

#: experimental enthalpies joined to a structure of the same reduced formula. Preference order:
#: lowest DFT formation enthalpy on the MP/OQMD/GNoME scale; else an experimentally reported
#: structure (ICSD-labelled / prototype); else the lowest hull distance. Unlinked rows say why.
LINK_SQL = """
WITH ranked AS (
    SELECT reduced_formula, source, source_id, dhf_dft_ev_per_atom, spacegroup,
        CASE
            WHEN dhf_dft_ev_per_atom IS NOT NULL AND coalesce(energy_kind, '') NOT LIKE 'castelli%' THEN 1
            WHEN icsd_label = 1 THEN 2
            WHEN e_above_hull_ev_per_atom IS NOT NULL THEN 3
            ELSE 4
        END AS tier
    FROM structures
    -- universal-potential labels are hypothetical polymorphs: never the structure an experiment is linked to
    WHERE coalesce(energy_method, 'dft') <> 'mlip'
),
best AS (
    SELECT * FROM ranked
    QUALIFY row_number() OVER (
        PARTITION BY reduced_formula
        ORDER BY tier, dhf_dft_ev_per_atom NULLS LAST, source, source_id
    ) = 1
)
SELECT e.*,
    b.source AS linked_source,
    b.source_id AS linked_source_id,
    b.spacegroup AS linked_spacegroup,
    b.dhf_dft_ev_per_atom AS linked_dhf_dft_ev_per_atom,
    CASE b.tier
        WHEN 1 THEN 'lowest DFT formation enthalpy (MP/OQMD/GNoME scale) of the same reduced formula'
        WHEN 2 THEN 'experimentally reported structure of the same reduced formula (no DFT energy)'
        WHEN 3 THEN 'lowest hull distance of the same reduced formula (no formation energy)'
        WHEN 4 THEN 'a structure of the same reduced formula without any energy'
        ELSE NULL
    END AS link_method,
    CASE WHEN b.source IS NULL THEN 'no ingested structure has this reduced formula' END AS unlinked_reason
FROM experimental_enthalpies e
LEFT JOIN best b USING (reduced_formula)
"""
