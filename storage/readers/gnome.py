"""GNoME hypothetical structures via Energy-GNoME (``dft/gnome_structures.jsonl.gz``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from storage.readers._common import DuplicateGuard, Item, Rejection, check_energy, excerpt
from storage.readers._rows import iter_json_lines, label_from_flag, structure_scalars
from storage.readers._structure import PendingStructure, cif_formula, finish_all


def _pending(path: Path, source: str, license: str) -> Iterator[PendingStructure | Rejection]:
    file = path.name
    seen = DuplicateGuard()
    for item in iter_json_lines(path):
        if isinstance(item, Rejection):
            yield item
            continue
        rec, obj = item
        sid = str(obj.get("id") or "").strip()
        dhf, reason = check_energy(obj.get("formation_energy_per_atom_eV"))
        missing = [k for k in ("id", "cif") if not obj.get(k)]
        if missing:
            reason = f"missing field(s) {missing}"
        reason = reason or seen.check(sid, rec.index)
        try:
            label = label_from_flag(obj.get("experimental"))
        except (TypeError, ValueError) as exc:
            label, reason = None, reason or f"experimental flag: {exc}"
        if reason:
            yield Rejection(file, rec.index, sid or None, reason, excerpt(rec.text))
            continue
        row = structure_scalars(
            source=source,
            source_id=sid,
            license=license,
            raw_formula=str(obj.get("formula") or cif_formula(str(obj["cif"]))),
            dhf=dhf,
            energy_kind="gnome_pbe_mp2020_formation_energy_per_atom",
            icsd_label=label,
            label_origin="gnome_experimental_flag",
            extra={
                "composition": obj.get("composition"),
                "crystal_system_source": obj.get("crystal_system"),
                "energy_source": obj.get("energy_source"),
                "energy_gnome_tags": obj.get("energy_gnome_tags"),
            },
        )
        yield PendingStructure(file, rec.index, sid, row, cif=obj["cif"], raw=rec.text)


def read_gnome(path: Path, *, source: str, license: str, workers: int = 1) -> Iterator[Item]:
    """Stream GNoME structures as ``structures`` records.

    A missing ``formation_energy_per_atom_eV`` lands as a null energy (about 4,200 rows, which also
    lack ``formula``: ``raw_formula`` is then the CIF's ``_chemical_formula_structural``); only a
    NaN or absurd (> 10 eV/atom) energy is rejected. The ``experimental`` flag (false for all
    GNoME rows) gives ``icsd_label`` 0 = unlabeled.

    Args:
        path: the JSON Lines file (plain or gzip).
        source: source name stored on every row.
        license: licence string stored on every row.
        workers: processes that parse CIFs.

    Yields:
        One :class:`Record` or :class:`Rejection` per input line.
    """
    yield from finish_all(_pending(Path(path), source, license), workers=workers)
