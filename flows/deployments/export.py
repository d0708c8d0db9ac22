"""Prefect deployment ``export``: a trained run folder -> ONNX model folder, after checking its lineage.

(The deployment keeps its name; the Python function it calls is :func:`flows.models.export_model`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.settings import settings


@task(name="verify-lineage", cache_policy=NO_CACHE)
def check_lineage(run_dir: str, mode: str) -> dict:
    """Re-export the training set from the lake; fail if the run was trained on other data."""
    from flows.models import verify_lineage

    return verify_lineage(Path(run_dir), mode)


@task(name="export-onnx", cache_policy=NO_CACHE)
def export_run(run_dir: str, name: str, summary: dict, command: str, description: str) -> str:
    from flows.models import export_model

    return str(export_model(Path(run_dir), name, summary=summary, command=command, description=description))


@flow(name="export")
def export(
    run_dir: str,
    name: str,
    mode: Literal["dft", "transfer", "pu"] = "dft",
    description: str = "",
) -> str:
    """Export a run folder to the models directory (ONNX + model.json + card) and register it.

    Args:
        run_dir: Run folder holding checkpoint.pt and metrics.json (relative to the working directory
            or absolute).
        name: Model folder name under the models directory, e.g. alignn-dft.
        mode: Training mode of the run; its training set is re-exported to check the lineage.
        description: One line for the model card.
    """
    logger = get_run_logger()
    if not (Path(run_dir) / "metrics.json").is_file():
        raise ValueError(f"{run_dir} is not a run folder (no metrics.json).")
    summary = check_lineage(run_dir, mode)
    logger.info("lineage ok: training data %s", summary["content_hash"][:12])
    folder = export_run(run_dir, name, summary, f"prefect flow export (mode {mode})", description)
    card = Path(folder) / "README.md"
    create_markdown_artifact(
        markdown=card.read_text() if card.is_file() else f"Exported {name} to {folder}",
        key=f"model-{name.lower().replace('_', '-')}",
        description=f"Model card of {name} (models dir {settings().models_dir.name})",
    )
    logger.info("model folder %s", folder)
    return folder
