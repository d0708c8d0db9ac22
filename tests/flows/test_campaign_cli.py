"""`csp campaign` end to end on the shipped models: kill -9 and resume, concurrent campaigns (refused requests:
`tests/flows/test_refused_requests.py`)."""

from __future__ import annotations

import signal
import time

import pyarrow.parquet as pq
import pytest

from storage.lake import Lake
from tests.flows.cli_process import csp, run_csp

pytestmark = pytest.mark.slow  # every test here runs campaigns, servers or training

SMALL = [
    "--outer-steps",
    "4",
    "--inner-steps",
    "30",
    "--z-max",
    "2",
    "--inner-optimizer",
    "pso",
    "--no-refine",
    "--gap-probes",
    "0",
]


def raw_keys(lake: Lake, campaign_id: str) -> list[tuple[int, int]]:
    """Keys as physically stored (not through the de-duplicating view)."""
    keys = []
    for part in lake.parts("candidates"):
        table = pq.read_table(part, columns=["campaign_id", "outer_step", "inner_step"])
        keys += [
            (r["outer_step"], r["inner_step"])
            for r in table.to_pylist()
            if r["campaign_id"] == campaign_id and r["inner_step"] >= -1  # search rows, not refined ones
        ]
    return keys


def test_killed_campaign_resumes_without_loss_or_duplicates(tmp_path):
    longer = [*SMALL, "--outer-steps", "6", "--inner-steps", "60"]  # long enough to kill mid-campaign
    proc = csp(tmp_path, "campaign", "run", "MgO", *longer, "--campaign-id", "k1")
    lake = Lake(tmp_path).init()
    deadline = time.time() + 240
    try:
        while time.time() < deadline and len(raw_keys(lake, "k1")) < 90:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    before = raw_keys(lake, "k1")
    assert 0 < len(before) < 6 * 61, "the kill should land mid-campaign"
    assert (
        lake.query("SELECT status FROM campaigns WHERE campaign_id = 'k1'").to_pylist()[0]["status"]
        == "running"
    )
    result = run_csp(tmp_path, "campaign", "resume", "k1")
    assert result.returncode == 0, result.stderr
    after = raw_keys(lake, "k1")
    assert len(after) == len(set(after)), "a candidate was written twice"
    assert set(before) <= set(after)
    outer = {o for o, i in after if i == -1}
    assert outer == set(range(6))
    assert (
        lake.query("SELECT status FROM campaigns WHERE campaign_id = 'k1'").to_pylist()[0]["status"]
        == "completed"
    )
    assert "top" in result.stdout.lower()
    assert "Exploitation gap: not measured" in result.stdout  # a pure-surrogate ranking is flagged


def test_concurrent_campaigns_lose_no_rows(tmp_path):
    Lake(tmp_path).init()
    procs = [
        csp(tmp_path, "campaign", "run", f, *SMALL, "--campaign-id", f"c-{f}", "--seed", "3")
        for f in ("MgO", "CaO")
    ]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    lake = Lake(tmp_path)
    for f in ("MgO", "CaO"):
        keys = raw_keys(lake, f"c-{f}")
        assert len(keys) == len(set(keys)) == 4 * 31
    search_rows = lake.query("SELECT count(*) AS n FROM candidates WHERE inner_step >= -1").to_pylist()
    assert search_rows == [{"n": 8 * 31}]
