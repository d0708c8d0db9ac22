"""Table 1 at the paper's budget, fanned out over every core: is the experimental structure in the top 5?

One campaign per compound x strategy x alpha x seed x budget runs the product's own code path
(:func:`flows.campaigns.run_campaign`, what ``csp campaign run`` calls) in a process pool, one thread per
campaign (OMP/MKL/torch/onnxruntime threads 1) and one lake per campaign (no lock contention; a stopped
run resumes inside it). With ``--refine both`` the search runs once: its own top 5 is the ``refine=off``
record, the refined top 5 of the same campaign the ``refine=on`` record.

Records (one per compound x strategy x alpha x seed x refine x budget) go to ``--out`` JSON (default
``benchmarks/results/table1_full.json``), rewritten atomically after every finished campaign; records
already there are not run again. The markdown report (same name, ``.md``) gives found/17 per
strategy/alpha/refine/budget/seed and a row per compound. Success: see ``benchmarks/table1_common.py``.

The full run (the integrator's, on a 32-core GPU machine)::

    CSP_DATA_MIRROR=... python benchmarks/bench_table1_full.py --strategies fixed all --alphas 0.5 \\
        --seeds 0 1 2 --budgets 200x300 --refine both --workers 31
    CSP_DATA_MIRROR=... python benchmarks/bench_table1_full.py --strategies fixed --alphas 0.5 \\
        --seeds 0 1 2 --budgets 20x100 60x300 --refine both --workers 31
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ALL_ALPHAS = (0.0, 0.5, 1.0)


def _one_thread() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


def record_key(r: dict[str, Any]) -> tuple:
    return (
        r["formula"],
        r["strategy"],
        float(r["alpha"]),
        int(r["seed"]),
        bool(r["refine"]),
        r["outer"],
        r["inner"],
    )


def campaign_name(formula: str, strategy: str, alpha: float, seed: int, outer: int, inner: int) -> str:
    return f"t1-{formula}-{strategy}-a{alpha:g}-s{seed}-{outer}x{inner}"


def run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    """One campaign (in a worker process): the records it yields (refine off and/or on)."""
    _one_thread()
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    from table1_common import judge, load_entries, reference_structure

    from flows.campaigns import run_campaign
    from flows.settings import Settings

    name = job["name"]
    settings = Settings(home=Path(job["work_dir"]) / name, threads=1)
    mirror = settings.require_mirror()
    entry = next(e for e in load_entries(mirror) if e["formula"] == job["formula"])
    params = dict(
        composition=job["formula"],
        alpha=job["alpha"],
        strategy=job["strategy"],
        crystal_system=entry["crystal_system"] if job["strategy"] == "fixed" else None,
        outer_steps=job["outer"],
        inner_steps=job["inner"],
        formula_units_max=job["z_max"],
        seed=job["seed"],
        top_k=5,
        dhf_source=job["dhf_source"],
        refine="on" in job["want"],
        refine_top_n=job["refine_top_n"],
        refine_steps=job["refine_steps"],
        refine_device=job["device"],
        spread_penalty=job.get("spread_penalty", 0.0),
    )
    t0 = time.perf_counter()
    outcome = run_campaign(params, campaign_id=name, settings=settings)
    wall = time.perf_counter() - t0
    reference = reference_structure(mirror, entry)
    by_rule = {}
    if "on" in job["want"]:
        # the same refined rows ranked by every rule (reported, not used to choose the default)
        from csp.potentials.refine import rank_refined
        from storage.candidates import LakeSink
        from storage.lake import Lake

        history = LakeSink(Lake(settings.home), run_id="bench").history(name)
        for rule in ("energy", "fitness", "window"):
            found_r, _ = judge(rank_refined(history, k=5, rule=rule), entry, reference)
            by_rule[rule] = found_r["rank"] if found_r else None
    gaps = [t.get("exploitation_gap_ev_per_atom") for t in outcome.top_search[:5]]
    rule_ranks = _rule_ranks(settings, name, entry, reference) if "on" in job["want"] else {}
    out = []
    for mode in job["want"]:
        top = outcome.top if mode == "on" else outcome.top_search
        found, lattice_error = judge(top, entry, reference)
        out.append(
            {
                "formula": job["formula"],
                "strategy": job["strategy"],
                "alpha": job["alpha"],
                "seed": job["seed"],
                "refine": mode == "on",
                "outer": job["outer"],
                "inner": job["inner"],
                "found": found is not None,
                "rank": found["rank"] if found else None,
                "top5_spacegroups": [t["spacegroup"] for t in top[:5]],
                "lattice_error_pct": None if lattice_error is None else round(100 * lattice_error, 2),
                "gap_ev_per_atom": gaps,
                "gap_top1_ev_per_atom": gaps[0] if gaps else None,
                "seconds": round(
                    outcome.search_s if mode == "off" else outcome.search_s + outcome.refine_s, 1
                ),
                "rank_by_rule": by_rule if mode == "on" else None,
                "campaign_wall_s": round(wall, 1),
                "spread_penalty": job.get("spread_penalty", 0.0),
                "campaign_id": name,
                **({"rule_ranks": rule_ranks} if mode == "on" else {}),
            }
        )
    return out


def _rule_ranks(settings: Any, campaign_id: str, entry: dict[str, Any], reference: Any) -> dict[str, Any]:
    """Rank of the experimental structure under every ranking rule of refined rows (the same rows; the
    rule a campaign uses is chosen on compositions outside Table 1, see bench_refine_ranking.py)."""
    from table1_common import judge

    from csp.potentials.refine import rank_refined
    from storage.candidates import LakeSink
    from storage.lake import Lake

    history = LakeSink(Lake(settings.home), run_id="bench").history(campaign_id)
    rows = [r for r in history if r["stage"] == "refined"]
    ranks: dict[str, Any] = {}
    for rule in ("energy", "fitness", "window"):
        found, _ = judge(rank_refined(rows, k=5, rule=rule), entry, reference)
        ranks[rule] = found["rank"] if found else None
    return ranks


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def markdown(records: list[dict[str, Any]], command: str, total_s: float, workers: int) -> str:
    groups: dict[tuple, dict[int, list[dict[str, Any]]]] = {}
    for r in records:
        g = (r["strategy"], r["alpha"], r["refine"], r["outer"], r["inner"])
        groups.setdefault(g, {}).setdefault(r["seed"], []).append(r)
    seeds = sorted({r["seed"] for r in records})
    lines = [
        "# Table 1: experimental structure in the top 5 (product code path, one thread per campaign)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {workers} workers. "
        f"Wall time of this invocation {total_s / 60:.1f} min. {len(records)} records.",
        "",
        "## Found per configuration and seed",
        "",
        "| strategy | alpha | refine | budget | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | mean s/campaign |",
        "| --- | ---: | --- | --- | " + " | ".join("---:" for _ in seeds) + " | ---: |",
    ]
    for g in sorted(groups, key=lambda g: (g[0], g[1], g[2], g[3] * g[4])):
        by_seed = groups[g]
        cells = []
        for s in seeds:
            rs = by_seed.get(s, [])
            cells.append(f"{sum(r['found'] for r in rs)}/{len(rs)}" if rs else "")
        secs = [r["seconds"] for rs in by_seed.values() for r in rs]
        lines.append(
            f"| {g[0]} | {g[1]:g} | {'on' if g[2] else 'off'} | {g[3]} x {g[4]} | "
            + " | ".join(cells)
            + f" | {sum(secs) / max(1, len(secs)):.0f} |"
        )
    lines += [
        "",
        "## Per compound (rank of the experimental structure; - not in the top 5)",
        "",
        "| compound | strategy | alpha | refine | budget | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | top-1 space group (seed "
        + str(seeds[0] if seeds else "")
        + ") | gap top-1 (eV/atom) | a error % |",
        "| --- | --- | ---: | --- | --- | " + " | ".join("---:" for _ in seeds) + " | --- | ---: | ---: |",
    ]
    by_compound: dict[tuple, dict[int, dict[str, Any]]] = {}
    for r in records:
        k = (r["formula"], r["strategy"], r["alpha"], r["refine"], r["outer"], r["inner"])
        by_compound.setdefault(k, {})[r["seed"]] = r
    for k in sorted(by_compound, key=lambda k: (k[0], k[1], k[2], k[3], k[4] * k[5])):
        rs = by_compound[k]
        first = rs[min(rs)]
        gap = first.get("gap_top1_ev_per_atom")
        cells = [("" if s not in rs else (str(rs[s]["rank"]) if rs[s]["found"] else "-")) for s in seeds]
        lines.append(
            f"| {k[0]} | {k[1]} | {k[2]:g} | {'on' if k[3] else 'off'} | {k[4]} x {k[5]} | "
            + " | ".join(cells)
            + f" | {(first['top5_spacegroups'] or [''])[0]} | {'' if gap is None else f'{gap:+.3f}'} | "
            f"{'' if first['lattice_error_pct'] is None else first['lattice_error_pct']} |"
        )
    lines += [
        "",
        "Success: a top-5 structure matches the reference CIF (`csp.structures.matching.matches`); SrCu by crystal "
        "system (hexagonal). refine off = the search's own (pure-surrogate) top 5 of the same campaign. "
        "Gap: the potential's formation enthalpy at the found geometry minus the model's prediction, "
        "for the search's top-1 structure.",
        "",
    ]
    return "\n".join(lines)


def parse_budget(text: str) -> tuple[int, int]:
    outer, inner = text.lower().split("x")
    return int(outer), int(inner)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--formulas", nargs="*", help="compounds to run (default: all 17)")
    parser.add_argument("--strategies", nargs="+", choices=("fixed", "all"), default=["fixed", "all"])
    parser.add_argument("--alphas", nargs="+", type=float, default=list(ALL_ALPHAS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--budgets", nargs="+", default=["200x300"], help="outer x inner, e.g. 200x300 20x100"
    )
    parser.add_argument("--refine", choices=("on", "off", "both"), default="both")
    parser.add_argument("--refine-top-n", type=int, default=32)
    parser.add_argument("--refine-steps", type=int, default=150)
    parser.add_argument("--device", default="cpu", help="torch device of the potential (cpu, cuda)")
    parser.add_argument("--z-max", type=int, default=4)
    parser.add_argument("--dhf-source", choices=("dft", "exp"), default="exp")
    parser.add_argument(
        "--spread-penalty",
        type=float,
        default=0.0,
        help="kappa of dHf + kappa * spread (needs an enthalpy ensemble; 0: the paper's fitness)",
    )
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--out", type=Path, default=RESULTS / "table1_full.json")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "csp-table1-full",
        help="one lake per campaign under here (kept: a stopped run resumes its campaigns)",
    )
    parser.add_argument(
        "--no-precompute-references",
        action="store_true",
        help="do not compute missing elemental references into csp/potential_references.json first "
        "(each campaign then computes its own in memory)",
    )
    args = parser.parse_args(argv)
    _one_thread()
    sys.path.insert(0, str(HERE))
    from table1_common import load_entries

    from flows.settings import Settings

    mirror = Settings().require_mirror()
    formulas = [e["formula"] for e in load_entries(mirror)]
    if args.formulas:
        unknown = sorted(set(args.formulas) - set(formulas))
        if unknown:
            parser.error(f"not Table 1 compounds: {unknown}")
        formulas = [f for f in formulas if f in args.formulas]
    modes = ["off", "on"] if args.refine == "both" else [args.refine]
    records: list[dict[str, Any]] = json.loads(args.out.read_text())["records"] if args.out.is_file() else []
    done = {record_key(r) for r in records}
    jobs = []
    for formula, strategy, alpha, seed, budget in itertools.product(
        formulas, args.strategies, args.alphas, args.seeds, args.budgets
    ):
        outer, inner = parse_budget(budget)
        want = [m for m in modes if (formula, strategy, alpha, seed, m == "on", outer, inner) not in done]
        if not want:
            continue
        if "on" in want and "off" in modes and "off" not in want:
            want = ["on"]
        jobs.append(
            dict(
                name=campaign_name(formula, strategy, alpha, seed, outer, inner),
                formula=formula,
                strategy=strategy,
                alpha=alpha,
                seed=seed,
                outer=outer,
                inner=inner,
                want=want,
                z_max=args.z_max,
                dhf_source=args.dhf_source,
                refine_top_n=args.refine_top_n,
                refine_steps=args.refine_steps,
                device=args.device,
                spread_penalty=args.spread_penalty,
                work_dir=str(args.work_dir),
            )
        )
    # the biggest campaigns first, so that the pool's tail is short
    jobs.sort(key=lambda j: (-j["outer"] * j["inner"], j["strategy"] != "all"))
    command = "python benchmarks/bench_table1_full.py " + " ".join(
        a
        for a in (argv if argv is not None else sys.argv[1:])
        if not a.startswith(("/", "--out=", "--work-dir="))
    )
    sys.stdout.write(f"{len(jobs)} campaigns to run ({len(records)} records already in {args.out.name})\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def save() -> None:
        records.sort(key=record_key)
        payload = {"command": command, "cpu_count": os.cpu_count(), "records": records}
        write_atomic(args.out, json.dumps(payload, indent=1) + "\n")
        write_atomic(
            args.out.with_suffix(".md"),
            markdown(records, command, time.perf_counter() - started, args.workers),
        )

    if not args.no_precompute_references:
        ensure_references(formulas, args.workers, args.device)
    failures = 0
    if args.workers == 1:
        results = ((job, _safe(job)) for job in jobs)
        for job, (new, error) in results:
            failures += _collect(job, new, error, records)
            save()
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_safe, job): job for job in jobs}
            for future in as_completed(futures):
                new, error = future.result()
                failures += _collect(futures[future], new, error, records)
                save()
    if not jobs:
        save()
    sys.stdout.write(f"done in {(time.perf_counter() - started) / 60:.1f} min; {failures} campaigns failed\n")
    return 1 if failures else 0


def _reference_task(symbol: str, device: str) -> dict[str, float]:
    _one_thread()
    import torch

    torch.set_num_threads(1)
    from csp.potentials.refine import compute_references, get_potential

    return compute_references(get_potential("chgnet", device), [symbol])


def ensure_references(formulas: list[str], workers: int, device: str) -> None:
    """Elemental references of the potential for every element of ``formulas``, computed once (one
    element per worker) and merged into the shipped file before the campaigns start, so that no
    campaign computes them again."""
    from csp.potentials.refine import get_potential, save_references, shipped_references
    from csp.structures.composition import parse_composition

    name = get_potential("chgnet", device).name
    symbols = sorted({s for f in formulas for s in parse_composition(f).symbols})
    known = shipped_references().get(name, {})
    missing = [s for s in symbols if s not in known]
    if not missing:
        return
    sys.stdout.write(f"elemental references for {missing}\n")
    import multiprocessing as mp

    with ProcessPoolExecutor(max(1, min(workers, len(missing))), mp_context=mp.get_context("spawn")) as pool:
        for found in pool.map(_reference_task, missing, [device] * len(missing)):
            save_references(name, found)


def _safe(job: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """Run a job; a failing campaign is reported (and retried by the next invocation), not fatal."""
    try:
        return run_job(job), None
    except Exception as exc:  # noqa: BLE001 - reported per campaign, the other campaigns go on
        return [], f"{type(exc).__name__}: {exc}"


def _collect(job: dict[str, Any], new: list[dict[str, Any]], error: str | None, records: list) -> int:
    if error is not None:
        sys.stderr.write(f"FAILED {job['name']}: {error}\n")
        return 1
    records.extend(new)
    for r in new:
        sys.stdout.write(
            f"{r['formula']:8s} {r['strategy']:5s} a{r['alpha']:g} s{r['seed']} {r['outer']}x{r['inner']} "
            f"refine={'on ' if r['refine'] else 'off'} found={r['found']!s:5s} rank={r['rank']} "
            f"top5={r['top5_spacegroups']} {r['seconds']:.0f} s\n"
        )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
