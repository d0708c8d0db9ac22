"""The active loop's files: one committed folder per round, and the results file of all rounds.

A round folder (``data/labels/active/round-001/`` by default) holds::

    manifest.json       the round's state: compositions, campaigns done, labelled ids, steps done
                        (``csp.potentials.active.RoundState`` as JSON)
    part-000.parquet    the round's labelled rows (:mod:`storage.label_parts`; written once every campaign is done)
    staging/            labelled rows of each finished campaign (``<campaign id>.npz``) until the parts exist

The results file (``benchmarks/results/active_rounds.json``) is ``{"rounds": [entry, ...]}``, one entry per
round in round order; a round that records again (trained later) replaces its entry. Every write goes to a
temporary name and is renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from storage.errors import StorageError, writing

MANIFEST = "manifest.json"
STAGING = "staging"
_ROUND = re.compile(r"^round-(\d{3,})$")
ADVICE = "or choose another --labels-dir"


def round_folder(root: Path, number: int) -> Path:
    """``root/round-NNN`` (three digits at least) of round ``number``."""
    return Path(root) / f"round-{number:03d}"


def round_numbers(root: Path) -> list[int]:
    """The numbers of the round folders under ``root`` that hold a manifest, ascending."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = (_ROUND.match(p.name) for p in root.iterdir() if (p / MANIFEST).is_file())
    return sorted(int(m.group(1)) for m in found if m)


def _write_json(path: Path, data: Any, advice: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    with writing(path.parent, advice=advice):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(path)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """A round folder's manifest, or None when it has none.

    Raises:
        StorageError: the manifest is not JSON (a hand-edited or truncated file).
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StorageError(f"{path} is not a readable manifest ({exc}); restore it from git.") from exc


def write_manifest(folder: Path, data: dict[str, Any]) -> Path:
    """Write a round folder's manifest (whole or not at all); returns its path."""
    path = Path(folder) / MANIFEST
    _write_json(path, data, ADVICE)
    return path


def staging_folder(folder: Path) -> Path:
    """Where a round keeps each finished campaign's labelled rows until its parts are written."""
    return Path(folder) / STAGING


def clear_staging(folder: Path) -> None:
    """Remove a round's staging folder (its rows are in the parts); nothing when there is none."""
    staging = staging_folder(folder)
    if staging.is_dir():
        with writing(staging, advice=ADVICE):
            shutil.rmtree(staging)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The entries of a results file (none when it does not exist).

    Raises:
        StorageError: the file is not a results file of rounds.
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        rounds = json.loads(path.read_text())["rounds"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise StorageError(f"{path} is not a results file of active rounds ({exc}); move it aside.") from exc
    return list(rounds)


def write_record(path: Path, entry: dict[str, Any]) -> Path:
    """Put a round's entry in the results file: appended, or replacing the entry of the same round.

    Raises:
        StorageError: the entry has no ``round`` or the existing file is not a results file.
    """
    if "round" not in entry:
        raise StorageError("A round's entry needs its round number.")
    kept = [r for r in read_records(path) if r.get("round") != entry["round"]]
    rounds = sorted([*kept, entry], key=lambda r: r["round"])
    _write_json(Path(path), {"rounds": rounds}, "or choose another --results file")
    return Path(path)
