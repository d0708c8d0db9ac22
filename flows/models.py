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
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flows.settings import Settings
from flows.settings import settings as current_settings
from storage.lake import Lake
from storage.splits import load_exclusions
from storage.training_sets import DFT_SOURCES, EXPERIMENT_SOURCE, Kind, training_arrays

Mode = Literal["dft", "transfer", "pu"]
_DATA_KIND = {"dft": "dft", "transfer": "exp", "pu": "pu"}


class TrainParameters(BaseModel):
    """One training run, declared once: the ``csp models train`` options and the ``train`` deployment's form.

    Architecture defaults are those of :class:`csp.models.ALIGNNConfig`, ``batch_size`` and ``seed`` those
    of :class:`csp.models.training.TrainSettings` (a test keeps them equal; they are not imported here so that
    the command line starts without torch). ``epochs`` is the faces' CPU-sized budget (30; the GPU entry
    point ``python -m csp.models.training`` keeps ``TrainSettings``' 100).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: Mode = Field("dft", description="Which model to train: dft, transfer or pu.")
    name: str = Field("alignn-dft", description="Model folder name under the models directory.")
    init_run: str | None = Field(None, description="Run folder of the DFT model (transfer and pu).")
    epochs: int = Field(30, ge=1, le=1000, description="Most passes over the training rows.")
    batch_size: int = Field(64, ge=1, le=4096, description="Crystals per optimisation step.")
    hidden: int = Field(64, ge=8, le=512, description="Width of atom, bond and angle features.")
    alignn_layers: int = Field(2, ge=0, le=8, description="ALIGNN layers (bond graph, then line graph).")
    gcn_layers: int = Field(2, ge=0, le=8, description="Edge-gated layers on the bond graph that follow.")
    n_bags: int = Field(100, ge=1, le=1000, description="PU ensemble size.")
    ensemble: int | None = Field(
        None,
        ge=1,
        le=100,
        description="dft/transfer: members of an enthalpy ensemble (own seed and bootstrap resample each; "
        "the model gives mean and spread); default 1 for dft, as the init run for transfer.",
    )
    time_limit_s: float | None = Field(None, gt=0, description="Stop training after this many seconds.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seeds torch and numpy (shuffling, PU bag draws).")
    hypothetical_polymorphs: list[str] | None = Field(None, description="pu: label parts added as unlabeled")
    siblings_every_bag: bool = Field(False, description="pu: the positives' polymorph siblings in every bag.")
    sources: list[str] | None = Field(
        None, description="Lake sources to train on (default: the DFT sources); name mlip sources explicitly."
    )
    fidelity: Literal["heads", "delta", "mix"] | None = Field(
        None,
        description="dft with mlip sources: one head per fidelity (heads, the default), the DFT head plus a "
        "correction (delta), or one head for all rows (mix); the DFT head is the exported model.",
    )
    mlip_weight: float | None = Field(None, gt=0, description="Loss weight of mlip rows (default 1; DFT: 1).")

    @model_validator(mode="after")
    def _ensemble_is_for_enthalpy(self) -> TrainParameters:
        if self.mode == "pu" and self.ensemble is not None:
            raise ValueError("pu is already a bagged ensemble: set its size with n_bags, not ensemble.")
        return self

    def model_args(self) -> dict[str, Any]:
        """Constructor arguments of the model (``n_bags`` for pu only)."""
        args: dict[str, Any] = {
            "hidden": self.hidden,
            "alignn_layers": self.alignn_layers,
            "gcn_layers": self.gcn_layers,
        }
        if self.mode == "pu":
            args["n_bags"] = self.n_bags
        return args

    def train_args(self, device: str) -> dict[str, Any]:
        """Arguments of :class:`csp.models.training.TrainSettings`."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "time_limit_s": self.time_limit_s,
            "device": device,
            "pu_siblings_every_bag": self.siblings_every_bag,
            **({"mlip_weight": self.mlip_weight} if self.mlip_weight is not None else {}),
        }

    def command(self) -> str:
        """The ``csp models train`` command line that reproduces this run (every argument spelled out)."""
        parts = ["csp", "models", "train", self.mode]
        for key, value in self.model_dump().items():
            if key == "mode" or value is None or (key == "n_bags" and self.mode != "pu"):
                continue
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):  # a switch: named when on
                parts += [flag] if value else []
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                parts += [flag, shlex.quote(str(v))]
        return " ".join(parts)

    def model_post_init(self, context: Any) -> None:  # an option given no value (typer: []) means none
        self.hypothetical_polymorphs = self.hypothetical_polymorphs or None


__all__ = [
    "DFT_SOURCES",
    "EXPERIMENT_SOURCE",
    "ExportSummary",
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
