"""The models a campaign scores with: their folders by role, their ids, and their warm scorer.

A campaign's model ids (``<folder>:<sha256 prefix>``, :func:`csp.models.check.model_id`) are part of its
fingerprint (:func:`storage.campaign_state.check_same_parameters`): a resume whose configured folders hold
other ONNX files (a folder replaced, ``CSP_MODELS_DIR`` or ``CSP_EXP_MODEL`` changed) is refused before
anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from csp.errors import InputError
from flows.settings import Settings


def model_folders(settings: Settings, dhf_source: str) -> dict[str, Path | None]:
    """``{role: folder}`` of the configured models (``dft`` or ``exp`` by ``dhf_source``, and ``pu``);
    the role not used is None."""
    return {
        "dft": settings.model_dir("dft") if dhf_source == "dft" else None,
        "exp": settings.model_dir("exp") if dhf_source == "exp" else None,
        "pu": settings.model_dir("pu"),
    }


def configured_model_ids(settings: Settings, dhf_source: str) -> list[str] | None:
    """The ids the configured models will be recorded under, in the scorer's order (enthalpy, then PU),
    read from each ``model.json`` without opening a session; None when a folder has no readable
    ``model.json`` with a sha256 (opening the models then says what is wrong)."""
    from csp.models.check import folder_model_id

    ids = [folder_model_id(f) for f in model_folders(settings, dhf_source).values() if f is not None]
    return None if None in ids else [i for i in ids if i is not None]


def missing_model(kind: str, folder: Path) -> InputError:
    """The one-line refusal of a model folder without ``model.json`` (issue 22, trial item 4c): it names the
    variable that chose the folder (``CSP_EXP_MODEL`` ...) and the model folders that exist, where it blamed
    ``CSP_MODELS_DIR`` for a typo or a blank ``CSP_EXP_MODEL``."""

    import json

    from csp.models.check import ROLE_OUTPUTS

    task = ROLE_OUTPUTS.get(kind, (None, ()))[0]

    def fits(
        meta: Path,
    ) -> bool:  # a folder whose model.json is of this slot's task (a DFT folder for exp too)
        try:
            return task is None or json.loads(meta.read_text()).get("task") == task
        except (OSError, ValueError, AttributeError):
            return False

    def models_in(root: Path) -> list[str]:
        subs = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
        return sorted(p.name for p in subs if (p / "model.json").is_file() and fits(p / "model.json"))

    root = folder if models_in(folder) else folder.parent  # a blank name leaves the models folder itself
    names = models_in(root)
    what = f"{task} model folders" if task else "model folders"
    choice = (
        f"set it to one of the {what} in {root}: {', '.join(names)} (or a folder's path)"
        if names
        else f"no {what[:-1]} lies in {root}: set CSP_MODELS_DIR to the folder holding them"
    )
    return InputError(
        f"The {kind} model folder {folder} has no model.json: CSP_{kind.upper()}_MODEL names no model; {choice}."
    )


def open_scorer(settings: Settings, dhf_source: str, **options: Any) -> Any:
    """Warm models of the configured folders (``options``: ``allow_unseen_elements``, ``score_device`` of
    :func:`csp.models.scoring.load_scorer`: onnxruntime, or torch on a GPU), each checked for its role by
    :func:`csp.models.check.check_model_folder` (files, sha256, task, outputs) before anything is scored.

    Raises:
        csp.errors.InputError: a folder has no model.json.
        csp.errors.ModelError: a model file is corrupt, truncated, unverifiable or of the wrong kind.
    """
    from csp.models.scoring import load_scorer

    folders = model_folders(settings, dhf_source)
    for kind, folder in folders.items():
        if folder is not None and not (folder / "model.json").is_file():
            raise missing_model(kind, folder)
    return load_scorer(
        settings.models_dir,
        dhf_source=dhf_source,
        threads=settings.threads,
        **options,
        **folders,
    )
