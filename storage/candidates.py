"""The lake side of a campaign: the search's candidate sink and the campaign event log.

``LakeSink`` implements the two calls the search needs (``append`` a scored batch, read a campaign's
``history`` back to resume) over the ``candidates`` table; ``storage`` knows nothing of the search
itself, only the row layout. Campaign status is an append-only event log (``campaign_events``); the
``campaigns`` view shows each campaign's latest event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from storage.lake import Lake


class LakeSink:
    """Append each scored batch as one Parquet part in the campaign's folder; read it back to resume."""

    def __init__(self, lake: Lake, *, run_id: str, model_ids: Sequence[str] = ()) -> None:
        self.lake = lake.init()
        self.run_id = run_id
        self.model_ids = list(model_ids)

    def append(self, rows: list[dict[str, Any]]) -> None:
        out = []
        for row in rows:
            rec = dict(row)
            rec["lattice_angstrom"] = rec.pop("lattice")
            flat = rec["frac_coords"]
            rec["frac_coords"] = [flat[i : i + 3] for i in range(0, len(flat), 3)]
            rec.setdefault("model_ids", self.model_ids)
            reason = rec.get("reject_reason")
            rec["reject_reason"] = reason if isinstance(reason, str) and reason else None  # valid: null
            out.append(rec)
        # the search never writes a key twice (it replays history on resume) and the views keep one
        # row per key, so appends skip the read-back that deduplication would cost
        self.lake.append("candidates", out, run_id=self.run_id, dedupe=False)

    def history(self, campaign_id: str) -> list[dict[str, Any]]:
        return search_rows(self.lake, campaign_id)


def search_rows(
    lake: Lake,
    campaign_id: str,
    stages: Sequence[str] | None = None,
    *,
    spacegroup: int | None = None,
    lowest_energy_first: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """A campaign's candidate rows (all stages, or only ``stages``) in the row layout of the search
    (``lattice`` 9 floats, ``frac_coords`` 3n floats, ``reject_reason`` "" for a valid row: the lake
    stores null), ordered by key.

    Args:
        lake: the lake holding the campaign.
        campaign_id: its id.
        stages: only these stages (default: all).
        spacegroup: only rows whose detected space group is this one.
        lowest_energy_first: order valid rows by the model's dHf (lowest first) instead of by key.
        limit: at most this many rows.
    """
    where = "campaign_id = ?" + (f" AND stage IN ({', '.join('?' * len(stages))})" if stages else "")
    params: list[Any] = [campaign_id, *(stages or [])]
    if spacegroup is not None:
        where += " AND spacegroup = ?"
        params.append(int(spacegroup))
    order = "outer_step, inner_step"
    if lowest_energy_first:
        where += " AND valid AND dhf_pred_ev_per_atom IS NOT NULL"
        order = "dhf_pred_ev_per_atom, " + order
    tail = ""
    if limit is not None:
        tail = " LIMIT ?"
        params.append(int(limit))
    table = lake.query(
        f"SELECT * EXCLUDE (run_id, written_at, model_ids) FROM candidates WHERE {where} ORDER BY {order}{tail}",
        params,
    )
    rows = []
    for rec in table.to_pylist():
        rec["lattice"] = rec.pop("lattice_angstrom")
        rec["frac_coords"] = [v for triple in rec["frac_coords"] for v in triple]
        rec["reject_reason"] = rec["reject_reason"] or ""
        rows.append(rec)
    return rows


#: the light columns of a search trace (no structures)
TRACE_COLUMNS = (
    "campaign_id",
    "stage",
    "outer_step",
    "inner_step",
    "spacegroup",
    "dhf_pred_ev_per_atom",
    "fitness",
    "valid",
    "seconds",
)


def search_trace(lake: Lake, campaign_id: str) -> Any:
    """A campaign's search as light columns (:data:`TRACE_COLUMNS`, no structures), ``inner`` and ``outer``
    rows in scoring order (by key), as an Arrow table: what convergence curves, evaluation counts and
    energy distributions are made from, at a fraction of the cost of :func:`search_rows`."""
    return lake.query(
        f"SELECT {', '.join(TRACE_COLUMNS)} FROM candidates WHERE campaign_id = ? "
        "AND stage IN ('inner', 'outer') ORDER BY outer_step, inner_step",
        [campaign_id],
    )


def record_event(
    lake: Lake,
    campaign_id: str,
    *,
    composition: str,
    status: str,
    parameters: dict[str, Any],
    run_id: str,
    reason: str | None = None,
    model_ids: Sequence[str] = (),
    n_candidates: int | None = None,
    elapsed_s: float | None = None,
    summary: dict[str, Any] | None = None,
) -> int:
    """Append the next event of a campaign (running, completed, failed, interrupted); returns its seq."""
    previous = (
        lake.query(
            "SELECT coalesce(max(seq), -1) AS seq FROM campaign_events WHERE campaign_id = ?", [campaign_id]
        )
        .column("seq")[0]
        .as_py()
    )
    seq = int(previous) + 1
    lake.append(
        "campaign_events",
        [
            {
                "campaign_id": campaign_id,
                "seq": seq,
                "composition": composition,
                "status": status,
                "reason": reason,
                "parameters_json": json.dumps(parameters, sort_keys=True),
                "model_ids": list(model_ids),
                "n_candidates": n_candidates,
                "elapsed_s": elapsed_s,
                "summary_json": json.dumps(summary) if summary is not None else None,
            }
        ],
        run_id=run_id,
    )
    return seq
