"""The licence of every lake source, in one table keyed by source name.

The mirror's sources take theirs from the reader registry (:data:`storage.readers.SOURCES`, which also
stamps it on every row); sources labelled by a universal interatomic potential are named after the
potential and its version (``chgnet-0.3.0``), so they are found by the potential's family (the part
before the first ``-``). Rows carry their licence: prefer the row's value where rows are at hand.
"""

from __future__ import annotations

from storage.readers import SOURCES

#: potential families whose labels enter the lake as their own sources (never DFT or experiment)
POTENTIAL_LICENCES = {
    "chgnet": "CHGNet weights: BSD-3-Clause (chgnet package); labels derived by this project",
    "sevennet": "SevenNet weights: GPL-3.0 (sevenn package); labels derived by this project",
}
#: source-name prefixes of universal-potential labels
MLIP_PREFIXES = tuple(POTENTIAL_LICENCES)

LICENCES: dict[str, str] = {name: spec.license for name, spec in SOURCES.items()} | POTENTIAL_LICENCES

UNKNOWN = "see the source"


def licence_of(source: str) -> str:
    """The licence of ``source`` (exact name, else its potential family), or :data:`UNKNOWN`."""
    return LICENCES.get(source) or LICENCES.get(source.split("-")[0]) or UNKNOWN
