"""The data of the paper's Figs. 2-4, computed from plain arrays and rows (the faces read the lake).

* Fig. 2 (:func:`fig2_panels`): parity of the DFT-trained model against DFT on the DFT test split (per
  source), of DFT against experiment, and of the DFT-trained and the fine-tuned model against experiment on
  the experimental test split; MAE, RMSE (eV/atom) and R2 of each, and the fine-tuned model's change of error.
* Fig. 3 (:func:`search_curve`, :func:`band`, :func:`first_hit`, :func:`histograms`): best fitness
  against evaluations and wall time per campaign, their mean and spread over seeds on a common grid, when a
  campaign first scored the reference structure, and the energy distribution of everything tried.
* Fig. 4 (:func:`fig4_summary`): per compound found, the lattice and formation-enthalpy errors against
  experiment of each model before and after refinement, and their means.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "band",
    "fig2_panels",
    "fig4_summary",
    "first_hit",
    "histograms",
    "parity",
    "search_curve",
    "tried_energies",
]

#: decimals kept for the points of a parity plot in the report's JSON
POINT_DECIMALS = 4


def parity(pred: Sequence[float], true: Sequence[float]) -> dict[str, Any]:
    """``n``, ``mae``, ``rmse`` (units of the inputs) and ``r2`` of predictions against true values."""
    p, t = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if len(p) == 0:
        return {"n": 0, "mae": None, "rmse": None, "r2": None}
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return {
        "n": len(p),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": float(1.0 - np.sum(err**2) / ss_tot) if ss_tot > 0 else None,
    }


def _points(x: np.ndarray, y: np.ndarray, group: Sequence[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "x": np.round(np.asarray(x, dtype=float), POINT_DECIMALS).tolist(),
        "y": np.round(np.asarray(y, dtype=float), POINT_DECIMALS).tolist(),
    }
    if group is not None:
        out["group"] = list(group)
    return out


def _capped(arrays: Any, rows: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """``rows`` with at most ``cap`` per source, drawn with ``seed`` (order kept)."""
    if cap is None:
        return rows
    rng = np.random.default_rng(seed)
    kept = []
    for source in np.unique(arrays.source[rows]):
        mine = rows[arrays.source[rows] == source]
        kept.append(np.sort(rng.choice(mine, size=min(cap, len(mine)), replace=False)))
    return np.sort(np.concatenate(kept)) if kept else rows


def fig2_panels(
    dft: Any,
    exp: Any,
    linked_dft: Mapping[str, float | None],
    score: Callable[[list[Any], str], np.ndarray],
    *,
    max_per_source: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The four parity panels of Fig. 2 and the fine-tuned model's change of error.

    Args:
        dft: :class:`csp.models.dataset.CrystalArrays` of the DFT sources (split 2 is the test split).
        exp: the same of the experimental set on its linked structures (its own test split).
        linked_dft: the raw DFT formation enthalpy of each experimental row's linked structure, by id.
        score: ``score(crystals, model)`` -> predicted formation enthalpies (eV/atom) by the ``dft`` or
            ``exp`` model.
        max_per_source: test rows scored per source (None: all), drawn with ``seed``.

    Returns:
        ``panels`` (``dft_model_vs_dft``, ``dft_vs_exp``, ``dft_model_vs_exp``, ``tl_model_vs_exp``: each
        with ``x`` (reference: DFT or experiment), ``y``, the metrics of :func:`parity`, and ``per_source``
        for the first), and ``tl_change_vs_dft_model_pct`` (the fine-tuned model's MAE against the DFT-trained
        model's, on the same rows) and ``tl_change_vs_dft_pct`` (against raw DFT, on the rows with a raw value).
    """
    from csp.models.dataset import to_crystals

    rows = _capped(dft, np.flatnonzero(dft.split == 2), max_per_source, seed)
    test = dft.subset(rows)
    names = [str(test.source_names[s]) for s in test.source]
    pred = score(to_crystals(test), "dft")
    truth = test.target.astype(float)
    per_source = {}
    for name in sorted(set(names)):
        mask = np.array([n == name for n in names])
        per_source[name] = parity(pred[mask], truth[mask])
    a = {**parity(pred, truth), "per_source": per_source, **_points(truth, pred, names)}

    erows = _capped(exp, np.flatnonzero(exp.split == 2), max_per_source, seed)
    etest = exp.subset(erows)
    crystals = to_crystals(etest)
    target = etest.target.astype(float)
    by_dft, by_tl = score(crystals, "dft"), score(crystals, "exp")
    raw = np.array(
        [linked_dft.get(str(i)) if linked_dft.get(str(i)) is not None else np.nan for i in etest.ids]
    )
    has_raw = np.isfinite(raw)
    b = {**parity(raw[has_raw], target[has_raw]), **_points(target[has_raw], raw[has_raw])}
    c = {**parity(by_dft, target), **_points(target, by_dft)}
    d = {**parity(by_tl, target), **_points(target, by_tl)}
    tl_raw = parity(by_tl[has_raw], target[has_raw])["mae"]

    def change(new: float | None, old: float | None) -> float | None:
        return None if new is None or not old else 100.0 * (new - old) / old

    return {
        "panels": {"dft_model_vs_dft": a, "dft_vs_exp": b, "dft_model_vs_exp": c, "tl_model_vs_exp": d},
        "tl_change_vs_dft_model_pct": change(d["mae"], c["mae"]),
        "tl_change_vs_dft_pct": change(tl_raw, b["mae"]),
        "tl_mae_on_raw_rows": tl_raw,
        "test_rows": {"dft": len(rows), "exp": len(erows), "exp_with_raw_dft": int(has_raw.sum())},
        "test_rows_available": {"dft": int((dft.split == 2).sum()), "exp": int((exp.split == 2).sum())},
    }


