"""Members trained apart (``--member K``), joined into one ensemble run (``combine``).

A member run is an ordinary one-model run folder whose ``metrics.json`` records ``member`` (its index K of
N, its seed ``base_seed + K``, the hash of its bootstrap rows) and whose ``predictions.npz`` holds its
prediction for every row of its training arrays. :func:`combine_members` checks that the runs belong to one
ensemble, stacks their weights into an :class:`~csp.models.alignn.ALIGNNEnsemble` (members in index order)
and computes the ensemble's metrics from the stacked predictions, the same
:func:`~csp.models.training.regression_report` an ``--ensemble N`` run writes, so the result is an ensemble
run folder like any other (``csp models export``, the one-graph ONNX export with ``dhf``, ``dhf_std`` and
``dhf_members``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csp.errors import InputError
from csp.models import ALIGNN, ALIGNNEnsemble
from csp.models.dataset import CrystalArrays
from csp.models.training._loops import (
    PREDICTIONS,
    _ensemble_info,
    load_checkpoint,
    regression_report,
)

#: what the members of one ensemble share, with the words a refusal uses for it
_SHARED = (
    ("training_data_hash", "training data", "of one training set"),
    ("fidelity", "fidelity mode", "of one --fidelity mode and --mlip-weight"),
    ("config", "architecture", "of one config (--hidden, layers, heads)"),
    ("base_seed", "--seed", "of one --seed (member K has seed + K)"),
)


def _shared(info: dict[str, Any], key: str) -> Any:
    if key == "fidelity":
        fidelity = info.get("fidelity", {})
        return fidelity.get("mode"), fidelity.get("mlip_weight")
    if key == "base_seed":
        return info["member"]["base_seed"]
    return info.get(key)


def _difference(value: Any, other: Any) -> str:
    """``value`` against ``other`` in a few words: a hash's first 12 digits, a config's differing keys."""
    if isinstance(value, dict) and isinstance(other, dict):
        keys = sorted(k for k in set(value) | set(other) if value.get(k) != other.get(k))
        return "; ".join(f"{k} {value.get(k)} against {other.get(k)}" for k in keys)
    if isinstance(value, tuple):  # the fidelity: mode and mlip weight
        value, other = (f"{v[0]} (mlip weight {v[1]})" for v in (value, other))
    elif isinstance(value, str) and len(value) == 64:  # a sha256
        value, other = value[:12], str(other)[:12]
    return f"{value} against {other}"


def _read_member(run: Path) -> tuple[ALIGNN, dict[str, Any], dict[str, np.ndarray]]:
    model, info = load_checkpoint(run)
    if "member" not in info or not isinstance(model, ALIGNN):
        raise InputError(
            f"{run} is not a member run (its metrics.json has no 'member'); train members with "
            "--ensemble N --member K."
        )
    path = Path(run) / PREDICTIONS
    if not path.is_file():
        raise InputError(f"{run} has no {PREDICTIONS}; train or fine-tune the member again with --member K.")
    with np.load(path, allow_pickle=False) as data:
        predictions = {name: data[name] for name in data.files if name != "training_data_hash"}
        if str(data["training_data_hash"]) != info.get("training_data_hash"):
            raise InputError(
                f"{path} belongs to another run than {run}/metrics.json; train the member again."
            )
    return model, info, predictions


def combine_members(runs: Sequence[Path], arrays: CrystalArrays) -> tuple[ALIGNNEnsemble, dict[str, Any]]:
    """Join member runs into one enthalpy ensemble and its info (what ``--ensemble N`` would have written).

    Args:
        runs: two or more member run folders (``python -m csp.models.training dft --ensemble N --member K``,
            or a ``transfer`` continuation of one), each with checkpoint.pt, metrics.json and predictions.npz.
        arrays: the members' training arrays (the ``--data`` file they were trained on); only their targets,
            splits, sources and fidelities are read (no graphs are built).

    Returns:
        The ensemble (members in index order, CPU, eval mode) and the info for
        :func:`~csp.models.training.save_checkpoint`: the members' records under ``ensemble`` (each with its
        ``run``), their joined history, and the ensemble's metrics per split, source and fidelity with the
        spread (from the stacked member predictions, eV/atom); ``before_fine_tuning`` too when every member
        was fine-tuned.

    Raises:
        InputError: fewer than two runs, a run that is not a member run, runs of different training data,
            fidelity mode, architecture or base seed, a member index given twice, or ``arrays`` that are not
            the members' training data.
        ModelNotFoundError: a folder without checkpoint.pt or metrics.json.
    """
    runs = [Path(r) for r in runs]
    if len(runs) < 2:
        raise InputError(f"combine joins at least 2 member runs into an ensemble, got {len(runs)}.")
    read = [(run, *_read_member(run)) for run in runs]
    first_run, _, first, _ = read[0]
    seen: dict[int, Path] = {}
    for run, _, info, _ in read:
        for key, what, fix in _SHARED:
            if _shared(info, key) != _shared(first, key):
                difference = _difference(_shared(info, key), _shared(first, key))
                raise InputError(
                    f"{run} differs from {first_run} in its {what} ({difference}); combine members {fix}."
                )
        index = info["member"]["index"]
        if index in seen:
            raise InputError(f"{run} and {seen[index]} are both member {index}; give each member once.")
        seen[index] = run
    data_hash = arrays.content_hash()
    if data_hash != first["training_data_hash"]:
        raise InputError(
            f"--data has hash {data_hash[:12]} but the members were trained on {first['training_data_hash'][:12]}; "
            "pass the members' training set."
        )
    read.sort(key=lambda item: item[2]["member"]["index"])
    model = ALIGNNEnsemble.from_members([m for _, m, _, _ in read]).eval()
    info = _combined_info(read)
    out = np.stack([p["prediction"] for _, _, _, p in read], axis=1)
    info["metrics"] = regression_report(out, arrays)
    if all("before" in p for _, _, _, p in read):
        before = np.stack([p["before"] for _, _, _, p in read], axis=1)
        info["metrics"]["before_fine_tuning"] = regression_report(before, arrays)
    return model, info


def _combined_info(read: list[tuple[Path, ALIGNN, dict[str, Any], dict]]) -> dict[str, Any]:
    """The info of the joined run: the first member's (data, split, fidelity, settings at the base seed)
    with the ensemble's member records, history and stop reason."""
    first = read[0][2]
    records = []
    for run, _, info, _ in read:
        member = dict(info["member"])
        record = {"member": member.pop("index"), **member, "run": str(run), "kind": info["kind"]}
        record["history"] = info["history"]
        records.append(record)
    kinds = {info["kind"] for _, _, info, _ in read}
    combined = {
        key: first[key]
        for key in (
            "config",
            "settings",
            "training_data_hash",
            "sources",
            "split_sizes",
            "fidelity",
            "data_file",
        )
        if key in first
    }
    combined["kind"] = kinds.pop() if len(kinds) == 1 else "transfer"  # some members continued, some not
    combined["torch_version"] = first.get("torch_version")
    combined.update(_ensemble_info(records))
    combined["seconds"] = sum(float(info.get("seconds", 0.0)) for _, _, info, _ in read)
    combined["combined_from"] = [str(run) for run, _, _, _ in read]
    inits = [info.get("init") for _, _, info, _ in read]
    if all(inits) and len({i.get("training_data_hash") for i in inits}) == 1:
        combined["init"] = {**inits[0], "n_members": len(read)}
    return combined
