"""Training wiring shared by the CLI and the Prefect flows: lake -> arrays -> csp.training -> ONNX -> card.

The loops live in ``csp.training`` and run the same on a laptop CPU or a GPU box (which gets only the
``.npz`` arrays and ``python -m csp.training``); this module adds the lake, the settings, the model
folder with its card, and the ``models`` table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from flows.datasets import ExportSummary, export_training_set
from flows.settings import Settings
from storage.lake import Lake
from storage.splits import load_exclusions

Mode = Literal["dft", "transfer", "pu"]
_DATA_KIND = {"dft": "dft", "transfer": "exp", "pu": "pu"}

LICENCES = {
    "oqmd_intermetallics": "CC BY 4.0 (OQMD)",
    "gnome": "CC BY-NC 4.0 (GNoME; non-commercial)",
    "mp_flla2015": "CC BY 4.0 (Materials Project)",
    "mp_chemeleon_mp40": "CC BY 4.0 (Materials Project)",
    "gu2022_perovskite_pu": "see Gu et al. 2022",
    "experimental_prototypes": "AFLOW prototype library / mineral database / COD",
    "expt_deltae_jha2019": "SSUB-derived set of Jha et al. 2019",
}


def prepare_dataset(
    mode: Mode,
    out: Path,
    settings: Settings | None = None,
    *,
    sources: Sequence[str] | None = None,
    compress: bool = False,
) -> ExportSummary:
    """Export the training set of ``mode`` from the lake, honouring the exclusion list.

    ``sources`` chooses the lake sources explicitly (default: the DFT sources for ``dft``, the
    experimental table for ``transfer``); augmented (machine-learned) rows enter only when named.
    """
    settings = settings or Settings()
    exclusions = load_exclusions(settings.exclusions_file)
    return export_training_set(
        Lake(settings.home),
        out,
        kind=_DATA_KIND[mode],
        exclude=exclusions,
        sources=sources,
        compress=compress,
    )


def train(
    mode: Mode,
    data: Path,
    out: Path,
    *,
    init: Path | None = None,
    model_args: dict[str, Any] | None = None,
    train_args: dict[str, Any] | None = None,
    progress=None,
) -> dict[str, Any]:
    """Run one training mode in this process and save ``out/checkpoint.pt`` + ``metrics.json``."""
    from csp.dataset import load_arrays
    from csp.models import ALIGNNConfig
    from csp.training import TrainSettings, save_checkpoint, train_pu, train_regression, train_transfer
    from csp.training._loops import load_checkpoint

    arrays = load_arrays(data)
    settings = TrainSettings(**(train_args or {}))
    args = dict(model_args or {})
    if mode == "transfer":
        if init is None:
            raise ValueError("Transfer learning needs the DFT run folder (init).")
        model, info = train_transfer(arrays, init, settings, progress=progress)
    elif mode == "dft":
        model, info = train_regression(
            arrays, ALIGNNConfig(task="regression", **args), settings, progress=progress
        )
    else:
        if init is not None:
            base = load_checkpoint(init)[0].config
            args.update({k: getattr(base, k) for k in ("hidden", "alignn_layers", "gcn_layers", "embedding")})
        model, info = train_pu(
            arrays, ALIGNNConfig(task="pu", **args), settings, init=init, progress=progress
        )
    info["data_file"] = Path(data).name
    save_checkpoint(out, model, info)
    return info


def verify_lineage(
    run_dir: Path, mode: Mode, settings: Settings | None = None, *, sources: Sequence[str] | None = None
) -> dict[str, Any]:
    """Re-export ``mode``'s training set (from ``sources``) and check the run was trained on exactly it."""
    import tempfile

    from csp.dataset import load_arrays

    info = json.loads((Path(run_dir) / "metrics.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        summary = prepare_dataset(mode, Path(tmp) / "data.npz", settings, sources=sources)
        content = load_arrays(summary.path).content_hash()
    if info.get("training_data_hash") != content:
        raise ValueError(
            f"{run_dir} was trained on data with hash {str(info.get('training_data_hash'))[:12]}, but the lake "
            f"exports {content[:12]} for {mode}; re-ingest the same sources or retrain."
        )
    out = summary_dict(summary)
    out["content_hash"] = content
    return out


def export(
    run_dir: Path,
    name: str,
    *,
    summary: dict[str, Any] | None = None,
    command: str = "",
    description: str = "",
    settings: Settings | None = None,
) -> Path:
    """Export a run folder to ``models_dir/name`` (ONNX + model.json + card) and register it."""
    from csp.onnx_export import export_checkpoint

    settings = settings or Settings()
    folder = settings.models_dir / name
    json_path = export_checkpoint(run_dir, folder, description=description)
    meta = json.loads(json_path.read_text())
    info = json.loads((Path(run_dir) / "metrics.json").read_text())
    if summary:
        meta["dataset"] = summary
        json_path.write_text(json.dumps(meta, indent=2) + "\n")
    (folder / "README.md").write_text(model_card(name, meta, info, command))
    Lake(settings.home).append(
        "models",
        [
            {
                "name": name,
                "kind": meta["task"],
                "version": str(meta.get("format_version", "1")),
                "sha256": meta["sha256"],
                "training_data_hash": meta.get("training_data_hash"),
                "metrics_json": json.dumps(meta.get("metrics", {})),
                "path": str(folder),
            }
        ],
        run_id=f"export-{name}",
    )
    return folder


def summary_dict(summary: ExportSummary) -> dict[str, Any]:
    out = asdict(summary)
    out["path"] = Path(summary.path).name
    return out


def _metric_rows(metrics: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _metric_rows(value, f"{prefix}{key} / ")
        elif isinstance(value, float | int):
            rows.append(f"| {prefix}{key} | {value:.4g} |")
    return rows


#: sources whose labels come from a universal interatomic potential, not from DFT or experiment
MLIP_PREFIXES = ("chgnet", "sevennet")


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
        *[f"| {s} | {n} | {LICENCES.get(s, 'see the source')} |" for s, n in sources.items()],
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
