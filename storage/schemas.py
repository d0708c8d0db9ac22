"""Declared pyarrow schemas of every lake table.

Units live in column names. Every table carries a lineage column (``run_id``: the ingest run, flow
run or campaign that wrote the row) and a ``written_at`` timestamp. ``KEYS`` names the columns that
identify a row: writers skip rows whose key is already stored and the catalog's views keep the first
row per key, so a retried batch or an interrupted compaction never shows a row twice.
"""

from __future__ import annotations

import pyarrow as pa

_f64 = pa.float64()
_ts = pa.timestamp("us", tz="UTC")
_vec3 = pa.list_(_f64, 3)
_lattice = pa.list_(_f64, 9)

LINEAGE = [
    pa.field("run_id", pa.string(), nullable=False, metadata={"doc": "ingest run, flow run or campaign id"}),
    pa.field("written_at", _ts, nullable=False),
]

STRUCTURES = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("license", pa.string(), nullable=False),
        pa.field("raw_formula", pa.string(), nullable=False),
        pa.field("reduced_formula", pa.string(), nullable=False),
        pa.field("elements", pa.list_(pa.string()), nullable=False),
        pa.field("nelements", pa.int16(), nullable=False),
        pa.field("nsites", pa.int32(), nullable=False),
        pa.field("spacegroup", pa.int16()),
        pa.field("crystal_system", pa.string()),
        pa.field(
            "lattice_angstrom", _lattice, nullable=False, metadata={"doc": "row-major 3x3, rows a, b, c"}
        ),
        pa.field("species", pa.list_(pa.string()), nullable=False),
        pa.field("frac_coords", pa.list_(_vec3), nullable=False),
        pa.field("volume_angstrom3", _f64, nullable=False),
        pa.field(
            "dhf_dft_ev_per_atom", _f64, metadata={"doc": "formation enthalpy on the source's own scale"}
        ),
        pa.field(
            "energy_kind", pa.string(), metadata={"doc": "which column of the source the energy came from"}
        ),
        pa.field(
            "energy_method",
            pa.string(),
            metadata={"doc": "dft, or mlip for a universal potential's label (source names the potential)"},
        ),
        pa.field(
            "relaxation",
            pa.string(),
            metadata={"doc": "mlip rows: relaxed, partially_relaxed (ran out of steps) or unrelaxed"},
        ),
        pa.field("relax_steps", pa.int32(), metadata={"doc": "mlip rows: optimiser steps taken"}),
        pa.field("e_above_hull_ev_per_atom", _f64),
        pa.field(
            "icsd_label", pa.int8(), metadata={"doc": "1 experimentally reported, 0 unlabeled, null no info"}
        ),
        pa.field("label_origin", pa.string()),
        pa.field(
            "split", pa.string(), nullable=False, metadata={"doc": "train/val/test by reduced-formula hash"}
        ),
        pa.field("extra_json", pa.string(), metadata={"doc": "source-specific fields as JSON"}),
        *LINEAGE,
    ]
)

EXPERIMENTAL_ENTHALPIES = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("license", pa.string(), nullable=False),
        pa.field("raw_formula", pa.string(), nullable=False),
        pa.field("reduced_formula", pa.string(), nullable=False),
        pa.field("elements", pa.list_(pa.string()), nullable=False),
        pa.field("dhf_exp_ev_per_atom", _f64, nullable=False),
        pa.field("uncertainty_ev_per_atom", _f64),
        pa.field("reference", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False, metadata={"doc": "the file's own split, else hashed"}),
        *LINEAGE,
    ]
)

SYNTH_LABELS = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("material_id", pa.string(), nullable=False),
        pa.field("raw_formula", pa.string(), nullable=False),
        pa.field("icsd_label", pa.int8(), nullable=False),
        pa.field("score", _f64),
        *LINEAGE,
    ]
)

QUARANTINE = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False, metadata={"doc": "0-based record index in the file"}),
        pa.field("source_id", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw_excerpt", pa.string()),
        *LINEAGE,
    ]
)

MODELS = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("training_data_hash", pa.string()),
        pa.field("metrics_json", pa.string()),
        pa.field("path", pa.string()),
        *LINEAGE,
    ]
)

