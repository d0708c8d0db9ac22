"""Which elements of a campaign the models saw in training, and how often; and whether the search's top 5
had its exploitation gap measured (the report flags of the CLI and the Prefect summary).

The counts come from each model's ``model.json`` (``training_elements``: element symbol -> training
rows containing it). An element with zero rows is refused by the scorer (``csp.models.infer``) and by
:func:`check_models` unless the campaign sets ``allow_unseen_elements``; an element with fewer than
:data:`THIN_ELEMENT_ROWS` rows in any model the campaign uses is reported as thinly covered.

Why 100 rows: the training sets are split 80/10/10 by formula, so an element in fewer than 100 rows has
fewer than about 10 validation and 10 test structures: its error cannot be measured, let alone trusted.
In the shipped DFT model this marks He, Ne, Kr, Xe, Pm, Pa, Np and Pu (``training_elements`` in
``onnx_models/ALIGNN-DFT-2026.11-Eform/model.json``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

THIN_ELEMENT_ROWS = 100
"""An element in fewer training rows than this (in any model used) is reported as thinly covered."""


def check_models(
    folders: dict[str, Path],
    composition: Any,
    allow_unseen_elements: bool = False,
    spread_penalty: float = 0.0,
) -> None:
    """The model folders a campaign uses, checked for their roles, the composition's elements and, when
    the campaign penalises the enthalpy spread, for an enthalpy ensemble.

    Reads ``model.json`` and hashes ``model.onnx`` (:func:`csp.models.check.check_model_folder`, the check
    a campaign and ``csp models verify`` make); no ONNX session is opened.

    Args:
        folders: ``{role: folder}`` (roles ``dft``, ``exp``, ``pu``).
        composition: a :class:`csp.structures.composition.Composition`.
        allow_unseen_elements: let elements with zero training rows pass.
        spread_penalty: the campaign's kappa; > 0 needs enthalpy models with ``n_members`` >= 2.

    Raises:
        csp.errors.ModelError: a folder fails the model check (missing, corrupt, wrong kind).
        csp.errors.InputError: an element outside a model's element list, or one with no training rows
            (unless ``allow_unseen_elements``), or ``spread_penalty`` > 0 with a one-member enthalpy model.
    """
    from csp.errors import InputError
    from csp.models.check import check_model_folder, training_element_counts
    from csp.search.two_stage import check_spread_penalty
    from flows.campaign_models import missing_model

    numbers = sorted(set(int(z) for z in composition.numbers()))
    for role, folder in folders.items():
        meta_path = folder / "model.json"
        if not meta_path.is_file():
            raise missing_model(role, folder)
        meta = check_model_folder(folder, role)
        if role in ("dft", "exp"):
            check_spread_penalty(spread_penalty, int(meta.get("n_members", 1)))
        counts = training_element_counts(meta, meta_path)
        missing = [z for z in numbers if z not in set(meta["elements"])]
        if missing:
            raise InputError(
                f"Model '{folder.name}' was not trained on atomic number(s) {missing} of {composition.formula}."
            )
        unseen = [s for s in sorted(composition.symbols) if counts is not None and counts.get(s, 0) == 0]
        if unseen and not allow_unseen_elements:
            raise InputError(
                f"Model '{folder.name}' has no training rows containing {', '.join(unseen)}; its predictions "
                "there are guesses: set allow_unseen_elements to score anyway."
            )


def element_coverage(models: Iterable[Any], symbols: Iterable[str]) -> dict[str, dict[str, int | None]]:
    """``{symbol: {model name: training rows or None when not recorded}}`` for the given elements.

    Args:
        models: open :class:`csp.models.infer.OnnxModel` objects (their ``training_rows``, read from model.json).
        symbols: element symbols.
    """
    from csp.structures.elements import atomic_number

    models = list(models)
    return {s: {m.name: m.training_rows(atomic_number(s)) for m in models} for s in sorted(symbols)}


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


def gap_line(top_search: list[dict[str, Any]]) -> str | None:
    """The report line on the exploitation gap of the search's top 5 (potential dHf at the found geometry
    minus the model's, eV/atom), or a flag that it was not measured; ``None`` without a top 5."""
    gaps = [t.get("exploitation_gap_ev_per_atom") for t in top_search[:5]]
    if not gaps:
        return None
    if all(g is None for g in gaps):
        return (
            "Exploitation gap: not measured (refinement and gap probes off, or the potential has no "
            "elemental reference for an element); a pure-surrogate ranking can be fooled by a long search "
            "(docs/refinement.md)."
        )
    return (
        "Exploitation gap of the search's top 5 (potential dHf at the found geometry minus the model's, "
        "eV/atom): " + ", ".join("n/a" if g is None else f"{g:+.3f}" for g in gaps)
    )
