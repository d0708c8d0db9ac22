"""Models wiring shared by the CLI and the Prefect flows: lake -> arrays -> csp.models.training -> ONNX -> card.

The loops live in ``csp.models.training`` and run the same on a laptop CPU or a GPU box (which gets only the
``.npz`` arrays and ``python -m csp.models.training``); the rows come from :mod:`storage.training_sets`; this
module adds the settings, the model folder with its card (:mod:`flows.model_card`), and the ``models`` table.

Names: :func:`export_training_set` writes a training set (``.npz``); :func:`export_model` turns a training
run into a model folder (ONNX + ``model.json`` + card). ``export`` is kept as an alias of the latter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flows.settings import Settings
from flows.settings import settings as current_settings
from flows.train_parameters import _DATA_KIND, Mode, TrainParameters
from storage.lake import Lake
from storage.splits import load_exclusions
from storage.training_sets import DFT_SOURCES, EXPERIMENT_SOURCE, Kind, training_arrays

# TrainParameters lives in flows.train_parameters and stays importable from here
__all__ = [
    "DFT_SOURCES",
    "EXPERIMENT_SOURCE",
    "ExportSummary",
    "Mode",
    "TrainParameters",
    "export",
    "export_model",
    "export_training_set",
    "prepare_dataset",
    "summary_dict",
    "train",
    "verify_lineage",
]


@dataclass(frozen=True)
class ExportSummary:
    """A training set written to ``path``: counts per split and source, licences, sha256 of the file, what
    hypothetical polymorphs added (pu, :func:`flows.polymorph_sets.export_with_polymorphs`)."""

    kind: str
    path: Path
    rows: int
    per_split: dict[str, int]
    per_source: dict[str, int]
    excluded_rows: int
    sha256: str
    licences: dict[str, str] = field(default_factory=dict)
    hypothetical: dict[str, Any] = field(default_factory=dict)
    per_fidelity: dict[str, int] = field(default_factory=dict)
    geometry_refused: int = 0


def export_training_set(
    lake: Lake,
    out: Path,
    *,
    kind: Kind,
    exclude: Iterable[str],
    sources: Iterable[str] | None = None,
    max_sites: int = 64,
    compress: bool = False,
    hypothetical: Sequence[str | Path] | None = None,
) -> ExportSummary:
    """Write the ``kind`` training set of the lake to ``out`` (.npz); see
    :func:`storage.training_sets.training_arrays` for the rows and :func:`csp.models.dataset.save_arrays` for
    the file. ``hypothetical`` (pu): label parts whose decorations join the unlabeled rows
    (:func:`flows.polymorph_sets.export_with_polymorphs`)."""
    from csp.models.dataset import save_arrays

    exclude = set(exclude)
    data = training_arrays(lake, kind=kind, exclude=exclude, sources=sources, max_sites=max_sites)
    out.parent.mkdir(parents=True, exist_ok=True)
    if hypothetical:
        from flows.polymorph_sets import export_with_polymorphs

        return export_with_polymorphs(data, out, hypothetical, exclude, max_sites, compress)
    save_arrays(out, **data.arrays, compress=compress)
    return ExportSummary(
        kind=kind,
        path=out,
        rows=data.rows,
        per_split=data.per_split,
        per_source=data.per_source,
        excluded_rows=data.excluded_rows,
        sha256=hashlib.sha256(out.read_bytes()).hexdigest(),
        licences=data.licences,
        per_fidelity=data.per_fidelity,
        geometry_refused=data.geometry_refused,
    )


def prepare_dataset(
    mode: Mode,
    out: Path,
    settings: Settings | None = None,
    *,
    sources: Sequence[str] | None = None,
    compress: bool = False,
    hypothetical: Sequence[str | Path] | None = None,
) -> ExportSummary:
    """Export the training set of ``mode`` from the lake, honouring the exclusion list.

    ``sources`` chooses the lake sources explicitly (default: the DFT sources for ``dft``, the
    experimental table for ``transfer``); augmented (machine-learned) rows enter only when named.
    """
    settings = settings or current_settings()
    exclusions = load_exclusions(settings.exclusions_file)
    return export_training_set(
        Lake(settings.home),
        out,
        kind=_DATA_KIND[mode],
        exclude=exclusions,
        sources=sources,
        compress=compress,
        hypothetical=hypothetical,
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
    ensemble: int | None = None,
    fidelity: str | None = None,
) -> dict[str, Any]:
    """Run one training mode in this process and save ``out/checkpoint.pt`` + ``metrics.json``.

    ``ensemble`` (dft, transfer) trains that many enthalpy members (:mod:`csp.models.training`); None: one
    model for dft, as many as the init run for transfer. ``fidelity`` (dft with mlip rows): heads, delta or
    mix (:func:`csp.models.training.fidelity_config`; None: heads)."""
    from csp.models import ALIGNNConfig
    from csp.models.dataset import load_arrays
    from csp.models.training import (
        TrainSettings,
        fidelity_config,
        load_checkpoint,
        save_checkpoint,
        train_pu,
        train_regression,
        train_transfer,
    )

    arrays = load_arrays(data)
    settings = TrainSettings(**(train_args or {}))
    args = dict(model_args or {})
    if mode == "transfer":
        if init is None:
            raise ValueError("Transfer learning needs the DFT run folder (init).")
        model, info = train_transfer(arrays, init, settings, ensemble=ensemble, progress=progress)
    elif mode == "dft":
        config = fidelity_config(ALIGNNConfig(task="regression", **args), arrays, fidelity or "heads")
        model, info = train_regression(arrays, config, settings, ensemble=ensemble or 1, progress=progress)
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
    run_dir: Path, mode: Mode, settings: Settings | None = None, *, sources=None, hypothetical=None
) -> dict[str, Any]:
    """Re-export ``mode``'s training set (from ``sources``, ``hypothetical`` polymorphs for pu) and check the
    run was trained on exactly it."""
    import tempfile

    from csp.models.dataset import load_arrays

    info = json.loads((Path(run_dir) / "metrics.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        data = {"sources": sources, "hypothetical": hypothetical}
        summary = prepare_dataset(mode, Path(tmp) / "data.npz", settings, **data)
        content = load_arrays(summary.path).content_hash()
    if info.get("training_data_hash") != content:
        raise ValueError(
            f"{run_dir} was trained on data with hash {str(info.get('training_data_hash'))[:12]}, but the lake "
            f"exports {content[:12]} for {mode}; re-ingest the same sources or retrain."
        )
    out = summary_dict(summary)
    out["content_hash"] = content
    return out


def export_model(
    run_dir: Path,
    name: str,
    *,
    summary: dict[str, Any] | None = None,
    command: str = "",
    description: str = "",
    settings: Settings | None = None,
) -> Path:
    """Export a run folder to ``models_dir/name`` (ONNX + model.json + card) and register it."""
    from csp.models.onnx_export import export_checkpoint
    from flows.model_card import model_card

    settings = settings or current_settings()
    folder = settings.models_dir / name
    json_path = export_checkpoint(run_dir, folder, description=description)
    meta = json.loads(json_path.read_text())
    info = json.loads((Path(run_dir) / "metrics.json").read_text())
    if summary:
        meta["dataset"] = summary
        json_path.write_text(json.dumps(meta, indent=2) + "\n")
    (folder / "README.md").write_text(model_card(name, meta, info, command))
    Lake(settings.home).init().append(
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


#: the earlier name of :func:`export_model` (kept for one release)
export = export_model


def verify_models(settings: Settings, ok: Callable[[str], None], bad: Callable[[str], None]) -> bool:
    """``csp models verify``: the model-folder check a campaign makes, run on every folder up front.

    Each folder configured as a campaign model (``CSP_DFT_MODEL``, ``CSP_EXP_MODEL``, ``CSP_PU_MODEL``) is
    opened exactly as :class:`csp.models.infer.OnnxModels` opens it for that role (:class:`csp.models.infer.OnnxModel`,
    which runs :func:`csp.models.check.check_model_folder` and loads the ONNX file); other folders under
    the models directory are checked without a role. Reports one line per folder (with its count of
    elements that have training rows) through ``ok``/``bad``; returns True when every folder passes.
    """
    from csp.errors import ModelError
    from csp.models.infer import OnnxModel

    roles = {settings.model_dir(kind): kind for kind in ("dft", "exp", "pu")}
    folders = sorted(set(roles) | {p for p in settings.models_dir.glob("*") if p.is_dir()})
    all_ok = True
    for folder in folders:
        role = roles.get(folder)
        label = f"{folder.name} ({role})" if role else folder.name
        try:
            model = OnnxModel(folder, threads=1, role=role)
        except ModelError as exc:
            all_ok = False
            bad(f"BAD {label}: {exc}")
            continue
        if model.training_counts is None:
            ok(f"ok  {label}: sha256 {model.meta['sha256'][:12]}; records no training element counts")
        else:
            seen = sum(1 for n in model.training_counts.values() if n > 0)
            ok(f"ok  {label}: sha256 {model.meta['sha256'][:12]}; {seen} elements with training rows")
    if not folders:
        all_ok = False
        bad(f"BAD {settings.models_dir}: no model folders; set CSP_MODELS_DIR.")
    return all_ok


def summary_dict(summary: ExportSummary) -> dict[str, Any]:
    out = asdict(summary)
    out["path"] = Path(summary.path).name
    return out


def train_and_export(
    params: TrainParameters, settings: Settings | None = None, *, export: bool = True, progress=None
) -> tuple[ExportSummary, dict[str, Any], Path | None]:
    """The whole ``models train`` job: training set from the lake, training here, ONNX model folder.

    The model card's command is :meth:`TrainParameters.command`, so the card reproduces its model.

    Returns:
        The training-set summary, the run's info (metrics), and the model folder (``None`` without export).
    """
    settings = settings or current_settings()
    work = settings.home / "runs"
    data = {"sources": params.sources, "hypothetical": params.hypothetical_polymorphs}
    summary = prepare_dataset(params.mode, work / f"{params.name}.npz", settings, **data)
    if progress is not None:
        progress(f"training set: {summary.rows} rows {summary.per_split}")
    info = train(
        params.mode,
        work / f"{params.name}.npz",
        work / params.name,
        init=Path(params.init_run) if params.init_run else None,
        model_args=params.model_args(),
        train_args=params.train_args(settings.device),
        progress=progress,
        ensemble=params.ensemble,
        fidelity=params.fidelity,
    )
    if not export:
        return summary, info, None
    folder = export_model(
        work / params.name,
        params.name,
        summary=summary_dict(summary),
        command=params.command(),
        settings=settings,
    )
    return summary, info, folder
