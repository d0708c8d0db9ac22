"""Active rounds, wired: the lake's compositions -> campaigns -> labels by the potential -> committed Parquet -> training.

The science (which compositions, what is labelled, the gap, the resumable step machine) is
:mod:`csp.potentials.active`; this module gives it the lake (compositions, campaigns, their rows), the
round folders (:mod:`storage.active_rounds`, :mod:`storage.label_parts`), worker processes and the fine-tune
step (:mod:`flows.active_steps`). ``csp learn run|status|train`` and the ``active`` deployment call
:func:`run_rounds`, :func:`round_table` and :func:`train_round`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from csp.errors import CSPError, InputError
from csp.potentials.active import (
    RoundState,
    check_requested,
    plan_round,
    run_round,
)
from csp.search.parameters import SearchParameters
from flows.active_steps import FolderStore, fine_tune, label_all, load_state, model_id, record
from flows.settings import Settings
from flows.settings import settings as current_settings
from storage import active_rounds

PROJECT = Path(__file__).resolve().parents[1]
#: where rounds and their record go unless told otherwise (inside the project: both are committed)
DEFAULT_LABELS_DIR = PROJECT / "data" / "labels" / "active"
DEFAULT_RESULTS = PROJECT / "benchmarks" / "results" / "active_rounds.json"
#: the search fields a round takes, with the loop's defaults (compositions of unknown structure: all systems)
SEARCH_FIELDS = {
    "alpha": 0.5,
    "strategy": "all",
    "crystal_system": None,
    "outer_optimizer": "bo",
    "inner_optimizer": "pso",
    "outer_steps": 30,
    "inner_steps": 100,
    "batch_size": 30,
    "formula_units_max": 4,
    "max_atoms": SearchParameters.model_fields["max_atoms"].default,
}
_FIELDS = SearchParameters.model_fields
#: the fields themselves are SearchParameters' (declared once: type, description, range); the defaults the loop's
_Search = create_model(
    "_Search",
    __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
    **{
        name: (_FIELDS[name].annotation, FieldInfo.merge_field_infos(_FIELDS[name], default=default))
        for name, default in SEARCH_FIELDS.items()
    },
)


class ActiveError(InputError):
    """A request for active rounds that cannot run; one-sentence message, nothing written."""


class ActiveParameters(_Search):  # type: ignore[misc, valid-type]
    """Flat, typed parameters of active rounds: the ``csp learn run`` options and the ``active`` form."""

    rounds: int = Field(1, ge=1, le=1000, description="Rounds to run; an unfinished round is resumed first.")
    compositions: int = Field(16, ge=1, le=10_000, description="Training compositions per round.")
    fresh: int = Field(
        4,
        ge=0,
        le=1000,
        description="Fresh compositions (never trained on) the model-vs-potential gap is measured on.",
    )
    composition: list[str] | None = Field(
        None, description="Training compositions to use instead of a choice from the lake (one round)."
    )
    fresh_composition: list[str] | None = Field(
        None, description="Fresh compositions to use instead of a choice from the lake."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the choices and of every campaign.")
    round: int | None = Field(
        None, ge=1, description="Start at this round (default: the next, or the unfinished one)."
    )
    top_k: int = Field(8, ge=1, le=100, description="Distinct top structures labelled per training campaign.")
    relax_steps: int = Field(
        60, ge=0, le=5000, description="FIRE steps of each symmetry-kept relaxation (0: single points)."
    )
    fmax: float = Field(0.05, gt=0, description="Relaxations converge below this force, eV/A.")
    potential: Literal["chgnet", "sevennet"] = Field(
        "chgnet", description="Universal potential of the labels."
    )
    device: str = Field(
        "cpu",
        pattern=r"^(cpu|cuda(:\d+)?)$",
        description="Torch device of the potential and training: cpu or cuda[:N].",
    )
    workers: int = Field(1, ge=1, le=256, description="Campaigns at once: one process each, one thread each.")
    train: bool = Field(
        True, description="Fine-tune after labelling (off: label now, `csp learn train` later)."
    )
    train_epochs: int = Field(30, ge=1, le=10_000, description="Most epochs of the fine-tune.")
    train_time_limit_s: float | None = Field(
        None, gt=0, description="Stop the fine-tune after this many seconds."
    )
    train_source: list[str] | None = Field(
        None, description="Further lake sources of the training set (besides the DFT sources and the labels)."
    )
    init_run: Path | None = Field(
        None,
        description="Run folder (checkpoint.pt) of the current enthalpy model to fine-tune in the first round.",
    )
    labels_dir: Path | None = Field(
        None,
        description="Folder of the round folders (default data/labels/active).",
        json_schema_extra={"csp_output": "folder"},
    )
    results: Path | None = Field(
        None,
        description="Results file (default benchmarks/results/active_rounds.json).",
        json_schema_extra={"csp_output": "file"},
    )

    def fingerprint(self) -> dict[str, Any]:
        """The arguments that fix a round's results (stored in its manifest; a resumed round must match)."""
        keep = {*SEARCH_FIELDS, "compositions", "fresh", "composition", "fresh_composition", "seed"}
        keep |= {"top_k", "relax_steps", "fmax", "potential"}
        return self.model_dump(include=keep, mode="json")

    def search(self) -> dict[str, Any]:
        return self.model_dump(include=set(SEARCH_FIELDS))

    def folders(self) -> tuple[Path, Path]:
        return self.labels_dir or DEFAULT_LABELS_DIR, self.results or DEFAULT_RESULTS


