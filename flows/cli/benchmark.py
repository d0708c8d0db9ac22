"""``csp benchmark paper``: the paper's Table 1 and Figs. 2-4 measured, and every miss explained.

One option per field of :class:`flows.paper.PaperParameters` (generated); :func:`flows.paper.run_paper` does
the work and writes ``report.md``, ``report.json`` and the figures.
"""

from __future__ import annotations

from typing import Any

import typer

from flows.cli._common import console, fail
from flows.cli._options import model_options
from flows.paper import PaperParameters

benchmark_app = typer.Typer(help="Benchmarks against the paper, written as a report.", no_args_is_help=True)


@benchmark_app.command("paper")
@model_options(PaperParameters)
def benchmark_paper(**values: Any) -> None:
    """Table 1, Figs. 2-4 and every miss explained; campaigns kept in the lake (a second run reads them back)."""
    from pydantic import ValidationError

    from csp.errors import CSPError
    from flows.checks import parameter_error
    from flows.paper import run_paper
    from storage.errors import StorageError

    try:
        params = PaperParameters(**values)
    except ValidationError as exc:
        fail(parameter_error(exc, PaperParameters))
    try:
        data = run_paper(params, say=lambda line: console.print(line, highlight=False))
    except (CSPError, StorageError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    for a in (data.get("table1") or {}).get("accuracy", []):
        console.print(
            f"Table 1 {a['strategy']} alpha {a['alpha']:g} {'refined' if a['refine'] else 'search only'}: "
            f"{a['mean_pct']:.1f} % (paper {a['paper_pct']:.1f} % on these compounds)",
            highlight=False,
        )
    console.print(f"report: {params.folder() / 'report.md'} ({data['wall_s'] / 60:.1f} min)", highlight=False)
