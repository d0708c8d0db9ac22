"""The steps of an active round, wired: the round folder, one campaign labelled, fine-tuning, the record.

:class:`FolderStore` is a round folder (:mod:`storage.active_rounds`, parts by :mod:`storage.label_parts`) as
the science's :class:`csp.potentials.active.RoundStore`. :func:`label_all` runs campaigns (in this process, or
one spawned process per campaign with one thread each) and labels and stages each one's top structures; on a GPU
with several workers one relaxation server process owns the device and the potential, and the workers label
through it (:mod:`csp.potentials.relax_server`).

:func:`fine_tune` puts every committed round's labels up to this one into the lake (``csp augment ingest``'s
:func:`flows.augmentation.ingest_labels`, idempotent by id), exports the ``dft`` training set of the DFT sources
plus the loop's source (and any further ``train_source``) with the exclusion list honoured
(:func:`flows.models.prepare_dataset`), and trains with the project's one training entry
(:func:`flows.models.train`): fine-tuning (``transfer`` mode, from the previous round's run folder or
``init_run``) when a checkpoint of the current model exists, else from scratch with the current model's
architecture. The model goes to ``CSP_HOME/models/<name>`` (ONNX + model.json + card, element counts
recorded) and the next round's campaigns score with it. :func:`record` writes the round's entry in the
results file.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csp.errors import ModelNotFoundError
from csp.potentials.active import FRESH_KIND, SEARCH_KIND, ActiveJob, RoundState
from csp.potentials.augment import StructureSet
from flows.settings import Settings
from flows.settings import settings as current_settings
from storage import active_rounds

if TYPE_CHECKING:
    from flows.active import ActiveParameters


# ------------------------------------------------------------------------------------- round files
class FolderStore:
    """A round folder as the :class:`csp.potentials.active.RoundStore` of :func:`csp.potentials.active.run_round`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def save(self, state: RoundState) -> None:
        active_rounds.write_manifest(self.folder, state.to_dict())

    def staged(self) -> dict[str, StructureSet]:
        staging = active_rounds.staging_folder(self.folder)
        files = (
            sorted(p for p in staging.glob("*.npz") if not p.name.startswith(".")) if staging.is_dir() else []
        )
        return {p.stem: StructureSet.load(p) for p in files}

    def write_parts(self, labelled: StructureSet) -> list[str]:
        from flows.label_data import label_columns
        from storage.label_parts import write_label_parts

        return [p.name for p in write_label_parts(label_columns(labelled), labelled.natoms, self.folder)]

    def clear_staging(self) -> None:
        active_rounds.clear_staging(self.folder)


def load_state(labels_dir: Path, number: int) -> RoundState | None:
    """Round ``number``'s manifest under ``labels_dir``, or None when it has not started."""
    data = active_rounds.read_manifest(active_rounds.round_folder(labels_dir, number))
    return None if data is None else RoundState.from_dict(data)


# -------------------------------------------------------------------------------------------- jobs
def _label_job(job: ActiveJob, config: dict[str, Any]) -> tuple[ActiveJob, StructureSet | str]:
    """Run (or resume) one campaign, label its top structures and stage them; a campaign that cannot run
    gives its reason instead (other errors propagate: they are crashes)."""
    from csp.potentials.active import label_top
    from csp.potentials.refine import get_potential
    from flows.campaigns import CampaignError, run_campaign
    from storage.candidates import search_rows
    from storage.lake import Lake

    settings = current_settings().model_copy(update={"dft_model": config["model_folder"]})
    params = {
        **config["search"], "composition": job.composition, "seed": job.seed, "dhf_source": "dft",
        "refine": False, "gap_probes": 0,
    }  # fmt: skip
    try:
        run_campaign(
            params, campaign_id=job.campaign_id, settings=settings, run_id=f"active-{job.campaign_id}"
        )
    except CampaignError as exc:
        return job, str(exc)
    rows = search_rows(Lake(settings.home), job.campaign_id, stages=["outer"])
    train = job.role == "train"
    labelled = label_top(
        rows, get_potential(config["potential"], config["device"]), campaign=job.campaign_id,
        top_k=config["top_k"] if train else 1, relax_steps=config["relax_steps"] if train else 0,
        fmax=config["fmax"], kind=SEARCH_KIND if train else FRESH_KIND, source=config["source"],
    )  # fmt: skip
    staging = active_rounds.staging_folder(Path(config["folder"]))
    staging.mkdir(parents=True, exist_ok=True)
    labelled.save(staging / f"{job.campaign_id}.npz")
    return job, labelled


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (``PR_SET_PDEATHSIG``): a campaign of a
    killed ``csp learn run`` must not live on as an orphan that a resumed round finds "already running".
    Elsewhere a no-op (Ctrl-C still reaches the whole process group)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() == 1:  # the parent died before the request: nothing would send the signal
        os.kill(os.getpid(), signal.SIGTERM)


