"""``csp augment plan|label|ingest``: polymorph augmentation labelled by a universal potential."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli._common import console, fail
from flows.cli._options import number_option, output_option
from flows.settings import lake as current_lake
from flows.settings import settings as current_settings

augment_app = typer.Typer(
    help="Polymorph augmentation labelled by a universal potential (needs the augment extra).",
    no_args_is_help=True,
)


@augment_app.command("plan")
def augment_plan(
    out: Annotated[Path, output_option("Where to write the plan (.npz).", "file")],
    composition: Annotated[
        list[str] | None, typer.Option("--composition", "-c", help="Formulas (default: from the lake).")
    ] = None,
    max_compositions: Annotated[int, number_option("Compositions planned.", low=1)] = 3000,
    max_prototypes: Annotated[int, number_option("Prototype decorations per composition.", low=0)] = 12,
    random_structures: Annotated[
        int, number_option("Random symmetric structures per composition.", low=0)
    ] = 8,
    reference_sample: Annotated[
        int, number_option("Held-out MP-scale DFT test rows per source to evaluate on.", low=0)
    ] = 600,
    workers: Annotated[int, number_option("Processes.", low=1, high=256)] = 2,
    seed: Annotated[int, number_option("Seed of the plan's random choices.", low=0, high=2**63 - 1)] = 0,
    polymorph_cases: Annotated[
        bool, typer.Option(help="Only the well-known polymorph cases of the ordering benchmark.")
    ] = False,
) -> None:
    """Plan prototype decorations, symmetric random structures and elemental references."""
    from flows.augmentation import plan_compositions, polymorph_plan

    if polymorph_cases:
        summary = polymorph_plan(out)
        console.print(f"{summary.rows} decorations of {summary.compositions} polymorph cases -> {out}")
        return
    try:
        summary = plan_compositions(
            current_lake(),
            out,
            compositions=composition,
            max_compositions=max_compositions,
            exclusions_file=current_settings().exclusions_file,
            seed=seed,
            max_prototypes=max_prototypes,
            random_structures=random_structures,
            reference_sample=reference_sample,
            workers=workers,
        )
    except (ValueError, KeyError) as exc:
        fail(str(exc))
    console.print(
        f"{summary.rows} rows over {summary.compositions} compositions -> {summary.path} "
        f"({summary.by_kind}; {summary.seconds:.0f} s)"
    )


@augment_app.command("label")
def augment_label(
    plan: Annotated[Path, typer.Argument(help="A plan written by csp augment plan.")],
    out: Annotated[Path, output_option("Folder for the labelled files.", "folder")],
    potential: Annotated[str, typer.Option(help="chgnet or sevennet.")] = "chgnet",
    workers: Annotated[int, number_option("Processes.", low=1, high=256)] = 1,
    relax_steps: Annotated[int, number_option("Most relaxation steps per structure.", low=1)] = 40,
    distortions: Annotated[int, number_option("Distorted copies labelled per structure.", low=0)] = 3,
    time_limit_s: Annotated[
        float, number_option("Stop labelling after this many seconds.", low=1, high=30 * 86400, integer=False)
    ] = 3600.0,
) -> None:
    """Label a plan here (CSP_DEVICE picks cpu/cuda), skipping rows already labelled in the lake."""
    from flows.augmentation import done_ids, label_plan, potential_source_name

    if not plan.is_file():
        fail(f"{plan} is not a file.")
    if potential not in ("chgnet", "sevennet"):
        fail(f"Unknown potential {potential!r}; choose chgnet or sevennet.")
    try:
        skip = done_ids(current_lake(missing_ok=True), potential_source_name(potential))
    except RuntimeError as exc:
        fail(str(exc))
    summary = label_plan(
        plan,
        out,
        potential=potential,
        device=current_settings().device,
        workers=workers,
        relax_steps=relax_steps,
        distortions=distortions,
        time_limit_s=time_limit_s,
        skip_ids=skip,
    )
    console.print(
        f"labelled {summary['labelled_rows']} rows over {summary['compositions']} compositions "
        f"in {summary['elapsed_s']} s -> {out}"
    )


@augment_app.command("ingest")
def augment_ingest(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Labelled .npz files (python -m csp.potentials.relaxer label) or committed .parquet parts."
        ),
    ],
) -> None:
    """Ingest labelled rows: formation enthalpies from the files' own elemental references."""
    from flows.augmentation import ingest_labels
    from storage.ingest import new_run_id

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        fail(f"Not a file: {', '.join(missing)}")
    try:
        report = ingest_labels(current_lake(init=True), files, run_id=new_run_id("augment"), workers=2)
    except ValueError as exc:
        fail(str(exc))
    current_lake().refresh_catalog()
    console.print(
        f"{report.written} rows written to structures (sources {report.sources}), "
        f"{report.quarantined} quarantined, {report.skipped} evaluation/elemental rows kept out"
    )


@augment_app.command("export")
def augment_export(
    files: Annotated[list[Path], typer.Argument(help="Labelled .npz files of one potential.")],
    out: Annotated[
        Path, output_option("Folder for the Parquet parts (e.g. data/labels/chgnet-0.3.0).", "folder")
    ],
    append: Annotated[
        bool, typer.Option(help="Keep the folder's parts and add these after them (a further labelling run).")
    ] = False,
) -> None:
    """Write labelled rows as compressed Parquet parts with their formation enthalpies (to commit)."""
    from flows.label_data import export_label_parts

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        fail(f"Not a file: {', '.join(missing)}")
    try:
        report = export_label_parts(files, out, append=append)
    except ValueError as exc:
        fail(str(exc))
    console.print(
        f"{report.rows} rows ({report.training_rows} training rows over {report.compositions} compositions) "
        f"-> {len(report.paths)} parts in {out}; by kind {report.by_kind}; by relaxation {report.by_relaxation}"
    )


@augment_app.command("summary")
def augment_summary(
    files: Annotated[
        list[Path], typer.Argument(help="Committed .parquet parts (data/labels/<potential>/*.parquet).")
    ],
) -> None:
    """Print a data card's figures for committed labelled parts (JSON)."""
    import json

    from flows.label_data import summarise_parts
    from storage.errors import StorageError

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        fail(f"Not a file: {', '.join(missing)}")
    try:
        summary = summarise_parts(files)
    except StorageError as exc:
        fail(str(exc))
    console.print_json(json.dumps(summary))
