"""Every campaign query of the lake: list, one campaign's row, status, parameters, counts, report rows.

The search's sink (:class:`LakeSink`) and the event log (:func:`record_event`) live in
:mod:`storage.candidates` and are re-exported here, so the faces import campaign storage from one module.
The ``campaigns`` view shows each campaign's latest event; ``candidates`` holds every scored structure.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from storage.candidates import LakeSink, record_event, search_rows
from storage.lake import Lake

__all__ = [
    "LakeSink",
    "best_fitness_curve",
    "best_of_campaigns",
    "campaign_report",
    "campaign_row",
    "campaign_status",
    "candidate_counts",
    "candidates_sql",
    "list_campaigns",
    "record_event",
    "result_rows",
    "stored_parameters",
]


def candidates_sql(campaign_id: str, limit: int = 20) -> str:
    """The query a person pastes into ``csp sql`` to see a campaign's best candidates (display text for the
    faces; never executed here, and ``csp sql`` runs it read-only)."""
    return (
        "SELECT outer_step, inner_step, spacegroup, dhf_pred_ev_per_atom, fitness, valid FROM candidates "
        f"WHERE campaign_id = '{campaign_id}' ORDER BY fitness NULLS LAST LIMIT {int(limit)}"
    )


#: the candidates each campaign has stored, counted from the rows themselves (the ``candidates`` view keeps one
#: row per key): the count :func:`candidate_counts` gives and the ``completed`` event records, but the same for
#: a campaign still running, interrupted, killed (``stale``) or failed, whose last event carries no count
STORED_COUNTS_SQL = (
    "SELECT campaign_id, count(*) AS n FROM candidates WHERE stage = 'inner' GROUP BY campaign_id"
)


def list_campaigns(lake: Lake) -> pa.Table:
    """Every campaign with its latest status, newest first (id, composition, status, counts, reason).

    ``n_candidates`` is what the lake holds for the campaign (:data:`STORED_COUNTS_SQL`), whatever its state.
    ``elapsed_s`` is the latest event's: the seconds of the last run (a resume's own part).
    ``total_elapsed_s`` adds up every run of the campaign (each run's ending event records its seconds: completed,
    interrupted or failed; a run killed outright (``kill -9``) recorded none and adds nothing)."""
    return lake.query(
        # one ending event per run carries elapsed_s (a run's `running` event has none)
        "WITH totals AS (SELECT campaign_id, sum(elapsed_s) AS total FROM campaign_events GROUP BY 1), "
        f"stored AS ({STORED_COUNTS_SQL}) "
        "SELECT c.campaign_id, c.composition, c.status, coalesce(s.n, 0) AS n_candidates, "
        "round(c.elapsed_s, 1) AS elapsed_s, round(t.total, 1) AS total_elapsed_s, c.reason, c.written_at "
        "FROM campaigns c LEFT JOIN totals t USING (campaign_id) LEFT JOIN stored s USING (campaign_id) "
        "ORDER BY c.written_at DESC"
    )


def campaign_row(lake: Lake, campaign_id: str) -> dict[str, Any] | None:
    """The ``campaigns`` row of one campaign (its latest event), or ``None`` when the lake has none; its
    ``n_candidates`` is what the lake holds for it, whatever its state (as in :func:`list_campaigns`)."""
    rows = lake.query(
        "SELECT * REPLACE (coalesce((SELECT count(*) FROM candidates WHERE campaign_id = ? AND stage = 'inner'), 0) "
        "AS n_candidates) FROM campaigns WHERE campaign_id = ?",
        [campaign_id, campaign_id],
    ).to_pylist()
    return rows[0] if rows else None


def campaign_status(lake: Lake, campaign_id: str) -> str | None:
    """The latest status (running, completed, failed, interrupted), or ``None`` for an unknown id."""
    rows = lake.query("SELECT status FROM campaigns WHERE campaign_id = ?", [campaign_id]).to_pylist()
    return rows[0]["status"] if rows else None


def stored_parameters(lake: Lake, campaign_id: str) -> dict[str, Any] | None:
    """The parameters a campaign was started with (for resume), or ``None`` for an unknown id."""
    rows = lake.query(
        "SELECT parameters_json, status FROM campaigns WHERE campaign_id = ?", [campaign_id]
    ).to_pylist()
    return json.loads(rows[0]["parameters_json"]) if rows else None


def candidate_counts(lake: Lake, campaign_id: str) -> tuple[int, float]:
    """Inner candidates scored and the share of them that were invalid (0..1)."""
    counts = lake.query(
        "SELECT count(*) AS n, coalesce(avg(CASE WHEN valid THEN 0 ELSE 1 END), 0) AS invalid "
        "FROM candidates WHERE campaign_id = ? AND stage = 'inner'",
        [campaign_id],
    ).to_pylist()[0]
    return int(counts["n"]), float(counts["invalid"])


def best_fitness_curve(lake: Lake, campaign_id: str) -> list[float]:
    """Best fitness so far after each outer step (``inf`` until a step is scored); lower is better."""
    steps = lake.query(
        "SELECT outer_step, fitness, spacegroup, wyckoff FROM candidates "
        "WHERE campaign_id = ? AND stage = 'outer' ORDER BY outer_step",
        [campaign_id],
    ).to_pylist()
    best, curve = float("inf"), []
    for s in steps:
        if s["fitness"] is not None:
            best = min(best, float(s["fitness"]))
        curve.append(best)
    return curve


def campaign_report(lake: Lake, campaign_id: str) -> dict[str, Any]:
    """What the lake knows of a campaign: status, counts, top k, best fitness per outer step, parameters.

    Raises:
        KeyError: the lake has no campaign ``campaign_id``.
    """
    row = campaign_row(lake, campaign_id)
    if row is None:
        raise KeyError(f"No campaign {campaign_id!r} in the lake.")
    summary = json.loads(row["summary_json"]) if row["summary_json"] else {}
    return {
        "campaign_id": campaign_id,
        "composition": row["composition"],
        "status": row["status"],
        "n_candidates": row["n_candidates"],
        "elapsed_s": row["elapsed_s"],
        "invalid_share": summary.get("invalid_share"),
        "thin_elements": summary.get("thin_elements", {}),
        "top": summary.get("top", []),
        "top_search": summary.get("top_search", []),
        "result": summary.get("result"),
        "excluded_by_atom_cap": summary.get("excluded_by_atom_cap"),
        "best_curve": best_fitness_curve(lake, campaign_id),
        "parameters": json.loads(row["parameters_json"]),
    }


def result_rows(lake: Lake, campaign_id: str) -> list[dict[str, Any]]:
    """The rows a campaign result is made from (stages ``outer``, ``refined``, ``single_point``), in the
    row layout of the search (``lattice`` 9 floats, ``frac_coords`` 3n floats), ordered by key."""
    return search_rows(lake, campaign_id, ("outer", "refined", "single_point"))


def best_of_campaigns(lake: Lake) -> dict[str, dict[str, str]]:
    """Rank 1 of each completed campaign's stored result, as text: ``structure`` (e.g. ``Fm-3m (225)``),
    ``energy`` (eV/atom: the potential's energy when refined, else the model's dHf, named) and ``rule``
    (what the result is ranked by); campaigns without a stored result are left out."""
    out: dict[str, dict[str, str]] = {}
    for rec in lake.query("SELECT campaign_id, summary_json FROM campaigns").to_pylist():
        summary = json.loads(rec["summary_json"]) if rec["summary_json"] else {}
        top = summary.get("top") or []
        if not top:
            continue
        best = top[0]
        result = summary.get("result") or {}
        energy = best.get("energy_potential_ev_per_atom")
        text = f"{energy:.4f} (potential)" if energy is not None else ""
        if energy is None and best.get("dhf_pred_ev_per_atom") is not None:
            text = f"{best['dhf_pred_ev_per_atom']:.4f} (model dHf)"
        out[rec["campaign_id"]] = {
            "structure": f"{best.get('spacegroup_symbol')} ({best.get('spacegroup')})",
            "energy": text,
            "rule": "potential energy" if result.get("refined") else ("FV" if result else ""),
        }
    return out
