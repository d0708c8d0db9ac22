"""Prefect flows ``train`` and ``export``: lake -> training set -> ALIGNN -> ONNX model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from pydantic import BaseModel, Field

from flows.settings import Settings


class TrainParameters(BaseModel):
    """Flat, typed parameters (the Prefect UI draws them as a form)."""

    mode: Literal["dft", "transfer", "pu"] = Field("dft", description="Which model to train.")
    name: str = Field("alignn-dft", description="Model folder name under the models directory.")
    init_run: str | None = Field(None, description="Run folder of the DFT model (transfer and pu).")
    epochs: int = Field(30, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=4096)
    hidden: int = Field(64, ge=8, le=512)
    alignn_layers: int = Field(2, ge=0, le=8)
    gcn_layers: int = Field(2, ge=0, le=8)
    n_bags: int = Field(100, ge=1, le=1000, description="PU ensemble size.")
    time_limit_s: float | None = Field(None, gt=0)
    seed: int = 0
    sources: list[str] | None = Field(
        None, description="Lake sources to train on (default: the DFT sources); name mlip sources explicitly."
    )


@task
def export_dataset(mode: str, work: str, sources: list[str] | None = None) -> dict:
    from flows.training import prepare_dataset, summary_dict

    return summary_dict(prepare_dataset(mode, Path(work) / f"{mode}.npz", sources=sources))


@task
def fit(params: TrainParameters, work: str) -> dict:
    from flows.training import train

    model_args = {
        "hidden": params.hidden,
        "alignn_layers": params.alignn_layers,
        "gcn_layers": params.gcn_layers,
    }
    if params.mode == "pu":
        model_args["n_bags"] = params.n_bags
    return train(
        params.mode,
        Path(work) / f"{params.mode}.npz",
        Path(work) / params.name,
        init=Path(params.init_run) if params.init_run else None,
        model_args=model_args,
        train_args={
            "epochs": params.epochs,
            "batch_size": params.batch_size,
            "seed": params.seed,
            "time_limit_s": params.time_limit_s,
            "device": Settings().device,
        },
    )


@task
def export_model(run_dir: str, name: str, summary: dict, command: str) -> str:
    from flows.training import export

    return str(export(Path(run_dir), name, summary=summary, command=command))


@flow(name="train", validate_parameters=True)
def train(
    mode: Literal["dft", "transfer", "pu"] = "dft",
    name: str = "alignn-dft",
    init_run: str | None = None,
    epochs: int = 30,
    batch_size: int = 64,
    hidden: int = 64,
    alignn_layers: int = 2,
    gcn_layers: int = 2,
    n_bags: int = 100,
    time_limit_s: float | None = None,
    seed: int = 0,
    sources: list[str] | None = None,
) -> str:
    """Export the training set from the lake, train, export to ONNX and register the model.

    Flat parameters (the Prefect UI draws a form); they are validated by :class:`TrainParameters`.
    """
    params = TrainParameters(
        mode=mode,
        name=name,
        init_run=init_run,
        epochs=epochs,
        batch_size=batch_size,
        hidden=hidden,
        alignn_layers=alignn_layers,
        gcn_layers=gcn_layers,
        n_bags=n_bags,
        time_limit_s=time_limit_s,
        seed=seed,
        sources=sources,
    )
    logger = get_run_logger()
    work = Settings().home / "runs"
    summary = export_dataset(params.mode, str(work), params.sources)
    logger.info("training set: %s", summary)
    fit(params, str(work))
    command = f"csp models train {params.mode} --name {params.name} --epochs {params.epochs} --hidden {params.hidden}"
    folder = export_model(str(work / params.name), params.name, summary, command)
    logger.info("model folder %s", folder)
    return folder
