"""Prefect deployment ``train``: lake -> training set -> ALIGNN -> ONNX model folder.

The parameters are the fields of :class:`flows.models.TrainParameters` (the same as ``csp models train``);
the model card records :meth:`flows.models.TrainParameters.command`, which reproduces the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from flows.deployments._form import fields_of, with_defaults
from flows.models import TrainParameters
from flows.settings import settings

__all__ = ["TrainParameters", "export_dataset", "export_model", "fit", "train"]


@task
def export_dataset(
    mode: str, work: str, sources: list[str] | None = None, hypothetical: list[str] | None = None
) -> dict:
    from flows.models import prepare_dataset, summary_dict

    out = Path(work) / f"{mode}.npz"
    return summary_dict(prepare_dataset(mode, out, sources=sources, hypothetical=hypothetical))


@task
def fit(params: TrainParameters, work: str) -> dict:
    from flows.models import train as train_run

    return train_run(
        params.mode,
        Path(work) / f"{params.mode}.npz",
        Path(work) / params.name,
        init=Path(params.init_run) if params.init_run else None,
        model_args=params.model_args(),
        train_args=params.train_args(settings().device),
        ensemble=params.ensemble,
        fidelity=params.fidelity,
    )


@task
def export_model(run_dir: str, name: str, summary: dict, command: str) -> str:
    from flows.models import export_model as export_run

    return str(export_run(Path(run_dir), name, summary=summary, command=command))


@flow(name="train", validate_parameters=True)
@fields_of(TrainParameters)
def train(**values: Any) -> str:
    """Export the training set from the lake, train, export to ONNX and register the model."""
    params = TrainParameters(**with_defaults(train, values))
    logger = get_run_logger()
    work = settings().home / "runs"
    summary = export_dataset(params.mode, str(work), params.sources, params.hypothetical_polymorphs)
    logger.info("training set: %s", summary)
    fit(params, str(work))
    folder = export_model(str(work / params.name), params.name, summary, params.command())
    logger.info("model folder %s", folder)
    return folder