def _one_thread(server: Any = None) -> None:
    """A worker process computes on one thread (many share the machine's cores) and dies with its parent;
    with ``server`` (a :class:`csp.potentials.relax_server.ServerAddress`) its labelling relaxes there."""
    import torch
    from threadpoolctl import threadpool_limits

    from csp.potentials.relax_server import connect

    _die_with_parent()
    connect(server)

    os.environ["CSP_THREADS"] = "1"  # onnxruntime sessions and DuckDB (the settings read it)
    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # BLAS and OpenMP of the libraries already loaded, for the process's life


def label_all(jobs: list[ActiveJob], config: dict[str, Any], workers: int) -> Iterator[tuple[ActiveJob, Any]]:
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            yield _label_job(job, config)
        return
    context = mp.get_context("spawn")  # CUDA and onnxruntime do not survive fork
    with (
        _relax_server(config) as server,
        ProcessPoolExecutor(
            min(workers, len(jobs)), mp_context=context, initializer=_one_thread, initargs=(server,)
        ) as pool,
    ):
        futures = [pool.submit(_label_job, job, config) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


@contextmanager
def _relax_server(config: dict[str, Any]) -> Iterator[Any]:
    """On a GPU (``config["device"]`` cuda[:N]) one relaxation server process owns the device and the potential
    while the workers label (:mod:`csp.potentials.relax_server`): the workers never open a CUDA context.
    On the CPU, None (each worker relaxes itself)."""
    if not str(config["device"]).startswith("cuda"):
        yield None
        return
    from csp.potentials.relax_server import RelaxServer

    with RelaxServer(config["potential"], config["device"]) as address:
        yield address


def model_id(settings: Settings, name: str) -> tuple[Path, str]:
    """The folder of enthalpy model ``name`` and its id ``name:sha256[:12]``: the loop's own under
    ``CSP_HOME/models``, else the models directory's, else the configured DFT model (``CSP_DFT_MODEL``) when it
    has that name.

    Raises:
        csp.errors.ModelNotFoundError: no such model folder.
    """
    from csp.models.names import resolve_model

    configured = settings.model_dir("dft")
    found = [settings.home / "models" / name, resolve_model(settings.models_dir, name)]
    found += [configured] if configured.name == name else []
    folder = next((f for f in found if (f / "model.json").is_file()), found[0])
    meta = folder / "model.json"
    if not meta.is_file():
        raise ModelNotFoundError(
            f"No enthalpy model {name!r} ({meta} is missing); set CSP_DFT_MODEL or CSP_MODELS_DIR."
        )
    return folder, f"{folder.name}:{json.loads(meta.read_text())['sha256'][:12]}"


def model_name(state: RoundState) -> str:
    """The fine-tuned model's folder name: ``ALIGNN-DFT-active-r001-s0-Eform``."""
    return f"ALIGNN-DFT-active-r{state.round:03d}-s{state.seed}-Eform"


def _init_run(settings: Settings, state: RoundState, given: Path | None) -> Path | None:
    """The checkpoint to fine-tune: the run folder of the model the round ran with, else ``given``."""
    own = settings.home / "runs" / state.model_before
    if (own / "checkpoint.pt").is_file():
        return own
    return given


def fine_tune(
    state: RoundState, params: ActiveParameters, settings: Settings, labels_dir: Path
) -> dict[str, Any]:
    """Train the enthalpy model on DFT + the loop's labels of rounds 1..``state.round``; returns the training
    entry of the round (``model_after``, ``model_after_id``, mode, rows per source, test MAE in eV/atom).

    Raises:
        ValueError: the training set holds no DFT row and no ``train_source`` were named (a lake without the
            data mirror would train the model on the labels alone), or it has no training rows.
    """
    from csp.models.check import record_training_elements
    from csp.models.training import trained_epochs
    from flows.augmentation import ingest_labels
    from flows.models import export_model, prepare_dataset, summary_dict, train
    from storage.lake import Lake
    from storage.training_sets import DFT_SOURCES

    lake = Lake(settings.home).init()
    parts = [
        p for n in active_rounds.round_numbers(labels_dir) if n <= state.round
        for p in sorted(active_rounds.round_folder(labels_dir, n).glob("part-*.parquet"))
    ]  # fmt: skip
    ingested = ingest_labels(lake, parts, run_id=f"active-r{state.round:03d}").written if parts else 0
    lake.refresh_catalog()
    name = model_name(state)
    runs = settings.home / "runs"
    sources = list(dict.fromkeys([*DFT_SOURCES, *(params.train_source or ()), state.source]))
    summary = prepare_dataset("dft", runs / f"{name}.npz", settings, sources=sources)
    if not set(summary.per_source) & set(DFT_SOURCES) and not params.train_source:
        raise ValueError(
            f"The lake {settings.home} holds no DFT row to train on beside the labels; ingest the data mirror "
            "(`csp ingest run`) or name the sources to train on with --train-source."
        )
    init = _init_run(settings, state, params.init_run)
    folder_before, _ = model_id(settings, state.model_before)
    config = json.loads((folder_before / "model.json").read_text()).get("config", {})
    architecture = {k: config[k] for k in ("hidden", "alignn_layers", "gcn_layers") if k in config}
    train_args = {
        "epochs": params.train_epochs, "seed": state.seed, "time_limit_s": params.train_time_limit_s,
        "device": params.device, "workers": params.workers,  # graph building: one process per worker
    }  # fmt: skip
    if init is not None:
        train_args["lr"] = 1e-4  # fine-tuning steps 10x below a fresh run, as transfer learning does
    info = train(
        "transfer" if init is not None else "dft", runs / f"{name}.npz", runs / name,
        init=init, model_args=architecture, train_args=train_args,
    )  # fmt: skip
    command = state.training.get("command") or state.command or "csp learn run"
    own = settings.model_copy(update={"models_dir": settings.home / "models"})
    folder = export_model(
        runs / name, name, summary=summary_dict(summary), command=command, settings=own,
        description=f"The enthalpy model after active round {state.round}: {'fine-tuned from' if init else 'trained like'} "
        f"{state.model_before} on DFT + universal-potential labels of the search's own top structures.",
    )  # fmt: skip
    record_training_elements(folder, [runs / f"{name}.npz"], command)
    _, after_id = model_id(settings, name)
    test = info.get("metrics", {}).get("test", {})
    return {
        "model_after": name,
        "model_after_id": after_id,
        "mode": "fine-tune" if init is not None else "scratch",
        "init": state.model_before if init is not None else None,
        "ingested_rows": ingested,
        "training_set_rows": summary.rows,
        "per_source": summary.per_source,
        "test_mae_ev_per_atom": test.get("mae_ev_per_atom"),
        "epochs": trained_epochs(info.get("history", [])),
        "seconds": round(float(info.get("seconds", 0.0)), 1),
    }


def record(results: Path, state: RoundState, entry: dict[str, Any]) -> None:
    """Write the round's entry (with its time, UTC) into the results file, replacing an earlier one."""
    entry = {**entry, "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if state.training.get("command"):
        entry["training_command"] = state.training["command"]
    active_rounds.write_record(results, entry)
