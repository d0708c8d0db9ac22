"""Issue 22, item 1: campaigns of compositions with hydrogen run to the end (each crashed in its first family)."""

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
    ],
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
