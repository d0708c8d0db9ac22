"""Materials Project snapshots (``dft/mp_flla2015.jsonl.gz``, ``dft/mp_chemeleon_mp40.jsonl.gz``).

MP rows carry no synthesizability flag of their own; their ``icsd_label`` comes from the Jang et al.
2020 id lists. The ingest layer reads those lists first (``SOURCES`` orders them before MP), builds
``labels = {mp_id: 1 or 0}`` (see :func:`storage.readers.mp_labels`) and passes it to this reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from storage.readers._common import DuplicateGuard, Item, Rejection, check_energy, excerpt, short_token
from storage.readers._rows import check_finite, iter_json_lines, label_from_flag, structure_scalars
from storage.readers._structure import Cell, PendingStructure, StructureError, cell_from_arrays, finish_all
from storage.validation import full_occupancy


def cell_from_pymatgen_dict(doc: Mapping[str, Any]) -> Cell:
    """Read a pymatgen ``Structure.as_dict()`` document without building a ``Structure``.

    Raises:
        StructureError: if the document is malformed or has a partially occupied site.
    """
    try:
        matrix = doc["lattice"]["matrix"]
        species: list[str] = []
        coords: list[Any] = []
        for site in doc["sites"]:
            entries = site["species"]
            if len(entries) != 1 or not full_occupancy(float(entries[0].get("occu", 1))):
                raise StructureError("disordered site occupancies are not supported")
            species.append(str(entries[0]["element"]))
            coords.append(site["abc"])
    except StructureError:
        raise
    except (KeyError, TypeError, IndexError) as exc:
        raise StructureError(f"malformed pymatgen structure document: missing {exc}") from exc
    except (ValueError, OverflowError) as exc:  # an occupancy that is no number, or a 400-digit integer
        raise StructureError(f"malformed pymatgen structure document: {short_token(str(exc), 60)}") from exc
    return cell_from_arrays(matrix, species, coords)


def _pending(
    path: Path, source: str, license: str, labels: Mapping[str, int] | None
) -> Iterator[PendingStructure | Rejection]:
    file = path.name
    seen = DuplicateGuard()
    for item in iter_json_lines(path):
        if isinstance(item, Rejection):
            yield item
            continue
        rec, obj = item
        sid = str(obj.get("id") or "").strip()
        missing = [k for k in ("id", "formula") if not obj.get(k)]
        if not obj.get("cif") and not obj.get("structure_pymatgen"):
            missing.append("cif")
        dhf, reason = check_energy(obj.get("formation_energy_per_atom_eV"))
        hull, bad_hull = check_finite(obj.get("e_above_hull_eV"), "e_above_hull")
        reason = (f"missing field(s) {missing}" if missing else None) or reason or bad_hull
        reason = reason or seen.check(sid, rec.index)
        cell = None
        if not reason and obj.get("structure_pymatgen"):
            try:
                cell = cell_from_pymatgen_dict(obj["structure_pymatgen"])
            except StructureError as exc:
                reason = str(exc)
        if reason:
            yield Rejection(file, rec.index, sid or None, reason, excerpt(rec.text))
            continue
        label = labels.get(sid) if labels is not None else None
        if label is None:
            try:
                label = label_from_flag(obj.get("experimental"))
            except (TypeError, ValueError):
                label = None
            origin = "mp_experimental_flag"
        else:
            origin = "jang2020_mp_ids"
        row = structure_scalars(
            source=source,
            source_id=sid,
            license=license,
            raw_formula=str(obj["formula"]),
            dhf=dhf,
            energy_kind="mp_formation_energy_per_atom",
            e_above_hull=hull,
            icsd_label=label,
            label_origin=origin,
            extra={
                "formation_energy_eV": obj.get("formation_energy_eV"),
                "band_gap_eV": obj.get("band_gap_eV"),
                "space_group_number_source": obj.get("space_group_number"),
                "mineral_label": obj.get("mineral_label"),
                "splits": obj.get("splits"),
                "nsites_source": obj.get("nsites"),
            },
        )
        yield PendingStructure(
            file, rec.index, sid, row, cif=None if cell else obj["cif"], cell=cell, raw=rec.text[:2000]
        )


def read_materials_project(
    path: Path, *, source: str, license: str, labels: Mapping[str, int] | None = None, workers: int = 1
) -> Iterator[Item]:
    """Stream Materials Project structures as ``structures`` records.

    The cell comes from ``structure_pymatgen`` when present (MP's own lattice orientation), else
    from the CIF. ``formation_energy_per_atom_eV`` (absent in the MP-40 file: null) is the energy;
    ``e_above_hull_eV`` (eV/atom) the hull distance; band gap, MP space group and splits go to
    ``extra_json``.

    Args:
        path: the JSON Lines file (plain or gzip).
        source: source name stored on every row.
        license: licence string stored on every row.
        labels: MP id -> 1 (ICSD) / 0 (virtual) from the Jang 2020 lists; ids not in it get a null
            label (``label_origin`` ``"jang2020_mp_ids"`` when found).
        workers: processes that parse CIFs.

    Yields:
        One :class:`Record` or :class:`Rejection` per input line.
    """
    yield from finish_all(_pending(Path(path), source, license, labels), workers=workers)
