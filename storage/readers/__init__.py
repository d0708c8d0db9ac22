"""Ingest readers: one generator per source family, and the registry of the mirror's sources.

Every reader has the signature ``read_xxx(path, *, source, license, **options)`` and yields, per
input record, a :class:`Record` (a row for ``structures``, ``experimental_enthalpies`` or
``synth_labels``, without ``split``/``run_id``/``written_at``) or a :class:`Rejection` (a row for
``quarantine``). Readers never raise on bad records; a file that lacks a required column raises
:class:`MissingColumnsError` before yielding anything, because no record of it could be read.

The ingest layer walks :data:`SOURCES` in ``order``: the Jang et al. id lists come first, so their
``synth_labels`` rows can be turned into ``labels`` (:func:`mp_labels`) for the Materials Project
sources, whose :class:`SourceSpec` names them in ``label_sources``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from storage.readers._common import (
    MAX_ABS_DHF_EV_PER_ATOM,
    Item,
    MissingColumnsError,
    Reader,
    Record,
    Rejection,
)
from storage.readers._structure import (
    ANGLE_TOLERANCE_DEG,
    SYMPREC_ANGSTROM,
    Cell,
    StructureError,
    cell_from_cif,
    composition_fields,
    parse_many,
    spacegroup_number,
    structure_fields,
)
from storage.readers.castelli import read_castelli_alt, read_castelli_cdvae
from storage.readers.experimental import (
    REFERENCES,
    read_jha2019,
    read_kingsbury2022,
    read_oqmd_composition,
    read_qmpy_dat,
)
from storage.readers.gnome import read_gnome
from storage.readers.gu2022 import read_gu2022
from storage.readers.jang2020 import read_jang2020
from storage.readers.materials_project import read_materials_project
from storage.readers.oqmd import read_oqmd_intermetallics
from storage.readers.prototypes import read_experimental_prototypes
from storage.readers.user_formats import read_id_prop_folder, read_optimade

MIRROR_ENV = "CSP_DATA_MIRROR"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of a source: its path relative to the mirror root and reader options for it."""

    path: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """How to ingest one source of the mirror.

    Attributes:
        name: source name stored on every row (``source`` column).
        files: the source's files, relative to the mirror root, with per-file reader options.
        reader: the reader generator function.
        license: licence string stored on every row.
        table: target table.
        order: ingest order (lower first); label lists precede the sources that use them.
        kind: ``"dft"``, ``"experiment"`` or ``"label"``: what the values are.
        label_sources: sources whose ``synth_labels`` rows give this source's ``labels`` option.
        description: one line on what the source is.
    """

    name: str
    files: tuple[SourceFile, ...]
    reader: Reader
    license: str
    table: Literal["structures", "experimental_enthalpies", "synth_labels"]
    order: int
    kind: Literal["dft", "experiment", "label"]
    label_sources: tuple[str, ...] = ()
    description: str = ""

    def read(self, mirror: Path, **options: Any) -> Iterator[Item]:
        """Stream every file of this source from ``mirror``, in order.

        Args:
            mirror: the mirror root (see :func:`default_mirror`).
            **options: reader options added to the per-file ones (``labels``, ``workers``).

        Yields:
            The reader's records and rejections, file after file.
        """
        for spec in self.files:
            yield from self.reader(
                Path(mirror) / spec.path,
                source=self.name,
                license=self.license,
                **{**spec.options, **options},
            )


_MP = "CC BY 4.0 (Materials Project)"
_UNSTATED = "not stated by the mirror"

SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec(
            "jang2020_mp_icsd",
            (SourceFile("synth/jang2020_mp_icsd_ids.csv.gz", {"label": 1}),),
            read_jang2020,
            f"{_UNSTATED} (Jang et al. 2020; ids from Materials Project, CC BY 4.0)",
            "synth_labels",
            0,
            "label",
            description="MP ids with an ICSD entry (positives)",
        ),
        SourceSpec(
            "jang2020_mp_virtual",
            (SourceFile("synth/jang2020_mp_virtual_ids.csv.gz", {"label": 0}),),
            read_jang2020,
            f"{_UNSTATED} (Jang et al. 2020; ids from Materials Project, CC BY 4.0)",
            "synth_labels",
            1,
            "label",
            description="MP ids without an ICSD entry (unlabeled)",
        ),
        SourceSpec(
            "oqmd_intermetallics",
            (SourceFile("dft/oqmd_intermetallics.csv.gz"),),
            read_oqmd_intermetallics,
            "CC BY 4.0 (OQMD; via the jhamlin-ufl/synthesizability repository)",
            "structures",
            10,
            "dft",
            description="OQMD intermetallics with ICSD flag",
        ),
        SourceSpec(
            "gnome",
            (SourceFile("dft/gnome_structures.jsonl.gz"),),
            read_gnome,
            "CC BY-NC 4.0 (GNoME data; non-commercial)",
            "structures",
            11,
            "dft",
            description="GNoME hypothetical structures",
        ),
        SourceSpec(
            "mp_flla2015",
            (SourceFile("dft/mp_flla2015.jsonl.gz"),),
            read_materials_project,
            _MP,
            "structures",
            12,
            "dft",
            ("jang2020_mp_icsd", "jang2020_mp_virtual"),
            "Materials Project 2015 snapshot",
        ),
        SourceSpec(
            "mp_chemeleon_mp40",
            (SourceFile("dft/mp_chemeleon_mp40.jsonl.gz"),),
            read_materials_project,
            _MP,
            "structures",
            13,
            "dft",
            ("jang2020_mp_icsd", "jang2020_mp_virtual"),
            "Materials Project MP-40 subset (hull distance, no formation energy)",
        ),
        SourceSpec(
            "castelli_cdvae",
            (
                SourceFile("dft/castelli_perovskites_cdvae_test.csv.gz"),
                SourceFile("dft/castelli_perovskites_cdvae_val.csv.gz"),
            ),
            read_castelli_cdvae,
            "MIT (CDVAE repository)",
            "structures",
            14,
            "dft",
            description="Castelli perovskites, GPAW heats (own reference scale)",
        ),
        SourceSpec(
            "castelli_alt",
            (
                SourceFile("dft/castelli_perovskites_alt_test.csv.gz"),
                SourceFile("dft/castelli_perovskites_alt_valid.csv.gz"),
            ),
            read_castelli_alt,
            "none stated",
            "structures",
            15,
            "dft",
            description="Castelli perovskites, another split, e_form (own reference scale)",
        ),
        SourceSpec(
            "gu2022_perovskite_pu",
            (SourceFile("synth/gu2022_perovskite_pu.csv.gz"),),
            read_gu2022,
            f"{_UNSTATED} (Gu et al. 2022)",
            "structures",
            16,
            "label",
            description="perovskites with ICSD labels (PU learning)",
        ),
        SourceSpec(
            "experimental_prototypes",
            (SourceFile("synth/experimental_prototypes.jsonl.gz"),),
            read_experimental_prototypes,
            "mixed: AFLOW prototypes via pymatgen (MIT), robocrys mineral db, COD (public domain)",
            "structures",
            17,
            "label",
            description="experimentally observed prototypes (positives)",
        ),
        SourceSpec(
            "expt_deltae_jha2019",
            (
                SourceFile("experimental/expt_deltae_training.csv", {"split": "train"}),
                SourceFile("experimental/expt_deltae_test.csv", {"split": "test"}),
            ),
            read_jha2019,
            f"{_UNSTATED} (Jha et al. 2019)",
            "experimental_enthalpies",
            20,
            "experiment",
            description="experimental formation enthalpies, file split kept",
        ),
        SourceSpec(
            "qmpy_ssub",
            (SourceFile("experimental/qmpy_ssub.dat", {"reference": REFERENCES["qmpy_ssub"]}),),
            read_qmpy_dat,
            f"{_UNSTATED} (qmpy, SSUB)",
            "experimental_enthalpies",
            21,
            "experiment",
            description="SSUB experimental formation enthalpies",
        ),
        SourceSpec(
            "qmpy_iit",
            (SourceFile("experimental/qmpy_iit.dat", {"reference": REFERENCES["qmpy_iit"]}),),
            read_qmpy_dat,
            f"{_UNSTATED} (qmpy, IIT)",
            "experimental_enthalpies",
            22,
            "experiment",
            description="IIT experimental formation enthalpies",
        ),
        SourceSpec(
            "kingsbury2022",
            (SourceFile("experimental/kingsbury_exp_compounds.json.gz"),),
            read_kingsbury2022,
            "MIT (ships in pymatgen; Kingsbury et al. 2022)",
            "experimental_enthalpies",
            23,
            "experiment",
            description="experimental formation enthalpies, converted from eV/f.u. to eV/atom",
        ),
        SourceSpec(
            "oqmd_composition_deltae",
            (
                SourceFile("experimental/oqmd_composition_deltae_training.csv.gz", {"split": "train"}),
                SourceFile("experimental/oqmd_composition_deltae_test.csv.gz", {"split": "test"}),
            ),
            read_oqmd_composition,
            "CC BY 4.0 (OQMD)",
            "experimental_enthalpies",
            24,
            "dft",
            description="OQMD DFT lowest formation energy per composition (NOT experiment)",
        ),
    )
}


