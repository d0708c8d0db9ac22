"""Issue 22, item 1: campaigns of compositions with hydrogen run to the end (each crashed in its first family):
the hydrides of the hydride benchmark (benchmarks/bench_hydrides.py), LiH, SmH2, HoHSe, H2O, NH3, CH4 and LiAlH4."""

from __future__ import annotations

import pytest

from storage.lake import Lake
from tests.flows.cli_process import invoke_csp

pytestmark = pytest.mark.slow  # each runs a campaign on the shipped models

BUDGET = ["--outer-steps", "3", "--inner-steps", "40", "--z-max", "2", "--no-refine", "--gap-probes", "0"]


@pytest.mark.parametrize(
    ("formula", "strategy"),
    [
        ("LiH", ["--strategy", "fixed", "--crystal-system", "cubic"]),
        ("SmH2", ["--strategy", "fixed", "--crystal-system", "cubic"]),
        ("H2O", ["--strategy", "fixed", "--crystal-system", "hexagonal"]),
        ("NH3", ["--strategy", "all"]),
        ("CH4", ["--strategy", "all"]),
        ("HoHSe", ["--strategy", "fixed", "--crystal-system", "hexagonal"]),  # its experimental system
        ("LiAlH4", ["--strategy", "fixed", "--crystal-system", "monoclinic"]),
        ("LiAlH4", ["--strategy", "all"]),
    ],
    ids=lambda value: value if isinstance(value, str) else value[-1],
)
def test_a_hydride_campaign_runs_to_the_end(tmp_path, formula, strategy):
    result = invoke_csp(tmp_path, "campaign", "run", formula, *strategy, *BUDGET, "--campaign-id", "h")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lake = Lake(tmp_path)
    status = lake.query("SELECT status FROM campaigns WHERE campaign_id = 'h'").to_pylist()
    assert status[-1]["status"] == "completed"
    rows = lake.query(
        "SELECT count(*) AS n, count(*) FILTER (WHERE inner_step = -1) AS outer FROM candidates "
        "WHERE campaign_id = 'h' AND inner_step >= -1"
    ).to_pylist()[0]
    assert rows == {"n": 3 * 41, "outer": 3}


def test_a_campaign_of_hydrogen_is_headed_by_its_formula_h(tmp_path):
    """Issue 22 follow-up: the table of `csp campaign run H` was headed "(H2)" (pymatgen's name of the molecule)."""
    args = ["--strategy", "fixed", "--crystal-system", "cubic", *BUDGET, "--campaign-id", "hyd"]
    result = invoke_csp(tmp_path, "campaign", "run", "H", *args)
    assert result.returncode == 0, result.stderr
    assert "of campaign hyd (H), ranked by" in result.stdout and "(H2)" not in result.stdout