def check(values: dict[str, Any] | ActiveParameters, settings: Settings | None = None) -> ActiveParameters:
    """Parameters validated before anything runs; raises :class:`ActiveError` with one sentence.

    Refused: counts and rounds out of range, search fields a campaign would refuse, a requested composition
    that is unreadable or on the exclusion list (the paper's validation compounds).
    """
    from flows.campaigns import CampaignError, validate
    from storage.splits import load_exclusions

    try:
        params = values if isinstance(values, ActiveParameters) else ActiveParameters(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "parameters"
        raise ActiveError(f"Invalid {where}: {first['msg']}.") from exc
    if params.composition and params.rounds > 1:
        raise ActiveError(
            "--composition names the compositions of one round; run it with --rounds 1, or let the rounds "
            "choose from the lake."
        )
    try:
        for formula in [*(params.composition or ()), *(params.fresh_composition or ())] or ["NaCl"]:
            validate({**params.search(), "composition": formula, "dhf_source": "dft", "refine": False})
        if params.composition or params.fresh_composition:
            exclude = load_exclusions((settings or current_settings()).exclusions_file)
            check_requested(params.composition or (), params.fresh_composition or (), exclude)
    except (CampaignError, CSPError, FileNotFoundError, ValueError) as exc:
        raise ActiveError(str(exc)) from exc
    return params


# ------------------------------------------------------------------------------------------- pools
def pools(settings: Settings, potential_name: str) -> tuple[list[str], list[str], list[str]]:
    """(training pool, fresh pool, exclusion list): the lake's DFT and experimental compositions
    (:func:`flows.augmentation.default_compositions`, the exclusion list taken out) whose elements all have
    the potential's shipped reference, split by the lake's formula hash: ``train`` split to label, ``test``
    split to measure on (never in a training set)."""
    from flows.augmentation import default_compositions, shipped_reference_numbers
    from storage.lake import Lake
    from storage.splits import load_exclusions, split_of

    exclude = load_exclusions(settings.exclusions_file)
    referenced = shipped_reference_numbers(potential_name)
    from csp.structures.composition import parse_composition

    usable = [
        f for f in default_compositions(Lake(settings.home).init(), exclude, max_compositions=10**6)
        if set(parse_composition(f).numbers()) <= set(referenced)
    ]  # fmt: skip
    train = [f for f in usable if split_of(f) == "train"]
    fresh = [f for f in usable if split_of(f) == "test"]
    return train, fresh, exclude


def _start(
    params: ActiveParameters, number: int, settings: Settings, labels_dir: Path, command: str
) -> RoundState:
    from csp.potentials.active import source_name
    from flows.augmentation import potential_source_name
    from storage.splits import load_exclusions

    previous = load_state(labels_dir, number - 1) if number > 1 else None
    # a model named in the settings (CSP_DFT_MODEL) is the one asked for; otherwise the loop goes on from the
    # previous round's model (the one it trained, or the one it scored with)
    named = "dft_model" in settings.model_fields_set or previous is None
    model = settings.model_dir("dft").name if named else previous.model_after
    _, model_before_id = model_id(settings, model)
    used = [
        f
        for n in active_rounds.round_numbers(labels_dir)
        if n < number
        for f in load_state(labels_dir, n).train
    ]
    needs_pool = not params.composition or (params.fresh > 0 and not params.fresh_composition)
    train_pool, fresh_pool, exclude = (
        pools(settings, potential_source_name(params.potential))
        if needs_pool
        else ([], [], load_exclusions(settings.exclusions_file))
    )
    train, fresh = plan_round(
        number, seed=params.seed, train_pool=train_pool, fresh_pool=fresh_pool, n_train=params.compositions,
        n_fresh=params.fresh, exclude=exclude, used=used, train=params.composition, fresh=params.fresh_composition,
    )  # fmt: skip
    return RoundState(
        round=number, seed=params.seed, train=train, fresh=fresh, parameters=params.fingerprint(),
        model_before=model, model_before_id=model_before_id,
        source=source_name(potential_source_name(params.potential)), command=command,
    )  # fmt: skip


def _next_round(params: ActiveParameters, labels_dir: Path) -> int:
    if params.round is not None:
        return params.round
    numbers = active_rounds.round_numbers(labels_dir)
    if not numbers:
        return 1
    last = load_state(labels_dir, numbers[-1])
    return numbers[-1] if last is not None and not last.recorded else numbers[-1] + 1


def run_rounds(
    values: dict[str, Any] | ActiveParameters, *, command: str, settings: Settings | None = None, say=None
) -> list[RoundState]:
    """Run ``rounds`` rounds from the next one (an unfinished round first, resumed with the same arguments).

    Raises:
        ActiveError: bad parameters, or a round that started with other arguments (nothing is written).
    """
    settings = settings or current_settings()
    params = check(values, settings)
    labels_dir, results = params.folders()
    number = _next_round(params, labels_dir)
    done = []
    for _ in range(params.rounds):
        folder = active_rounds.round_folder(labels_dir, number)
        state = load_state(labels_dir, number)
        if state is None:
            state = _start(params, number, settings, labels_dir, command)
        elif state.parameters != params.fingerprint():
            raise ActiveError(
                f"Round {number} started with other arguments ({state.command or state.parameters}); run it "
                "with those, or start the next round with --round."
            )
        model_folder, _ = model_id(settings, state.model_before)
        config = {
            "search": params.search(), "top_k": params.top_k, "relax_steps": params.relax_steps,
            "fmax": params.fmax, "potential": params.potential, "device": params.device,
            "source": state.source, "folder": str(folder), "model_folder": str(model_folder),
        }  # fmt: skip
        if say is not None:
            say(
                f"round {number}: {len(state.pending())} campaigns to run ({', '.join(state.train + state.fresh)})"
            )
        train = (lambda s: fine_tune(s, params, settings, labels_dir)) if params.train else None
        done.append(run_round(
            state, FolderStore(folder), label_jobs=partial(label_all, config=config, workers=params.workers),
            train=train, record=lambda s, entry: record(results, s, entry),
        ))  # fmt: skip
        number += 1
    return done


def round_table(labels_dir: Path | None = None) -> list[dict[str, Any]]:
    """One row per round folder: its compositions, rows, models, gap and which steps are done."""
    labels_dir = labels_dir or DEFAULT_LABELS_DIR
    rows = []
    for number in active_rounds.round_numbers(labels_dir):
        state = load_state(labels_dir, number)
        campaigns = len(state.jobs())
        rows.append({
            "round": number, "compositions": " ".join(state.train), "fresh": " ".join(state.fresh),
            "campaigns": f"{len(state.campaigns)}/{campaigns}", "rows": len(state.labelled_ids),
            "training_rows": state.training_rows, "model_before": state.model_before_id,
            "model_after": state.training.get("model_after_id") or "", "training": state.training.get("status"),
            "gap_ev_per_atom": state.gap("fresh"), "recorded": state.recorded,
        })  # fmt: skip
    return rows


def train_round(
    number: int, values: dict[str, Any], *, command: str, settings: Settings | None = None
) -> RoundState:
    """Fine-tune on a round labelled with ``train`` off, then record it again (the entry is replaced).

    Raises:
        ActiveError: the round does not exist or is not labelled yet.
    """
    settings = settings or current_settings()
    params = check({**values, "train": True}, settings)
    labels_dir, results = params.folders()
    state = load_state(labels_dir, number)
    if state is None or not state.written:
        raise ActiveError(
            f"Round {number} is not labelled yet under {labels_dir}; run `csp learn run` first."
        )
    state.training.setdefault("command", command)
    return run_round(
        state, FolderStore(active_rounds.round_folder(labels_dir, number)), label_jobs=lambda jobs: iter(()),
        train=lambda s: {**fine_tune(s, params, settings, labels_dir), "command": command},
        record=lambda s, entry: record(results, s, entry),
    )  # fmt: skip
