"""``csp models dataset|train|export|list|verify``: training sets, training, model folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from flows.cli._common import console, err, fail
from flows.cli._options import model_options, option, output_option
from flows.models import TrainParameters
from flows.settings import settings as current_settings

#: ``--hypothetical-polymorphs``: label parts whose prototype decorations join a PU set's unlabeled rows
HYPOTHETICAL = typer.Option(
    "--hypothetical-polymorphs",
    help="pu: labelled Parquet parts (files, folders or quoted globs, e.g. 'data/labels/chgnet-0.3.0/part-*.parquet') "
    "whose hypothetical structures (prototype decorations' last frames, the search generator's random structures, "
    "active rounds' search structures) join the unlabeled rows as hypothetical polymorphs of known compositions.",
)

models_app = typer.Typer(help="Trained models: train, export, list, verify.", no_args_is_help=True)


@models_app.command("dataset")
def models_dataset(
    mode: Annotated[str, typer.Argument(help="dft, transfer or pu.")],
    out: Annotated[Path, output_option("Where to write the .npz training set.", "file")],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source", "-s", help="Lake sources to train on (default: the DFT sources / Jha 2019)."
        ),
    ] = None,
    compress: Annotated[bool, typer.Option(help="Zip-compress the arrays (smaller to carry).")] = False,
    hypothetical_polymorphs: Annotated[list[str] | None, HYPOTHETICAL] = None,
) -> None:
    """Export a training set from the lake (the exclusion list is honoured)."""
    from flows.models import prepare_dataset
    from storage.errors import StorageError

    if mode not in ("dft", "transfer", "pu"):
        fail(f"Unknown mode {mode!r}; choose dft, transfer or pu.")
    try:
        summary = prepare_dataset(
            mode,
            out,
            sources=source or None,
            compress=compress,
            hypothetical=hypothetical_polymorphs or None,
        )
    except (ValueError, FileNotFoundError, StorageError) as exc:  # a bad label part, a missing file
        fail(str(exc))
    console.print(
        f"{summary.rows} rows -> {out} (splits {summary.per_split}, sources {summary.per_source}, "
        f"fidelities {summary.per_fidelity}, {summary.excluded_rows} excluded, sha256 {summary.sha256[:12]})"
    )
    if summary.geometry_refused:
        console.print(
            f"{summary.geometry_refused} stored rows left out: today's geometry check refuses them (written "
            "under an older ingest rule; a lake ingested anew quarantines them)"
        )
    if summary.hypothetical:
        console.print(f"hypothetical polymorphs: {summary.hypothetical}")


@models_app.command("train")
@model_options(
    TrainParameters,
    arguments=("mode",),
    extra=[
        option("export_model", bool, True, "Export the run to ONNX with its card.", "--export/--no-export")
    ],
)
def models_train(**values: Any) -> None:
    """Export the training set, train on this machine, export to ONNX and write the model card."""
    from pydantic import ValidationError

    from flows.checks import parameter_error
    from flows.models import train_and_export

    export_model = values.pop("export_model")
    try:
        params = TrainParameters(**values)
    except ValidationError as exc:
        fail(parameter_error(exc, TrainParameters))
    from csp.errors import CSPError
    from storage.errors import StorageError

    try:
        _, info, folder = train_and_export(params, export=export_model, progress=console.print)
    # e.g. a training structure the graphs cannot represent (named by its id), a missing file
    except (CSPError, ValueError, FileNotFoundError, StorageError) as exc:
        fail(str(exc))
    console.print(f"metrics: {info.get('metrics', {}).get('test')}")
    if folder is not None:
        console.print(f"exported {folder}")


@models_app.command("export")
def models_export(
    run_dir: Annotated[
        Path, typer.Argument(help="Run folder written by python -m csp.models.training (checkpoint.pt).")
    ],
    name: Annotated[str, typer.Option(help="Model folder name under the models directory.")],
    mode: Annotated[str, typer.Option(help="Training set the run used: dft, transfer or pu.")],
    command: Annotated[str, typer.Option(help="How the run was trained (goes into the model card).")] = "",
    description: Annotated[str, typer.Option(help="One paragraph for the model card.")] = "",
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="The sources the run was trained on (default: the mode's)."),
    ] = None,
    hypothetical_polymorphs: Annotated[list[str] | None, HYPOTHETICAL] = None,
) -> None:
    """Export a training run to ONNX with its card, after checking it was trained on this lake's data."""
    from flows.models import export_model, verify_lineage
    from storage.errors import StorageError

    if mode not in ("dft", "transfer", "pu"):
        fail(f"Unknown mode {mode!r}; choose dft, transfer or pu.")
    settings = current_settings()
    try:
        summary = verify_lineage(
            run_dir, mode, settings, sources=source or None, hypothetical=hypothetical_polymorphs or None
        )
    except (ValueError, StorageError) as exc:
        fail(str(exc))
    folder = export_model(
        run_dir, name, summary=summary, command=command, description=description, settings=settings
    )
    console.print(
        f"exported {folder} (training data matches the lake export: {summary['content_hash'][:12]})"
    )


@models_app.command("list")
def models_list() -> None:
    """Shipped model folders with their kind and sha256."""
    import json

    settings = current_settings()
    view = Table(title=f"models in {settings.models_dir}")
    for col in ("name", "task", "sha256", "test metrics"):
        view.add_column(col)
    for meta_path in sorted(settings.models_dir.glob("*/model.json")):
        meta = json.loads(meta_path.read_text())
        test = meta.get("metrics", {}).get("test", {})
        view.add_row(
            meta_path.parent.name,
            meta.get("task", "?"),
            meta.get("sha256", "")[:12],
            ", ".join(f"{k}={v:.4g}" for k, v in test.items() if isinstance(v, float | int)),
        )
    console.print(view)


@models_app.command("verify")
def models_verify() -> None:
    """Check the model folders exactly as a campaign does: files, sha256, task/outputs, elements, ONNX load.

    The folders configured as the dft, exp and pu models are checked for that role (a PU model in the
    enthalpy slot fails); any other folder is checked without a role.
    """
    from flows.models import verify_models

    if not verify_models(current_settings(), console.print, err.print):
        raise typer.Exit(1)
