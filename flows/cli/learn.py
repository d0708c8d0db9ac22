"""``csp learn run|status|train``: active rounds (campaigns label their own top structures, the model learns).

``learn run`` takes one option per field of :class:`flows.active.ActiveParameters` (generated); the values go
straight into :func:`flows.active.run_rounds`. Each round resumes where it stopped.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from flows.active import ActiveParameters
from flows.cli._common import console, fail
from flows.cli._options import model_options

learn_app = typer.Typer(
    help="Active rounds: campaigns label their own top structures with a universal potential; the model learns.",
    no_args_is_help=True,
)


def _command() -> str:
    """This command line as typed, spelled with ``csp`` (``python -m flows.cli`` is the same program)."""
    return shlex.join(["csp", *sys.argv[1:]])


def _errors() -> tuple[type[BaseException], ...]:
    from csp.errors import CSPError
    from storage.errors import StorageError

    return (CSPError, StorageError, ValueError, FileNotFoundError)


@learn_app.command("run")
@model_options(ActiveParameters)
def learn_run(**values: Any) -> None:
    """Run active rounds: choose compositions, run a campaign each, label the top structures, train, record."""
    from flows.active import run_rounds

    try:
        states = run_rounds(values, command=_command(), say=lambda line: console.print(line, highlight=False))
    except _errors() as exc:
        fail(str(exc))
    for state in states:
        gap = state.gap("fresh")
        console.print(
            f"round {state.round}: {len(state.labelled_ids)} rows labelled ({state.training_rows} training rows) "
            f"over {len(state.train)} compositions; model {state.model_before_id} -> "
            f"{state.training.get('model_after_id') or '(not trained)'}; gap on {len(state.fresh)} fresh "
            f"compositions {'n/a' if gap is None else f'{gap:+.3f} eV/atom'}",
            highlight=False,
        )


@learn_app.command("status")
def learn_status(
    labels_dir: Annotated[
        Path | None, typer.Option(help="Folder of the round folders (default data/labels/active).")
    ] = None,
) -> None:
    """The rounds: compositions, rows, models before and after, the gap, and which steps are done."""
    from flows.active import round_table

    try:
        rows = round_table(labels_dir)
    except _errors() as exc:
        fail(str(exc))
    if not rows:
        console.print("No active round yet; `csp learn run` starts one.")
        return
    view = Table(title="active rounds")
    for name in rows[0]:
        view.add_column(name, overflow="fold")
    for row in rows:
        gap = row["gap_ev_per_atom"]
        view.add_row(
            *[f"{gap:+.3f}" if k == "gap_ev_per_atom" and gap is not None else str(v) for k, v in row.items()]
        )
    console.print(view)


@learn_app.command("train")
@model_options(ActiveParameters)
def learn_train(**values: Any) -> None:
    """Fine-tune on a round labelled with --no-train (``--round N``), then record it again."""
    from flows.active import train_round

    number = values.get("round")
    if number is None:
        fail("Name the round to train with --round N (`csp learn status` lists them).")
    try:
        state = train_round(number, values, command=_command())
    except _errors() as exc:
        fail(str(exc))
    console.print(
        f"round {state.round}: model {state.model_before_id} -> {state.training.get('model_after_id')}"
    )
