"""Prefect deployment ``active``: active rounds (campaigns label their own top structures; the model learns).

The form is :class:`flows.active.ActiveParameters` (the ``csp learn run`` options); the run is
:func:`flows.active.run_rounds`, so a killed run started again resumes the unfinished round and labels
nothing twice. Each finished round becomes a table artifact row.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.active import ActiveParameters
from flows.deployments._form import fields_of, with_defaults

__all__ = ["active"]


@flow(name="active", validate_parameters=True)
@fields_of(ActiveParameters, first=("rounds", "compositions", "fresh", "workers", "device", "train"))
def active(**values: Any) -> list[dict[str, Any]]:
    """Run active rounds: choose compositions, one campaign each, label, fine-tune, record."""
    from flows.active import run_rounds

    logger = get_run_logger()
    params = with_defaults(active, values)
    command = "prefect deployment run active/active " + " ".join(
        f"--param {k}={v}" for k, v in sorted(values.items()) if v is not None
    )
    states = run_rounds(params, command=command, say=logger.info)
    rows = [state.record() for state in states]
    shown = ("round", "rows_labelled", "rows_added", "model_before", "model_after", "gap_ev_per_atom")
    create_table_artifact(
        table=[{k: r[k] for k in shown} for r in rows],
        key="active-rounds",
        description=f"{len(rows)} active round(s); the record of every round: the results file",
    )
    return rows
