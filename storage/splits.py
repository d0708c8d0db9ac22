"""Formula-hash splits and the exclusion list that every training export honours."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from pymatgen.core import Composition

#: cumulative upper bounds of the hash bucket (0..999) for train / val; the rest is test
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


#: pymatgen's reduced formula names these compositions after their molecules or ions (``H2``, ``O2``; the
#: peroxides ``K2O2``, ``H2O2`` for 1:1 K:O, H:O); a crystal of the element is ``H``, ``O`` in the lake, as in
#: OPTIMADE queries and campaigns, and a 1:1 cell of K and O is ``KO``, the plain stoichiometric formula (a
#: rock-salt ``KO`` cell was stored as ``K2O2``, which ``reduced_formula='KO'`` missed). Lakes written before
#: ing22d (elements) and sym2 (the peroxides) hold the molecular names: the lake's views read them as the plain
#: formula (:data:`MOLECULAR_NAMES_SQL`); a stored reduced formula is never one of them otherwise. Read from
#: pymatgen's own ``Composition.special_formulas``, as ``csp.structures.composition.reduced_formula`` does.
MOLECULAR_NAMES = {special: written for written, special in Composition.special_formulas.items()}
_LEGACY_NAMES = {symbol: name for name, symbol in MOLECULAR_NAMES.items()}


def reduced_formula_of(composition: Composition) -> str:
    """The lake's reduced formula of a pymatgen ``Composition``: pymatgen's (``LiH``, ``BaZrO3``), except that a
    single element is its symbol (``H``, not pymatgen's ``H2``) and no other special name of pymatgen's is kept
    (1:1 K:O is ``KO``, not the peroxide ``K2O2``; :data:`MOLECULAR_NAMES`). Every ``reduced_formula`` the lake stores, and
    every formula compared with one (:func:`normalise_formula`), is this function's. It spells formulas as the
    campaigns do (``csp.structures.composition.reduced_formula``, which storage does not import: a test holds
    the two equal for every element), so a campaign's ``H`` and a stored ``H`` are one."""
    found = composition.elements
    if len(found) == 1:
        return found[0].symbol
    name = composition.reduced_formula
    return MOLECULAR_NAMES.get(name, name)


def normalise_formula(formula: str) -> str:
    """The lake's reduced formula of ``formula`` (``"Mg2O2"`` -> ``"MgO"``, ``"O4"`` -> ``"O"``)."""
    try:
        return reduced_formula_of(Composition(formula))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"Cannot read the formula {formula!r}: {exc}") from exc


def split_of(reduced_formula: str, *, salt: str = "csp-split-v1") -> str:
    """Stable train/val/test assignment from a hash of the reduced formula.

    Every structure of one composition lands in the same split, so no composition straddles the
    training and test sets, and the assignment never depends on ingest order or on other rows.
    The hash is of the formula as pymatgen writes it: an element's lake formula ``O`` hashes as ``O2`` did
    before the lake wrote plain symbols, and ``KO`` as ``K2O2``, so no stored or future row changes its split.
    """
    key = _LEGACY_NAMES.get(reduced_formula, reduced_formula)
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 1000
    train_end = int(SPLIT_FRACTIONS["train"] * 1000)
    val_end = train_end + int(SPLIT_FRACTIONS["val"] * 1000)
    if bucket < train_end:
        return "train"
    return "val" if bucket < val_end else "test"


#: SQL of the lake views' ``reduced_formula``: a molecular name of an element stored by an older ingest read as
#: the element's symbol
MOLECULAR_NAMES_SQL = (
    'CASE "reduced_formula" '
    + " ".join(f"WHEN '{name}' THEN '{symbol}'" for name, symbol in MOLECULAR_NAMES.items())
    + ' ELSE "reduced_formula" END'
)


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
