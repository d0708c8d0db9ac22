"""One answer everywhere (issue 23): every face of a campaign gives the same final top k, ``spacegroup``
means the detected group in the lake and in every export format, and the output a person reads explains
itself without a terminal.

Three small campaigns on the shipped models and CHGNet (MgO and GaAs fixed cubic, NaCl over all crystal
systems); each face is compared with the one result (:func:`flows.results.result_of`) rank by rank.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.flows.cli_process import REPO, csp, invoke_csp

pytestmark = pytest.mark.slow  # three campaigns with refinement, and the front door repeats them

BUDGET = {
    "outer_steps": 3,
    "inner_steps": 12,
    "batch_size": 6,
    "formula_units_max": 2,
    "refine_top_n": 3,
    "refine_steps": 30,
    "top_k": 3,
    "seed": 0,
}
CASES = {
    "mgo": {"composition": "MgO", "strategy": "fixed", "crystal_system": "cubic"},
    "gaas": {"composition": "GaAs", "strategy": "fixed", "crystal_system": "cubic"},
    "nacl": {"composition": "NaCl", "strategy": "all", "crystal_system": None},
}
#: a table row of `campaign show`: rank, then "symbol (number)"
ROW = re.compile(r"^\S\s+(\d+)\s+\S\s+(\S+) \((\d+)\)")


def _cli_args(case: dict) -> list[str]:
    args = [case["composition"], "--strategy", case["strategy"]]
    if case["crystal_system"]:
        args += ["--crystal-system", case["crystal_system"]]
    for name, value in BUDGET.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory):
    """home, and name -> completed process of `csp campaign run` with stdout to a pipe, not a terminal.

    The three campaigns run at once in one lake (as users' campaigns may: tests/flows/test_campaign_cli.py),
    each in its own process as a user runs it; the pytest process waits on one core meanwhile."""
    from storage.lake import Lake

    home = tmp_path_factory.mktemp("one-answer") / "home"
    Lake(home).init()  # before the three processes, which would otherwise race to create it
    # a user's environment: Python's default warning filters (the helper's "ignore" undone), no COLUMNS
    env = {"PYTHONWARNINGS": "", "COLUMNS": ""}
    procs = {
        name: csp(home, "campaign", "run", *_cli_args(case), "--campaign-id", name, env=env)
        for name, case in CASES.items()
    }
    runs = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=900)
            runs[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, done in runs.items():
        assert done.returncode == 0, (name, done.stderr)
    return home, runs


def _result(home, name):
    from flows.results import result_of
    from storage.lake import Lake

    return result_of(Lake(home), name)


def _same_structures(structures, result) -> None:
    from csp.structures.matching import matches
    from csp.structures.symmetry import spacegroup_number

    assert len(structures) == len(result.top)
    for got, entry in zip(structures, result.top, strict=True):
        assert spacegroup_number(got) == entry.spacegroup
        assert matches(got, entry.structure), (entry.rank, entry.spacegroup_symbol)


@pytest.mark.parametrize("name", list(CASES))
def test_every_face_gives_the_same_top_k(campaigns, name, tmp_path):
    from csp.structures.io import read_structure
    from flows.deployments.artifacts import summary_markdown, top_table
    from storage.campaigns import campaign_report
    from storage.lake import Lake

    home, runs = campaigns
    result = _result(home, name)
    assert result.refined and result.top, result.rank_rule
    want = [(e.rank, e.spacegroup_symbol, e.spacegroup) for e in result.top]
    energies = [e.energy_potential_ev_per_atom for e in result.top]
    assert energies == sorted(energies) and result.top[0].delta_e_mev_per_atom == 0.0

    # `campaign run` and `campaign show` print the same table rows
    for text in (runs[name].stdout, invoke_csp(home, "campaign", "show", name, env={"COLUMNS": ""}).stdout):
        first_table = text.split("The search's own top k")[0]
        rows = [(int(m[1]), m[2], int(m[3])) for m in map(ROW.match, first_table.splitlines()) if m]
        assert rows == want, text

    # `campaign export` (CIF) and `candidates export` (JSON, and --stage search for the search's own top k)
    done = invoke_csp(home, "campaign", "export", name, "--out", str(tmp_path / "cif"))
    assert done.returncode == 0, done.stderr
    _same_structures([read_structure(tmp_path / "cif" / f"{name}-rank{r}.cif") for r, *_ in want], result)
    done = invoke_csp(home, "candidates", "export", name, "--format", "json", "--out", str(tmp_path / "json"))
    assert done.returncode == 0, done.stderr
    _same_structures([read_structure(tmp_path / "json" / f"{name}-rank{r}.json") for r, *_ in want], result)
    done = invoke_csp(
        home,
        "candidates",
        "export",
        name,
        "--stage",
        "search",
        "--format",
        "json",
        "--out",
        str(tmp_path / "s"),
    )
    assert done.returncode == 0, done.stderr
    searched = [
        read_structure(tmp_path / "s" / f"{name}-search-rank{e.rank}.json") for e in result.search_top
    ]
    assert [s.properties["fitness"] for s in searched] == [e.fitness for e in result.search_top]

    # the Prefect artifacts: the stored summary is the result, the table and the summary's rank 1 agree
    report = campaign_report(Lake(home), name)
    assert [t["key"] for t in report["top"]] == [list(e.key) for e in result.top]
    table = top_table(report)
    assert [(t["rank"], t["structure"]) for t in table] == [(r, f"{s} ({n})") for r, s, n in want]
    summary = summary_markdown(report)
    assert (
        f"rank 1 of the top {len(want)} (ranked by {result.rank_rule}): {want[0][1]} ({want[0][2]})"
        in summary
    )

    # the notebook's export is this same call
    notebook = json.loads((REPO / "notebooks" / "search_history.ipynb").read_text())
    assert any("result_of(Lake(home), CAMPAIGN" in "".join(c["source"]) for c in notebook["cells"])


@pytest.mark.parametrize("name", list(CASES))
def test_the_python_front_door_refines_and_gives_the_same_answer(campaigns, name):
    import csp
    from flows.campaigns import CampaignParameters

    home, _ = campaigns
    config = CampaignParameters(**CASES[name], **BUDGET).search_config()
    assert config.refine
    answer = csp.predict(CASES[name]["composition"], config, k=BUDGET["top_k"], campaign_id=name)
    lake_answer = _result(home, name)
    assert answer.rank_rule == lake_answer.rank_rule
    assert [e.key for e in answer.top] == [e.key for e in lake_answer.top]
    assert [e.spacegroup for e in answer.top] == [e.spacegroup for e in lake_answer.top]
    assert [e.energy_potential_ev_per_atom for e in answer.top] == pytest.approx(
        [e.energy_potential_ev_per_atom for e in lake_answer.top], abs=1e-6
    )


def test_output_without_a_terminal_is_whole_and_quiet(campaigns):
    _, runs = campaigns
    for name, done in runs.items():
        text = done.stdout + done.stderr
        assert "…" not in text, name  # rich cuts values with an ellipsis when squeezed
        assert "ranked by energy of chgnet" in done.stdout
        assert "ΔE to rank 1 (meV/atom)" in done.stdout and "converged" in done.stdout
        for line in text.splitlines():
            assert "Warning" not in line and "CHGNet v" not in line, (name, line)
        assert re.search(r"\d+ structures relaxed with chgnet-[\d.]+: \d+ converged", done.stdout), (
            done.stdout
        )


def test_spacegroup_means_the_detected_group_in_the_lake_and_every_export(campaigns, tmp_path):
    from pymatgen.io.cif import CifParser
    from pymatgen.io.vasp import Poscar

    from csp.structures.io import read_structure
    from csp.structures.symmetry import spacegroup_number
    from storage.lake import Lake

    home, _ = campaigns
    lake = Lake(home)
    for name in CASES:
        result = _result(home, name)
        rows = lake.query(
            "SELECT stage, outer_step, inner_step, spacegroup, family_spacegroup FROM candidates "
            "WHERE campaign_id = ? AND stage IN ('outer', 'refined')",
            [name],
        ).to_pylist()
        by_key = {(r["stage"], r["outer_step"], r["inner_step"]): r for r in rows}
        assert all(r["family_spacegroup"] is not None for r in rows)
        (tmp_path / name).mkdir()  # an output folder's parent must exist (tests/flows/test_option_checks.py)
        for fmt in ("cif", "poscar", "extxyz", "json"):
            out = tmp_path / name / fmt
            done = invoke_csp(home, "candidates", "export", name, "--format", fmt, "--out", str(out))
            assert done.returncode == 0, done.stderr
        for entry in result.top:
            stem = f"{name}-rank{entry.rank}"
            lake_group = by_key[entry.key]["spacegroup"]
            cif_text = (tmp_path / name / "cif" / f"{stem}.cif").read_text()
            stated = int(re.search(r"_symmetry_Int_Tables_number\s+(\d+)", cif_text)[1])
            poscar = Poscar.from_file(tmp_path / name / "poscar" / f"{stem}.vasp")
            in_comment = int(re.search(r"spacegroup (\d+)", poscar.comment)[1])
            xyz = read_structure(tmp_path / name / "extxyz" / f"{stem}.extxyz")
            js = json.loads((tmp_path / name / "json" / f"{stem}.json").read_text())
            spglib = {
                spacegroup_number(s)
                for s in (
                    CifParser.from_str(cif_text).parse_structures(primitive=False)[0],
                    poscar.structure,
                    xyz,
                    read_structure(tmp_path / name / "json" / f"{stem}.json"),
                )
            }
            assert (
                {lake_group, stated, in_comment, js["properties"]["spacegroup"]}
                == spglib
                == {entry.spacegroup}
            ), (name, entry.rank)


@pytest.mark.parametrize("name", list(CASES))
def test_compare_xrd_ranks_the_top_k_against_a_measured_file(campaigns, name, tmp_path):
    """`campaign show --compare-xrd`: a profile file simulated from the LAST entry of the top k, its cell
    2 % larger (as a predicted lattice is off experiment), puts that entry first by pattern. (Which
    polymorph a reference pattern picks is tests/csp/structures/test_xrd.py, on MgO and GaAs.)"""
    import numpy as np

    from csp.structures.xrd import simulate

    home, _ = campaigns
    result = _result(home, name)
    target = result.top[-1]
    strained = target.structure.copy()
    strained.scale_lattice(strained.volume * 1.02**3)
    peaks = simulate(strained)
    grid = np.arange(10, 90, 0.01)
    profile = sum(
        i * np.exp(-0.5 * ((grid - t) / 0.08) ** 2)
        for t, i in zip(peaks.two_theta, peaks.intensity, strict=True)
    )
    measured = tmp_path / "measured.xy"
    np.savetxt(measured, np.column_stack([grid, profile]), header="2theta intensity")
    done = invoke_csp(home, "campaign", "show", name, "--compare-xrd", str(measured), env={"COLUMNS": ""})
    assert done.returncode == 0, done.stderr
    table = done.stdout.split(f"against {measured.name}")[1]
    rows = [
        (int(m[1]), int(m[2]), float(m[3]))
        for m in re.finditer(r"^\S\s+(\d+)\s+\S\s+(\d+)\s+\S.*?(\d\.\d{3})\s+\S$", table, re.M)
    ]
    assert [order for order, _, _ in rows] == list(range(1, len(result.top) + 1))
    assert rows[0][1] == target.rank and rows[0][2] > 0.9, table
    assert [score for *_, score in rows] == sorted((score for *_, score in rows), reverse=True)
