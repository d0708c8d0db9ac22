"""The README.md of a model folder: what a person needs first (a summary table), then the details."""

from __future__ import annotations

import json
from typing import Any

from storage.licences import MLIP_PREFIXES, licence_of


def _metric_rows(metrics: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _metric_rows(value, f"{prefix}{key} / ")
        elif isinstance(value, float | int):
            rows.append(f"| {prefix}{key} | {value:.4g} |")
    return rows


def _mix_line(per_source: dict[str, int]) -> str:
    mlip = {s: n for s, n in per_source.items() if s.startswith(MLIP_PREFIXES)}
    if not mlip:
        return "- data mix: no machine-learned (universal-potential) labels; DFT or experiment only"
    total = sum(per_source.values()) or 1
    share = sum(mlip.values()) / total
    return (
        f"- data mix: {sum(mlip.values())} of {total} rows ({100 * share:.0f}%) are universal-potential labels "
        f"({', '.join(mlip)}), chosen explicitly with --source"
    )


def model_card(name: str, meta: dict[str, Any], info: dict[str, Any], command: str) -> str:
    """The README.md of a model folder: data, split, exclusions, metrics with units, how it was made."""
    dataset = meta.get("dataset", {})
    sources = dataset.get("per_source", {})
    lines = [
        f"# {name}",
        "",
        meta.get("description") or f"ALIGNN {meta['task']} model.",
        "",
        "## Model",
        "",
        f"- task: `{meta['task']}`; outputs: {', '.join(f'`{k}` ({v})' for k, v in meta['outputs'].items())}",
        f"- config: `{json.dumps(meta['config'])}`",
        f"- graph: {meta['k']} nearest neighbours within {meta['cutoff_angstrom']} Å (widened where fewer), "
        f"ties within {meta['tie_tolerance_angstrom']} Å broken by neighbour index",
        f"- `model.onnx` sha256 `{meta['sha256']}` (checked on every load)",
        f"- training data hash `{meta.get('training_data_hash')}`",
        "",
        "## Data",
        "",
        "| source | rows | licence |",
        "| --- | --- | --- |",
        *[
            f"| {s} | {n} | {dataset.get('licences', {}).get(s) or licence_of(s)} |"
            for s, n in sources.items()
        ],
        "",
        _mix_line(sources),
        f"- split by a hash of the reduced formula (no composition in two splits): {dataset.get('per_split', {})}",
        f"- rows left out for the exclusion list (the paper's 17 validation compounds) and size: "
        f"{dataset.get('excluded_rows', 'n/a')}",
        "",
        "## Metrics (held-out rows; energies in eV/atom)",
        "",
        "| metric | value |",
        "| --- | --- |",
        *_metric_rows(meta.get("metrics", {})),
        "",
        f"Training stopped by: {info.get('stopped_by', 'n/a')} after {info.get('seconds', 0):.0f} s.",
        "",
        "## How it was made",
        "",
        "```bash",
        command or "(command not recorded)",
        "```",
        "",
    ]
    return "\n".join(lines)