# ---------------------------------------------------------------------------------------------- Fig. 3
def search_curve(trace: Any) -> dict[str, list[float]]:
    """Best fitness so far against inner structures evaluated and against campaign wall time (s), one point
    per outer step (:func:`csp.plots.convergence_curve` of one campaign's trace rows)."""
    from csp.plots import convergence_curve

    curve = convergence_curve(trace)
    return {
        "evaluations": [int(v) for v in curve["evaluations"]],
        "seconds": [round(float(v), 3) for v in curve["seconds"]],
        "best_fitness": [None if not np.isfinite(v) else float(v) for v in curve["best_fitness"]],
    }


def band(curves: Sequence[dict[str, list[float]]], x: str, points: int = 60) -> dict[str, list[float]]:
    """Mean and standard deviation over campaigns of the best fitness as a step function of ``x``
    (``evaluations`` or ``seconds``), on a common grid up to the shortest campaign's end (so every campaign
    is measured over the same range)."""
    usable = [c for c in curves if c[x] and any(v is not None for v in c["best_fitness"])]
    if not usable:
        return {"x": [], "mean": [], "std": []}
    end = min(float(c[x][-1]) for c in usable)
    start = min(float(c[x][0]) for c in usable)
    grid = np.linspace(start, end, points) if end > start else np.array([end])
    values = []
    for c in usable:
        xs = np.asarray(c[x], dtype=float)
        ys = np.array([np.nan if v is None else v for v in c["best_fitness"]], dtype=float)
        idx = np.searchsorted(xs, grid, side="right") - 1
        values.append(np.where(idx >= 0, ys[np.clip(idx, 0, None)], np.nan))
    stack = np.vstack(values)
    with warnings.catch_warnings():  # a grid point before every campaign's first value: NaN, said so
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(stack, axis=0)
        std = np.nanstd(stack, axis=0)
    return {
        "x": np.round(grid, 3).tolist(),
        "mean": [None if np.isnan(v) else float(v) for v in mean],
        "std": [None if np.isnan(v) else float(v) for v in std],
    }


