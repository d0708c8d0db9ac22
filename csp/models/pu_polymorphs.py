"""PU sets that teach structure, not only composition: hypothetical polymorphs of known compositions.

With experimentally observed structures as positives and the DFT sources' hypothetical structures as unlabeled
rows, most unlabeled rows have compositions that no positive has: a classifier separates the two by composition
and gives every structure of a known composition a high P_syn (measured: relaxed rock-salt MgO 0.35 while four
wrong MgO structures get 0.98-1.00). What teaches *structure* is the unlabeled siblings of a positive: other
structures of the same composition. :func:`with_hypothetical_polymorphs` adds them (decorated AFLOW prototypes
relaxed by a universal potential, ``data/labels/<potential>/``) to a PU set:

1. **One row per decoration that differs**: hypothetical rows of one composition and one prototype collapse
   when they are the same structure: the same space group and Wyckoff string
   (:func:`csp.structures.symmetry.detect` at its one tolerance), or the same space group and a
   :func:`csp.structures.matching.matches` match. The equivalent decorations ``Na,Cl`` and ``Cl,Na`` of zinc
   blende count once; NiAs and anti-NiAs stay two.
2. **No positive is also unlabeled**: every unlabeled row (hypothetical or from the base set) whose composition
   has a positive is compared with those positives; one in the same space group that matches
   (:func:`csp.structures.matching.matches`: StructureMatcher ltol 0.2, stol 0.3, 5 degrees) *is* the
   experimental structure and leaves the set.

:func:`polymorph_discrimination` is the metric this is for: on held-out compositions with a positive and
unlabeled siblings, how often a positive gets the highest P_syn. :func:`sibling_rows` marks the siblings so the
PU bags can hold them in every bag. Module imports are numpy only (the GPU training machine has no pymatgen);
symmetry and matching load when :func:`with_hypothetical_polymorphs` runs.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from csp.errors import InputError
from csp.models.dataset import TEST, TRAIN, VALIDATION, CrystalArrays, to_crystals

__all__ = [
    "composition_keys",
    "polymorph_discrimination",
    "sibling_rows",
    "with_hypothetical_polymorphs",
]

_log = logging.getLogger("csp.models.pu_polymorphs")
_SPLITS = {TRAIN: "train", VALIDATION: "val", TEST: "test"}


def composition_keys(arrays: CrystalArrays) -> np.ndarray:
    """(S,) str: each structure's reduced composition as ``"Z:count"`` pairs sorted by Z (``"11:1 17:1"``
    for NaCl, whatever the cell's number of formula units)."""
    keys = []
    offsets = arrays.offsets
    for i in range(len(arrays)):
        z, counts = np.unique(arrays.numbers[offsets[i] : offsets[i + 1]], return_counts=True)
        g = math.gcd(*(int(c) for c in counts))
        keys.append(" ".join(f"{int(a)}:{int(c) // g}" for a, c in zip(z, counts, strict=True)))
    return np.array(keys, dtype=str)


