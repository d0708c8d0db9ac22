"""Formula-hash splits and the exclusion list that every training export honours."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from pymatgen.core import Composition

#: cumulative upper bounds of the hash bucket (0..999) for train / val; the rest is test
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def normalise_formula(formula: str) -> str:
    """The reduced formula pymatgen writes for ``formula`` (``"Mg2O2"`` -> ``"MgO"``)."""
    try:
        return Composition(formula).reduced_formula
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"Cannot read the formula {formula!r}: {exc}") from exc


def split_of(reduced_formula: str, *, salt: str = "csp-split-v1") -> str:
    """Stable train/val/test assignment from a hash of the reduced formula.

    Every structure of one composition lands in the same split, so no composition straddles the
    training and test sets, and the assignment never depends on ingest order or on other rows.
    """
    digest = hashlib.sha256(f"{salt}:{reduced_formula}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 1000
    train_end = int(SPLIT_FRACTIONS["train"] * 1000)
    val_end = train_end + int(SPLIT_FRACTIONS["val"] * 1000)
    if bucket < train_end:
        return "train"
    return "val" if bucket < val_end else "test"


def load_exclusions(table1_json: Path) -> list[str]:
    """Reduced formulas of the validation compounds listed in the paper's Table 1 file."""
    try:
        entries = json.loads(Path(table1_json).read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"The exclusion list {table1_json} does not exist; point the data mirror setting at the data folder."
        ) from exc
    return sorted({normalise_formula(entry["formula"]) for entry in entries})


def exclusion_set(formulas: Iterable[str]) -> set[str]:
    """Normalise user-given formulas so that ``"Mg4O4"`` excludes ``MgO`` too."""
    return {normalise_formula(f) for f in formulas}
