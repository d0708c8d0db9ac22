"""The one check of a model folder, shared by scoring, campaigns and ``csp models verify``.

A model folder holds ``model.onnx`` and ``model.json`` (written by :mod:`csp.models.onnx_export`). Before any
crystal is scored, :func:`check_model_folder` makes sure that:

1. both files exist and ``model.json`` is valid JSON with the keys a scorer needs (``sha256``, ``task``,
   ``outputs``, ``k``, ``elements``);
2. ``model.onnx`` has the sha256 recorded in ``model.json`` (a missing ``sha256`` is refused, not skipped);
3. the task and outputs are the ones the folder's role needs (``dft``/``exp``: a regression with a ``dhf``
   output; ``pu``: a PU ensemble with ``p_syn_mean`` and ``p_syn_std``);
4. the training element counts (``training_elements``: element symbol -> training rows containing it),
   when recorded, are well formed;
5. ``n_members`` (members of an enthalpy ensemble; absent in folders written before ensembles: 1), when
   recorded, is a whole number >= 1, and an ensemble (n_members >= 2) has the outputs ``dhf_std`` and
   ``dhf_members`` beside ``dhf``.

Opening the ONNX session (:class:`csp.models.infer.OnnxModel`) then refuses a file onnxruntime cannot load.
Every failure is a :class:`~csp.errors.ModelError` whose one-line message names the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from csp.errors import ModelError, ModelNotFoundError

__all__ = [
    "ENSEMBLE_OUTPUTS",
    "ROLE_OUTPUTS",
    "MissingModelFileError",
    "ModelIntegrityError",
    "check_model_folder",
    "record_training_elements",
    "sha256_of",
    "training_element_counts",
]

#: what each role of a model folder needs: (task, outputs)
ROLE_OUTPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dft": ("regression", ("dhf",)),
    "exp": ("regression", ("dhf",)),
    "pu": ("pu", ("p_syn_mean", "p_syn_std")),
}

#: what an enthalpy ensemble (``n_members`` >= 2) adds to ``dhf``: the spread and the members
ENSEMBLE_OUTPUTS = ("dhf_std", "dhf_members")

_REQUIRED_KEYS = ("sha256", "task", "outputs", "k", "elements")


class ModelIntegrityError(ModelError):
    """A model file does not match the sha256 recorded in its model.json (or none is recorded)."""


#: a model folder lacks model.onnx or model.json (the one class lives in :mod:`csp.errors`)
MissingModelFileError = ModelNotFoundError


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_meta(json_path: Path) -> dict[str, Any]:
    try:
        text = json_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{json_path} cannot be read ({exc}); restore the model folder.") from exc
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{json_path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}; the file may "
            "be truncated); restore it or re-export the model."
        ) from exc
    if not isinstance(meta, dict):
        raise ModelError(f"{json_path} does not hold a JSON object; restore it or re-export the model.")
    return meta


def model_id(name: str, sha256: str) -> str:
    """The id a campaign records for a model (on every event and candidate row, and in its fingerprint):
    the folder name and the first 12 hex digits of the ONNX file's sha256, e.g.
    ``ALIGNN-ExpTL-2026.11-Eform:3f9a0c51d2e4``."""
    return f"{name}:{str(sha256)[:12]}"


def folder_model_id(folder: Path | str) -> str | None:
    """:func:`model_id` of a model folder, from the sha256 its ``model.json`` records (the file is not
    hashed here: loading the model checks it against the ONNX file); None when there is no readable
    ``model.json`` with a sha256 (the model check then says what is wrong)."""
    folder = Path(folder)
    try:
        meta = _read_meta(folder / "model.json")
    except ModelError:
        return None
    sha = meta.get("sha256")
    return model_id(folder.name, sha) if isinstance(sha, str) and sha else None


def training_element_counts(
    meta: dict[str, Any], json_path: Path | str = "model.json"
) -> dict[str, int] | None:
    """Element symbol -> training rows containing it, from ``training_elements``; ``None`` if not recorded.

    Raises:
        ModelError: if ``training_elements`` is present but not a mapping of symbols to counts >= 0.
    """
    counts = meta.get("training_elements")
    if counts is None:
        return None
    if not isinstance(counts, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in counts.items()
    ):
        raise ModelError(
            f"{json_path} has a malformed 'training_elements' (expected element symbol -> row count); "
            "restore it or re-export the model."
        )
    return dict(counts)


def check_model_folder(folder: Path | str, role: str | None = None) -> dict[str, Any]:
    """Check a model folder's files, checksum, task and outputs; returns its ``model.json``.

    Args:
        folder: the model folder.
        role: ``"dft"``, ``"exp"`` or ``"pu"`` (what the caller will use it as); ``None`` skips the task check.

    Returns:
        The parsed ``model.json``.

    Raises:
        ModelNotFoundError: a file is missing (also a ``FileNotFoundError``).
        ModelIntegrityError: no sha256 recorded, or the ONNX file's sha256 differs.
        ModelError: unreadable or truncated model.json, a missing key, a task/outputs that do not fit
            ``role``, or a malformed ``n_members`` (or an ensemble without its spread outputs).
    """
    folder = Path(folder)
    json_path = folder / "model.json"
    onnx_path = folder / "model.onnx"
    if not json_path.is_file() or not onnx_path.is_file():
        missing = [p.name for p in (onnx_path, json_path) if not p.is_file()]
        raise ModelNotFoundError(
            f"Model folder {folder} needs both model.onnx and model.json ({' and '.join(missing)} missing); "
            "set CSP_MODELS_DIR or restore the folder."
        )
    meta = _read_meta(json_path)
    missing_keys = [key for key in _REQUIRED_KEYS if key not in meta]
    if "sha256" in missing_keys:
        raise ModelIntegrityError(
            f"{json_path} records no sha256 for model.onnx, so the file cannot be verified; re-export the model."
        )
    if missing_keys:
        raise ModelError(f"{json_path} lacks the key(s) {missing_keys}; re-export the model.")
    actual = sha256_of(onnx_path)
    if actual != meta["sha256"]:
        raise ModelIntegrityError(
            f"{onnx_path} has sha256 {actual[:12]}... but model.json records {str(meta['sha256'])[:12]}...; "
            "the file is corrupt or was replaced: restore it or re-export the model."
        )
    outputs = meta["outputs"]
    if not isinstance(outputs, dict | list):
        raise ModelError(f"{json_path} has a malformed 'outputs'; re-export the model.")
    if role is not None:
        if role not in ROLE_OUTPUTS:
            raise ValueError(f"Unknown model role {role!r}; choose from {sorted(ROLE_OUTPUTS)}.")
        task, needed = ROLE_OUTPUTS[role]
        lacking = [name for name in needed if name not in outputs]
        if meta["task"] != task or lacking:
            raise ModelError(
                f"{json_path} describes a {meta['task']!r} model with outputs {sorted(outputs)}, but the {role} "
                f"slot needs a {task!r} model with outputs {list(needed)}; name a {task} model folder for it "
                f"(CSP_{role.upper()}_MODEL), and leave this one where it is."
            )
    members = meta.get("n_members", 1)
    if not isinstance(members, int) or isinstance(members, bool) or members < 1:
        raise ModelError(
            f"{json_path} has a malformed 'n_members' {members!r} (expected a whole number >= 1); "
            "restore it or re-export the model."
        )
    lacking = [name for name in ENSEMBLE_OUTPUTS if name not in outputs]
    if members > 1 and lacking:
        raise ModelError(
            f"{json_path} describes an ensemble of {members} members without the output(s) {lacking}; "
            "re-export the model."
        )
    training_element_counts(meta, json_path)
    return meta


def record_training_elements(folder: Path | str, datasets: list[Path], command: str) -> dict[str, int]:
    """Write ``training_elements`` (and where the counts came from) into ``folder/model.json``.

    ``training_elements`` maps each element symbol to the number of training rows (structures) containing
    it, summed over every training set the weights saw (a fine-tuned model: its pretraining set too);
    ``training_elements_from`` names the files (with their sha256) and ``command``. ``model.onnx`` is not
    touched, so its sha256 stays valid.

    Args:
        folder: the model folder.
        datasets: training-set files (:mod:`csp.models.dataset` layout) the model's weights were trained on.
        command: how the counts were made (recorded beside them).

    Returns:
        The recorded ``{symbol: rows}``, most rows first.

    Raises:
        ModelError: an unreadable or truncated ``model.json``.
        InputError: a training-set file that is not in the :mod:`csp.models.dataset` layout.
    """
    from collections import Counter

    from pymatgen.core.periodic_table import Element  # also names elements beyond csp's table (Cf)

    from csp.models.dataset import load_arrays

    total: Counter = Counter()
    sources = []
    for npz in map(Path, datasets):
        for z, n in load_arrays(npz).element_rows().items():
            total[Element.from_Z(z).symbol] += n
        sources.append({"file": npz.name, "sha256": sha256_of(npz)})
    json_path = Path(folder) / "model.json"
    meta = _read_meta(json_path)
    meta["training_elements"] = {s: int(total[s]) for s in sorted(total, key=lambda s: (-total[s], s))}
    meta["training_elements_from"] = {"datasets": sources, "command": command}
    json_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta["training_elements"]
