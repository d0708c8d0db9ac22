"""Symmetry-kept refinement of a campaign's best structures with a universal interatomic potential.

After a search, the ``top_n`` best distinct structures (outer rows ranked by fitness and deduplicated by
:func:`csp.structures.matching.rank`, so they spread over several families) are relaxed with a universal potential
whose weights ship in its wheel (CHGNet by default, :mod:`csp.potentials.relaxer`) **keeping their space group**:
forces and stress symmetrised with each structure's operations (``FIX_SYMPREC`` = 0.01 A), FIRE over the
positions and Frechet cell variables, the whole batch in one tensor program (:mod:`csp.potentials.batched`,
one batched potential call per step; ``RefineSettings.engine="ase"`` runs ASE ``FixSymmetry``,
``FrechetCellFilter`` and ``FIRE`` per structure instead, :func:`csp.potentials.relaxer.relax`). A relaxation stops early
as ``collapsed`` when two atoms come closer than ``COLLAPSE_RATIO`` (0.6) times their covalent-radius sum,
and as ``exploded`` when the volume passes ``EXPLODE_RATIO`` (2) times the start. Each relaxed structure is
re-symmetrised at :data:`csp.structures.matching.SYMPREC` (its symmetry may rise: a monoclinic cell can relax into
rock salt), rescored with the enthalpy model and P_syn, and becomes one candidate row:

| column (besides the search's) | type | meaning |
| --- | --- | --- |
| stage | str | ``"refined"`` (``"single_point"`` for an exploitation probe) |
| inner_step | int | :data:`REFINED_INNER_STEP` (-2); probes :data:`PROBE_INNER_STEP` |
| spacegroup, crystal_system, | int | detected on the relaxed, re-symmetrised structure (the source's |
| wyckoff |  | family stays in ``family_spacegroup`` / ``family_wyckoff``) |
| outer_step, source_outer_step | int | the outer step of the row it came from |
| potential | str | e.g. ``chgnet-0.3.0`` |
| energy_potential_ev_per_atom | float | the potential's energy of this structure, eV/atom |
| dhf_potential_ev_per_atom | float | the potential's formation enthalpy of this structure, eV/atom |
| dhf_potential_initial_ev_per_atom | float | the same at the source geometry (single point), eV/atom |
| exploitation_gap_ev_per_atom | float | dhf_potential_initial minus the source row's model dHf |
| relax_steps | int | FIRE steps taken |
| converged | bool | the largest generalised force fell below fmax |
| fmax_ev_per_angstrom | float | largest generalised force at the end, eV/A |
| min_distance_angstrom | float | shortest interatomic distance at the end, Angstrom |

The campaign's final top k is then :func:`rank_refined` of the refined rows by the chosen rule
(:data:`DEFAULT_RANKING`; see ``benchmarks/bench_refine_ranking.py`` for how it was chosen).

Formation enthalpies of the potential use elemental references relaxed with the same potential (the
lowest energy per atom over the one-element library prototypes, :func:`csp.potentials.augment.element_rows`); the
shipped ``potential_references.json`` holds them for CHGNet and the data mirror's elements, anything
else is computed once and cached in memory.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from csp.errors import ModelError
from csp.search.fitness import FV_PENALTY, fitness_value
from csp.structures.crystal import Crystal
from csp.structures.validity import GeometryError

#: Stage and inner-step key of a refined row (its outer step is its source's).
REFINED_STAGE, REFINED_INNER_STEP = "refined", -2
#: Stage and inner-step key of an exploitation probe (single point of a top structure, no refinement).
PROBE_STAGE, PROBE_INNER_STEP = "single_point", -3
#: FixSymmetry tolerance (Angstrom) during relaxation.
FIX_SYMPREC = 0.01
COLLAPSE_RATIO = 0.6
EXPLODE_RATIO = 2.0
#: How the refined structures are ranked (see rank_refined).
RankingRule = Literal["energy", "fitness", "window"]
DEFAULT_RANKING: RankingRule = "energy"
#: Width of the energy window of the "window" rule, eV/atom.
DEFAULT_WINDOW_EV = 0.05
REFERENCES_FILE = Path(__file__).with_name("potential_references.json")

#: The new nullable candidate columns, with their value on a plain search row.
COLUMNS: dict[str, Any] = {
    "source_outer_step": None,
    "potential": None,
    "energy_potential_ev_per_atom": None,
    "dhf_potential_ev_per_atom": None,
    "dhf_potential_initial_ev_per_atom": None,
    "exploitation_gap_ev_per_atom": None,
    "relax_steps": None,
    "converged": None,
    "fmax_ev_per_angstrom": None,
    "min_distance_angstrom": None,
}


def get_potential(name: str = "chgnet", device: str = "cpu") -> Any:
    """The named potential (:func:`csp.potentials.relaxer.load_potential`), loaded once per process; in a
    process connected to a relaxation server (:func:`csp.potentials.relax_server.connect`), a
    :class:`~csp.potentials.relax_server.RemotePotential` instead (``device`` is then the server's business:
    nothing here touches it)."""
    from csp.potentials.relax_server import remote_potential

    return remote_potential(name) or _local_potential(name, device)


@lru_cache(maxsize=4)
def _local_potential(name: str, device: str) -> Any:
    from csp.potentials.relaxer import load_potential

    return load_potential(name, device)


# ------------------------------------------------------------------------------ elemental references
_REFERENCE_CACHE: dict[str, dict[int, float]] = {}
#: The one-element library prototypes relaxed for a reference: the ground-state types of the elements
#: (fcc, bcc, hcp, double hcp, diamond, simple cubic, A7, beta-Sn, alpha-U, the Cmca molecular/Ga type,
#: alpha-O2, Se/Te chains, Sm, In, alpha-Hg, alpha-N2, hexagonal H2/N2).
REFERENCE_PROTOTYPES = (
    "A_cF4_225_a",
    "A_cI2_229_a",
    "A_hP2_194_c",
    "A_hP4_194_ac",
    "A_cF8_227_a",
    "A_cP1_221_a",
    "A_hR2_166_c",
    "A_tI4_141_a",
    "A_oC4_63_c",
    "A_oC8_64_f",
    "A_oC8_64_f-2",
    "A_oC8_64_f-3",
    "A_mC4_12_i",
    "A_hP3_152_a",
    "A_hR3_166_ac",
    "A_tI2_139_a",
    "A_hR1_166_a",
    "A_cP8_198_2a",
    "A_hP4_194_f",
)


def shipped_references(path: Path = REFERENCES_FILE) -> dict[str, dict[str, float]]:
    """The shipped elemental references: {potential name: {symbol: eV/atom}}."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text())["references"]


