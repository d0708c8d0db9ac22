"""The full Table 1 benchmark script at a tiny budget: the report's structure and resume, not its numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CSP_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "bench_table1_full.py"),
        "--formulas",
        "MgO",
        "--strategies",
        "fixed",
        "--alphas",
        "0.5",
        "--seeds",
        "0",
        "--budgets",
        "2x6",
        "--refine",
        "both",
        "--refine-top-n",
        "2",
        "--refine-steps",
        "2",
        "--workers",
        "1",
        "--out",
        str(tmp_path / "t1.json"),
        "--work-dir",
        str(tmp_path / "work"),
        "--no-precompute-references",  # never write into the checkout
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)


def test_tiny_run_writes_records_and_report_and_resumes(tmp_path):
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "t1.json").read_text())
    assert "bench_table1_full.py" in data["command"]
    records = data["records"]
    assert sorted(r["refine"] for r in records) == [False, True]
    for r in records:
        assert r["formula"] == "MgO" and r["strategy"] == "fixed" and r["alpha"] == 0.5
        assert (r["outer"], r["inner"], r["seed"]) == (2, 6, 0)
        assert isinstance(r["found"], bool)
        assert r["rank"] is None or 1 <= r["rank"] <= 5
        assert 1 <= len(r["top5_spacegroups"]) <= 5
        assert len(r["gap_ev_per_atom"]) == len(records[0]["gap_ev_per_atom"])
        assert r["seconds"] > 0
    report = (tmp_path / "t1.md").read_text()
    assert "## Found per configuration and seed" in report
    assert "| fixed | 0.5 | off | 2 x 6 |" in report and "| fixed | 0.5 | on | 2 x 6 |" in report
    assert "| MgO | fixed | 0.5 | on | 2 x 6 |" in report
    again = run(tmp_path)
    assert again.returncode == 0
    assert "0 campaigns to run" in again.stdout
    assert len(json.loads((tmp_path / "t1.json").read_text())["records"]) == 2
