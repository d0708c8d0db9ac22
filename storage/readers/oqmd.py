"""OQMD intermetallics with CIFs, hull distance and an ICSD flag (``dft/oqmd_intermetallics.csv.gz``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from storage.readers._common import DuplicateGuard, Item, Rejection, check_energy, excerpt, iter_csv
from storage.readers._rows import check_finite, label_from_flag, structure_scalars
from storage.readers._structure import PendingStructure, finish_all

COLUMNS = ("oqmd_entry_id", "composition", "delta_e_eV_per_atom", "stability_eV_per_atom", "icsd", "cif")


def _pending(path: Path, source: str, license: str) -> Iterator[PendingStructure | Rejection]:
    file = path.name
    seen = DuplicateGuard()
    for item in iter_csv(path, COLUMNS):
        if isinstance(item, Rejection):
            yield item
            continue
        f = item.fields
        sid = f["oqmd_entry_id"].strip()
        dhf, bad = check_energy(f["delta_e_eV_per_atom"])
        hull, bad_hull = check_finite(f["stability_eV_per_atom"], "hull distance")
        try:
            label = label_from_flag(f["icsd"].strip())
        except ValueError as exc:
            label, bad_label = None, f"icsd flag: {exc}"
        else:
            bad_label = None
        reason = seen.check(sid, item.index) or bad or bad_hull or bad_label
        if not sid:
            reason = "oqmd_entry_id is empty"
        if reason:
            yield Rejection(file, item.index, sid or None, reason, excerpt(item.raw))
            continue
        row = structure_scalars(
            source=source,
            source_id=sid,
            license=license,
            raw_formula=f["composition"],
            dhf=dhf,
            energy_kind="oqmd_delta_e",
            e_above_hull=hull,
            icsd_label=label,
            label_origin="oqmd_icsd_flag",
            extra={
                "oqmd_reduced_formula": f.get("reduced_formula"),
                "oqmd_nsites": _int_or_none(f.get("nsites")),
            },
        )
        yield PendingStructure(file, item.index, sid, row, cif=f["cif"], raw=item.raw)


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def read_oqmd_intermetallics(path: Path, *, source: str, license: str, workers: int = 1) -> Iterator[Item]:
    """Stream OQMD entries as ``structures`` records.

    ``dhf_dft_ev_per_atom`` is OQMD's ``delta_e`` (``energy_kind`` ``"oqmd_delta_e"``),
    ``e_above_hull_ev_per_atom`` is OQMD's ``stability`` (negative for entries below the hull of the
    other phases, kept as given), and ``icsd_label`` is the ``icsd`` flag (1 = ICSD prototype).

    Args:
        path: the CSV file (plain or gzip).
        source: source name stored on every row.
        license: licence string stored on every row.
        workers: processes that parse CIFs (1 = this process).

    Yields:
        One :class:`Record` or :class:`Rejection` per input record, in file order.
    """
    path = Path(path)
    yield from finish_all(_pending(path, source, license), workers=workers)
