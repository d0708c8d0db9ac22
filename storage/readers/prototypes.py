"""Experimentally observed structures: AFLOW prototypes, a mineral database and COD CIFs.

All rows are positives (``icsd_label`` 1, ``label_origin`` ``"experimental_prototype"``). The mineral
database names its rows by AFLOW prototype label, which several minerals share; those ids get the
formula appended (``robocrys_mineral:AB2_oP6_58_a_g:Fe2S4``) so that each structure keeps its own row.
Most COD rows have no ``formula``: ``raw_formula`` is then the CIF's own formula (else the structure's).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from storage.readers._common import DuplicateGuard, Item, Rejection, excerpt
from storage.readers._rows import iter_json_lines, structure_scalars
from storage.readers._structure import PendingStructure, cif_formula, finish_all

_SHARED_ID_PREFIX = "robocrys_mineral:"


def _pending(path: Path, source: str, license: str) -> Iterator[PendingStructure | Rejection]:
    file = path.name
    seen = DuplicateGuard()
    for item in iter_json_lines(path):
        if isinstance(item, Rejection):
            yield item
            continue
        rec, obj = item
        sid = str(obj.get("id") or "").strip()
        formula = str(obj.get("formula") or cif_formula(str(obj.get("cif") or "")))
        if sid.startswith(_SHARED_ID_PREFIX):
            sid = f"{sid}:{formula}"
        missing = [k for k in ("id", "cif") if not obj.get(k)]
        reason = (f"missing field(s) {missing}" if missing else None) or seen.check(sid, rec.index)
        if obj.get("experimental") is False:
            reason = reason or "record is marked experimental=false in an experimental-structure file"
        if reason:
            yield Rejection(file, rec.index, sid or None, reason, excerpt(rec.text))
            continue
        tags = dict(obj.get("tags") or {})
        for key in ("mineral", "pearson", "strukturbericht", "cod_id"):
            if obj.get(key):
                tags[key] = obj[key]
        row = structure_scalars(
            source=source,
            source_id=sid,
            license=license,
            raw_formula=formula,
            dhf=None,
            energy_kind=None,
            icsd_label=1,
            label_origin="experimental_prototype",
            extra={**tags, "origin": obj.get("source")},
        )
        yield PendingStructure(file, rec.index, sid, row, cif=obj["cif"], raw=rec.text)


def read_experimental_prototypes(
    path: Path, *, source: str, license: str, workers: int = 1
) -> Iterator[Item]:
    """Stream experimental prototype structures as positive ``structures`` records (no energies).

    Args:
        path: the JSON Lines file (plain or gzip).
        source: source name stored on every row.
        license: licence string stored on every row.
        workers: processes that parse CIFs.

    Yields:
        One :class:`Record` or :class:`Rejection` per input line.
    """
    yield from finish_all(_pending(Path(path), source, license), workers=workers)