def sibling_rows(labels: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(S,) bool: unlabeled rows (label 0) whose composition has at least one positive (label 1).

    Args:
        labels: (S,) 1 positive, 0 unlabeled.
        keys: (S,) composition keys (:func:`composition_keys`).
    """
    labels, keys = np.asarray(labels), np.asarray(keys)
    if labels.shape != keys.shape:
        raise InputError(f"labels {labels.shape} and composition keys {keys.shape} differ in length.")
    positive_keys = np.unique(keys[labels == 1])
    return (labels == 0) & np.isin(keys, positive_keys)


def polymorph_discrimination(
    p_syn: np.ndarray,
    labels: np.ndarray,
    keys: np.ndarray,
    *,
    source: np.ndarray | None = None,
    source_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """How often a positive structure gets the highest P_syn among the structures of its composition.

    Counted over compositions with at least one positive and one unlabeled row (pass the held-out rows only:
    the formula-hash split keeps every structure of a composition in one split). A composition counts as
    right when its best positive scores strictly above its best unlabeled row (a tie is wrong).

    Args:
        p_syn: (S,) synthesizability probabilities.
        labels: (S,) 1 positive, 0 unlabeled.
        keys: (S,) composition keys (:func:`composition_keys`).
        source: optional (S,) source index per row, with ``source_names``, for a per-source breakdown.
        source_names: names of the source indices.

    Returns:
        ``compositions`` (how many), ``positive_highest`` (fraction right, None without compositions),
        ``random_baseline`` (the fraction expected from random scores: mean positives / rows per composition)
        and, with sources, ``per_sibling_source``: per source of the unlabeled siblings, the compositions with
        such a sibling and the fraction where the best positive beats every sibling of that source.

    Raises:
        InputError: if the arrays differ in length.
    """
    p_syn, labels, keys = np.asarray(p_syn, dtype=np.float64), np.asarray(labels), np.asarray(keys)
    if not (len(p_syn) == len(labels) == len(keys)) or (source is not None and len(source) != len(keys)):
        raise InputError("p_syn, labels, keys (and source) must have one value per structure.")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[str(key)].append(i)
    right, baseline, by_source = [], [], defaultdict(list)
    for rows in groups.values():
        idx = np.asarray(rows)
        pos, unl = idx[labels[idx] == 1], idx[labels[idx] == 0]
        if len(pos) == 0 or len(unl) == 0:
            continue
        best = p_syn[pos].max()
        right.append(bool(best > p_syn[unl].max()))
        baseline.append(len(pos) / len(idx))
        if source is not None:
            for s in np.unique(source[unl]):
                by_source[int(s)].append(bool(best > p_syn[unl[source[unl] == s]].max()))
    out: dict[str, Any] = {
        "compositions": len(right),
        "positive_highest": float(np.mean(right)) if right else None,
        "random_baseline": float(np.mean(baseline)) if baseline else None,
    }
    if source is not None:
        names = (
            list(source_names)
            if source_names is not None
            else [str(s) for s in range(int(max(source, default=0)) + 1)]
        )
        out["per_sibling_source"] = {
            names[s]: {"compositions": len(v), "positive_highest": float(np.mean(v))}
            for s, v in sorted(by_source.items())
        }
    return out


def _concat(a: CrystalArrays, b: CrystalArrays) -> CrystalArrays:
    names = sorted(set(map(str, a.source_names)) | set(map(str, b.source_names)))
    remap = [np.array([names.index(str(n)) for n in x.source_names], dtype=np.int16) for x in (a, b)]
    return CrystalArrays(
        natoms=np.concatenate([a.natoms, b.natoms]).astype(np.int32),
        lattice=np.concatenate([a.lattice, b.lattice]).astype(np.float32),
        numbers=np.concatenate([a.numbers, b.numbers]).astype(np.int16),
        frac_coords=np.concatenate([a.frac_coords, b.frac_coords]).astype(np.float32),
        target=np.concatenate([a.target, b.target]).astype(np.float32),
        split=np.concatenate([a.split, b.split]).astype(np.int8),
        source=np.concatenate(
            [remap[0][a.source] if len(a) else a.source, remap[1][b.source] if len(b) else b.source]
        ).astype(np.int16),
        source_names=np.array(names, dtype=str),
        ids=np.concatenate([a.ids, b.ids]).astype(str),
    )


def _fingerprints(arrays: CrystalArrays, rows: np.ndarray) -> dict[int, tuple[int, str] | None]:
    from csp.structures.symmetry import detect

    off = arrays.offsets
    return {
        int(i): detect(
            arrays.lattice[i], arrays.numbers[off[i] : off[i + 1]], arrays.frac_coords[off[i] : off[i + 1]]
        )
        for i in rows
    }


def with_hypothetical_polymorphs(
    base: CrystalArrays,
    hypothetical: CrystalArrays,
    *,
    prototypes: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> tuple[CrystalArrays, dict[str, Any]]:
    """A PU set whose unlabeled rows hold hypothetical polymorphs, none of them a positive's structure.

    Args:
        base: the PU set (target 1 positive, 0 unlabeled; formula-hash splits), e.g. the lake's ICSD labels.
        hypothetical: hypothetical structures (target 0), split by the same formula hash as ``base``.
        prototypes: (len(hypothetical),) the prototype each hypothetical row decorates.
        progress: optional callback receiving a line per step.

    Returns:
        The merged arrays (base rows first, in order, then the kept hypothetical rows) and a report:
        ``hypothetical_rows`` (given), ``hypothetical_distinct`` (after step 1), ``unlabeled_matching_a_positive``
        (rows left out by step 2, per source), ``hypothetical_added``, ``compositions_with_siblings`` (compositions
        with a positive and an unlabeled sibling, per split; ``..._hypothetical`` those with a hypothetical
        sibling), ``compositions_in_two_splits`` (0 unless the splits disagree), ``rows``, ``per_split`` and
        ``per_source`` of the result.

    Raises:
        InputError: if a hypothetical row is labelled positive, ``prototypes`` has the wrong length, or the
            base set holds labels other than 0 and 1.
    """
    from csp.structures.matching import matches

    if len(prototypes) != len(hypothetical):
        raise InputError(f"{len(prototypes)} prototype labels for {len(hypothetical)} hypothetical rows.")
    if (hypothetical.target != 0).any():
        raise InputError("Hypothetical polymorphs are unlabeled rows: every target must be 0.")
    if not np.isin(base.target, (0.0, 1.0)).all():
        raise InputError("PU targets must be 0 (unlabeled) or 1 (positive).")

    def say(message: str) -> None:
        _log.info(message)
        if progress is not None:
            progress(message)

    # 1. one hypothetical row per distinct structure of each (composition, prototype)
    hyp_keys = composition_keys(hypothetical)
    prints = _fingerprints(hypothetical, np.arange(len(hypothetical)))
    hyp_crystals = to_crystals(hypothetical)
    kept_of: dict[tuple, list[int]] = defaultdict(list)
    distinct = []
    for i in range(len(hypothetical)):
        fingerprint = prints[i]
        group = (hyp_keys[i], str(prototypes[i]), fingerprint[0] if fingerprint is not None else ("row", i))
        twins = kept_of[group]
        # the same Wyckoff string is the same structure; another one (Na on 4a or on 4c of zinc blende) may be
        if any(prints[j] == fingerprint for j in twins) or any(
            matches(hyp_crystals[i], hyp_crystals[j]) for j in twins
        ):
            continue
        twins.append(i)
        distinct.append(i)
    say(f"{len(distinct)} distinct hypothetical polymorphs of {len(hypothetical)} rows")
    merged = _concat(base, hypothetical.subset(np.asarray(distinct, dtype=np.int64)))
    n_base = len(base)

    # 2. unlabeled rows that are a positive's structure leave the set
    keys = composition_keys(merged)
    labels = merged.target.astype(np.int64)
    siblings = np.flatnonzero(sibling_rows(labels, keys))
    positives_of: dict[str, list[int]] = defaultdict(list)
    for i in np.flatnonzero((labels == 1) & np.isin(keys, keys[siblings])):
        positives_of[str(keys[i])].append(int(i))
    wanted = np.concatenate(
        [siblings, np.array([i for v in positives_of.values() for i in v], dtype=np.int64)]
    )
    groups = _fingerprints(merged, wanted)
    crystals = {int(i): c for i, c in zip(wanted, to_crystals(merged.subset(wanted)), strict=True)}
    dropped: dict[str, int] = defaultdict(int)
    keep = np.ones(len(merged), dtype=bool)
    compared = 0
    for u in siblings:
        group_u = groups[int(u)]
        for p in positives_of[str(keys[u])]:
            if group_u is None or groups[p] is None or groups[p][0] != group_u[0]:
                continue
            compared += 1
            if matches(crystals[int(u)], crystals[p]):
                keep[u] = False
                dropped[str(merged.source_names[merged.source[u]])] += 1
                break
    say(f"{int((~keep).sum())} unlabeled rows match a positive of their composition ({compared} comparisons)")
    result = merged.subset(np.flatnonzero(keep))

    keys, labels = keys[keep], labels[keep]
    is_hyp = np.arange(len(merged))[keep] >= n_base
    sib = sibling_rows(labels, keys)
    report: dict[str, Any] = {
        "hypothetical_rows": len(hypothetical),
        "hypothetical_distinct": len(distinct),
        "unlabeled_matching_a_positive": dict(sorted(dropped.items())),
        "hypothetical_added": int(is_hyp.sum()),
        "compositions_with_siblings": _per_split(result.split, keys, sib),
        "compositions_with_siblings_hypothetical": _per_split(result.split, keys, sib & is_hyp),
        "compositions_in_two_splits": int(
            sum(len(set(v)) > 1 for v in _splits_by_key(keys, result.split).values())
        ),
        "rows": len(result),
        "per_split": {name: int((result.split == code).sum()) for code, name in _SPLITS.items()},
        "per_source": {
            str(name): int((result.source == s).sum()) for s, name in enumerate(result.source_names)
        },
    }
    return result, report


def _splits_by_key(keys: np.ndarray, split: np.ndarray) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for key, s in zip(keys, split, strict=True):
        out[str(key)].add(int(s))
    return out


def _per_split(split: np.ndarray, keys: np.ndarray, mask: np.ndarray) -> dict[str, int]:
    return {name: len(np.unique(keys[mask & (split == code)])) for code, name in _SPLITS.items()}
