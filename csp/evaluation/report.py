"""The paper report as Markdown and PNG figures, made from the report's JSON alone.

:func:`write_report` draws the figures (:func:`draw`, with :mod:`csp.plots`), writes ``report.json`` and
``report.md`` (:func:`render`) into one folder. Nothing here measures anything: every number shown is read
from the JSON (:mod:`csp.evaluation.summary`), so a report is remade from its JSON with
``render(json.loads(...))``. Numbers of the paper are labelled "paper".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from csp.evaluation.table1 import MISS_REASONS, column_key

__all__ = ["FIGURES", "SECTIONS", "draw", "render", "write_report"]

#: the report's figures (file name -> what it shows)
FIGURES = {
    "table1_accuracy.png": "Table 1 accuracy per column: ours (refined, search only), rs-relax, paper",
    "fig2_parity.png": "Fig. 2 parity plots",
    "fig3_convergence.png": "Fig. 3 best fitness against evaluations and wall time",
    "fig3_energies.png": "Fig. 3 energy distribution of every structure tried",
    "fig4_errors.png": "Fig. 4 lattice and formation-enthalpy errors against experiment",
}
#: the report's section titles (a part that did not run is left out)
SECTIONS = {
    "table1": "## Table 1: the experimental structure in the top 5",
    "misses": "## Why each miss was missed",
    "fig2": "## Fig. 2: formation enthalpy against DFT and experiment",
    "fig3": "## Fig. 3: the optimizers on one composition",
    "fig4": "## Fig. 4: lattice constants and formation enthalpies against experiment",
    "definitions": "## How it was measured",
}
PANEL_TITLES = {
    "dft_model_vs_dft": (
        "a: DFT-trained model vs DFT (test split)",
        "DFT dHf (eV/atom)",
        "model dHf (eV/atom)",
    ),
    "dft_vs_exp": ("b: DFT vs experiment (test split)", "experimental dHf (eV/atom)", "DFT dHf (eV/atom)"),
    "dft_model_vs_exp": (
        "c: DFT-trained model vs experiment",
        "experimental dHf (eV/atom)",
        "model dHf (eV/atom)",
    ),
    "tl_model_vs_exp": (
        "d: fine-tuned model vs experiment",
        "experimental dHf (eV/atom)",
        "model dHf (eV/atom)",
    ),
}
PAPER_PANEL = {
    "dft_model_vs_dft": ("dft_model_test_mae_ev_per_atom", "dft_model_test_r2"),
    "dft_vs_exp": ("dft_vs_exp_mae_ev_per_atom", None),
    "dft_model_vs_exp": ("dft_model_vs_exp_mae_ev_per_atom", "dft_model_vs_exp_r2"),
    "tl_model_vs_exp": (None, None),
}
FIG4_KEYS = ("dft/search", "dft/refined", "exp/search", "exp/refined")
FIG4_NAMES = {
    "dft/search": "DFT-trained, search",
    "dft/refined": "DFT-trained, refined",
    "exp/search": "fine-tuned, search",
    "exp/refined": "fine-tuned, refined",
}
DASH = "–"


def _n(value: Any, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    return DASH if value is None else f"{value:.{digits}f} %"


def _min(seconds: Any) -> str:
    return DASH if seconds is None else f"{seconds / 60:.1f} min"


def _columns(records: Sequence[dict[str, Any]]) -> list[tuple[str, float]]:
    return sorted({(r["strategy"], float(r["alpha"])) for r in records})


# ---------------------------------------------------------------------------------------------- figures
def draw(data: Mapping[str, Any], folder: Path) -> list[str]:
    """Draw the figures the JSON has data for into ``folder``; returns their file names."""
    from csp import plots

    folder = Path(folder)
    made = []
    for name, figure in (
        ("table1_accuracy.png", _accuracy_figure),
        ("fig2_parity.png", _fig2_figure),
        ("fig3_convergence.png", _fig3_curves),
        ("fig3_energies.png", _fig3_energies),
        ("fig4_errors.png", _fig4_figure),
    ):
        fig = figure(data)
        if fig is not None:
            plots.save(fig, folder / name, dpi=110)
            made.append(name)
    return made


def _accuracy_figure(data: Mapping[str, Any]) -> Any:
    from csp import plots

    t1 = data.get("table1")
    if not t1:
        return None
    acc = t1["accuracy"]
    cols = sorted({(a["strategy"], a["alpha"]) for a in acc})
    by = {(a["strategy"], a["alpha"], a["refine"]): a for a in acc}
    base = {a["strategy"]: a for a in t1["baseline"]["accuracy"]}
    series = {
        "ours, refined": [by.get((s, a, True), {}).get("mean_pct") for s, a in cols],
        "ours, search only": [by.get((s, a, False), {}).get("mean_pct") for s, a in cols],
        "rs-relax": [base.get(s, {}).get("mean_pct") for s, a in cols],
        "paper (these compounds)": [by.get((s, a, True), {}).get("paper_pct") for s, a in cols],
    }
    panel = {
        "categories": [f"{s} a={a:g}" for s, a in cols],
        "series": series,
        "ylabel": "experimental structure in the top 5 (%)",
        "title": f"Table 1 at {t1['budget']} ({len(t1['compounds'])} compounds)",
    }
    return plots.grouped_bars([panel])


def _fig2_figure(data: Mapping[str, Any]) -> Any:
    from csp import plots

    fig2 = data.get("fig2")
    if not fig2:
        return None
    panels = []
    for key, (title, xlabel, ylabel) in PANEL_TITLES.items():
        p = fig2["panels"][key]
        note = f"n {p['n']}\nMAE {_n(p['mae'])} eV/atom\nR2 {_n(p['r2'])}"
        panels.append({**p, "title": title, "xlabel": xlabel, "ylabel": ylabel, "note": note})
    return plots.parity_panels(panels)


def _fig3_curves(data: Mapping[str, Any]) -> Any:
    from csp import plots

    fig3 = data.get("fig3")
    if not fig3:
        return None
    panels = []
    for compared, bands in fig3["bands"].items():
        other = "inner PSO" if compared == "outer" else "outer BO"
        for x, label in (("evaluations", "structures evaluated"), ("seconds", "wall time (s)")):
            panels.append(
                {
                    "series": {name: b[x] for name, b in bands.items()},
                    "xlabel": label,
                    "ylabel": "best fitness FV (mean ± std)",
                    "title": f"{compared} stage compared ({other})",
                }
            )
    return plots.band_panels(
        panels, title=f"{fig3['composition']}, {len(fig3['seeds'])} seeds, {fig3['budget']}"
    )


def _fig3_energies(data: Mapping[str, Any]) -> Any:
    from csp import plots

    fig3 = data.get("fig3")
    if not fig3:
        return None
    panels = [
        {**hist, "xlabel": "model dHf of a structure tried (eV/atom)", "title": f"{compared} stage compared"}
        for compared, hist in fig3["energies"].items()
    ]
    return plots.histogram_panels(panels, title=f"Every valid structure tried on {fig3['composition']}")


def _fig4_figure(data: Mapping[str, Any]) -> Any:
    from csp import plots

    fig4 = data.get("fig4")
    if not fig4 or not fig4["per_compound"]:
        return None
    formulas = sorted(fig4["per_compound"])
    paper = data["paper"]
    panels = []
    for what, label, ref in (
        ("lattice_error_pct", "lattice constant error (%)", "lattice_error_pct"),
        ("dhf_error_pct", "formation enthalpy error (%)", "dhf_error_pct"),
    ):
        series = {
            FIG4_NAMES[k]: [fig4["per_compound"][f].get(k, {}).get(what) for f in formulas] for k in FIG4_KEYS
        }
        hlines = {
            "paper, DFT-trained (mean)": paper[ref]["dft"],
            "paper, fine-tuned (mean)": paper[ref]["exp"],
        }
        values = [v for vs in series.values() for v in vs if v is not None and v > 0]
        log = bool(values) and max(values) > 20 * min(values)  # a near-zero enthalpy (SrCu) spans decades
        panels.append(
            {
                "categories": formulas,
                "series": series,
                "hlines": hlines,
                "ylabel": label,
                "title": label,
                "log": log,
            }
        )
    return plots.grouped_bars(panels, title=f"Fig. 4 column: {fig4['strategy']}, alpha {fig4['alpha']:g}")


# ---------------------------------------------------------------------------------------------- markdown
def render(data: Mapping[str, Any]) -> str:
    """The report as Markdown, every number read from ``data`` (the report's JSON)."""
    lines = _header(data)
    figures = set(data.get("figures") or [])
    if data.get("table1"):
        lines += _table1(data, figures)
        lines += _misses(data)
    if data.get("fig2"):
        lines += _fig2(data, figures)
    if data.get("fig3"):
        lines += _fig3(data, figures)
    if data.get("fig4"):
        lines += _fig4(data, figures)
    lines += _definitions(data)
    return "\n".join(lines).rstrip() + "\n"


def _header(data: Mapping[str, Any]) -> list[str]:
    m, models, plan = data["machine"], data["models"], data["plan"]
    gpu = f"{m['gpus']} x {m['gpu']}" if m.get("gpu") else "none"
    parts_s = ", ".join(f"{k} {_min(v)}" for k, v in data.get("parts_s", {}).items())
    failed = data.get("failed") or []
    lines = [
        f"# ALIGNN-CSP against the paper (preset `{data['preset']}`)",
        "",
        f"- **Command**: `{data['command']}` (preset `{data['preset']}`, parts {', '.join(data['parts'])})",
        f"- **Machine**: {m['cpus']} CPUs ({m['processor']}, {m['platform']}, Python {m['python']}); GPU: {gpu}; "
        f"{data['workers']} worker process(es), potential on {data['device']}",
        f"- **Models**: DFT-trained `{models['dft']}`, fine-tuned `{models['exp']}`, synthesizability "
        f"`{models['pu']}`, potential `{models.get('potential') or DASH}`",
        f"- **Wall time**: {_min(data['wall_s'])} ({parts_s}); {len(data['campaigns'])} campaigns, "
        f"{_min(data['campaign_seconds'])} of campaign time, kept in the lake",
        f"- **Run**: {data['started_at']} to {data['finished_at']}; "
        + (f"**{len(failed)} campaign(s) failed** (listed at the end)" if failed else "no campaign failed"),
        "",
        "Numbers labelled **paper** are the paper's (its main text and Table 1). Every other number was "
        "measured by the command above and is in `report.json` beside this file.",
        "",
    ]
    if data["preset"] != "full":
        lines += [
            f"> Preset `{data['preset']}`: Table 1 at {plan['outer_steps']} x {plan['inner_steps']} (the paper: "
            f"200 x 300), seeds {plan['seeds']}, alphas {plan['alphas']}; a smaller grid than the paper's, so the "
            "numbers are not the paper's measurement.",
            "",
        ]
    return lines


def _table1(data: Mapping[str, Any], figures: set[str]) -> list[str]:
    t1, plan = data["table1"], data["plan"]
    records = t1["records"]
    acc = {(a["strategy"], a["alpha"], a["refine"]): a for a in t1["accuracy"]}
    base = {a["strategy"]: a for a in t1["baseline"]["accuracy"]}
    paper_pct = data["paper"]["table1_pct"]
    lines = [
        SECTIONS["table1"],
        "",
        f"{len(t1['compounds'])} compounds, {t1['budget']} per campaign (outer BO over space group + Wyckoff, inner "
        f"PSO), fine-tuned enthalpy model, seeds {plan['seeds']}. Each campaign is refined (the best "
        f"{plan['refine_top_n']} distinct structures relaxed with the potential, at most {plan['refine_steps']} "
        "FIRE steps, ranked by its energy); *search only* is the same campaign's own top 5 by fitness (the paper's "
        "method). Success: mean over seeds ± spread (sample std), per seed in brackets.",
        "",
        "| strategy | alpha | ours, refined | ours, search only | rs-relax, equal wall time | paper, these compounds "
        "| paper, 17 compounds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(a: Mapping[str, Any] | None) -> str:
        if not a:
            return DASH
        seeds = ", ".join(f"{v:.1f}" for v in a["per_seed_pct"].values())
        return f"{a['mean_pct']:.1f} % ± {a['std_pct']:.1f} [{seeds}]"

    for strategy, alpha in _columns(records):
        key = column_key(strategy, alpha)
        lines.append(
            f"| {strategy} | {alpha:g} | {cell(acc.get((strategy, alpha, True)))} | "
            f"{cell(acc.get((strategy, alpha, False)))} | {cell(base.get(strategy))} | "
            f"{_pct(acc.get((strategy, alpha, True), {}).get('paper_pct'))} | **paper** {_pct(paper_pct.get(key))} |"
        )
    lines += ["", "rs-relax has no alpha: one baseline per strategy, beside every alpha of it.", ""]
    if "table1_accuracy.png" in figures:
        lines += ["![Table 1 accuracy](table1_accuracy.png)", ""]
    lines += _per_compound(data)
    return lines


def _per_compound(data: Mapping[str, Any]) -> list[str]:
    t1 = data["table1"]
    records = t1["records"]
    cols = _columns(records)
    flags = data["paper"]["table1_flags"]
    lines = [
        "### Per compound",
        "",
        "Rank of the experimental structure per seed (– not in the top 5); **paper**: the paper's flag (yes/no).",
        "",
        "| compound | judged by | " + " | ".join(f"{s} a={a:g}" for s, a in cols) + " |",
        "| --- | --- | " + " | ".join("---" for _ in cols) + " |",
    ]
    for formula in t1["compounds"]:
        cells = []
        for strategy, alpha in cols:
            mine = [
                r
                for r in records
                if r["formula"] == formula and r["strategy"] == strategy and r["alpha"] == alpha
            ]
            ranks = {
                refine: " ".join(
                    str(r["rank"]) if r["found"] else DASH
                    for r in sorted((r for r in mine if r["refine"] is refine), key=lambda r: r["seed"])
                )
                for refine in (True, False)
            }
            flag = flags.get(formula, {}).get(column_key(strategy, alpha))
            paper = DASH if flag is None else ("yes" if flag else "no")
            cells.append(f"refined {ranks[True] or DASH}; search {ranks[False] or DASH}; **paper** {paper}")
        judged = t1["judged_by"][formula]
        lines.append(
            f"| {formula} | {judged if judged == 'structure' else f'**{judged}**'} | "
            + " | ".join(cells)
            + " |"
        )
    baseline = t1["baseline"]["records"]
    if baseline:
        lines += [
            "",
            "The rs-relax baseline (random symmetric structures relaxed with the potential, ranked by its energy), "
            "given the mean wall time of the compound's ALIGNN-CSP campaigns:",
            "",
            "| compound | strategy | seed | rank | structures relaxed | its wall time | ALIGNN-CSP wall time |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in baseline:
            lines.append(
                f"| {r['formula']} | {r['strategy']} | {r['seed']} | {r['rank'] if r['found'] else DASH} | "
                f"{r['structures']} | {_n(r['seconds'], 1)} s | {_n(r['target_seconds'], 1)} s |"
            )
        tolerance = 100 * data["plan"]["baseline_time_tolerance"]
        lines.append("")
        for w in t1["baseline"].get("wall_time", []):
            lines.append(
                f"- {w['strategy']}: rs-relax {_n(w['seconds'], 1)} s in all against ALIGNN-CSP "
                f"{_n(w['target_seconds'], 1)} s; {w['within_tolerance']} of {w['baselines']} baselines within "
                f"{tolerance:.0f} % of equal wall time."
            )
    return [*lines, ""]


def _misses(data: Mapping[str, Any]) -> list[str]:
    misses = data["table1"]["misses"]
    lines = [SECTIONS["misses"], ""]
    if not misses:
        return [*lines, "Nothing was missed.", ""]
    counts: dict[tuple[str, bool], int] = {}
    for m in misses:
        key = (m["failure"]["reason"], m["refine"])
        counts[key] = counts.get(key, 0) + 1
    lines += ["| reason | refined answers | search-only answers |", "| --- | ---: | ---: |"]
    for reason in MISS_REASONS:
        lines.append(f"| {reason} | {counts.get((reason, True), 0)} | {counts.get((reason, False), 0)} |")
    lines += [
        "",
        "| compound | column | seed | answer | reason | rank | beaten by (space group, model-vs-potential gap eV/atom) "
        "| detail |",
        "| --- | --- | ---: | --- | --- | ---: | --- | --- |",
    ]
    for m in misses:
        f = m["failure"]
        beaten = "; ".join(
            f"{b['symbol']} ({b['spacegroup']}) {_n(b['gap_ev_per_atom'], 2, True)}" for b in f["beaten_by"]
        )
        lines.append(
            f"| {m['formula']} | {m['strategy']} a={m['alpha']:g} | {m['seed']} | "
            f"{'refined' if m['refine'] else 'search only'} | {f['reason']} | {f['rank'] if f['rank'] else DASH} | "
            f"{beaten or DASH} | {f['detail']} |"
        )
    return [*lines, ""]


def _fig2(data: Mapping[str, Any], figures: set[str]) -> list[str]:
    fig2, paper = data["fig2"], data["paper"]
    rows, avail = fig2["test_rows"], fig2["test_rows_available"]
    lines = [
        SECTIONS["fig2"],
        "",
        f"DFT test split of {', '.join(fig2['sources'])} ({rows['dft']} of {avail['dft']} rows scored) and the "
        f"experimental test split of {fig2['experimental_source']} on its linked structures ({rows['exp']} of "
        f"{avail['exp']} rows; {rows['exp_with_raw_dft']} with a raw DFT value), each linked to a structure of "
        f"{len(fig2['link_sources'])} ingested sources. Validation compounds excluded.",
        "",
        "| panel | rows | MAE (eV/atom) | RMSE (eV/atom) | R2 | **paper** MAE | **paper** R2 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, (title, _, _) in PANEL_TITLES.items():
        p = fig2["panels"][key]
        mae_key, r2_key = PAPER_PANEL[key]
        lines.append(
            f"| {title} | {p['n']} | {_n(p['mae'])} | {_n(p['rmse'])} | {_n(p['r2'])} | "
            f"{_n(paper.get(mae_key)) if mae_key else DASH} | {_n(paper.get(r2_key)) if r2_key else DASH} |"
        )
    lines += ["", "| source (panel a) | rows | MAE (eV/atom) | R2 |", "| --- | ---: | ---: | ---: |"]
    for source, p in fig2["panels"]["dft_model_vs_dft"]["per_source"].items():
        lines.append(f"| {source} | {p['n']} | {_n(p['mae'])} | {_n(p['r2'])} |")
    lines += [
        "",
        f"- Fine-tuning changes the error against experiment by **{_pct(fig2['tl_change_vs_dft_model_pct'])}** "
        f"against the DFT-trained model (**paper** {_pct(paper['tl_change_vs_dft_model_pct'])}).",
        f"- Against raw DFT on the rows that have a DFT value: {_pct(fig2['tl_change_vs_dft_pct'])} (fine-tuned MAE "
        f"{_n(fig2['tl_mae_on_raw_rows'])} eV/atom; **paper** {_pct(paper['tl_change_vs_dft_pct'])}).",
        "",
    ]
    if "fig2_parity.png" in figures:
        lines += ["![Fig. 2 parity](fig2_parity.png)", ""]
    return lines


def _fig3(data: Mapping[str, Any], figures: set[str]) -> list[str]:
    fig3 = data["fig3"]
    lines = [
        SECTIONS["fig3"],
        "",
        f"{fig3['composition']}, fixed cubic, alpha 0.5, the DFT-trained model (as the paper), {fig3['budget']}, "
        f"seeds {fig3['seeds']}, no refinement. *outer*: each optimizer over space group + Wyckoff families "
        "with PSO inside; *inner*: each optimizer over lattice and coordinates under BO outside. "
        "Reached the reference: the first structure scored that matches it (evaluations and wall time, over "
        "the runs that reached it).",
        "",
        "| stage compared | optimizer | runs | best FV | structures evaluated | wall time (s) | reached the reference "
        "| evaluations to it | seconds to it |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for compared, per in fig3["first_hit"].items():
        for name, hit in per.items():
            final = fig3["final"][compared][name]
            lines.append(
                f"| {compared} | {name} | {hit['runs']} | {_n(final['best_fitness_mean'], 4)} ± "
                f"{_n(final['best_fitness_std'], 4)} | {_n(final['evaluations_mean'], 0)} | "
                f"{_n(final['wall_s_mean'], 1)} ± {_n(final['wall_s_std'], 1)} | {hit['hits']}/{hit['runs']} | "
                f"{_n(hit['evaluations_mean'], 0)} ± {_n(hit['evaluations_std'], 0)} | "
                f"{_n(hit['seconds_mean'], 1)} ± {_n(hit['seconds_std'], 1)} |"
            )
    lines += ["", "| stage compared | optimizer | structures tried (valid) | lowest dHf | median dHf |",
              "| --- | --- | ---: | ---: | ---: |"]  # fmt: skip
    for compared, hist in fig3["energies"].items():
        for name, st in hist["stats"].items():
            lines.append(
                f"| {compared} | {name} | {st['n']} | {_n(st.get('min'))} | {_n(st.get('median'))} |"
            )
    lines.append("")
    for name in ("fig3_convergence.png", "fig3_energies.png"):
        if name in figures:
            lines += [f"![{FIGURES[name]}]({name})", ""]
    return lines


def _fig4(data: Mapping[str, Any], figures: set[str]) -> list[str]:
    fig4, paper = data["fig4"], data["paper"]
    lines = [
        SECTIONS["fig4"],
        "",
        f"Compounds found in the column {fig4['strategy']}, alpha {fig4['alpha']:g} (each model's own campaigns; "
        "mean over the seeds that found it): error of the matched structure's conventional lattice constants and of "
        "the model's formation enthalpy, against experiment, before (search) and after refinement.",
        "",
        "| compound | "
        + " | ".join(f"lattice error, {FIG4_NAMES[k]}" for k in FIG4_KEYS)
        + " | "
        + " | ".join(f"dHf error, {FIG4_NAMES[k]}" for k in FIG4_KEYS)
        + " |",
        "| --- | " + " | ".join("---:" for _ in range(2 * len(FIG4_KEYS))) + " |",
    ]
    for formula, cells in sorted(fig4["per_compound"].items()):
        lat = [_pct(cells.get(k, {}).get("lattice_error_pct"), 2) for k in FIG4_KEYS]
        dhf = [_pct(cells.get(k, {}).get("dhf_error_pct"), 2) for k in FIG4_KEYS]
        lines.append(f"| {formula} | " + " | ".join(lat + dhf) + " |")
    means = fig4["means"]
    left = ", ".join(paper["fig4_left_out"])
    lines += [
        "",
        f"| mean over | error | {' | '.join(FIG4_NAMES[k] for k in FIG4_KEYS)} | **paper** DFT-trained | **paper** "
        "fine-tuned |",
        "| --- | --- | " + " | ".join("---:" for _ in FIG4_KEYS) + " | ---: | ---: |",
    ]
    for what, ref in (("lattice_error_pct", "lattice_error_pct"), ("dhf_error_pct", "dhf_error_pct")):
        for suffix, label in (("", "all found"), ("_paper_set", f"found, without {left}")):
            cells = [
                f"{_pct(means.get(k, {}).get(what + suffix), 2)} (n {means.get(k, {}).get('compounds' + suffix, 0)})"
                for k in FIG4_KEYS
            ]
            lines.append(
                f"| {label} | {'lattice' if what.startswith('lattice') else 'dHf'} | "
                + " | ".join(cells)
                + f" | {_pct(paper[ref]['dft'], 2)} | {_pct(paper[ref]['exp'], 2)} |"
            )
    lines += [
        "",
        f"The paper's means are over {paper['fig4_compounds']} compounds (without {left}).",
        "",
    ]
    if "fig4_errors.png" in figures:
        lines += ["![Fig. 4 errors](fig4_errors.png)", ""]
    return lines


def _definitions(data: Mapping[str, Any]) -> list[str]:
    lines = [
        SECTIONS["definitions"],
        "",
        "- Success: a top-5 structure matches the reference CIF (StructureMatcher ltol 0.2, stol 0.3, angle_tol 5, "
        "and the same space group). Compounds judged by **crystal system** have no reference coordinates in the "
        "data mirror (SrCu): a hexagonal top-5 cell counts.",
        "- rs-relax at equal wall time: as many random symmetric structures as the compound's ALIGNN-CSP "
        "campaigns' mean wall time buys at their measured seconds per relaxation; a baseline more than "
        f"{100 * data['plan']['baseline_time_tolerance']:.0f} % off that time runs again (at most "
        f"{data['plan']['baseline_rescales']} times), rescaled by its own seconds per structure (earlier runs stay "
        "in the lake); both wall times are shown. Relaxations run as one batch, so their time does not grow in "
        "proportion to their number: short campaigns (seconds) match less closely than long ones.",
        "- Lattice error: mean relative error of the conventional a (and c where the experiment gives two).",
        "- Miss reasons, tested in this order:",
        *[f"  - *{k}*: {v}" for k, v in MISS_REASONS.items()],
        "",
        f"Reproduce: `{data['command']}` (the campaigns are kept in the lake, so a second run reads them back).",
        "",
    ]
    failed = data.get("failed") or []
    if failed:
        lines += ["### Failed campaigns", "", *[f"- `{f['campaign_id']}`: {f['error']}" for f in failed], ""]
    return lines


def write_report(data: dict[str, Any], folder: Path) -> Path:
    """Draw the figures, then write ``report.json`` and ``report.md`` into ``folder``; returns the Markdown."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data["figures"] = draw(data, folder)
    (folder / "report.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    path = folder / "report.md"
    path.write_text(render(data))
    return path