def save_references(potential_name: str, found: dict[str, float], path: Path = REFERENCES_FILE) -> None:
    """Merge ``found`` ({symbol: eV/atom}) into the references file (atomic rewrite)."""
    data = json.loads(path.read_text()) if path.is_file() else {"references": {}}
    known = data["references"].setdefault(potential_name, {})
    known.update(found)
    data["references"][potential_name] = dict(sorted(known.items()))
    data["command"] = "python -m csp.potentials.refine references --elements <symbols> (merges)"
    data["method"] = (
        "lowest energy per atom over csp.potentials.refine.REFERENCE_PROTOTYPES, relaxed keeping symmetry "
        "at 0.01 A (forces and stress symmetrised: ASE FixSymmetry or the batched relaxer), Frechet cell "
        "filter, FIRE, fmax 0.05 eV/A, at most 60 steps"
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def compute_references(
    potential: Any, symbols: Sequence[str], *, steps: int = 60, fmax: float = 0.05
) -> dict[str, float]:
    """Relax the :data:`REFERENCE_PROTOTYPES` of each symbol (keeping their symmetry, lock step) and
    return the lowest energy per atom of each element (eV/atom)."""
    from csp.potentials.augment import element_rows
    from csp.potentials.relaxer import RelaxJob, relax

    rows = [r for r in element_rows(symbols) if r.tag in REFERENCE_PROTOTYPES]
    done = relax(
        potential,
        [RelaxJob(r.crystal, steps, r.formula) for r in rows],
        fmax=fmax,
        pool=64,
        symprec=FIX_SYMPREC,
        collapse_ratio=COLLAPSE_RATIO,
        explode_ratio=EXPLODE_RATIO,
    )
    out: dict[str, float] = {}
    for item in done:
        if item.state in ("relaxed", "partially_relaxed") and np.isfinite(item.energy):
            sym = str(item.job.payload)
            out[sym] = min(out.get(sym, np.inf), float(item.energy))
    return out


def references(potential: Any, numbers: Sequence[int]) -> dict[int, float]:
    """Elemental reference energies (eV/atom by atomic number) of ``numbers`` for ``potential``: shipped,
    else computed once per process.

    Raises:
        ModelError: if an element has no stable elemental structure with this potential.
    """
    from csp.structures.elements import atomic_number, symbol

    cache = _REFERENCE_CACHE.setdefault(potential.name, {})
    if {int(z) for z in numbers} - set(cache):
        for sym, e in shipped_references().get(potential.name, {}).items():
            cache.setdefault(atomic_number(sym), float(e))
    missing = sorted({int(z) for z in numbers} - set(cache))
    if missing:
        found = compute_references(potential, [symbol(z) for z in missing])
        cache.update({atomic_number(s): e for s, e in found.items()})
    lost = [symbol(z) for z in {int(z) for z in numbers} if z not in cache]
    if lost:
        raise ModelError(f"The potential {potential.name} gave no elemental reference for {lost}.")
    return {int(z): cache[int(z)] for z in set(int(z) for z in numbers)}


def formation_enthalpy(energy: float, numbers: Sequence[int], refs: dict[int, float]) -> float:
    """Energy per atom minus the composition-weighted elemental references (eV/atom)."""
    return float(energy - np.mean([refs[int(z)] for z in numbers]))


# -------------------------------------------------------------------------------------- refinement
@dataclass
class RefineSettings:
    """How refinement runs (the campaign's refine_* parameters)."""

    top_n: int = 32
    fmax: float = 0.05
    steps: int = 150
    potential: str = "chgnet"
    device: str = "cpu"
    ranking: RankingRule = DEFAULT_RANKING
    window_ev: float = DEFAULT_WINDOW_EV
    fix_symprec: float = FIX_SYMPREC
    collapse_ratio: float = COLLAPSE_RATIO
    explode_ratio: float = EXPLODE_RATIO
    #: ``batched`` (one tensor program for the pool) or ``ase`` (one ASE optimiser per structure).
    engine: Literal["batched", "ase"] = "batched"
    #: torch intra-op threads while relaxing on the CPU (restored afterwards; None keeps torch's setting). One:
    #: a campaign's few small cells gain nothing from two, and two threads on shared cores took 2-15x the
    #: wall time (benchmarks/results/campaign_full.md); energies and steps came out the same (one relaxed lattice
    #: of the 12 moved by 5e-9 A: float reduction order).
    cpu_threads: int | None = 1


def select_sources(rows: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The ``n`` best distinct valid outer rows by fitness (deduplicated as :func:`csp.structures.matching.rank`)."""
    from csp.structures.matching import rank

    outer = [r for r in rows if r.get("stage") == "outer"]
    return [entry["row"] for entry in rank(outer, k=n)]


def resymmetrise(crystal: Crystal, symprec: float | None = None) -> tuple[Crystal, int]:
    """The symmetrised primitive standard cell and its space-group number, detected by spglib at
    ``symprec`` (default :data:`csp.structures.matching.SYMPREC`); the input and P1 when spglib finds nothing."""
    from csp.structures.symmetry import SYMPREC, analyze, quiet_spglib

    try:
        analyzer = analyze(crystal, symprec or SYMPREC)
        number = int(analyzer.get_space_group_number())
        with quiet_spglib():
            return Crystal.from_pymatgen(analyzer.get_primitive_standard_structure()), number
    except (TypeError, ValueError):  # spglib found no cell at this tolerance (SymmetryError is one)
        return crystal, 1


def _row_crystal(row: dict[str, Any]) -> Crystal:
    return Crystal(
        np.reshape(row["lattice"], (3, 3)),
        np.asarray(row["numbers"]),
        np.reshape(row["frac_coords"], (-1, 3)),
    )


def _new_row(source: dict[str, Any], stage: str, inner_step: int) -> dict[str, Any]:
    row = dict(source)
    for key in ("rank",):
        row.pop(key, None)
    row.update(COLUMNS)
    row.update(stage=stage, inner_step=inner_step, source_outer_step=source["outer_step"], x=[])
    return row


def _finish_row(
    row: dict[str, Any],
    item: Any,
    source: dict[str, Any],
    scorer: Any,
    alpha: float,
    refs: dict[int, float] | None,
    potential_name: str,
    fmax: float,
    rescore: bool,
    spread_penalty: float = 0.0,
) -> dict[str, Any]:
    """Fill a refined/probe row from a :class:`csp.potentials.relaxer.Relaxed` result (a rescored row's FV
    uses the enthalpy mean + ``spread_penalty`` * std, as the search's does)."""
    from csp.potentials.relaxer import shortest_distance
    from csp.search.two_stage import detected_columns

    numbers = source["numbers"]
    e0 = item.energy_initial
    dhf0 = formation_enthalpy(e0, numbers, refs) if refs is not None and np.isfinite(e0) else None
    gap = (
        dhf0 - float(source["dhf_pred_ev_per_atom"])
        if dhf0 is not None and source.get("dhf_pred_ev_per_atom") is not None
        else None
    )
    row.update(
        potential=potential_name,
        dhf_potential_initial_ev_per_atom=dhf0,
        exploitation_gap_ev_per_atom=gap,
        relax_steps=int(item.steps),
        converged=item.state == "relaxed",
        fmax_ev_per_angstrom=float(item.fmax) if np.isfinite(item.fmax) else None,
    )
    if not rescore:
        row.update(
            energy_potential_ev_per_atom=float(e0) if np.isfinite(e0) else None,
            dhf_potential_ev_per_atom=dhf0,
            min_distance_angstrom=shortest_distance(item.crystal)[0],
        )
        return row
    crystal = item.crystal
    dmin, _ratio = shortest_distance(crystal)
    reason = ""
    if item.state == "failed":
        reason = "failed: the potential returned a non-finite energy or force"
    elif item.state == "collapsed":
        reason = (
            f"collapsed: shortest distance {dmin:.2f} A below {COLLAPSE_RATIO:g} x the covalent-radius sum"
        )
    elif item.state == "exploded":
        reason = f"exploded: volume above {EXPLODE_RATIO:g} x the start"
    if not reason:
        crystal, _number = resymmetrise(crystal)
    row.update(
        lattice=[float(v) for v in crystal.lattice.reshape(-1)],
        numbers=[int(z) for z in crystal.numbers],
        frac_coords=[float(v) for v in crystal.frac_coords.reshape(-1)],
        # the group (and its Wyckoff string) of the stored structure, at the one tolerance
        **detected_columns(crystal.lattice, crystal.numbers, crystal.frac_coords),
        formula_units=round(source["formula_units"] * len(crystal.numbers) / max(1, len(source["numbers"]))),
        energy_potential_ev_per_atom=float(item.energy) if np.isfinite(item.energy) else None,
        dhf_potential_ev_per_atom=(
            formation_enthalpy(item.energy, numbers, refs)
            if refs is not None and np.isfinite(item.energy)
            else None
        ),
        min_distance_angstrom=dmin,
        dhf_pred_ev_per_atom=None,
        dhf_pred_std_ev_per_atom=None,
        p_syn=None,
        p_syn_std=None,
        fitness=FV_PENALTY,
        valid=False,
        reject_reason=reason,
    )
    if reason:
        return row
    args = (crystal.numbers, crystal.lattice[None], crystal.frac_coords[None])
    try:
        if hasattr(scorer, "enthalpy_with_spread"):  # an ensemble's mean and spread (0 for one model)
            mean, spread = scorer.enthalpy_with_spread(*args)
            std: np.ndarray | None = np.asarray(spread, dtype=np.float64).reshape(-1)
        else:
            mean, std = scorer.enthalpy(*args), None
        dhf = np.asarray(mean, dtype=np.float64).reshape(-1)
        p, s = scorer.synthesizability([crystal])
    except GeometryError as exc:  # e.g. two H relaxed closer than 0.5 A: a row with its reason, not a crash
        row.update(reject_reason=f"the models cannot score it: {exc.detail}")
        return row
    fv, ok = fitness_value(
        np.asarray(p)[:1], dhf[:1], alpha, dhf_std_ev_per_atom=std, spread_penalty=spread_penalty
    )
    row.update(
        dhf_pred_ev_per_atom=float(dhf[0]),
        dhf_pred_std_ev_per_atom=float(std[0]) if std is not None and np.isfinite(std[0]) else None,
        p_syn=float(np.asarray(p)[0]),
        p_syn_std=float(np.asarray(s)[0]),
        fitness=float(fv[0]),
        valid=bool(ok[0]),
        reject_reason="" if ok[0] else "the scorer returned a non-finite score",
    )
    return row


def refine(
    rows: Sequence[dict[str, Any]],
    scorer: Any,
    sink: Any,
    *,
    campaign_id: str,
    alpha: float,
    settings: RefineSettings | None = None,
    probe_only: int = 0,
    potential: Any = None,
    deadline: float | None = None,
    spread_penalty: float = 0.0,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Relax the best distinct structures of a search under their symmetry and store one row each.

    Args:
        rows: the campaign's search rows (outer rows are used; stored refined rows are ignored).
        scorer: the campaign's models (:class:`csp.search.two_stage.Scorer`), to rescore relaxed structures.
        sink: where rows go (:class:`csp.search.two_stage.Sink`); its history is read so that a resumed campaign
            never relaxes a source twice.
        campaign_id: the campaign's key.
        alpha: the campaign's fitness weight (refined rows get their FV).
        settings: top_n, fmax (eV/A), steps, potential name, device, ranking rule.
        probe_only: when > 0, no relaxation: single points of the top ``probe_only`` structures (rows
            of stage ``single_point``) for the exploitation gap.
        potential: a loaded potential (default :func:`get_potential` of the settings).
        deadline: ``time.monotonic()`` after which relaxations stop (partially relaxed).
        spread_penalty: the campaign's kappa: a refined row's FV uses the enthalpy mean + kappa * std
            (:func:`csp.search.fitness.fitness_value`).
        progress: called with ``{"phase": "refine" (or "probe"), "done", "total", "potential"}`` before the
            first relaxation (``done`` 0) and after each (``total``: the structures this call relaxes).

    Returns:
        The refined (or probe) rows of the campaign, stored ones included, in source order.

    Raises:
        ModelError: if the potential has no elemental reference for an element.
    """
    from csp.potentials.relaxer import RelaxJob, relax

    cfg = settings or RefineSettings()
    stage, inner = (PROBE_STAGE, PROBE_INNER_STEP) if probe_only else (REFINED_STAGE, REFINED_INNER_STEP)
    sources = select_sources(rows, probe_only or cfg.top_n)
    if not sources:
        return []
    stored = {
        r["outer_step"]: r
        for r in sink.history(campaign_id)
        if r.get("stage") == stage and r.get("inner_step") == inner
    }
    todo = [s for s in sources if s["outer_step"] not in stored]
    out = {s: stored[s] for s in stored}
    if todo:
        potential = potential or get_potential(cfg.potential, cfg.device)
        try:
            refs: dict[int, float] | None = references(potential, todo[0]["numbers"])
        except (
            ModelError
        ):  # e.g. a noble gas with no stable elemental cell: no dHf, no gap; energies still rank
            refs = None
        clock0 = time.perf_counter() - max(float(r.get("seconds") or 0.0) for r in rows)

        def finished(item: Any) -> None:
            source = item.job.payload
            row = _finish_row(
                _new_row(source, stage, inner),
                item,
                source,
                scorer,
                alpha,
                refs,
                potential.name,
                cfg.fmax,
                rescore=not probe_only,
                spread_penalty=spread_penalty,
            )
            row["seconds"] = time.perf_counter() - clock0
            sink.append([row])
            out[source["outer_step"]] = row
            tell(len(out) - len(stored))

        def tell(done: int) -> None:
            if progress is not None:
                phase = "probe" if probe_only else "refine"
                progress({"phase": phase, "done": done, "total": len(todo), "potential": potential.name})

        tell(0)

        with _torch_threads(cfg.cpu_threads if str(cfg.device) == "cpu" else None):
            relax(
                potential,
                [RelaxJob(_row_crystal(s), 0 if probe_only else cfg.steps, s) for s in todo],
                fmax=cfg.fmax,
                pool=max(1, len(todo)),
                symprec=cfg.fix_symprec,
                collapse_ratio=cfg.collapse_ratio,
                explode_ratio=cfg.explode_ratio,
                deadline=deadline,
                on_result=finished,
                engine=cfg.engine,
            )
    return [out[s["outer_step"]] for s in sources if s["outer_step"] in out]


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch on ``threads`` intra-op threads inside the block (None: unchanged)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------ ranking
def ranking_key(
    rows: Sequence[dict[str, Any]], rule: RankingRule = DEFAULT_RANKING, window_ev: float = DEFAULT_WINDOW_EV
) -> Callable[[dict[str, Any]], Any]:
    """The ordering key (lower first) of refined rows under ``rule``:

    * ``energy``: the potential's energy per atom (fixed composition: the same order as its formation
      enthalpy);
    * ``fitness``: the models' FV on the relaxed structure;
    * ``window``: FV among the structures within ``window_ev`` eV/atom of the potential's lowest energy,
      then the rest by energy.
    """
    if rule == "energy":
        return lambda r: r.get("energy_potential_ev_per_atom")
    if rule == "fitness":
        return lambda r: r.get("fitness")
    if rule == "window":
        energies = [r["energy_potential_ev_per_atom"] for r in rows if _rankable(r)]
        lowest = min(energies, default=0.0)

        def key(r: dict[str, Any]) -> Any:
            e = r.get("energy_potential_ev_per_atom")
            if e is None:
                return None
            inside = e <= lowest + window_ev
            return (0, r["fitness"]) if inside else (1, e)

        return key
    raise ValueError(f"Unknown ranking rule {rule!r}: choose energy, fitness or window.")


def tie_broken(key: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """``key`` with ties broken by (outer step, inner step), so the same rows always rank alike, in memory
    or read back from the lake; None stays None (the row is skipped)."""

    def ordered(row: dict[str, Any]) -> Any:
        value = key(row)
        return None if value is None else (value, row.get("outer_step", 0), row.get("inner_step", 0))

    return ordered


def _rankable(row: dict[str, Any]) -> bool:
    return bool(row.get("valid")) and row.get("energy_potential_ev_per_atom") is not None


def rank_refined(
    rows: Sequence[dict[str, Any]],
    k: int = 5,
    rule: RankingRule = DEFAULT_RANKING,
    window_ev: float = DEFAULT_WINDOW_EV,
) -> list[dict[str, Any]]:
    """Top ``k`` distinct refined structures under ``rule`` (see :func:`ranking_key`), as
    :func:`csp.structures.matching.rank` entries plus ``energy_potential_ev_per_atom``,
    ``dhf_potential_ev_per_atom`` and ``exploitation_gap_ev_per_atom``."""
    from csp.structures.matching import rank

    usable = [r for r in rows if r.get("stage") == REFINED_STAGE and _rankable(r)]
    top = rank(usable, k=k, key=tie_broken(ranking_key(usable, rule, window_ev)))
    for entry in top:
        for col in (
            "energy_potential_ev_per_atom",
            "dhf_potential_ev_per_atom",
            "exploitation_gap_ev_per_atom",
        ):
            entry[col] = entry["row"].get(col)
    return top


def attach_gaps(top: list[dict[str, Any]], probes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``exploitation_gap_ev_per_atom`` (and the potential's dHf at the found geometry) to ranked
    search entries from probe/refined rows of the same source outer step."""
    by_step = {r["source_outer_step"]: r for r in probes}
    for entry in top:
        probe = by_step.get(entry.get("outer_step"))
        entry["exploitation_gap_ev_per_atom"] = probe and probe.get("exploitation_gap_ev_per_atom")
        entry["dhf_potential_initial_ev_per_atom"] = probe and probe.get("dhf_potential_initial_ev_per_atom")
    return top


# --------------------------------------------------------------------------------- campaign wiring
def refine_or_probe(
    rows: list[dict[str, Any]],
    config: Any,
    scorer: Any,
    sink: Any,
    campaign_id: str,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """The potential's part of a campaign after the search: refinement on, the refined rows of
    :func:`refine`; off, single points of the search's top ``config.gap_probes`` (the exploitation gap);
    none when ``gap_probes`` is 0 (no potential is loaded). The rows are appended to ``sink``; ``progress``
    gets :func:`refine`'s progress dicts (``phase`` ``refine`` or ``probe``)."""
    if not config.refine and config.gap_probes <= 0:
        return []
    return refine(
        rows,
        scorer,
        sink,
        campaign_id=campaign_id,
        alpha=config.alpha,
        settings=settings_of(config),
        probe_only=0 if config.refine else config.gap_probes,
        spread_penalty=config.spread_penalty,
        progress=progress,
    )


def finish_ranking(
    rows: list[dict[str, Any]], config: Any, scorer: Any, sink: Any, campaign_id: str, k: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The search's own top k (with each entry's exploitation gap), the final top k, and the refined
    (or probe) rows, as :func:`csp.structures.matching.rank` entries (:func:`refine_or_probe`, then the
    ranking of :func:`csp.potentials.result.campaign_result`, which campaigns use)."""
    from csp.structures.matching import rank

    top_search = rank(rows, k=k, key=tie_broken(lambda r: r.get("fitness")))
    refined = refine_or_probe(rows, config, scorer, sink, campaign_id)
    top = (rank_refined(refined, k=k, rule=config.refine_ranking) if config.refine else []) or top_search
    attach_gaps(top_search, refined)
    return top_search, top, refined


def potential_runs(config: Any) -> bool:
    """Whether a search of ``config`` (as it will run: ``rs-relax`` turns refinement on) loads its universal
    potential: to refine, or for the gap probes' single points."""
    return bool(config.refine or config.gap_probes > 0)


def check_refinement(config: Any) -> None:
    """Refuse, before a search starts, every refinement option that would only fail after it: when the
    configuration (a :class:`csp.search.two_stage.SearchConfig`, as it will run: ``rs-relax`` turns
    refinement on) refines or probes, its potential must be installed
    (:func:`csp.potentials.relaxer.check_potential_installed`) and its torch device present.

    Raises:
        InputError: the potential is unknown or not installed, or the device is not ``cpu`` or an existing
            ``cuda[:N]``.
    """
    from csp.potentials.relaxer import check_potential_installed
    from csp.search.parameters import check_torch_device

    if not potential_runs(config):
        return
    check_potential_installed(config.refine_potential)
    if config.refine_device != "cpu":
        check_torch_device(config.refine_device)


def refinement_summary(refined: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of the refined rows: relaxed, converged, rejected by reason, space groups that rose."""
    from collections import Counter

    reasons = Counter(r["reject_reason"].split(":")[0] for r in refined if r["reject_reason"])
    return {
        "relaxed": len(refined),
        "converged": sum(bool(r.get("converged")) for r in refined),
        "rejected": dict(reasons),
        "potential": refined[0]["potential"] if refined else None,
    }


def settings_of(config: Any) -> RefineSettings:
    """The refinement settings of a :class:`csp.search.two_stage.SearchConfig`."""
    return RefineSettings(
        top_n=config.refine_top_n,
        fmax=config.refine_fmax,
        steps=config.refine_steps,
        potential=config.refine_potential,
        device=config.refine_device,
        ranking=config.refine_ranking,
    )


#: Name of the random-structure baseline strategy (outer optimizer choice of a campaign).
RS_RELAX = "rs-relax"


def rs_relax_config(config: Any) -> Any:
    """The ``rs-relax`` baseline as a search configuration: the AIRSS/CrySPY way.

    Each outer step draws a random family (``rs`` outer optimizer) and ONE random valid structure of it
    (the search's own symmetric generator, ``rs`` inner optimizer, one inner step); no model guides the
    search. Every distinct structure drawn (``outer_steps`` of them at most) is then relaxed with the
    potential under its symmetry and ranked by the potential's energy. The rows are the same lake rows
    as any campaign (the model's dHf and FV are still recorded for comparison).
    """
    return config.model_copy(
        update={
            "outer_optimizer": "rs",
            "inner_optimizer": "rs",
            "inner_steps": 1,
            "batch_size": 1,
            "refine": True,
            "refine_top_n": config.outer_steps,
            "refine_ranking": "energy",
        }
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m csp.potentials.refine references --elements Mg O ... [--out FILE]``: compute elemental
    references with the potential and merge them into the JSON file (default the shipped one)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m csp.potentials.refine")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("references", help="elemental reference energies of a potential")
    p.add_argument("--elements", nargs="+", required=True)
    p.add_argument("--potential", choices=("chgnet", "sevennet"), default="chgnet")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=REFERENCES_FILE)
    args = parser.parse_args(argv)
    potential = get_potential(args.potential, args.device)
    known = shipped_references(args.out).get(potential.name, {})
    for sym in [e for e in args.elements if e not in known]:  # one at a time: what is done is kept
        found = compute_references(potential, [sym])
        save_references(potential.name, found, args.out)
        sys.stdout.write(f"{sym} {found.get(sym)}\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
