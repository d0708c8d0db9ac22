"""The active loop's files (storage.active_rounds): round folders, manifests, the results file of rounds."""

from __future__ import annotations

import json

import pytest

from storage import active_rounds
from storage.errors import StorageError


def test_manifests_round_folders_and_staging(tmp_path):
    assert active_rounds.round_numbers(tmp_path / "none") == []
    folder = active_rounds.round_folder(tmp_path, 2)
    assert folder.name == "round-002" and active_rounds.read_manifest(folder) is None
    active_rounds.write_manifest(folder, {"round": 2, "labelled_ids": ["a|top1|initial"]})
    (tmp_path / "round-001").mkdir()  # a folder without a manifest is not a round
    (tmp_path / "notes").mkdir()
    assert active_rounds.round_numbers(tmp_path) == [2]
    assert active_rounds.read_manifest(folder)["labelled_ids"] == ["a|top1|initial"]
    assert not list(folder.glob(".tmp-*"))  # written to a temporary name, then renamed
    staging = active_rounds.staging_folder(folder)
    staging.mkdir()
    (staging / "c.npz").write_bytes(b"x")
    active_rounds.clear_staging(folder)
    active_rounds.clear_staging(folder)  # twice: nothing to do
    assert not staging.exists() and (folder / "manifest.json").is_file()
    (folder / "manifest.json").write_text("{half")
    with pytest.raises(StorageError, match="not a readable manifest"):
        active_rounds.read_manifest(folder)


def test_a_round_records_once_and_a_later_record_replaces_it(tmp_path):
    results = tmp_path / "results" / "active_rounds.json"
    assert active_rounds.read_records(results) == []
    active_rounds.write_record(results, {"round": 2, "gap_ev_per_atom": -0.4})
    active_rounds.write_record(results, {"round": 1, "gap_ev_per_atom": -0.9})
    active_rounds.write_record(results, {"round": 2, "gap_ev_per_atom": -0.2, "model_after": "m2"})
    rounds = json.loads(results.read_text())["rounds"]
    assert [(r["round"], r["gap_ev_per_atom"]) for r in rounds] == [(1, -0.9), (2, -0.2)]
    with pytest.raises(StorageError, match="round number"):
        active_rounds.write_record(results, {"gap_ev_per_atom": 0.0})
    results.write_text('{"something": []}')
    with pytest.raises(StorageError, match="not a results file"):
        active_rounds.write_record(results, {"round": 3})
    assert json.loads(results.read_text()) == {"something": []}  # the refused write lost nothing
