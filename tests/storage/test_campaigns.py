"""Campaign queries of the lake and the universal-potential label reader (storage only)."""

from __future__ import annotations

import math

import numpy as np


def test_campaign_queries(lake):
    from storage.campaigns import (
        campaign_report,
        campaign_row,
        campaign_status,
        list_campaigns,
        record_event,
        stored_parameters,
    )

    assert campaign_status(lake, "c1") is None and stored_parameters(lake, "c1") is None
    record_event(lake, "c1", composition="MgO", status="running", parameters={"seed": 1}, run_id="r")
    record_event(
        lake, "c1", composition="MgO", status="completed", parameters={"seed": 1}, run_id="r",
        n_candidates=0, elapsed_s=1.0, summary={"top": [], "invalid_share": 0.0},
    )  # fmt: skip
    assert campaign_status(lake, "c1") == "completed"
    assert stored_parameters(lake, "c1") == {"seed": 1}
    assert campaign_row(lake, "c1")["composition"] == "MgO"
    assert list_campaigns(lake).column("campaign_id").to_pylist() == ["c1"]
    report = campaign_report(lake, "c1")
    assert report["status"] == "completed" and report["best_curve"] == [] and report["top"] == []


def _row(**kw):
    from storage.readers.mlip_labels import LabelRow

    base = dict(
        source_id="p|NaCl|1", formula="NaCl", kind="prototype", tag="B1", potential="chgnet-0.3.0",
        relaxation="relaxed", dhf_ev_per_atom=-2.0, energy_ev_per_atom=-3.3, fmax_ev_per_angstrom=0.01,
        steps=12.0, lattice=np.eye(3) * 5.6, species=["Na", "Cl"],
        frac_coords=np.array([[0, 0, 0], [0.5, 0.5, 0.5]]),
    )  # fmt: skip
    return LabelRow(**{**base, **kw})


def test_mlip_label_reader():
    from storage.readers import Record, Rejection
    from storage.readers.mlip_labels import read_mlip_labels

    rows = [
        _row(),
        _row(source_id="bad", dhf_ev_per_atom=math.nan),
        _row(source_id="ref", kind="reference"),
        _row(source_id="el", kind="element", steps=math.nan),
    ]
    out = list(read_mlip_labels(rows, license="BSD"))
    records = [o for o in out if isinstance(o, Record)]
    rejections = [o for o in out if isinstance(o, Rejection)]
    assert len(records) == 1 and len(rejections) == 1
    assert records[0].row["energy_method"] == "mlip" and records[0].row["source"] == "chgnet-0.3.0"
    assert "NaN" in rejections[0].reason
