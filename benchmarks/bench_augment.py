"""How good are the potential's labels, and what do they do to the DFT model?

Reads the labelled files of an augmentation run (``python -m csp.potential label``) and the lake, and
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

from csp import elements
from csp.augment import StructureSet, merge_labelled, with_formation_enthalpies
from csp.infer import OnnxModel
from flows.augmentation import POLYMORPH_CASES
from flows.settings import Settings
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
    ]
    return lines


def reference_section(
    s: StructureSet, lake: Lake, models: dict[str, OnnxModel], seven_sample: int, seven_refs: dict | None
) -> tuple[list[str], dict]:
    ok = (
        (s.kind == "reference")
        & (s.labels["relaxation"] != "failed")
        & np.isfinite(s.values["dhf_ev_per_atom"])
    )
    idx = np.flatnonzero(ok)
    keys = [tuple(i.split("|", 2)[1:]) for i in s.ids[idx]]
    with lake.connect() as con:
        dft = {
            (r["source"], r["source_id"]): r
            for r in con.arrow(
                "SELECT source, source_id, dhf_dft_ev_per_atom, lattice_angstrom, species, frac_coords "
                "FROM structures WHERE list_contains(?, source)",
                [sorted({k[0] for k in keys})],
            ).to_pylist()
        }
        exp = con.arrow(
            "SELECT linked_source, linked_source_id, dhf_exp_ev_per_atom FROM experimental_linked "
            "WHERE source = 'expt_deltae_jha2019' AND split = 'test' AND linked_source IS NOT NULL"
        ).to_pylist()

    def crystal(row: dict):
        from csp.crystal import Crystal

        return Crystal(
            np.asarray(row["lattice_angstrom"]).reshape(3, 3),
            [elements.atomic_number(x) for x in row["species"]],
            np.asarray(row["frac_coords"]),
        )

    lines = ["## 2. Formation enthalpy against DFT and experiment", ""]
    results: dict = {}
    table = [
        "| rows | n | CHGNet (relaxed from the DFT structure) | shipped alignn-dft (DFT structure) | "
        "SevenNet single point (DFT structure, sample) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for source in ("gnome", "mp_flla2015"):
        sel = [
            j
            for j, k in enumerate(keys)
            if k[0] == source and k in dft and dft[k]["dhf_dft_ev_per_atom"] is not None
        ]
        if not sel:
            continue
        target = np.array([dft[keys[j]]["dhf_dft_ev_per_atom"] for j in sel])
        chg = s.values["dhf_ev_per_atom"][idx[sel]]
        crystals = [crystal(dft[keys[j]]) for j in sel]
        model = _predict(models["dft"], crystals)
        seven = ""
        if seven_refs is not None and seven_sample:
            take = sel[:seven_sample]
            e = seven_energy([crystal(dft[keys[j]]) for j in take])
            dh = _dhf(e, [crystal(dft[keys[j]]) for j in take], seven_refs)
            good = np.isfinite(dh)
            seven = f"{_mae(dh[good], target[: len(take)][good]):.3f} (n={int(good.sum())})"
        table.append(
            f"| {source} test split (held out) | {len(sel)} | {_mae(chg, target):.3f} | {_mae(model, target):.3f} | {seven} |"
        )
        results[source] = {"n": len(sel), "chgnet": _mae(chg, target), "alignn_dft": _mae(model, target)}
    linked = {(r["linked_source"], r["linked_source_id"]): r["dhf_exp_ev_per_atom"] for r in exp}
    sel = [j for j, k in enumerate(keys) if k in linked and k in dft]
    if sel:
        target = np.array([linked[keys[j]] for j in sel])
        chg = s.values["dhf_ev_per_atom"][idx[sel]]
        crystals = [crystal(dft[keys[j]]) for j in sel]
        m_dft, m_exp = _predict(models["dft"], crystals), _predict(models["exp"], crystals)
        table.append(
            f"| experimental test split (Jha 2019), linked structures | {len(sel)} | {_mae(chg, target):.3f} | "
            f"{_mae(m_dft, target):.3f} (alignn-exp: {_mae(m_exp, target):.3f}) |  |"
        )
        results["experiment"] = {
            "n": len(sel),
            "chgnet": _mae(chg, target),
            "alignn_dft": _mae(m_dft, target),
            "alignn_exp": _mae(m_exp, target),
        }
    lines += ["MAE in eV/atom.", "", *table, ""]
    return lines, results


_SEVEN = {}


def seven_energy(crystals: list) -> np.ndarray:
    from csp.potential import SevenNetPotential

    if "p" not in _SEVEN:
        _SEVEN["p"] = SevenNetPotential("cpu")
    return _SEVEN["p"].efs(crystals)[0]


def _dhf(energy: np.ndarray, crystals: list, refs: dict[int, float]) -> np.ndarray:
    out = []
    for e, c in zip(energy, crystals, strict=True):
        mu = [refs.get(int(z), np.nan) for z in c.numbers]
        out.append(e - float(np.mean(mu)))
    return np.array(out)


def seven_references(s: StructureSet, symbols: set[int]) -> dict[int, float]:
    """SevenNet energy per atom of CHGNet's lowest elemental structure of each element (single points)."""
    ok = (
        (s.kind == "element")
        & (s.labels["relaxation"] != "failed")
        & ~np.char.endswith(s.ids.astype(str), "|initial")
    )
    best: dict[int, tuple[float, int]] = {}
    off = s.offsets
    for i in np.flatnonzero(ok):
        z = int(s.numbers[off[i]])
        e = s.values["energy_ev_per_atom"][i]
        if z in symbols and np.isfinite(e) and (z not in best or e < best[z][0]):
            best[z] = (e, i)
    zs = sorted(best)
    energies = seven_energy([s.crystal(best[z][1]) for z in zs])
    return dict(zip(zs, map(float, energies), strict=True))


def polymorph_section(
    s: StructureSet, models: dict[str, OnnxModel], use_seven: bool
) -> tuple[list[str], dict]:
    from csp.prototypes import load_prototypes

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
            if t in (ground, *competitors):
                if (
                    t not in by_type
                    or s.values["energy_ev_per_atom"][i] < s.values["energy_ev_per_atom"][by_type[t]]
                ):
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
    settings = Settings()
    lake = Lake(settings.home)
    s, refs = with_formation_enthalpies(merge_labelled([StructureSet.load(f) for f in args.labels]))
    models = {
        "dft": OnnxModel(settings.models_dir / settings.dft_model),
        "exp": OnnxModel(settings.models_dir / settings.exp_model),
    }
    use_seven = args.sevennet_sample > 0
    seven_refs = None
    if use_seven:
        ref_rows = s.kind == "reference"
        needed = {int(z) for i in np.flatnonzero(ref_rows) for z in s.crystal(i).numbers}
        seven_refs = seven_references(s, needed)
    lines = [
        "# Polymorph augmentation: label quality and effect",
        "",
        "Command: `python benchmarks/bench_augment.py --labels ... --retrain ... --table1 ...` "
        f"(lake and models from the settings; SevenNet sample {args.sevennet_sample}).",
        "",
    ]
    lines += data_section(s)
    sec, ref_results = reference_section(s, lake, models, args.sevennet_sample, seven_refs)
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
