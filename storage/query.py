"""Read a campaign's search history: campaigns, evaluated candidates, OPTIMADE filters, Parquet export.

Everything here reads through :meth:`storage.lake.Lake.connect` (a read-only DuckDB connection over the
Parquet parts), so it is safe while campaigns write: a reader sees every part renamed into place before
its query started and never half a part.

Typical use (a notebook)::

    from storage.query import load_campaign, load_candidates, to_structures

    campaign = load_campaign("MgO-20261130T120000-abc123", home="~/.local/share/csp")
    rows = load_candidates('elements HAS ALL "Mg","O" AND _csp_p_syn > 0.8', campaign=campaign["campaign_id"])
    structures = to_structures(rows.head(5))
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from storage.campaigns import campaign_row
from storage.campaigns import list_campaigns as list_campaign_rows
from storage.errors import writing
from storage.lake import Lake, LakeError, default_home, open_read_only
from storage.optimade import ORDER_BY, FilterError, Table, source_sql, translate

if TYPE_CHECKING:
    import pandas as pd
    from ase import Atoms
    from pymatgen.core import Structure

__all__ = [
    "FilterError",
    "NoRowsError",
    "QueryError",
    "list_campaigns",
    "load_campaign",
    "load_candidates",
    "query",
    "to_atoms",
    "to_structures",
    "write_parquet",
]


class QueryError(LakeError):
    """A history query that cannot be answered (unknown campaign, unknown stage); one-line message."""


class NoRowsError(QueryError):
    """A query that matched nothing, where the caller needs at least one row."""


def resolve_lake(home: Lake | Path | str | None = None) -> Lake:
    """The lake to read: a :class:`Lake`, a folder, else ``$CSP_HOME`` (the same default as the CLI).

    Raises:
        NoLakeError: no lake there (:func:`storage.lake.open_read_only`; nothing is created).
    """
    if isinstance(home, Lake):
        return home.require()
    if home is None:
        home = os.environ.get("CSP_HOME") or default_home()
    return open_read_only(home)


def list_campaigns(home: Lake | Path | str | None = None) -> pd.DataFrame:
    """Every campaign's latest state, newest first (:func:`storage.campaigns.list_campaigns` as a
    DataFrame): id, composition, status, counts, elapsed seconds, reason, when written."""
    return list_campaign_rows(resolve_lake(home)).to_pandas()


def load_campaign(campaign_id: str, *, home: Lake | Path | str | None = None) -> dict[str, Any]:
    """One campaign's latest state, its parameters and summary (top k) as a dict.

    Keys: ``campaign_id``, ``composition``, ``status``, ``reason``, ``n_candidates``, ``elapsed_s`` (s),
    ``model_ids``, ``parameters`` (dict), ``summary`` (dict, empty until completed), ``written_at``.

    Raises:
        QueryError: no campaign with this id (the message lists a few known ids).
    """
    lake = resolve_lake(home)
    row = campaign_row(lake, campaign_id)
    if row is None:
        known = list_campaign_rows(lake).column("campaign_id").to_pylist()[:3]  # newest first
        hint = ", ".join(known) or "none yet"
        raise QueryError(f"No campaign {campaign_id!r} in the lake (latest: {hint}).")
    return {
        "campaign_id": row["campaign_id"],
        "composition": row["composition"],
        "status": row["status"],
        "reason": row["reason"],
        "n_candidates": row["n_candidates"],
        "elapsed_s": row["elapsed_s"],
        "model_ids": list(row["model_ids"] or []),
        "parameters": json.loads(row["parameters_json"]),
        "summary": json.loads(row["summary_json"]) if row["summary_json"] else {},
        "written_at": row["written_at"],
    }


def query(
    filter_: str | None = None,
    *,
    table: Table = "candidates",
    where: Mapping[str, Any] | None = None,
    limit: int | None = None,
    home: Lake | Path | str | None = None,
) -> pa.Table:
    """Rows of ``candidates`` or ``structures`` matching an OPTIMADE filter, as an Arrow table.

    Args:
        filter_: OPTIMADE filter (None: every row).
        table: ``candidates`` or ``structures``.
        where: extra equality conditions on columns of the source query (values are bound).
        limit: at most this many rows.
        home: the lake (default ``$CSP_HOME``).

    Raises:
        FilterError: malformed filter or unknown field (message points at the token).
    """
    if table not in ORDER_BY:
        raise FilterError(f"Filters run over 'candidates' or 'structures', not {table!r}.")
    conditions: list[str] = []
    params: list[Any] = []
    if filter_ is not None and filter_.strip():
        translation = translate(filter_, table)
        conditions.append(translation.where)
        params.extend(translation.params)
    for column, value in (where or {}).items():
        if not column.isidentifier():
            raise QueryError(f"{column!r} is not a column name.")
        conditions.append(f'"{column}" = ?')
        params.append(value)
    sql = f"SELECT * FROM ({source_sql(table)})"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += f" ORDER BY {ORDER_BY[table]}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    with resolve_lake(home).connect() as con:
        return con.arrow(sql, params)


def load_candidates(
    filter: str | None = None,
    *,
    campaign: str | None = None,
    stage: str | None = None,
    as_arrow: bool = False,
    limit: int | None = None,
    home: Lake | Path | str | None = None,
) -> pd.DataFrame | pa.Table:
    """Every evaluated candidate, in scoring order, one row each (optionally filtered).

    Columns: the ``candidates`` table's (``campaign_id``, ``stage``, ``outer_step``, ``inner_step``,
    ``spacegroup``, ``dhf_pred_ev_per_atom`` (eV/atom), ``p_syn``, ``fitness``, ``valid``,
    ``reject_reason``, ``seed``, ``seconds`` (campaign wall time, s), ``model_ids``, ``lattice_angstrom``,
    ``numbers``, ``frac_coords``, ...) plus ``evaluation`` (1-based scoring order within campaign and
    stage), ``best_fitness`` (best-so-far fitness at that evaluation, over the unfiltered history) and the
    OPTIMADE fields (``id``, ``elements``, ``nsites``, ``chemical_formula_reduced``, ...).

    Args:
        filter: OPTIMADE filter over candidate fields (see :data:`storage.optimade.FIELDS`).
        campaign: only this campaign (must exist).
        stage: only ``inner``, ``outer`` (or ``refined`` where refinement wrote rows).
        as_arrow: return a ``pyarrow.Table`` instead of a pandas DataFrame.
        limit: at most this many rows.
        home: the lake (default ``$CSP_HOME``).

    Raises:
        QueryError: unknown campaign id. FilterError: a bad filter.
    """
    lake = resolve_lake(home)
    if campaign is not None:
        load_campaign(campaign, home=lake)
    where = {k: v for k, v in (("campaign_id", campaign), ("stage", stage)) if v is not None}
    table = query(filter, table="candidates", where=where, limit=limit, home=lake)
    return table if as_arrow else table.to_pandas()


def _records(rows: Any) -> list[dict[str, Any]]:
    if isinstance(rows, pa.Table):
        return rows.to_pylist()
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        return rows.to_dict("records")
    if isinstance(rows, Mapping):
        return [dict(rows)]
    return [dict(r) for r in rows]


def to_structures(rows: Any) -> list[Structure]:
    """pymatgen ``Structure`` of every row (candidates or structures rows; DataFrame, Arrow or dicts).

    Each structure's ``properties`` carry the row's id, and for candidates the predicted formation
    enthalpy (eV/atom), P_syn, fitness, space group and model ids.

    Raises:
        NoRowsError: no rows. QueryError: a row without lattice/sites.
    """
    from pymatgen.core import Lattice, Structure

    records = _records(rows)
    if not records:
        raise NoRowsError("No rows to convert: the query matched nothing.")
    out = []
    for rec in records:
        if rec.get("lattice_angstrom") is None or rec.get("frac_coords") is None:
            raise QueryError("A row has no lattice_angstrom/frac_coords; select whole rows to convert.")
        species = rec.get("numbers")
        if species is None:
            species = rec.get("species")
        lattice = Lattice(np.asarray(rec["lattice_angstrom"], dtype=float).reshape(3, 3))
        frac = np.asarray([list(v) for v in rec["frac_coords"]], dtype=float)
        species = [int(z) if isinstance(z, int | np.integer) else str(z) for z in species]
        props = {
            k: _plain(rec[k])
            for k in (
                "id",
                "campaign_id",
                "stage",
                "outer_step",
                "inner_step",
                "spacegroup",
                "dhf_pred_ev_per_atom",
                "dhf_dft_ev_per_atom",
                "p_syn",
                "fitness",
                "model_ids",
            )
            if k in rec and rec[k] is not None
        }
        out.append(Structure(lattice, species, frac, properties=props))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_atoms(rows: Any) -> list[Atoms]:
    """ASE ``Atoms`` of every row, via pymatgen's ``AseAtomsAdaptor`` (needs ase, the augment extra)."""
    try:
        from pymatgen.io.ase import AseAtomsAdaptor
    except ImportError as exc:  # pragma: no cover - ase ships with the augment extra
        raise QueryError("ASE is not installed: pip install 'alignn-csp[augment]'.") from exc
    return [AseAtomsAdaptor.get_atoms(s) for s in to_structures(rows)]


def write_parquet(rows: pd.DataFrame | pa.Table | Iterable[dict[str, Any]], path: Path | str) -> Path:
    """Write rows (e.g. from :func:`load_candidates`) to one Parquet file (zstd); returns the path.

    The file is written under a hidden temporary name beside ``path`` and renamed into place, so a write
    that fails half-way leaves ``path`` as it was (absent, or the earlier file) and no partial file.

    Raises:
        NoRowsError: no rows to write (nothing is written).
        storage.errors.DiskWriteError: the disk refused the write (nothing is left).
    """
    import pyarrow.parquet as pq

    if isinstance(rows, pa.Table):
        table = rows
    elif hasattr(rows, "columns"):
        table = pa.Table.from_pandas(rows, preserve_index=False)
    else:
        table = pa.Table.from_pylist(list(rows))
    if table.num_rows == 0:
        raise NoRowsError("No rows to write: the query matched nothing.")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:12]}")
    with writing(path, advice="or choose another path"):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            pq.write_table(table, tmp, compression="zstd")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def filter_error_line(exc: FilterError) -> str:
    """The one-line message of a filter error (for CLIs)."""
    return str(exc).splitlines()[0]
