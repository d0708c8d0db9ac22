"""PU training sets with hypothetical polymorphs: the lake's PU rows + committed label parts -> one ``.npz``.

Wiring only: :func:`storage.training_sets.hypothetical_polymorphs` reads the hypothetical structures of the label
parts (prototype decorations' last relaxation frames, the search generator's random structures, active rounds'
search structures; the exclusion list honoured, formula-hash splits);
:func:`csp.models.pu_polymorphs.with_hypothetical_polymorphs` deduplicates them and leaves out every unlabeled
row that is a positive's own structure; :func:`csp.models.dataset.save_arrays` writes the file. Reached through
``csp models dataset pu --hypothetical-polymorphs ...`` and ``csp models train pu --hypothetical-polymorphs ...``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from flows.models import ExportSummary
from storage.label_parts import label_part_paths
from storage.training_sets import TrainingArrays, hypothetical_polymorphs


def export_with_polymorphs(
    data: TrainingArrays,
    out: Path,
    hypothetical: Sequence[str | Path],
    exclude: set[str],
    max_sites: int = 64,
    compress: bool = False,
    *,
    progress: Callable[[str], None] | None = None,
) -> ExportSummary:
    """Write ``data`` (a PU set of the lake) with the hypothetical polymorphs of ``hypothetical`` to ``out``.

    Args:
        data: the lake's PU rows (:func:`storage.training_sets.training_arrays`, kind ``pu``).
        out: the ``.npz`` to write.
        hypothetical: labelled Parquet parts: files, folders or glob patterns (relative to the current folder).
        exclude: reduced formulas never to train on (the validation compounds).
        max_sites: larger decorations are left out.
        compress: zip-compress the arrays.
        progress: optional callback receiving a line per step.

    Returns:
        The summary; its ``hypothetical`` entry says what was read, left out (and why), deduplicated, matched
        to a positive and added, and how many compositions have a positive and unlabeled siblings per split.

    Raises:
        StorageError: a pattern that names no label part, or a file that is not one.
        ValueError: ``data`` is not a PU set (InputError: its labels are not 0 and 1).
    """
    from csp.models.dataset import CrystalArrays, save_arrays
    from csp.models.pu_polymorphs import with_hypothetical_polymorphs

    if data.kind != "pu":
        raise ValueError(f"Hypothetical polymorphs join PU training sets only, not {data.kind!r} ones.")
    paths = label_part_paths(list(hypothetical))
    extra = hypothetical_polymorphs(paths, exclude=exclude, max_sites=max_sites)
    merged, report = with_hypothetical_polymorphs(
        CrystalArrays(**data.arrays),
        CrystalArrays(**extra.rows.arrays),
        prototypes=extra.prototype,
        progress=progress,
    )
    save_arrays(
        out, **{name: getattr(merged, name) for name in merged.__dataclass_fields__}, compress=compress
    )
    per_split, per_source = report.pop("per_split"), report.pop("per_source")
    return ExportSummary(
        kind=data.kind,
        path=out,
        rows=report.pop("rows"),
        per_split=per_split,
        per_source=per_source,
        excluded_rows=data.excluded_rows + extra.rows.excluded_rows,
        sha256=hashlib.sha256(out.read_bytes()).hexdigest(),
        licences=dict(sorted((data.licences | extra.rows.licences).items())),
        geometry_refused=data.geometry_refused,
        hypothetical={
            "files": [p.name for p in paths],
            "prototype_rows_read": extra.read,
            "per_kind": dict(sorted(Counter(map(str, extra.kinds)).items())),
            "left_out": extra.skipped,
        }
        | report,
    )