def default_mirror() -> Path:
    """The data mirror root: ``$CSP_DATA_MIRROR`` if set, else ``../shared/data`` beside the repository."""
    env = os.environ.get(MIRROR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def sources_in_order() -> list[SourceSpec]:
    """The registry's sources sorted by ``order`` (label lists first)."""
    return sorted(SOURCES.values(), key=lambda spec: spec.order)


def mp_labels(records: Iterable[Item]) -> dict[str, int]:
    """Build the ``labels`` option of the MP readers from ``synth_labels`` records (or table rows).

    A positive (1) wins over an unlabeled (0) entry for the same id.

    Args:
        records: :class:`Record` items of ``synth_labels`` (others are skipped), or plain row dicts.
    """
    labels: dict[str, int] = {}
    for item in records:
        row = item.row if isinstance(item, Record) else item
        if not isinstance(row, Mapping) or "material_id" not in row:
            continue
        if isinstance(item, Record) and item.table != "synth_labels":
            continue
        labels[row["material_id"]] = max(int(row["icsd_label"]), labels.get(row["material_id"], 0))
    return labels


def load_mp_labels(mirror: Path | None = None) -> dict[str, int]:
    """Read the Jang et al. 2020 lists from the mirror into ``{mp_id: 1 or 0}``."""
    root = mirror or default_mirror()
    labels: dict[str, int] = {}
    for name in SOURCES["mp_flla2015"].label_sources:
        labels.update({k: max(v, labels.get(k, 0)) for k, v in mp_labels(SOURCES[name].read(root)).items()})
    return labels


__all__ = [
    "ANGLE_TOLERANCE_DEG",
    "MAX_ABS_DHF_EV_PER_ATOM",
    "MIRROR_ENV",
    "SOURCES",
    "SYMPREC_ANGSTROM",
    "Cell",
    "Item",
    "MissingColumnsError",
    "Reader",
    "Record",
    "Rejection",
    "SourceFile",
    "SourceSpec",
    "StructureError",
    "cell_from_cif",
    "composition_fields",
    "default_mirror",
    "load_mp_labels",
    "mp_labels",
    "parse_many",
    "read_castelli_alt",
    "read_castelli_cdvae",
    "read_experimental_prototypes",
    "read_gnome",
    "read_gu2022",
    "read_id_prop_folder",
    "read_jang2020",
    "read_jha2019",
    "read_kingsbury2022",
    "read_materials_project",
    "read_optimade",
    "read_oqmd_composition",
    "read_oqmd_intermetallics",
    "read_qmpy_dat",
    "sources_in_order",
    "spacegroup_number",
    "structure_fields",
]
