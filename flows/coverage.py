"""Which elements of a campaign the models saw in training, and how often (for the campaign report).

The counts come from each model's ``model.json`` (``training_elements``: element symbol -> training
rows containing it). An element with zero rows is refused by the scorer (``csp.infer``) unless the
campaign sets ``allow_unseen_elements``; an element with fewer than :data:`THIN_ELEMENT_ROWS` rows in
any model the campaign uses is reported as thinly covered.

Why 100 rows: the training sets are split 80/10/10 by formula, so an element in fewer than 100 rows has
fewer than about 10 validation and 10 test structures: its error cannot be measured, let alone trusted.
In the shipped DFT model this marks He, Ne, Kr, Xe, Pm, Pa, Np and Pu (``training_elements`` in
``onnx_models/alignn-dft/model.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

THIN_ELEMENT_ROWS = 100
"""An element in fewer training rows than this (in any model used) is reported as thinly covered."""


def element_coverage(model_folders: dict[str, Path], symbols: list[str]) -> dict[str, dict[str, int | None]]:
    """``{symbol: {model name: training rows or None when not recorded}}`` for the given elements."""
    from csp.model_check import check_model_folder, training_element_counts

    coverage: dict[str, dict[str, int | None]] = {s: {} for s in symbols}
    for role, folder in model_folders.items():
        meta = check_model_folder(folder, role)
        counts = training_element_counts(meta, folder / "model.json")
        for s in symbols:
            coverage[s][folder.name] = None if counts is None else int(counts.get(s, 0))
    return coverage


def thin_elements(
    coverage: dict[str, dict[str, int | None]], threshold: int = THIN_ELEMENT_ROWS
) -> dict[str, int]:
    """``{symbol: fewest training rows over the models}`` for elements below ``threshold`` rows."""
    thin: dict[str, int] = {}
    for symbol, per_model in coverage.items():
        known = [n for n in per_model.values() if n is not None]
        if known and min(known) < threshold:
            thin[symbol] = min(known)
    return thin


def coverage_line(summary: dict[str, Any]) -> str | None:
    """One sentence for reports naming thinly covered elements, or ``None`` when there are none."""
    thin = summary.get("thin_elements") or {}
    if not thin:
        return None
    listed = ", ".join(f"{s} ({n} rows)" for s, n in sorted(thin.items()))
    return (
        f"Thinly covered elements (fewer than {THIN_ELEMENT_ROWS} training rows in a model used): {listed}; "
        "treat these predictions with caution."
    )
