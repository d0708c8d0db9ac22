"""The one campaign result, read from the lake: what every face (CLI, notebook, Prefect) shows.

:func:`result_of` reads a campaign's stored parameters (``top_k``, ``refine_ranking``) and its outer,
refined and probe rows, and hands them to :func:`csp.potentials.result.campaign_result`, the only place a
campaign's answer is ranked, with the lake's physical check (:func:`storage.validation.structure_problem`):
what ``csp ingest`` would refuse is marked and ranked after what it accepts on every face.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.campaigns import result_rows, stored_parameters
from storage.errors import StorageError

if TYPE_CHECKING:
    from csp.potentials.result import CampaignResult
    from storage.lake import Lake

__all__ = ["NoCampaignError", "result_of"]


class NoCampaignError(StorageError, KeyError):
    """The lake has no campaign of this id."""

    def __str__(self) -> str:  # KeyError quotes its message; a person reads this one
        return str(self.args[0]) if self.args else ""


def result_of(
    lake: Lake, campaign_id: str, *, k: int | None = None, filter_: str | None = None
) -> CampaignResult:
    """The :class:`csp.potentials.result.CampaignResult` of a campaign in ``lake``.

    Args:
        lake: the lake holding the campaign.
        campaign_id: its id.
        k: entries in the top k (default: the campaign's ``top_k``, 5 when it has none).
        filter_: an OPTIMADE filter (:mod:`storage.optimade`): the result is made from the matching rows
            only (e.g. ``_csp_spacegroup=216``: the best distinct structures in that group); None: all.

    Raises:
        NoCampaignError: the lake has no campaign ``campaign_id``.
        storage.optimade.FilterError: a malformed filter or an unknown field.
    """
    from csp.potentials.refine import DEFAULT_RANKING
    from csp.potentials.result import campaign_result
    from storage.validation import structure_problem

    params = stored_parameters(lake, campaign_id)
    if params is None:
        raise NoCampaignError(f"No campaign {campaign_id!r} in the lake; `csp campaign list` shows the ids.")
    rows = result_rows(lake, campaign_id)
    if filter_ and filter_.strip():
        from storage.query import query

        hits = query(filter_, table="candidates", where={"campaign_id": campaign_id}, home=lake)
        keys = set(
            zip(*(hits.column(c).to_pylist() for c in ("stage", "outer_step", "inner_step")), strict=True)
        )
        rows = [r for r in rows if (r["stage"], r["outer_step"], r["inner_step"]) in keys]
    return campaign_result(
        rows,
        k=int(k or params.get("top_k") or 5),
        rule=params.get("refine_ranking") or DEFAULT_RANKING,
        check=structure_problem,
    )