CAMPAIGN_EVENTS = pa.schema(
    [
        pa.field("campaign_id", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False, metadata={"doc": "event number within the campaign"}),
        pa.field("composition", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("parameters_json", pa.string(), nullable=False),
        pa.field("model_ids", pa.list_(pa.string())),
        pa.field("n_candidates", pa.int64()),
        pa.field("elapsed_s", _f64),
        pa.field("summary_json", pa.string()),
        *LINEAGE,
    ]
)

CANDIDATES = pa.schema(
    [
        pa.field("campaign_id", pa.string(), nullable=False),
        pa.field(
            "stage",
            pa.string(),
            nullable=False,
            metadata={"doc": "inner (cell/coords) or outer (family result)"},
        ),
        pa.field("outer_step", pa.int32(), nullable=False),
        pa.field("inner_step", pa.int32(), nullable=False, metadata={"doc": "-1 on the family's outer row"}),
        pa.field("family_index", pa.int32(), nullable=False),
        pa.field("formula", pa.string(), nullable=False),
        pa.field("formula_units", pa.int16(), nullable=False),
        pa.field(
            "spacegroup",
            pa.int16(),
            metadata={"doc": "detected by spglib at 0.1 A, 5 degrees (null: nothing detected)"},
        ),
        pa.field("crystal_system", pa.string(), metadata={"doc": "of the detected space group"}),
        pa.field("wyckoff", pa.string(), metadata={"doc": "Wyckoff string of the detected space group"}),
        pa.field(
            "family_spacegroup",
            pa.int16(),
            metadata={"doc": "the search template's space group (null in lakes written before it existed)"},
        ),
        pa.field("family_wyckoff", pa.string(), metadata={"doc": "the search template's Wyckoff assignment"}),
        pa.field("lattice_angstrom", _lattice, nullable=False),
        pa.field("numbers", pa.list_(pa.int16()), nullable=False),
        pa.field("frac_coords", pa.list_(_vec3), nullable=False),
        pa.field(
            "x", pa.list_(_f64), nullable=False, metadata={"doc": "the optimizer's unit-cube variables"}
        ),
        pa.field("dhf_pred_ev_per_atom", _f64, metadata={"doc": "an enthalpy ensemble's mean"}),
        pa.field(
            "dhf_pred_std_ev_per_atom",
            _f64,
            metadata={
                "doc": "spread of dhf_pred: population std over the enthalpy ensemble's members; 0 for a "
                "single model; null when not scored (and in parts written before the column existed)"
            },
        ),
        pa.field("p_syn", _f64),
        pa.field("p_syn_std", _f64),
        pa.field("fitness", _f64),
        pa.field("valid", pa.bool_(), nullable=False),
        pa.field(
            "reject_reason",
            pa.string(),
            metadata={
                "doc": "why the candidate is invalid; null for a valid one (parts written before stored '', "
                "which the views read as null)"
            },
        ),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("seconds", _f64, nullable=False, metadata={"doc": "campaign wall time when scored"}),
        pa.field("model_ids", pa.list_(pa.string())),
        # refinement with a universal potential (csp.potentials.refine); null on search rows
        pa.field("source_outer_step", pa.int32(), metadata={"doc": "outer step of the refined source row"}),
        pa.field("potential", pa.string(), metadata={"doc": "potential name and model version"}),
        pa.field("energy_potential_ev_per_atom", _f64),
        pa.field("dhf_potential_ev_per_atom", _f64),
        pa.field("dhf_potential_initial_ev_per_atom", _f64, metadata={"doc": "at the source geometry"}),
        pa.field(
            "exploitation_gap_ev_per_atom",
            _f64,
            metadata={"doc": "potential dHf at the found geometry minus the model's dHf"},
        ),
        pa.field("relax_steps", pa.int32()),
        pa.field("converged", pa.bool_()),
        pa.field("fmax_ev_per_angstrom", _f64),
        pa.field("min_distance_angstrom", _f64),
        *LINEAGE,
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "structures": STRUCTURES,
    "experimental_enthalpies": EXPERIMENTAL_ENTHALPIES,
    "synth_labels": SYNTH_LABELS,
    "quarantine": QUARANTINE,
    "models": MODELS,
    "campaign_events": CAMPAIGN_EVENTS,
    "candidates": CANDIDATES,
}

KEYS: dict[str, tuple[str, ...]] = {
    "structures": ("source", "source_id"),
    "experimental_enthalpies": ("source", "source_id"),
    "synth_labels": ("source", "material_id"),
    "quarantine": ("source", "file", "row"),
    "models": ("name", "sha256"),
    "campaign_events": ("campaign_id", "seq"),
    "candidates": ("campaign_id", "outer_step", "inner_step"),
}

#: text columns whose empty string means "none": written as null and read as null from older parts that
#: stored '' (so ``reject_reason IS NOT NULL``, OPTIMADE ``_csp_reject_reason IS KNOWN``, finds rejects only)
EMPTY_IS_NULL: dict[str, tuple[str, ...]] = {"candidates": ("reject_reason",)}
