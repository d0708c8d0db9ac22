"""Hydride campaigns at the paper's budget: every one must end ``completed`` (issue 22's first fault).

Not a test (the tests run hydrides at small budgets: ``tests/flows/test_hydride_campaigns.py``). Run from the
repository root, a fresh lake (about 40 minutes on 2 cores with ``--workers 2``):

    CSP_HOME=$(mktemp -d) python benchmarks/bench_hydrides.py --workers 2 --out benchmarks/results/hydrides.md

Each of LiH, SmH2, HoHSe, H2O, NH3, CH4 and LiAlH4 runs with ``--strategy fixed`` (its experimental crystal
system) and ``--strategy all``, seeds 0, 1 and 2, at 200 x 300 steps with ``--no-refine --gap-probes 0`` (the
search and its scorer are what used to crash; refinement of hydrides is covered at 40 x 150 in
``docs/reliability.md``). Reported per run: exit status, the campaign's state, candidate rows, rows the models
could not score, wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: composition -> the crystal system of its experimental structure (the fixed strategy's system)
SYSTEMS = {
    "LiH": "cubic",
    "SmH2": "cubic",
    "HoHSe": "hexagonal",
    "H2O": "hexagonal",
    "NH3": "cubic",
    "CH4": "cubic",
    "LiAlH4": "monoclinic",
}


def run_one(formula: str, strategy: str, seed: int, outer: int, inner: int) -> dict:
    campaign_id = f"hyd-{formula}-{strategy}-s{seed}"
    args = [
        sys.executable, "-m", "flows.cli", "campaign", "run", formula,
        "--outer-steps", str(outer), "--inner-steps", str(inner), "--seed", str(seed),
        "--strategy", strategy, "--no-refine", "--gap-probes", "0", "--campaign-id", campaign_id,
    ]  # fmt: skip
    if strategy == "fixed":
        args += ["--crystal-system", SYSTEMS[formula]]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.time()
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.time() - t0
    return {
        "formula": formula,
        "strategy": strategy,
        "seed": seed,
        "campaign_id": campaign_id,
        "exit": out.returncode,
        "wall_s": round(wall, 1),
        "last_line": (out.stderr.strip().splitlines() or out.stdout.strip().splitlines() or [""])[-1][:200],
    }


def lake_counts() -> dict[str, dict]:
    from flows.settings import lake

    rows = (
        lake()
        .query(
            "SELECT campaign_id, count(*) AS n, "
            "count(*) FILTER (WHERE reject_reason LIKE 'the models cannot score it%') AS unscored "
            "FROM candidates WHERE campaign_id LIKE 'hyd-%' GROUP BY 1"
        )
        .to_pylist()
    )
    states = (
        lake().query("SELECT campaign_id, status FROM campaigns WHERE campaign_id LIKE 'hyd-%'").to_pylist()
    )
    out = {r["campaign_id"]: {"rows": r["n"], "unscored": r["unscored"]} for r in rows}
    for s in states:
        out.setdefault(s["campaign_id"], {})["status"] = s["status"]
    return out


def write(runs: list[dict], command: str, out: Path, where: str) -> None:
    """The results table (``out``, Markdown) and its data (``out`` with ``.json``)."""
    ended = sum(r["exit"] in (0, "-") and r.get("status") == "completed" for r in runs)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "runs": runs}, indent=1) + "\n")
    lines = [
        "# Hydride campaigns at the paper's budget",
        "",
        f"Command: `{command}` ({where})." if "`" not in command else f"{command} ({where}).",
        "",
        f"**{ended} of {len(runs)} campaigns ended `completed` with exit status 0**; rows the models could not score: "
        f"{sum(r.get('unscored', 0) or 0 for r in runs)}.",
        "",
        "| composition | strategy | seed | exit | state | rows | unscored | wall s |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in runs:
        system = f" ({SYSTEMS[r['formula']]})" if r["strategy"] == "fixed" else ""
        lines.append(
            f"| {r['formula']} | {r['strategy']}{system} | {r['seed']} | {r['exit']} | {r.get('status', '-')} | "
            f"{r.get('rows', 0)} | {r.get('unscored', 0)} | {r['wall_s']} |"
        )
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:6]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outer-steps", type=int, default=200)
    parser.add_argument("--inner-steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--formulas", nargs="+", default=list(SYSTEMS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/hydrides.md")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="run nothing: one table of several results files (.json) of this script, e.g. a grid finished "
        "in a later session; a completed run of a campaign is kept over an unfinished one",
    )
    parser.add_argument(
        "--collect",
        action="store_true",
        help="run nothing: report what the lake holds of the grid (e.g. after a stop)",
    )
    args = parser.parse_args()
    grid = [(f, s, seed) for f in args.formulas for s in ("fixed", "all") for seed in args.seeds]
    t0 = time.time()
    if args.merge:
        merged: dict[str, dict] = {}
        commands = []
        for path in args.merge:
            data = json.loads(path.read_text())
            commands.append(data["command"])
            for r in data["runs"]:  # a later file's run of a campaign replaces an earlier, unfinished one
                if r.get("status") == "completed" or r["campaign_id"] not in merged:
                    merged[r["campaign_id"]] = r
        order = {f"hyd-{f}-{st}-s{seed}": k for k, (f, st, seed) in enumerate(grid)}
        runs = sorted(merged.values(), key=lambda r: order.get(r["campaign_id"], len(order)))
        files = " ".join(str(p) for p in args.merge)
        listed = " ".join(f"({k}) {c if '`' in c else f'`{c}`'}" for k, c in enumerate(commands, 1))
        write(runs, f"Merged by `python benchmarks/bench_hydrides.py --merge {files}` from: {listed}", args.out,
              "later runs of a campaign replace unfinished ones")  # fmt: skip
        return
    if args.collect:
        runs = [
            {
                "formula": f,
                "strategy": st,
                "seed": seed,
                "campaign_id": f"hyd-{f}-{st}-s{seed}",
                "exit": "-",
                "wall_s": "-",
            }
            for f, st, seed in grid
        ]
    else:
        with ThreadPoolExecutor(args.workers) as pool:
            runs = list(pool.map(lambda g: run_one(*g, args.outer_steps, args.inner_steps), grid))
    counts = lake_counts()
    for r in runs:
        r |= counts.get(r["campaign_id"], {})
    command = (
        f"CSP_HOME=$(mktemp -d) python benchmarks/bench_hydrides.py --workers {args.workers} "
        f"--outer-steps {args.outer_steps} --inner-steps {args.inner_steps} --seeds {' '.join(map(str, args.seeds))}"
    ) + (f" --formulas {' '.join(args.formulas)}" if args.formulas != list(SYSTEMS) else "")
    if args.collect:
        command += " --collect (the campaigns' states as the lake holds them; exit status and wall time not recorded)"
    write(runs, command, args.out, f"2-core CPU machine, {time.time() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
