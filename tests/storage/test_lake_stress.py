"""Compaction beside running campaigns (issue 13, fault 3): two campaigns and a compaction loop at once.

Small batches make many parts, so the compaction loop merges under the writers' feet the whole time. Every
campaign must end ``completed`` with exactly the rows of an uninterrupted run (one row per inner step and one
per family: ``outer * (inner + 1)``), nothing twice and no temporary file left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from storage.lake import Lake, LakeError

REPO = Path(__file__).resolve().parents[2]
OUTER, INNER = 2, 24
ARGS = ["--outer-steps", str(OUTER), "--inner-steps", str(INNER), "--batch-size", "8", "--z-max", "2"]


def start(home: Path, composition: str, campaign_id: str) -> subprocess.Popen:
    env = dict(os.environ, CSP_HOME=str(home), PYTHONWARNINGS="ignore", COLUMNS="200", CSP_THREADS="1")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "campaign",
            "run",
            composition,
            "--campaign-id",
            campaign_id,
            *ARGS,
        ],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_two_campaigns_and_a_compaction_loop(tmp_path):
    lake = Lake(tmp_path / "home").init()
    jobs = {"s-mgo": start(lake.root, "MgO", "s-mgo"), "s-gaas": start(lake.root, "GaAs", "s-gaas")}
    stop = threading.Event()
    merges: list[int] = []
    errors: list[BaseException] = []

    def compaction_loop() -> None:
        compactor = Lake(lake.root)
        while not stop.is_set():
            try:
                for table in ("candidates", "campaign_events"):
                    report = compactor.compact(table)
                    merges.append(report.parts_before - report.parts_after)
            except (LakeError, OSError, duckdb.Error) as exc:  # recorded, asserted below
                errors.append(exc)
                return
            time.sleep(0.05)

    loop = threading.Thread(target=compaction_loop)
    loop.start()
    try:
        outputs = {cid: proc.communicate(timeout=90)[0] for cid, proc in jobs.items()}
    finally:
        stop.set()
        loop.join(timeout=30)
        for proc in jobs.values():
            if proc.poll() is None:
                proc.kill()
    assert not errors, errors
    for cid, proc in jobs.items():
        assert proc.returncode == 0, outputs[cid][-3000:]
        assert "Traceback" not in outputs[cid]
    assert sum(merges) > 0, "the loop never merged anything: the test did not stress the writers"
    expected = OUTER * (INNER + 1)
    for cid in jobs:
        status = lake.query("SELECT status FROM campaigns WHERE campaign_id = ?", [cid]).column(0)
        assert status.to_pylist() == ["completed"]
        # search rows (the single-point rows of the exploitation gap, inner_step < -1, come on top)
        search_rows = "SELECT count(*) FROM candidates WHERE campaign_id = ? AND inner_step >= -1"
        count = lake.query(search_rows, [cid]).column(0)[0]
        assert count.as_py() == expected
        # after the final compactions every key is stored once
        Lake(lake.root).compact("candidates", partition=cid)
        raw = [
            (r["outer_step"], r["inner_step"])
            for part in (lake.table_dir("candidates") / cid).glob("part-*.parquet")
            for r in pq.read_table(part, columns=["outer_step", "inner_step"]).to_pylist()
            if r["inner_step"] >= -1
        ]
        assert len(raw) == len(set(raw)) == expected
    assert not list(lake.lake_dir.rglob(".tmp-*"))
