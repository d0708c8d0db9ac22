"""Composition-only formation enthalpies: Jha 2019, qmpy SSUB/IIT, Kingsbury 2022, OQMD compositions.

Rows go to ``experimental_enthalpies`` in eV/atom. Rows from a file with its own train/test split
carry it in ``split``; others carry ``split = None`` and the ingest layer assigns one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storage.readers._common import (
    DuplicateGuard,
    Item,
    OutOfRangeError,
    Record,
    Rejection,
    check_energy,
    excerpt,
    iter_csv,
    iter_lines,
    short_token,
)
from storage.readers._rows import iter_json_array, read_text
from storage.readers._structure import StructureError, composition_fields

REFERENCES = {
    "jha2019": "Jha et al. 2019, Nat. Commun. 10, 5316 (ElemNet transfer-learning set; experimental, SSUB)",
    "qmpy_ssub": "SGTE Solid SUBstance database (SSUB) as distributed with qmpy/OQMD; experimental",
    "qmpy_iit": "IIT thermodynamics database as distributed with qmpy (Kim et al. 2017); experimental",
    "kingsbury2022": "Kingsbury et al. 2022, npj Comput. Mater. (pymatgen exp_compounds); experimental",
    "oqmd_composition": (
        "OQMD DFT (PBE) lowest formation energy per composition, NOT experimental "
        "(Jha et al. 2019 ElemNet training set)"
    ),
}


def _row(
    *,
    source: str,
    source_id: str,
    license: str,
    raw_formula: str,
    dhf: float,
    uncertainty: float | None,
    reference: str,
    split: str | None,
) -> dict[str, Any]:
    reduced, elements, _ = composition_fields(raw_formula)
    return {
        "source": source,
        "source_id": source_id,
        "license": license,
        "raw_formula": raw_formula,
        "reduced_formula": reduced,
        "elements": elements,
        "dhf_exp_ev_per_atom": dhf,
        "uncertainty_ev_per_atom": uncertainty,
        "reference": reference,
        "split": split,
    }


def _indexed_csv(
    path: Path, *, source: str, license: str, split: str | None, energy_column: str, reference: str
) -> Iterator[Item]:
    path = Path(path)
    seen = DuplicateGuard()
    for item in iter_csv(path, ("", "pretty_comp", energy_column)):
        if isinstance(item, Rejection):
            yield item
            continue
        f = item.fields
        sid = f"{split}:{f[''].strip()}" if split else f[""].strip()
        dhf, reason = check_energy(f[energy_column])
        if dhf is None and reason is None:
            reason = f"{energy_column} is missing"
        reason = reason or seen.check(sid, item.index)
        try:
            row = (
                None
                if reason
                else _row(
                    source=source,
                    source_id=sid,
                    license=license,
                    raw_formula=f["pretty_comp"].strip(),
                    dhf=dhf,
                    uncertainty=None,
                    reference=reference,
                    split=split,
                )
            )
        except StructureError as exc:
            reason = str(exc)
        if reason or row is None:
            yield Rejection(path.name, item.index, sid, reason or "unreadable record", excerpt(item.raw))
        else:
            yield Record("experimental_enthalpies", row)


def read_jha2019(path: Path, *, source: str, license: str, split: str) -> Iterator[Item]:
    """Stream ``expt_deltae_{training,test}.csv`` (``pretty_comp``, ``delta_e`` in eV/atom).

    Args:
        path: the CSV file.
        source: source name stored on every row.
        license: licence string stored on every row.
        split: the file's split, ``"train"`` or ``"test"``; stored in ``split`` and prefixed to
            ``source_id`` (``"train:12"``) because both files number their rows from 0.

    Yields:
        One :class:`Record` or :class:`Rejection` per input record.
    """
    yield from _indexed_csv(
        path,
        source=source,
        license=license,
        split=split,
        energy_column="delta_e",
        reference=REFERENCES["jha2019"],
    )


def read_oqmd_composition(path: Path, *, source: str, license: str, split: str) -> Iterator[Item]:
    """Stream OQMD's lowest DFT formation energy per composition (``formation_energy_peratom``).

    These are DFT values, not experiment: they land in ``experimental_enthalpies`` only with a
    ``reference`` that says so (and the registry marks the source ``kind="dft"``), for composition
    models pre-trained on OQMD before fine-tuning on experiment.

    Args:
        path: the CSV file (plain or gzip).
        source: source name stored on every row.
        license: licence string stored on every row.
        split: the file's split (``"train"`` or ``"test"``).

    Yields:
        One :class:`Record` or :class:`Rejection` per input record.
    """
    yield from _indexed_csv(
        path,
        source=source,
        license=license,
        split=split,
        energy_column="formation_energy_peratom",
        reference=REFERENCES["oqmd_composition"],
    )


def read_qmpy_dat(path: Path, *, source: str, license: str, reference: str) -> Iterator[Item]:
    """Stream a qmpy ``.dat`` table (``formula value`` per line, eV/atom, no header).

    Formulas repeat with different values (several measurements); each line is its own row with
    ``source_id`` ``"<file stem>:<record index>"``.

    Args:
        path: the text file.
        source: source name stored on every row.
        license: licence string stored on every row.
        reference: citation stored on every row.

    Yields:
        One :class:`Record` or :class:`Rejection` per non-blank line.
    """
    path = Path(path)
    for item in iter_lines(path):
        if isinstance(item, Rejection):
            yield item
            continue
        sid = f"{path.stem}:{item.index}"
        parts = item.text.split()
        if len(parts) != 2:
            yield Rejection(
                path.name,
                item.index,
                sid,
                f"expected 'formula value', got {len(parts)} fields",
                excerpt(item.text),
            )
            continue
        dhf, reason = check_energy(parts[1])
        try:
            row = (
                None
                if reason
                else _row(
                    source=source,
                    source_id=sid,
                    license=license,
                    raw_formula=parts[0],
                    dhf=dhf,
                    uncertainty=None,
                    reference=reference,
                    split=None,
                )
            )
        except StructureError as exc:
            reason = str(exc)
        if reason or row is None:
            yield Rejection(path.name, item.index, sid, reason or "unreadable record", excerpt(item.text))
        else:
            yield Record("experimental_enthalpies", row)


def read_kingsbury2022(path: Path, *, source: str, license: str) -> Iterator[Item]:
    """Stream Kingsbury et al. 2022 experimental compounds (a JSON array, NaN allowed).

    ``exp energy`` and ``uncertainty`` are eV per formula unit as written: both are divided by the
    number of atoms of ``formula`` (``Ag2CO3``: 6). A NaN uncertainty becomes null. ``source_id`` is
    the formula (unique in the file); the linked MP id, when given, is appended to ``reference``
    (the table has no column for it).

    Args:
        path: the JSON file (plain or gzip).
        source: source name stored on every row.
        license: licence string stored on every row.

    Yields:
        One :class:`Record` or :class:`Rejection` per array element; a cut-off file ends with one
        :class:`Rejection` after the elements read.
    """
    path = Path(path)
    text, error = read_text(path)
    if not text.strip():
        yield Rejection(path.name, 0, None, error or "file is empty (no records)", "")
        return
    seen = DuplicateGuard()
    count = 0
    for item in iter_json_array(text):
        if isinstance(item, str):
            yield Rejection(path.name, count, None, f"{error}; {item}" if error else item, "")
            return
        index, obj = item
        count = index + 1
        if not isinstance(obj, dict):
            yield Rejection(path.name, index, None, "array element is not an object", excerpt(obj))
            continue
        formula = str(obj.get("formula") or "").strip()
        energy, mpid = obj.get("exp energy"), obj.get("mpid")
        reason = None if formula else "formula is missing"
        if energy is None:
            reason = reason or "exp energy is missing"
        reason = reason or seen.check(formula, index)
        row = None
        if not reason:
            try:
                _, _, natoms = composition_fields(formula)
                dhf, reason = check_energy(_per_atom(energy, natoms), "formation enthalpy")
                unc = _per_atom(obj.get("uncertainty"), natoms)
                if unc is not None and not math.isfinite(unc):
                    unc = None
                reference = REFERENCES["kingsbury2022"] + (f"; linked MP structure {mpid}" if mpid else "")
                if not reason and dhf is not None:
                    row = _row(
                        source=source,
                        source_id=formula,
                        license=license,
                        raw_formula=formula,
                        dhf=dhf,
                        uncertainty=unc,
                        reference=reference,
                        split=None,
                    )
            except (StructureError, TypeError, ValueError) as exc:
                reason = str(exc)
        if row is None:
            yield Rejection(path.name, index, formula or None, reason or "unreadable record", excerpt(obj))
        else:
            yield Record("experimental_enthalpies", row)
    if error:
        yield Rejection(path.name, count, None, error, "")


def _per_atom(value: Any, natoms: float) -> float | None:
    """``value`` (a total) per atom; a number beyond a float's range is a ValueError (the record's reason)."""
    if value is None:
        return None
    try:
        return float(value) / natoms
    except OverflowError:
        raise OutOfRangeError(f"energy {short_token(value)} is out of range (beyond +-1.8e308)") from None
