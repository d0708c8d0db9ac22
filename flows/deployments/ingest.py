"""Prefect deployment ``ingest``: every registered source from the data mirror into the lake."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from flows.settings import lake, settings


@task(retries=2, retry_delay_seconds=5)
def ingest_one(source: str, run_id: str) -> dict:
    """Ingest one source (idempotent, so a retry after a transient failure is safe)."""
    from storage.ingest import ingest_source

    report = ingest_source(lake(init=True), source, settings().require_mirror(), run_id=run_id)
    return {
        "source": report.source,
        "read": report.n_read,
        "written": sum(report.written.values()),
        "quarantined": report.n_rejected,
        "already_present": report.n_already_present,
        "reasons": dict(report.reasons()),
        "seconds": round(report.seconds, 2),
    }


@flow(name="ingest", log_prints=False)
def ingest(sources: list[str] | None = None) -> list[dict]:
    """Ingest the named sources (default: all registered), in dependency order."""
    from storage.ingest import ordered_sources

    logger = get_run_logger()
    names = ordered_sources(sources)
    run_id = f"flow-{flow_run.id}" if flow_run.id else "flow-local"
    results = []
    for name in names:
        result = ingest_one(name, run_id)
        logger.info("%s: %s", name, result)
        results.append(result)
    lake().refresh_catalog()
    return results