def first_hit(
    trace: Any, rows: Sequence[dict[str, Any]], matches: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """When a campaign first scored a structure that ``matches``: the first of ``rows`` (candidate inner rows
    in scoring order) that matches, with ``evaluations`` (inner structures scored up to and including it,
    counted in the campaign's ``trace``) and ``seconds`` (campaign wall time then); None when none does."""
    hit = next((r for r in rows if matches(r)), None)
    if hit is None:
        return None
    inner = trace[trace["stage"] == "inner"]
    step, sub = int(hit["outer_step"]), int(hit["inner_step"])
    before = (inner["outer_step"] < step) | ((inner["outer_step"] == step) & (inner["inner_step"] <= sub))
    return {
        "evaluations": int(before.sum()),
        "seconds": float(hit["seconds"]),
        "outer_step": step,
        "inner_step": sub,
        "spacegroup": hit.get("spacegroup"),
    }


def tried_energies(trace: Any) -> list[float]:
    """The model's formation enthalpy (eV/atom) of every valid structure tried (inner rows of a trace)."""
    inner = trace[(trace["stage"] == "inner") & trace["valid"].astype(bool)]
    values = inner["dhf_pred_ev_per_atom"].dropna().to_numpy(dtype=float)
    return np.round(values, POINT_DECIMALS).tolist()


def histograms(values: Mapping[str, Sequence[float]], bins: int = 40) -> dict[str, Any]:
    """Histograms of several samples on common bin edges (``edges``, ``counts`` by label) and each sample's
    ``n``, ``min``, ``median`` and ``mean``."""
    finite = {
        k: np.asarray(v, dtype=float)[np.isfinite(np.asarray(v, dtype=float))] for k, v in values.items()
    }
    pooled = (
        np.concatenate([v for v in finite.values() if len(v)])
        if any(len(v) for v in finite.values())
        else np.zeros(0)
    )
    if len(pooled) == 0:
        return {"edges": [], "counts": {k: [] for k in finite}, "stats": {k: {"n": 0} for k in finite}}
    lo, hi = float(pooled.min()), float(pooled.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    return {
        "edges": np.round(edges, 5).tolist(),
        "counts": {k: np.histogram(v, edges)[0].astype(int).tolist() for k, v in finite.items()},
        "stats": {
            k: {"n": len(v), "min": float(v.min()), "median": float(np.median(v)), "mean": float(v.mean())}
            if len(v)
            else {"n": 0}
            for k, v in finite.items()
        },
    }


# ---------------------------------------------------------------------------------------------- Fig. 4
def fig4_summary(rows: Sequence[dict[str, Any]], left_out: Sequence[str] = ()) -> dict[str, Any]:
    """Per compound (mean over the seeds where it was found) and overall means of the lattice and
    formation-enthalpy errors against experiment, per model and stage.

    Args:
        rows: one per compound x seed x model x stage where the reference was found: ``formula``, ``model``
            (``dft``/``exp``), ``stage`` (``search``/``refined``), ``lattice_error_pct``, ``dhf_error_pct``.
        left_out: compounds the paper's means leave out (AuCl, SrCu); the means are given with and without them.

    Returns:
        ``per_compound``: ``{formula: {"<model>/<stage>": {"lattice_error_pct", "dhf_error_pct", "seeds"}}}``;
        ``means``: ``{"<model>/<stage>": {"lattice_error_pct", "dhf_error_pct", "compounds", and the same
        over the paper's compounds with suffix ``_paper_set``}}``.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["formula"], f"{r['model']}/{r['stage']}"), []).append(r)
    per_compound: dict[str, dict[str, Any]] = {}
    for (formula, key), found in sorted(groups.items()):
        per_compound.setdefault(formula, {})[key] = {
            "lattice_error_pct": _mean(r["lattice_error_pct"] for r in found),
            "dhf_error_pct": _mean(r["dhf_error_pct"] for r in found),
            "seeds": len(found),
        }
    keys = sorted({k for v in per_compound.values() for k in v})
    means = {}
    for key in keys:
        cells = {f: v[key] for f, v in per_compound.items() if key in v}
        paper_set = {f: c for f, c in cells.items() if f not in left_out}
        means[key] = {
            "compounds": len(cells),
            "lattice_error_pct": _mean(c["lattice_error_pct"] for c in cells.values()),
            "dhf_error_pct": _mean(c["dhf_error_pct"] for c in cells.values()),
            "compounds_paper_set": len(paper_set),
            "lattice_error_pct_paper_set": _mean(c["lattice_error_pct"] for c in paper_set.values()),
            "dhf_error_pct_paper_set": _mean(c["dhf_error_pct"] for c in paper_set.values()),
        }
    return {"per_compound": per_compound, "means": means}


def _mean(values: Any) -> float | None:
    found = [float(v) for v in values if v is not None]
    return float(np.mean(found)) if found else None
