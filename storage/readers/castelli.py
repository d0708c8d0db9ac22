"""Castelli cubic perovskites (GPAW DFT) in two packagings: the CDVAE split and an alternative split.

Their heats of formation are computed against Castelli et al.'s own references (2012), NOT the
MP/OQMD/GNoME scale, so ``energy_kind`` carries a ``castelli_gpaw:`` prefix naming the column.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from storage.readers._common import DuplicateGuard, Item, Rejection, check_energy, excerpt, iter_csv
from storage.readers._rows import check_finite, structure_scalars
from storage.readers._structure import PendingStructure, finish_all

CDVAE_COLUMNS = ("material_id", "cif", "formula", "heat_all", "heat_ref", "dir_gap", "ind_gap")
ALT_COLUMNS = ("", "e_form", "formula", "cif")
_ALT_EXTRA = ("fermi_level", "fermi_width", "gap_is_direct", "mu_b", "vbm", "cbm", "gap_gllbsc")


def _pending(
    path: Path, source: str, license: str, *, variant: str
) -> Iterator[PendingStructure | Rejection]:
    file = path.name
    seen = DuplicateGuard()
    required = CDVAE_COLUMNS if variant == "cdvae" else ALT_COLUMNS
    energy_column = "heat_all" if variant == "cdvae" else "e_form"
    extra_columns = ("heat_ref", "dir_gap", "ind_gap") if variant == "cdvae" else _ALT_EXTRA
    for item in iter_csv(path, required):
        if isinstance(item, Rejection):
            yield item
            continue
        f = item.fields
        sid = (f["material_id"] if variant == "cdvae" else f[""]).strip()
        dhf, reason = check_energy(f[energy_column], f"formation energy ({energy_column})")
        extra: dict[str, object] = {}
        for column in extra_columns:
            if column == "gap_is_direct":
                extra[column] = {"True": True, "False": False}.get(f.get(column, "").strip())
                continue
            value, bad = check_finite(f.get(column), column)
            reason = reason or bad
            extra[column] = value
        if variant == "cdvae":
            extra["cdvae_row"] = f.get("")
        reason = ("source id is empty" if not sid else None) or seen.check(sid, item.index) or reason
        if reason:
            yield Rejection(file, item.index, sid or None, reason, excerpt(item.raw))
            continue
        row = structure_scalars(
            source=source,
            source_id=sid,
            license=license,
            raw_formula=f["formula"],
            dhf=dhf,
            energy_kind=f"castelli_gpaw:{energy_column}",
            extra=extra,
        )
        yield PendingStructure(file, item.index, sid, row, cif=f["cif"], raw=item.raw)


def read_castelli_cdvae(path: Path, *, source: str, license: str, workers: int = 1) -> Iterator[Item]:
    """Stream the CDVAE packaging (``material_id``, ``heat_all``, ``heat_ref``, gaps).

    ``dhf_dft_ev_per_atom`` = ``heat_all`` (``energy_kind`` ``"castelli_gpaw:heat_all"``);
    ``heat_ref`` and the gaps go to ``extra_json``. ``source_id`` is ``material_id``.

    Args:
        path: the CSV file (plain or gzip).
        source: source name stored on every row.
        license: licence string stored on every row.
        workers: processes that parse CIFs.

    Yields:
        One :class:`Record` or :class:`Rejection` per input record.
    """
    yield from finish_all(_pending(Path(path), source, license, variant="cdvae"), workers=workers)


def read_castelli_alt(path: Path, *, source: str, license: str, workers: int = 1) -> Iterator[Item]:
    """Stream the alternative packaging (unnamed index column, ``e_form``, band edges, magnetisation).

    ``dhf_dft_ev_per_atom`` = ``e_form`` (``energy_kind`` ``"castelli_gpaw:e_form"``); the other
    columns go to ``extra_json``. ``source_id`` is the unnamed first column.

    Args:
        path: the CSV file (plain or gzip).
        source: source name stored on every row.
        license: licence string stored on every row.
        workers: processes that parse CIFs.

    Yields:
        One :class:`Record` or :class:`Rejection` per input record.
    """
    yield from finish_all(_pending(Path(path), source, license, variant="alt"), workers=workers)
