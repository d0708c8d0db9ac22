"""The README.md of a model folder: what a person needs first (a summary table), then the details."""

from __future__ import annotations

import json
from typing import Any

from storage.licences import MLIP_PREFIXES, licence_of

#: what every card cites: the model, the method and the data sources it may be trained on
REFERENCES = (
    "- ALIGNN: K. Choudhary and B. DeCost, Atomistic Line Graph Neural Network for improved materials "
    "property predictions, npj Comput. Mater. 7, 185 (2021).",
    "- The method this project implements: Enhancing crystal structure prediction by combining computational "
    "and experimental data via graph networks (ALIGNN-CSP).",
    "- Transfer learning to experiment and the experimental set: D. Jha et al., Enhancing materials property "
    "prediction by leveraging computational and experimental data using deep transfer learning, "
    "Nat. Commun. 10, 5316 (2019).",
    "- DFT data: OQMD (J. E. Saal et al., JOM 65, 1501 (2013)); Materials Project (A. Jain et al., "
    "APL Mater. 1, 011002 (2013)); GNoME (A. Merchant et al., Nature 624, 80 (2023)).",
    "- Synthesizability labels: J. Jang et al., J. Am. Chem. Soc. 142, 18836 (2020); G. H. Gu et al., "
    "npj Comput. Mater. 8, 71 (2022).",
)


def _number(value: float | int) -> str:
    """Counts as integers, other numbers to four significant digits."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return str(int(value))
    return f"{value:.4g}"


def _metric_rows(metrics: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _metric_rows(value, f"{prefix}{key} / ")
        elif isinstance(value, float | int):
            rows.append(f"| {prefix}{key} | {_number(value)} |")
    return rows


def summary_table(meta: dict[str, Any], command: str) -> list[str]:
    """The card's first table: data, split sizes, the headline test metrics, date and command.

    Every number comes from ``model.json`` (``dataset`` and ``metrics``), as written by the export.
    """
    dataset = meta.get("dataset", {})
    sources = dataset.get("per_source", {})
    split = dataset.get("per_split", {})
    test = meta.get("metrics", {}).get("test", {})
    data = ", ".join(f"{s} {n}" for s, n in sources.items()) or "n/a"
    rows = [
        "| | |",
        "| --- | --- |",
        f"| data | {data} ({dataset.get('rows', 'n/a')} rows; {dataset.get('excluded_rows', 'n/a')} left out) |",
        f"| split train / val / test | {split.get('train', 'n/a')} / {split.get('val', 'n/a')} / "
        f"{split.get('test', 'n/a')} |",
    ]
    if "mae_ev_per_atom" in test:
        rows.append(
            f"| test MAE | {_fmt(test['mae_ev_per_atom'], '.4f')} eV/atom ({_number(test.get('count', 0))} rows) |"
        )
        rows.append(f"| test R2 | {_fmt(test.get('r2'), '.4f')} |")
    if "tpr_at_0.5" in test:
        rows.append(
            f"| test P_syn >= 0.5 | {_fmt(test['tpr_at_0.5'], '.1%')} of {_number(test.get('positives', 0))} positives, "
            f"{_fmt(test.get('unlabeled_fraction_at_0.5'), '.1%')} of {_number(test.get('unlabeled', 0))} "
            "unlabeled |"
        )
    polymorphs = test.get("polymorphs", {})
    if polymorphs.get("positive_highest") is not None:
        rows.append(
            f"| test polymorph discrimination | a positive scored highest in {polymorphs['positive_highest']:.1%} "
            f"of {polymorphs['compositions']} compositions with unlabeled siblings (random scores: "
            f"{_fmt(polymorphs.get('random_baseline'), '.1%')}) |"
        )
    rows.append(f"| exported | {str(meta.get('exported_at', 'n/a'))[:10]} |")
    rows.append(f"| command | `{command}` |" if command else "| command | see *How it was made* |")
    return rows


def _fmt(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``n/a`` where a metric has no value (a split without positives
    has no TPR; a split without rows no MAE): a card is written for every model, whatever its splits hold."""
    return "n/a" if value is None else format(value, spec)


def _hypothetical_lines(meta: dict[str, Any]) -> list[str]:
    """PU cards: the hypothetical polymorphs among the unlabeled rows (``dataset.hypothetical``)."""
    hyp = meta.get("dataset", {}).get("hypothetical")
    if meta.get("task") != "pu":
        return []
    if not hyp:
        return ["- hypothetical polymorphs: none beyond the sources' own unlabeled rows"]
    return [
        f"- hypothetical polymorphs (unlabeled): {hyp.get('hypothetical_added')} prototype decorations of "
        f"{', '.join(hyp.get('files', []))} (last relaxation frames, {hyp.get('hypothetical_distinct')} distinct of "
        f"{hyp.get('hypothetical_rows')}); unlabeled rows that match a positive of their composition, left out: "
        f"{hyp.get('unlabeled_matching_a_positive')}; compositions with a positive and unlabeled siblings: "
        f"{hyp.get('compositions_with_siblings')}"
    ]


