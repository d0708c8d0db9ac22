"""A small, hand-made search history in a lake: two MgO campaigns and two ingested structures.

Campaign ``hist-a`` (bo/pso): outer step 0 is rock salt (Fm-3m, 8 sites), outer step 1 is CsCl-type
(Pm-3m, 2 sites); each has three inner rows, one of them invalid. Campaign ``hist-b`` (rs/rs) has one
outer step (zinc blende, F-43m). Numbers are chosen, not predicted; they exercise every code path.
"""

from __future__ import annotations

from pathlib import Path

from pymatgen.core import Lattice, Structure

from storage.candidates import LakeSink, record_event
from storage.lake import Lake
from tests.space_groups import from_spacegroup

MODEL_IDS = ["alignn-exp:0123456789ab", "alignn-pu:ba9876543210"]


def rocksalt(a: float = 4.21) -> Structure:
    return from_spacegroup("Fm-3m", Lattice.cubic(a), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cscl(a: float = 2.66) -> Structure:
    return from_spacegroup("Pm-3m", Lattice.cubic(a), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def zincblende(a: float = 4.6) -> Structure:
    return from_spacegroup("F-43m", Lattice.cubic(a), ["Mg", "O"], [[0, 0, 0], [0.25, 0.25, 0.25]])


def _row(cid, structure, *, outer, inner, sg, dhf, p_syn=None, fitness=None, valid=True, seconds=1.0, seed=0):
    return {
        "campaign_id": cid,
        "stage": "outer" if inner < 0 else "inner",
        "outer_step": outer,
        "inner_step": inner,
        "family_index": outer,
        "formula": "MgO",
        "formula_units": len(structure) // 2,
        "spacegroup": sg,
        "crystal_system": "cubic",
        "wyckoff": f"family-{sg}",
        "lattice": structure.lattice.matrix.reshape(-1).tolist(),
        "numbers": [site.specie.Z for site in structure],
        "frac_coords": structure.frac_coords.reshape(-1).tolist(),
        "x": [0.5, 0.5],
        "dhf_pred_ev_per_atom": dhf,
        "p_syn": p_syn,
        "p_syn_std": None if p_syn is None else 0.05,
        "fitness": fitness,
        "valid": valid,
        "reject_reason": "" if valid else "atoms too close",
        "seed": seed,
        "seconds": seconds,
    }


def _campaign(lake: Lake, cid: str, rows: list[dict], optimizers: tuple[str, str]) -> None:
    params = {
        "composition": "MgO",
        "outer_optimizer": optimizers[0],
        "inner_optimizer": optimizers[1],
        "seed": 0,
        "crystal_system": "cubic",
    }
    record_event(lake, cid, composition="MgO", status="running", parameters=params, run_id=f"run-{cid}")
    LakeSink(lake, run_id=f"run-{cid}", model_ids=MODEL_IDS).append(rows)
    record_event(
        lake,
        cid,
        composition="MgO",
        status="completed",
        parameters=params,
        run_id=f"run-{cid}",
        model_ids=MODEL_IDS,
        n_candidates=sum(r["stage"] == "inner" for r in rows),
        elapsed_s=5.0,
        summary={"top": [], "invalid_share": 0.0},
    )


def make_history_lake(root: Path) -> Lake:
    """Write the history described in the module docstring into a lake at ``root``."""
    lake = Lake(root).init()
    rs, cs, zb = rocksalt(), cscl(), zincblende()
    a = [
        _row("hist-a", rs, outer=0, inner=0, sg=225, dhf=-2.90, seconds=1.0),
        _row("hist-a", rs, outer=0, inner=1, sg=225, dhf=-3.05, seconds=1.5),
        _row("hist-a", rs, outer=0, inner=2, sg=225, dhf=None, valid=False, seconds=1.6),
        _row("hist-a", rs, outer=0, inner=-1, sg=225, dhf=-3.05, p_syn=0.92, fitness=0.07, seconds=1.7),
        _row("hist-a", cs, outer=1, inner=0, sg=221, dhf=-2.50, seconds=2.0),
        _row("hist-a", cs, outer=1, inner=1, sg=221, dhf=-2.70, seconds=2.5),
        _row("hist-a", cs, outer=1, inner=2, sg=221, dhf=-2.60, seconds=2.6),
        _row("hist-a", cs, outer=1, inner=-1, sg=221, dhf=-2.70, p_syn=0.10, fitness=0.60, seconds=2.7),
    ]
    b = [
        _row("hist-b", zb, outer=0, inner=0, sg=216, dhf=-2.80, seconds=0.5, seed=1),
        _row("hist-b", zb, outer=0, inner=1, sg=216, dhf=-2.85, seconds=0.9, seed=1),
        _row(
            "hist-b", zb, outer=0, inner=-1, sg=216, dhf=-2.85, p_syn=0.85, fitness=0.20, seconds=1.0, seed=1
        ),
    ]
    _campaign(lake, "hist-a", a, ("bo", "pso"))
    _campaign(lake, "hist-b", b, ("rs", "rs"))
    structures = []
    for source_id, s, dhf in (("mgo-rs", rs, -3.1), ("bazro3", None, -3.5)):
        if s is None:
            s = from_spacegroup(
                "Pm-3m", Lattice.cubic(4.19), ["Ba", "Zr", "O"], [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0]]
            )
        structures.append(
            {
                "source": "fixture",
                "source_id": source_id,
                "license": "CC-BY-4.0",
                "raw_formula": s.composition.formula.replace(" ", ""),
                "reduced_formula": s.composition.reduced_formula,
                "elements": sorted({el.symbol for el in s.composition.elements}),
                "nelements": len(s.composition.elements),
                "nsites": len(s),
                "spacegroup": s.get_space_group_info()[1],
                "crystal_system": "cubic",
                "lattice_angstrom": s.lattice.matrix.reshape(-1).tolist(),
                "species": [site.specie.symbol for site in s],
                "frac_coords": s.frac_coords.tolist(),
                "volume_angstrom3": s.volume,
                "dhf_dft_ev_per_atom": dhf,
                "split": "train",
            }
        )
    lake.append("structures", structures, run_id="ingest-fixture")
    return lake
