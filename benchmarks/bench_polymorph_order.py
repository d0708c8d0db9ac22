"""Polymorph ordering: does each scorer put the experimental structure first among its known polymorphs?

Not a test. Run from the repository root (about 5 minutes on 2 CPU cores):

    python benchmarks/bench_polymorph_order.py --out benchmarks/results/polymorph_order.json

The sets are ``flows.augmentation.POLYMORPH_CASES`` with competitors: 27 compositions outside the 17
validation compounds (rock salt / CsCl / zinc blende / wurtzite binaries, fluorite / rutile / CdI2 / anatase
dioxides and difluorides), each with its ambient-pressure experimental type and two competing types. Every
decoration of these types (pymatgen's AFLOW prototype library, :mod:`csp.structures.prototypes`) is relaxed
with CHGNet 0.3.0 keeping its space group (refinement's settings: FIRE, Frechet cell filter, fmax 0.05 eV/A,
at most 150 steps); per type the lowest-energy decoration stands for it. Each relaxed structure is then
scored by

* the potential (energy per atom; lower is better),
* the enthalpy models (the DFT-trained and the experiment-calibrated ALIGNN, dHf in eV/atom; lower is better),
* the synthesizability model (P_syn; higher is better),

and the experimental type's rank among the set's types is recorded for each (1 = the scorer prefers it).
``--models-dir`` scores with other model folders (e.g. retrained ones) on the same relaxed structures;
``--pu-model DIR`` scores P_syn with one candidate PU model folder (the enthalpy models stay those of
``--models-dir``) and, without ``--out``, writes ``polymorph_order-<DIR name>.json/.md`` in the current folder
rather than the committed results. ``--relaxed FILE.json`` keeps the relaxed structures: the first run writes
it, later runs (other models) read it and skip the relaxation. Evaluating a candidate PU model::

    python benchmarks/bench_polymorph_order.py --relaxed runs/polymorph_relaxed.json --pu-model runs/onnx-pu-poly

The sets' compositions are training compositions (not held out): for a model trained with hypothetical
polymorphs of them, this measures fit; the held-out measure is the card's ``polymorphs`` metric.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from csp.models.infer import OnnxModels
from csp.models.names import DEFAULT_MODELS, resolve_model
from csp.potentials.refine import COLLAPSE_RATIO, EXPLODE_RATIO, FIX_SYMPREC
from csp.potentials.relaxer import RelaxJob, load_potential, relax
from csp.structures.composition import parse_composition
from csp.structures.crystal import Crystal
from csp.structures.prototypes import decorations
from flows.augmentation import POLYMORPH_CASES

REPO = Path(__file__).resolve().parents[1]


def relaxed_types(potential, steps: int) -> list[dict]:
    """One row per (set, type): the lowest-energy relaxed decoration of that type."""
    jobs = []
    for formula, ground, competitors in POLYMORPH_CASES:
        if not competitors:
            continue
        for d in decorations(parse_composition(formula)):
            kind = d.prototype.strukturbericht
            if kind in (ground, *competitors):
                jobs.append(RelaxJob(d.crystal, steps, (formula, kind, ground, d.tag)))
    done = relax(
        potential,
        jobs,
        fmax=0.05,
        pool=128,
        symprec=FIX_SYMPREC,
        collapse_ratio=COLLAPSE_RATIO,
        explode_ratio=EXPLODE_RATIO,
    )
    best: dict[tuple[str, str], dict] = {}
    for item in done:
        formula, kind, ground, tag = item.job.payload
        if item.state not in ("relaxed", "partially_relaxed") or not np.isfinite(item.energy):
            continue
        key = (formula, kind)
        if key not in best or item.energy < best[key]["energy_potential_ev_per_atom"]:
            best[key] = {
                "formula": formula,
                "type": kind,
                "experimental": kind == ground,
                "decoration": tag,
                "state": item.state,
                "steps": item.steps,
                "energy_potential_ev_per_atom": float(item.energy),
                "crystal": item.crystal,
            }
    return list(best.values())


def save_relaxed(rows: list[dict], path: Path) -> None:
    """Write the relaxed rows (crystals as lattice, numbers, fractional coordinates) to a JSON file."""
    plain = []
    for row in rows:
        c = row["crystal"]
        crystal = {
            "lattice": c.lattice.tolist(),
            "numbers": c.numbers.tolist(),
            "frac": c.frac_coords.tolist(),
        }
        plain.append({k: v for k, v in row.items() if k != "crystal"} | {"crystal": crystal})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plain) + "\n")


def load_relaxed(path: Path) -> list[dict]:
    """Rows written by :func:`save_relaxed`."""
    rows = json.loads(path.read_text())
    for row in rows:
        c = row["crystal"]
        row["crystal"] = Crystal(np.array(c["lattice"]), np.array(c["numbers"]), np.array(c["frac"]))
    return rows


def score(rows: list[dict], models_dir: Path, candidates: dict[str, Path] | None = None) -> dict[str, str]:
    """Add dhf_dft, dhf_exp, p_syn (and its spread) to every row; returns the model folders used.

    ``candidates`` (kind -> model folder; kinds dft, exp, pu) replace those models of ``models_dir``.
    """
    folders = {kind: resolve_model(models_dir, DEFAULT_MODELS[kind]) for kind in ("dft", "exp", "pu")}
    folders |= candidates or {}
    models = OnnxModels(**folders, threads=2)
    scores = models.score([r["crystal"] for r in rows], include=["dft", "exp", "pu"])
    for k, row in enumerate(rows):
        row["dhf_dft_ev_per_atom"] = float(scores.dhf_dft[k])
        row["dhf_exp_ev_per_atom"] = float(scores.dhf_exp[k])
        row["p_syn"] = float(scores.p_syn[k])
        row["p_syn_std"] = float(scores.p_syn_std[k])
    return {kind: folder.name for kind, folder in folders.items()}


SCORERS = {
    "potential": ("energy_potential_ev_per_atom", 1),
    "dhf_dft": ("dhf_dft_ev_per_atom", 1),
    "dhf_exp": ("dhf_exp_ev_per_atom", 1),
    "p_syn": ("p_syn", -1),
}


def rank_sets(rows: list[dict]) -> list[dict]:
    """Per set: the experimental type's rank by each scorer (1 = preferred), and the margins."""
    out = []
    for formula, ground, competitors in POLYMORPH_CASES:
        members = [r for r in rows if r["formula"] == formula]
        if not competitors or not any(r["experimental"] for r in members):
            continue
        entry = {"formula": formula, "experimental": ground, "types": sorted(r["type"] for r in members)}
        for name, (column, sign) in SCORERS.items():
            order = sorted(members, key=lambda r, c=column, s=sign: s * r[c])
            entry[f"rank_{name}"] = 1 + next(i for i, r in enumerate(order) if r["experimental"])
        entry["values"] = {
            r["type"]: {c: round(r[c], 4) for c, _ in SCORERS.values()}
            for r in sorted(members, key=lambda r: r["type"])
        }
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="default: results/polymorph_order.json (shipped models)")
    parser.add_argument("--models-dir", type=Path, default=REPO / "onnx_models")
    parser.add_argument("--pu-model", type=Path, help="a candidate PU model folder scoring P_syn")
    parser.add_argument("--dft-model", type=Path, help="a candidate DFT enthalpy model folder (dhf_dft)")
    parser.add_argument(
        "--exp-model", type=Path, help="a candidate fine-tuned enthalpy model folder (dhf_exp)"
    )
    parser.add_argument(
        "--relaxed", type=Path, help="JSON of the relaxed structures: read if present, else written"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    candidates = {
        kind: folder
        for kind, folder in (("dft", args.dft_model), ("exp", args.exp_model), ("pu", args.pu_model))
        if folder is not None
    }
    for kind, folder in candidates.items():
        if not (folder / "model.json").is_file():
            parser.error(
                f"--{kind}-model {folder} is not a model folder (no model.json); export the run first."
            )
    if args.out is None:
        default = REPO / "benchmarks/results/polymorph_order.json"
        named = "-".join(folder.name for folder in candidates.values())
        args.out = Path(f"polymorph_order-{named}.json") if candidates else default

    t0 = time.time()
    potential = load_potential("chgnet", args.device)
    reused = args.relaxed is not None and args.relaxed.is_file()
    if reused:
        rows = load_relaxed(args.relaxed)
    else:
        rows = relaxed_types(potential, args.steps)
        if args.relaxed is not None:
            save_relaxed(rows, args.relaxed)
    t_relax = time.time() - t0
    models = score(rows, args.models_dir, candidates)
    sets = rank_sets(rows)
    n = len(sets)
    summary = {f"first_by_{name}": sum(s[f"rank_{name}"] == 1 for s in sets) for name in SCORERS} | {
        "sets": n
    }
    result = {
        "command": "python benchmarks/bench_polymorph_order.py"
        + (f" --models-dir {args.models_dir.name}" if args.models_dir != REPO / "onnx_models" else "")
        + "".join(f" --{kind}-model {folder.name}" for kind, folder in candidates.items()),
        "potential": potential.name,
        "models": models,
        "machine": f"{platform.machine()}, {args.device}",
        "relax_seconds": round(t_relax, 1),
        "summary": summary,
        "sets": sets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# Polymorph ordering",
        "",
        f"Command: `{result['command']}` ({potential.name}; models {models}; "
        + (
            f"relaxed structures read from {args.relaxed.name})."
            if reused
            else f"relaxation {t_relax:.0f} s on {result['machine']})."
        ),
        "",
        f"The experimental structure first among its set's types, out of {n} sets: "
        + ", ".join(f"{name} {summary[f'first_by_{name}']}" for name in SCORERS)
        + " (potential = CHGNet energy; dhf_dft / dhf_exp = the ALIGNN enthalpy models; p_syn = synthesizability).",
        "",
        "| composition | experimental | types | potential | dhf_dft | dhf_exp | p_syn |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for s in sets:
        lines.append(
            f"| {s['formula']} | {s['experimental']} | {', '.join(s['types'])} | "
            + " | ".join(str(s[f"rank_{name}"]) for name in SCORERS)
            + " |"
        )
    lines.append("")
    lines.append(
        "Each cell is the experimental type's rank among the set's types by that scorer (1 = preferred)."
    )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:6]))


if __name__ == "__main__":
    main()