def _mix_line(per_source: dict[str, int]) -> str:
    mlip = {s: n for s, n in per_source.items() if s.startswith(MLIP_PREFIXES)}
    if not mlip:
        return "- data mix: no machine-learned (universal-potential) labels; DFT or experiment only"
    total = sum(per_source.values()) or 1
    share = sum(mlip.values()) / total
    return (
        f"- data mix: {sum(mlip.values())} of {total} rows ({100 * share:.0f}%) are universal-potential labels "
        f"({', '.join(mlip)}), chosen explicitly with --source"
    )


def _ensemble_lines(meta: dict[str, Any]) -> list[str]:
    """The card's line on an enthalpy ensemble (none for a single model)."""
    members = int(meta.get("n_members", 1))
    if members < 2:
        return []
    return [
        f"- ensemble: {members} members of this config, member m seeded with seed + m and trained on its own "
        "bootstrap resample of the training split; `dhf` is their mean, `dhf_std` their population standard "
        "deviation and `dhf_members` each member's prediction (eV/atom); the metrics are of the mean, and "
        "`spread` says how the std relates to the error"
    ]


def _fidelity_lines(meta: dict[str, Any]) -> list[str]:
    """The card's line on fidelities (none for a model trained on one fidelity)."""
    fidelity = meta.get("fidelity", {})
    mode = fidelity.get("mode", "single")
    if mode == "single":
        return []
    test = fidelity.get("rows", {}).get("test", {})
    if mode == "mix":
        how = "one head for every row (DFT and mlip labels mixed in one target)"
    else:
        kind = "the DFT head plus a correction head" if mode == "delta" else "one head per fidelity"
        how = f"{kind} ({', '.join(fidelity.get('heads', []))}) on a shared trunk; only the DFT head is exported"
    return [
        f"- fidelities: {how}; mlip rows weighted {fidelity.get('mlip_weight', 1.0)} in the loss; the headline "
        f"metrics are the DFT head's on the DFT rows (test rows {test}); `per_fidelity` gives each fidelity's "
        "rows through its own head"
    ]


def model_card(name: str, meta: dict[str, Any], info: dict[str, Any], command: str) -> str:
    """The README.md of a model folder: data, split, exclusions, metrics with units, how it was made."""
    dataset = meta.get("dataset", {})
    sources = dataset.get("per_source", {})
    lines = [
        f"# {name}",
        "",
        meta.get("description") or f"ALIGNN {meta['task']} model.",
        "",
        *summary_table(meta, command),
        "",
        "## Model",
        "",
        f"- task: `{meta['task']}`; outputs: {', '.join(f'`{k}` ({v})' for k, v in meta['outputs'].items())}",
        f"- config: `{json.dumps(meta['config'])}`",
        *_ensemble_lines(meta),
        *_fidelity_lines(meta),
        f"- graph: {meta['k']} nearest neighbours within {meta['cutoff_angstrom']} Å (widened where fewer), "
        f"ties within {meta['tie_tolerance_angstrom']} Å broken by neighbour index",
        f"- `model.onnx` sha256 `{meta['sha256']}` (checked on every load)",
        f"- training data hash `{meta.get('training_data_hash')}`",
        "",
        "## Data",
        "",
        "| source | rows | licence |",
        "| --- | --- | --- |",
        *[
            f"| {s} | {n} | {dataset.get('licences', {}).get(s) or licence_of(s)} |"
            for s, n in sources.items()
        ],
        "",
        _mix_line(sources),
        *_hypothetical_lines(meta),
        f"- split by a hash of the reduced formula (no composition in two splits): {dataset.get('per_split', {})}",
        f"- rows left out for the exclusion list (the paper's 17 validation compounds) and size: "
        f"{dataset.get('excluded_rows', 'n/a')}",
        "",
        "## Metrics (held-out rows; energies in eV/atom)",
        "",
        "| metric | value |",
        "| --- | --- |",
        *_metric_rows(meta.get("metrics", {})),
        "",
        f"Training stopped by: {info.get('stopped_by', 'n/a')} after {info.get('seconds', 0):.0f} s.",
        "",
        "## How it was made",
        "",
        "```bash",
        command or "(command not recorded)",
        "```",
        "",
        "## References",
        "",
        *REFERENCES,
        "",
    ]
    return "\n".join(lines)
