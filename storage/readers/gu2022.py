"""Gu et al. 2022 perovskite positive-unlabeled set with CIFs (``synth/gu2022_perovskite_pu.csv.gz``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from storage.readers._common import DuplicateGuard, Item, Rejection, excerpt, iter_csv
from storage.readers._rows import label_from_flag, structure_scalars
from storage.readers._structure import PendingStructure, finish_all

COLUMNS = ("id", "icsd_label", "reduced_formula", "sources", "cif")


def _pending(path: Path, source: str, license: str) -> Iterator[PendingStructure | Rejection]:
    file = path.name
    seen = DuplicateGuard()
    for item in iter_csv(path, COLUMNS):
        if isinstance(item, Rejection):
            yield item
            continue
        f = item.fields
        sid = f["id"].strip()
        try:
            label = label_from_flag(f["icsd_label"].strip())
            reason = None if label is not None else "icsd_label is missing"
        except ValueError as exc:
            label, reason = None, f"icsd_label: {exc}"
        reason = ("id is empty" if not sid else None) or seen.check(sid, item.index) or reason
        if reason:
            yield Rejection(file, item.index, sid or None, reason, excerpt(item.raw))
            continue
        row = structure_scalars(
            source=source,
            source_id=sid,
            license=license,
            raw_formula=f["reduced_formula"],
            dhf=None,
            energy_kind=None,
            icsd_label=label,
            label_origin="gu2022_icsd_label",
            extra={"sources": [s for s in f["sources"].split(";") if s]},
        )
        yield PendingStructure(file, item.index, sid, row, cif=f["cif"], raw=item.raw)


def read_gu2022(path: Path, *, source: str, license: str, workers: int = 1) -> Iterator[Item]:
    """Stream Gu 2022 perovskites as ``structures`` records with ``icsd_label`` 1 (reported) or 0 (unlabeled).

    No energies; the ``sources`` ids (MP, ICSD, ...) go to ``extra_json``.

    Args:
        path: the CSV file (plain or gzip).
        source: source name stored on every row.
        license: licence string stored on every row.
        workers: processes that parse CIFs.

    Yields:
        One :class:`Record` or :class:`Rejection` per input record.
    """
    yield from finish_all(_pending(Path(path), source, license), workers=workers)
