"""Ingest into the lake: real mirror slices, idempotence, quarantine, and a killed ingest completed by a re-run."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage.ingest import ingest_records, ingest_source, ordered_sources
from storage.lake import Lake
from storage.readers import read_gnome, read_jha2019

REPO = Path(__file__).resolve().parents[2]


def _head_gz(src: Path, dst: Path, lines: int) -> Path:
    with gzip.open(src, "rt") as fin, gzip.open(dst, "wt") as fout:
        for i, line in enumerate(fin):
            if i >= lines:
                break
            fout.write(line)
    return dst


def test_sources_are_ordered_labels_first():
    names = ordered_sources()
    assert names.index("jang2020_mp_icsd") < names.index("mp_flla2015")
    assert len(names) == 15


def test_experimental_ingest_is_idempotent(lake, data_mirror):
    source = data_mirror / "experimental" / "expt_deltae_test.csv"
    first = ingest_records(
        lake, read_jha2019(source, source="jha", license="x", split="test"), source="jha", run_id="a"
    )
    second = ingest_records(
        lake, read_jha2019(source, source="jha", license="x", split="test"), source="jha", run_id="b"
    )
    assert first.written["experimental_enthalpies"] == 160
    assert second.written["experimental_enthalpies"] == 0
    rows = lake.query("SELECT DISTINCT split FROM experimental_enthalpies").to_pylist()
    assert rows == [{"split": "test"}]


def test_bad_rows_are_quarantined_and_good_rows_land(lake, tmp_path, data_mirror):
    good = _head_gz(data_mirror / "dft" / "gnome_structures.jsonl.gz", tmp_path / "g.jsonl.gz", 20)
    with gzip.open(good, "rt") as fh:
        lines = fh.read().splitlines()
    lines[3] = lines[3].replace(
        '"formation_energy_per_atom_eV": ', '"formation_energy_per_atom_eV": NaN, "x": '
    )
    lines[5] = lines[5].replace("_cell_length_a", "_cell_length_a garbage")
    lines.append(lines[0])  # duplicate id
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    data = bad.read_bytes()
    (tmp_path / "trunc.jsonl.gz").write_bytes(data[: len(data) - 200])  # truncated gzip
    report = ingest_records(lake, read_gnome(bad, source="g", license="x"), source="g", run_id="r")
    assert report.n_rejected >= 2
    assert lake.count("structures") + report.n_rejected == 21
    reasons = [r["reason"] for r in lake.query("SELECT reason FROM quarantine").to_pylist()]
    assert any("duplicate" in r for r in reasons)
    trunc = ingest_records(
        lake, read_gnome(tmp_path / "trunc.jsonl.gz", source="t", license="x"), source="t", run_id="r"
    )
    assert trunc.n_rejected >= 1 and sum(trunc.written.values()) > 1
    assert any(
        "trunc" in r["reason"].lower() or "gzip" in r["reason"].lower()
        for r in lake.query("SELECT reason FROM quarantine WHERE source = 't'").to_pylist()
    )


@pytest.mark.slow
def test_mp_rows_get_jang_labels(lake, data_mirror, tmp_path):
    ingest_source(lake, "jang2020_mp_icsd", data_mirror, run_id="r")
    assert lake.count("synth_labels") == 46461
    # the first 400 of the 1,913 MP structures (each pays a symmetry analysis); the labels are all there
    mirror = tmp_path / "mirror"
    (mirror / "dft").mkdir(parents=True)
    _head_gz(
        data_mirror / "dft" / "mp_chemeleon_mp40.jsonl.gz", mirror / "dft" / "mp_chemeleon_mp40.jsonl.gz", 400
    )
    ingest_source(lake, "mp_chemeleon_mp40", mirror, run_id="r", workers=1)
    counts = dict(
        (r["icsd_label"], r["n"])
        for r in lake.query("SELECT icsd_label, count(*) AS n FROM structures GROUP BY 1").to_pylist()
    )
    assert sum(counts.values()) == 400
    assert counts[1] > 300  # positives joined from the Jang id list (324 of 400)


@pytest.mark.slow
def test_killed_ingest_leaves_whole_batches_and_rerun_completes(tmp_path, data_mirror):
    root = tmp_path / "home"
    Lake(root).init()
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        import storage.ingest as ingest
        from storage.lake import Lake
        ingest.BATCH_ROWS = 1000
        lake = Lake({str(root)!r})
        def progress(n):
            if n >= 2500:
                print("go", flush=True)
        ingest.ingest_source(lake, "oqmd_composition_deltae", {str(data_mirror)!r}, progress=progress)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "go"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(60)
    lake = Lake(root)
    partial = lake.count("experimental_enthalpies")
    assert 0 < partial < 27981 and partial % 1000 == 0
    report = ingest_source(lake, "oqmd_composition_deltae", data_mirror)
    assert report.written["experimental_enthalpies"] == 27981 - partial
    assert lake.count("experimental_enthalpies") == 27981
