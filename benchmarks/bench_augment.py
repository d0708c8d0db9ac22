"""How good are the potential's labels, and what do they do to the DFT model?

Reads the labelled files of an augmentation run (``python -m csp.potentials.relaxer label``) and the lake, and
writes ``benchmarks/results/augment.md``:

1. the labelled data: rows per kind and relaxation state, compositions;
2. formation-enthalpy MAE against held-out MP-scale DFT test rows (``reference`` rows of the plan: the
   DFT structure relaxed by the potential) and against the experimental test split (Jha et al. 2019,
   on the linked structures), next to the shipped models on the same structures; SevenNet single
   points at the DFT geometries on a sample, as an independent second opinion;
3. polymorph ordering on well-known cases outside the exclusion list (lowest energy per atom among
   the relaxed prototype decorations of each type), by CHGNet, by SevenNet at CHGNet's geometries and
   by the shipped DFT model;
4. the retrain with and without the labelled rows (``benchmarks/augment_retrain.py`` summary) and the
   reduced-budget Table 1 of each model (``bench_table1.py`` result files).

    CSP_HOME=... python benchmarks/bench_augment.py --labels L1.npz L2.npz ... \
        --retrain retrain-summary.json --table1 with=T1.md without=T2.md --out benchmarks/results/augment.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csp.models.infer import OnnxModel
from csp.potentials.augment import StructureSet, merge_labelled, with_formation_enthalpies
from csp.structures import elements
from flows.augmentation import POLYMORPH_CASES
from flows.settings import settings as current_settings
from storage.lake import Lake


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))


def _predict(model: OnnxModel, crystals: list) -> np.ndarray:
    out = model.score(crystals)
    return np.asarray(out[model.outputs[0]], dtype=float).reshape(len(crystals), -1)[:, 0]


def data_section(s: StructureSet) -> list[str]:
    ok = s.labels["relaxation"] != "failed"
    kinds = Counter(s.kind[ok].tolist())
    states = Counter(s.labels["relaxation"].tolist())
    training = ok & np.isin(s.kind, ("prototype", "random", "distorted"))
    comps = len(set(s.formula[training].tolist()))
    lines = [
        "## 1. Labelled data",
        "",
        f"Potential: {', '.join(sorted(set(s.labels['potential'].tolist())))}. "
        f"{int(ok.sum())} structures labelled ({int(training.sum())} training rows over {comps} compositions; "
        f"the rest are elemental references and evaluation rows), {states.get('failed', 0)} attempts failed.",
        "",
        "| kind | labelled |",
        "| --- | ---: |",
        *[f"| {k} | {v} |" for k, v in sorted(kinds.items())],
        "",
        "| relaxation | rows |",
        "| --- | ---: |",
        *[f"| {k} | {v} |" for k, v in sorted(states.items())],
        "",
        "The label runs' own summaries (throughput, failures) are `augment_label_run*.json` beside this file. "
        "Failed attempts are structures the potential could not label (an isolated atom) and, on the GPU, "
        "batches lost to out-of-memory and CUDA faults among workers sharing one device; they stay out of the "
        "training rows and a resumed run labels them again.",
        "",
    ]
    return lines


def reference_section(
    s: StructureSet,
    lake: Lake,
    models: dict[str, OnnxModel],
    seven_sample: int,
    refs: dict,
    seven_refs: dict | None,
) -> tuple[list[str], dict]:
    final = (
        (s.kind == "reference")
        & (s.labels["relaxation"] != "failed")
        & np.isfinite(s.values["dhf_ev_per_atom"])
        & ~np.char.endswith(s.ids.astype(str), "|initial")
    )
    relaxed = {
        tuple(i.split("|", 2)[1:]): s.values["dhf_ev_per_atom"][k]
        for k, i in zip(np.flatnonzero(final), s.ids[final], strict=True)
    }
    with lake.connect() as con:
        dft = con.arrow(
            "SELECT source, source_id, dhf_dft_ev_per_atom AS target, lattice_angstrom, species, frac_coords "
            "FROM structures WHERE list_contains(?, source) AND split = 'test' AND nsites <= 24 "
            "AND dhf_dft_ev_per_atom IS NOT NULL ORDER BY source, source_id",
            [sorted({k[0] for k in relaxed})],
        ).to_pylist()
        exp = con.arrow(
            "SELECT DISTINCT e.source_id AS exp_id, s.source, s.source_id, e.dhf_exp_ev_per_atom AS target, "
            "s.lattice_angstrom, s.species, s.frac_coords FROM experimental_linked e JOIN structures s "
            "ON s.source = e.linked_source AND s.source_id = e.linked_source_id "
            "WHERE e.source = 'expt_deltae_jha2019' AND e.split = 'test' AND s.nsites <= 24 ORDER BY exp_id"
        ).to_pylist()

    def crystal(row: dict):
        from csp.structures.crystal import Crystal

        return Crystal(
            np.asarray(row["lattice_angstrom"]).reshape(3, 3),
            [elements.atomic_number(x) for x in row["species"]],
            np.asarray(row["frac_coords"]),
        )

    def supported(row: dict) -> bool:
        return all(elements.atomic_number(x) in refs for x in row["species"])

    groups = {
        "gnome test split (held out)": [
            r for r in dft if r["source"] == "gnome" and (r["source"], r["source_id"]) in relaxed
        ],
        "mp_flla2015 test split (held out)": [
            r for r in dft if r["source"] == "mp_flla2015" and (r["source"], r["source_id"]) in relaxed
        ],
        "experimental test split (Jha 2019), linked structures": [r for r in exp if supported(r)],
    }
    chg = _chgnet()
    lines = [
        "## 2. Formation enthalpy against DFT and experiment",
        "",
        "MAE in eV/atom (median absolute error in brackets). The DFT rows are the held-out test-split rows whose "
        "plan `reference` row was labelled (relaxed by CHGNet, at most 12 steps, from the DFT structure); "
        "single points and the shipped models use the DFT structure itself. Experimental rows: every linked "
        "test-split structure of at most 24 sites.",
        "",
        "| rows | n | CHGNet relaxed | CHGNet single point | SevenNet single point (sample) | shipped alignn-dft | shipped alignn-exp |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    results: dict = {}

    def fmt(err: np.ndarray) -> str:
        err = err[np.isfinite(err)]
        return f"{np.mean(err):.3f} ({np.median(err):.3f})" if len(err) else ""

    for name, rows in groups.items():
        if not rows:
            continue
        target = np.array([r["target"] for r in rows], dtype=float)
        crystals = [crystal(r) for r in rows]
        relax = np.array([relaxed.get((r["source"], r["source_id"]), np.nan) for r in rows])
        single = _dhf(chg.efs(crystals)[0], crystals, refs)
        seven = ""
        if seven_refs is not None and seven_sample:
            take = min(seven_sample, len(rows))
            dh = _dhf(seven_energy(crystals[:take]), crystals[:take], seven_refs)
            seven = f"{fmt(np.abs(dh - target[:take]))}, n={take}"
        m_dft, m_exp = _predict(models["dft"], crystals), _predict(models["exp"], crystals)
        lines.append(
            f"| {name} | {len(rows)} | {_relaxed_cell(relax, target)} | "
            f"{fmt(np.abs(single - target))} | {seven} | {fmt(np.abs(m_dft - target))} | {fmt(np.abs(m_exp - target))} |"
        )
        results[name] = {
            "n": len(rows),
            "chgnet_relaxed": float(np.nanmean(np.abs(relax - target))) if np.isfinite(relax).any() else None,
            "chgnet_single": float(np.nanmean(np.abs(single - target))),
            "alignn_dft": _mae(m_dft, target),
            "alignn_exp": _mae(m_exp, target),
        }
    return [*lines, ""], results


def _relaxed_cell(relax: np.ndarray, target: np.ndarray) -> str:
    done = np.isfinite(relax)
    if not done.any():
        return ""
    err = np.abs(relax[done] - target[done])
    return f"{np.mean(err):.3f} ({np.median(err):.3f})" + ("" if done.all() else f", n={int(done.sum())}")


def _chgnet():
    from csp.potentials.relaxer import CHGNetPotential

    if "c" not in _SEVEN:
        _SEVEN["c"] = CHGNetPotential("cpu", batch_size=64)
    return _SEVEN["c"]


_SEVEN = {}


def seven_energy(crystals: list) -> np.ndarray:
    from csp.potentials.relaxer import SevenNetPotential

    if "p" not in _SEVEN:
        _SEVEN["p"] = SevenNetPotential("cpu")
    return _SEVEN["p"].efs(crystals)[0]


def _dhf(energy: np.ndarray, crystals: list, refs: dict[int, float]) -> np.ndarray:
    out = []
    for e, c in zip(energy, crystals, strict=True):
        mu = [refs.get(int(z), np.nan) for z in c.numbers]
        out.append(e - float(np.mean(mu)))
    return np.array(out)


def seven_references(s: StructureSet, symbols: set[int], candidates: int = 3) -> dict[int, float]:
    """SevenNet's elemental references: the median of its energies per atom on CHGNet's ``candidates``
    lowest relaxed one-element structures of each element (a median, because SevenNet returns absurd
    energies for a few of CHGNet's geometries, e.g. -6.6e9 eV/atom for one As cell)."""
    ok = (
        (s.kind == "element")
        & (s.labels["relaxation"] != "failed")
        & ~np.char.endswith(s.ids.astype(str), "|initial")
    )
    per: dict[int, list[tuple[float, int]]] = {}
    off = s.offsets
    for i in np.flatnonzero(ok):
        z = int(s.numbers[off[i]])
        e = s.values["energy_ev_per_atom"][i]
        if z in symbols and np.isfinite(e):
            per.setdefault(z, []).append((float(e), int(i)))
    out = {}
    for z, items in sorted(per.items()):
        lowest = [i for _, i in sorted(items)[:candidates]]
        out[z] = float(np.median(seven_energy([s.crystal(i) for i in lowest])))
    return out


def polymorph_section(
    s: StructureSet, models: dict[str, OnnxModel], use_seven: bool
) -> tuple[list[str], dict]:
    from csp.structures.prototypes import load_prototypes

    sb = {p.label: p.strukturbericht for p in load_prototypes()}
    final = (
        (s.kind == "prototype")
        & np.isin(s.labels["relaxation"], ("relaxed", "partially_relaxed"))
        & ~np.char.endswith(s.ids.astype(str), "|initial")
    )
    lines = [
        "## 3. Polymorph ordering",
        "",
        "Lowest energy per atom among the relaxed decorations of each prototype type (relative to the observed "
        "ground state, meV/atom; negative = a competitor is predicted lower). SevenNet and the shipped DFT model "
        "score CHGNet's relaxed structures.",
        "",
        "| composition | observed | CHGNet | right | SevenNet | right | alignn-dft | right |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    tally = Counter()
    cases = {}
    for formula, ground, competitors in POLYMORPH_CASES:
        if not competitors:
            continue
        rows = [i for i in np.flatnonzero(final & (s.formula == formula))]
        by_type: dict[str, int] = {}
        for i in rows:
            t = sb.get(str(s.tag[i]).split(":")[0], "")
            lower = (
                t not in by_type
                or s.values["energy_ev_per_atom"][i] < s.values["energy_ev_per_atom"][by_type[t]]
            )
            if t in (ground, *competitors) and lower:
                by_type[t] = i
        if ground not in by_type or len(by_type) < 2:
            lines.append(f"| {formula} | {ground} | not labelled |  |  |  |  |  |")
            continue
        types = sorted(by_type)
        crystals = [s.crystal(by_type[t]) for t in types]
        scores = {"chgnet": np.array([s.values["energy_ev_per_atom"][by_type[t]] for t in types])}
        if use_seven:
            scores["sevennet"] = seven_energy(crystals)
        scores["alignn-dft"] = _predict(models["dft"], crystals)
        cells = []
        for name in ("chgnet", "sevennet", "alignn-dft"):
            if name not in scores:
                cells += ["", ""]
                continue
            e = scores[name]
            g = e[types.index(ground)]
            rel = ", ".join(f"{t} {1000 * (e[k] - g):+.0f}" for k, t in enumerate(types) if t != ground)
            right = bool(np.argmin(e) == types.index(ground))
            tally[name] += right
            tally[f"{name}_n"] += 1
            cells += [rel, "yes" if right else "no"]
        cases[formula] = {n: v.tolist() for n, v in scores.items()} | {"types": types}
        lines.append(f"| {formula} | {ground} | " + " | ".join(cells) + " |")
    summary = ", ".join(
        f"{n} {tally[n]}/{tally[n + '_n']}" for n in ("chgnet", "sevennet", "alignn-dft") if tally[f"{n}_n"]
    )
    lines += [
        "",
        f"**Ordered right: {summary}.** Types: B1 rock salt, B2 CsCl, B3 zincblende, B4 wurtzite, "
        "C1 fluorite, C4 rutile, C5 anatase, C6 CdI2.",
        "",
    ]
    return lines, {"tally": dict(tally), "cases": cases}


def retrain_section(retrain: Path | None, table1: dict[str, Path]) -> list[str]:
    lines = ["## 4. Retraining the DFT model with and without the labelled rows", ""]
    if retrain is None or not retrain.is_file():
        return [*lines, "(no retrain summary given)", ""]
    d = json.loads(retrain.read_text())
    info = d["info"]
    lines += [
        f"Both runs: the shipped architecture, same seed, same wall-clock budget "
        f"({d['without']['settings']['time_limit_s']:.0f} s on one H100, graphs included), trained side by side. "
        f"Base: the lake's DFT export ({info['base_rows']} rows); with: + {info['augmented_rows']} "
        f"{info['source']} rows (files {', '.join(info['labelled_files'])}).",
        "",
        "| test MAE (eV/atom) | without | with |",
        "| --- | ---: | ---: |",
    ]
    per = {k: d[k]["metrics"]["test"]["per_source"] for k in ("without", "with")}
    for source in sorted(set(per["without"]) | set(per["with"])):
        a = per["without"].get(source, {}).get("mae_ev_per_atom")
        b = per["with"].get(source, {}).get("mae_ev_per_atom")
        lines.append(f"| {source} | {'' if a is None else f'{a:.3f}'} | {'' if b is None else f'{b:.3f}'} |")
    lines += [
        "",
        "Both stopped by the time limit; the augmented run sees fewer DFT epochs in the same time.",
        "",
    ]
    for name, path in table1.items():
        if path.is_file():
            m = re.search(r"\*\*Success: (\d+)/(\d+)", path.read_text())
            if m:
                lines.append(
                    f"- Reduced-budget Table 1 with the model trained {name} the labels: "
                    f"**{m.group(1)}/{m.group(2)}** (`{path.name}`)."
                )
    return [*lines, ""]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--labels", type=Path, nargs="+", required=True)
    p.add_argument("--retrain", type=Path)
    p.add_argument("--table1", nargs="*", default=[], help="name=path of bench_table1 result files")
    p.add_argument("--sevennet-sample", type=int, default=150, help="0 skips SevenNet")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/augment.md"))
    args = p.parse_args()
    t0 = time.time()
    settings = current_settings()
    lake = Lake(settings.home)
    s, refs = with_formation_enthalpies(merge_labelled([StructureSet.load(f) for f in args.labels]))
    models = {
        "dft": OnnxModel(settings.model_dir("dft")),
        "exp": OnnxModel(settings.model_dir("exp")),
    }
    use_seven = args.sevennet_sample > 0
    seven_refs = None
    if use_seven:
        seven_refs = seven_references(s, set(refs))
    lines = [
        "# Polymorph augmentation: label quality and effect",
        "",
        f"Command: `python benchmarks/bench_augment.py --labels {' '.join(p.name for p in args.labels)} "
        f"--retrain {args.retrain.name if args.retrain else ''} --table1 {' '.join(args.table1)} "
        f"--sevennet-sample {args.sevennet_sample}` (lake and models from the settings; the label files are "
        "those written by `python -m csp.potentials.relaxer label` runs, ingested with `csp augment ingest`).",
        "",
    ]
    lines += data_section(s)
    sec, ref_results = reference_section(s, lake, models, args.sevennet_sample, refs, seven_refs)
    lines += sec
    sec, poly = polymorph_section(s, models, use_seven)
    lines += sec
    table1 = {k: Path(v) for k, v in (x.split("=", 1) for x in args.table1)}
    lines += retrain_section(args.retrain, table1)
    lines += [f"Total {time.time() - t0:.0f} s on {settings.threads or 'all'} CPU threads.", ""]
    args.out.write_text("\n".join(lines))
    args.out.with_suffix(".json").write_text(
        json.dumps({"references": ref_results, "polymorphs": poly}, indent=2)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
