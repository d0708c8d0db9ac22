"""Jang et al. 2020 Materials Project id lists (``synth/jang2020_mp_{icsd,virtual}_ids.csv.gz``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from storage.readers._common import DuplicateGuard, Item, Record, Rejection, excerpt, iter_csv
from storage.readers._rows import check_finite

COLUMNS = ("id", "composition", "CLscore")


def read_jang2020(path: Path, *, source: str, license: str, label: int) -> Iterator[Item]:
    """Stream an id list as ``synth_labels`` records (``score`` = the paper's CLscore).

    Args:
        path: the CSV file (plain or gzip).
        source: source name stored on every row.
        license: licence string (``synth_labels`` has no licence column; kept for the common signature).
        label: 1 for the ICSD list (positives), 0 for the virtual list (unlabeled).

    Yields:
        One :class:`Record` or :class:`Rejection` per input record.
    """
    del license  # synth_labels rows carry no licence column
    if label not in (0, 1):
        raise ValueError(f"label must be 0 or 1, not {label!r}")
    path = Path(path)
    seen = DuplicateGuard()
    for item in iter_csv(path, COLUMNS):
        if isinstance(item, Rejection):
            yield item
            continue
        f = item.fields
        sid = f["id"].strip()
        score, reason = check_finite(f["CLscore"], "CLscore")
        if not sid or not f["composition"].strip():
            reason = "id or composition is empty"
        reason = reason or seen.check(sid, item.index)
        if reason:
            yield Rejection(path.name, item.index, sid or None, reason, excerpt(item.raw))
            continue
        yield Record(
            "synth_labels",
            {
                "source": source,
                "material_id": sid,
                "raw_formula": f["composition"].strip(),
                "icsd_label": label,
                "score": score,
            },
        )
