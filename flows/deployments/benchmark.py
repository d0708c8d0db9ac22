"""Prefect deployment ``benchmark``: the paper report (Table 1, Figs. 2-4, every miss explained).

A face of :func:`flows.paper.run_paper` (what ``csp benchmark paper`` runs): its form is
:class:`flows.paper.PaperParameters`. A run from the service writes its report under the worker's lake
(``CSP_HOME/reports/paper-<preset>``) unless ``out`` names a folder, so a run from the UI never overwrites the
report committed in the checkout. Artifacts: the report itself (figures inlined) and Table 1's accuracy.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import ValidationError

from flows.campaigns import CampaignError
from flows.checks import parameter_error
from flows.deployments._form import fields_of, with_defaults
from flows.paper import PaperParameters, run_paper
from flows.settings import settings as current_settings

__all__ = ["benchmark"]


def inline_images(markdown: str, folder: Path) -> str:
    """``markdown`` with each ``![alt](name.png)`` of ``folder`` as a data-URI image (renders in the UI)."""

    def inline(match: re.Match[str]) -> str:
        path = folder / match.group(2)
        if not path.is_file():
            return match.group(0)
        return f"![{match.group(1)}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    return re.sub(r"!\[([^\]]*)\]\(([\w.-]+\.png)\)", inline, markdown)


@flow(name="benchmark")
@fields_of(PaperParameters)
def benchmark(**params: Any) -> dict[str, Any]:
    """The paper report: Table 1, Figs. 2-4 and every miss explained, campaigns kept in the lake; the report
    as a Markdown artifact and Table 1's accuracy as a table artifact."""
    values = with_defaults(benchmark, params)
    try:
        checked = PaperParameters(**values)
    except ValidationError as exc:
        raise CampaignError(parameter_error(exc, PaperParameters)) from exc
    if checked.out is None:
        checked = checked.model_copy(
            update={"out": current_settings().home / "reports" / f"paper-{checked.preset}"}
        )
    data = run_paper(checked, say=get_run_logger().info)
    folder = checked.folder()
    create_markdown_artifact(
        markdown=inline_images((folder / "report.md").read_text(), folder),
        key=f"benchmark-paper-{checked.preset}",
        description=f"Paper report ({checked.preset}) in {folder}",
    )
    accuracy = (data.get("table1") or {}).get("accuracy", [])
    if accuracy:
        create_table_artifact(
            table=[
                {
                    "strategy": a["strategy"],
                    "alpha": a["alpha"],
                    "answer": "refined" if a["refine"] else "search only",
                    "found %": round(a["mean_pct"], 1),
                    "spread %": round(a["std_pct"], 1),
                    "paper %": None if a["paper_pct"] is None else round(a["paper_pct"], 1),
                }
                for a in accuracy
            ],
            key=f"benchmark-paper-{checked.preset}-table1",
            description=f"Table 1 at {data['table1']['budget']}: experimental structure in the top 5",
        )
    return {
        "report": str(folder / "report.md"),
        "wall_s": data["wall_s"],
        "campaigns": len(data["campaigns"]),
        "failed": data["failed"],
        "table1": accuracy,
    }
