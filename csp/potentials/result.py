"""One campaign result: the final ranked, deduplicated top k that every face shows.

A campaign's answer is made here, once, from its rows (the search's ``outer`` rows and, when refinement ran,
its ``refined`` rows), and nowhere else: ``csp campaign run|show|export``, ``csp candidates export``, the
Python front door (:func:`csp.predict`), the notebook and the Prefect artifacts all call
:func:`campaign_result` on the same rows and show the :class:`CampaignResult` it returns.

Rank rule:

* refinement ran and at least one relaxed structure is usable: the refined structures ranked by
  :func:`csp.potentials.refine.ranking_key` under the campaign's ``refine_ranking`` (default ``energy``: the
  potential's energy per atom of the relaxed structure, lowest first);
* otherwise (``refine=False``, or every relaxation collapsed, exploded or failed): the search's outer rows
  ranked by the fitness FV (lowest first), as in the paper.

Both are deduplicated by :func:`csp.structures.matching.rank` (space group first, then StructureMatcher).
Ties are broken by (outer step, inner step), so the same rows always give the same answer, in memory or
read back from the lake.

Physical check (``check``, issue 22): the search keeps the shared distance rule alone (docs/bad-input.md), so
the models can rank first a crystal that the lake's ingest refuses as impossible (an Al-H bond of 0.85 A). When
a face passes the lake's check (``flows.results.result_of`` passes
``storage.validation.structure_problem``), the final top k holds every structure that passes it before any
that fails, each in its rank-rule order, and every entry carries ``check``: why it fails (None: it passes). A
structure the lake would refuse is never rank 1 while one that passes exists, and never shown unmarked.
``search_top`` keeps the search's own order (the paper's answer), its entries marked alike.

Each :class:`ResultEntry` carries ``delta_e_mev_per_atom``: the energy of the rank rule above rank 1, in
meV/atom (the potential's energy when refined; the model's predicted dHf when ranked by FV, where it is
not the ranking quantity and can be negative).
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from csp.errors import InputError
from csp.potentials.refine import DEFAULT_RANKING, REFINED_STAGE, RankingRule, ranking_key, tie_broken

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ["CampaignResult", "ResultEntry", "StructureCheck", "campaign_result", "predict", "rank_rule_text"]

#: A physical check: why a structure is no possible crystal (one line), or None when it passes.
StructureCheck = Callable[["Structure"], "str | None"]

#: The stages a result is made from (inner rows are never needed).
RESULT_STAGES = ("outer", REFINED_STAGE, "single_point")


def rank_rule_text(rule: str, refined: bool, potential: str | None = None) -> str:
    """One sentence a person reads above the table: what the top k is ranked by."""
    if not refined:
        return "fitness FV of the search (lower is better; no refined structure to rank)"
    pot = potential or "the universal potential"
    if rule == "energy":
        return f"energy of {pot} per atom after symmetry-kept relaxation (lowest first)"
    if rule == "fitness":
        return f"fitness FV of the models on the structures relaxed with {pot} (lowest first)"
    return f"fitness FV among the structures within the energy window of {pot}'s lowest, then energy"


@dataclass(frozen=True)
class ResultEntry:
    """One distinct structure of a campaign result.

    Energies in eV/atom unless the name says meV/atom; lengths in Angstrom, angles in degrees.
    ``spacegroup`` and ``wyckoff`` are detected by spglib at the one tolerance on ``structure`` (the
    symmetrised conventional cell shown); ``family_spacegroup`` / ``family_wyckoff`` are the search template
    the structure came from. ``key`` is the lake key ``(stage, outer_step, inner_step)`` of the best member.
    ``check`` is why ``structure`` fails the physical check the result was made with (the lake's ingest
    check), None when it passes or no check was given (:attr:`CampaignResult.checked`).
    """

    rank: int
    stage: str
    formula: str
    spacegroup: int
    spacegroup_symbol: str
    wyckoff: str | None
    family_spacegroup: int | None
    family_wyckoff: str | None
    a: float
    b: float
    c: float
    alpha: float
    beta: float
    gamma: float
    delta_e_mev_per_atom: float | None
    energy_potential_ev_per_atom: float | None
    dhf_potential_ev_per_atom: float | None
    converged: bool | None
    relax_steps: int | None
    dhf_pred_ev_per_atom: float | None
    p_syn: float | None
    p_syn_std: float | None
    fitness: float | None
    exploitation_gap_ev_per_atom: float | None
    duplicates: int
    outer_step: int
    key: tuple[str, int, int]
    check: str | None
    structure: Structure = field(repr=False, compare=False)

    def public(self) -> dict[str, Any]:
        """JSON-ready values (no pymatgen object)."""
        out = asdict(self)
        out.pop("structure")
        out["key"] = list(self.key)
        return out

    @property
    def source_family(self) -> str:
        """The search template, e.g. ``"F-43m (216) Ga:4a As:4c"`` (empty when unknown)."""
        if self.family_spacegroup is None:
            return ""
        from csp.structures.symmetry import spacegroup_symbol

        return f"{spacegroup_symbol(self.family_spacegroup)} ({self.family_spacegroup}) {self.family_wyckoff or ''}".strip()


@dataclass(frozen=True)
class CampaignResult:
    """The answer of one campaign: the final top k and, beside it, the search's own top k.

    Attributes:
        formula: reduced formula searched.
        rule: ``energy``, ``fitness`` or ``window`` (refined) or ``search-fitness`` (the search's FV).
        rank_rule: the rule in words (:func:`rank_rule_text`).
        refined: True when ``top`` holds relaxed structures.
        top: the final ranked, deduplicated top k.
        search_top: the search's top k by FV (the paper's answer), for comparison; equal to ``top`` when
            nothing was refined.
        refinement: counts of the refined rows in words' keys: ``relaxed``, ``converged``, ``unconverged``
            (stopped at the step limit, still ranked), ``collapsed``, ``exploded``, ``failed``, and
            ``potential``; empty when refinement did not run.
        energy_kind: what ``delta_e_mev_per_atom`` is a difference of.
        checked: True when the entries were judged by a physical check (their ``check``); the final top k
            then holds the structures that pass it first.
    """

    formula: str
    rule: str
    rank_rule: str
    refined: bool
    top: list[ResultEntry]
    search_top: list[ResultEntry]
    refinement: dict[str, Any] = field(default_factory=dict)
    energy_kind: str = ""
    checked: bool = False

    @property
    def best(self) -> ResultEntry | None:
        """Rank 1, or None for a campaign with no scored structure."""
        return self.top[0] if self.top else None

    def structures(self, which: str = "final") -> list[Structure]:
        """The symmetrised structures of ``top`` (``final``) or ``search_top`` (``search``), with their
        result values in ``structure.properties`` (rank, spacegroup, energies, converged, ...).

        Raises:
            ValueError: ``which`` is neither ``final`` nor ``search``.
        """
        if which not in ("final", "search"):
            raise ValueError(f"Unknown result stage {which!r}: choose final or search.")
        entries = self.top if which == "final" else self.search_top
        out = []
        for e in entries:
            props = {k: v for k, v in e.public().items() if v is not None and k != "key"}
            props["id"] = f"rank{e.rank}"
            props["rank_rule"] = self.rank_rule
            if e.stage == REFINED_STAGE and self.refinement.get("potential"):
                props["potential"] = self.refinement["potential"]
            out.append(e.structure.copy(properties=props))
        return out

    def public(self) -> dict[str, Any]:
        """JSON-ready form (stored in the campaign's summary, shown by the Prefect artifacts)."""
        return {
            "formula": self.formula,
            "rule": self.rule,
            "rank_rule": self.rank_rule,
            "refined": self.refined,
            "energy_kind": self.energy_kind,
            "checked": self.checked,
            "check_line": self.check_line(),
            "refinement": dict(self.refinement),
            "top": [e.public() for e in self.top],
            "search_top": [e.public() for e in self.search_top],
        }

    def check_line(self, which: str = "final") -> str | None:
        """One line under the table when entries of ``top`` (``final``) or ``search_top`` (``search``) fail the
        physical check, e.g. ``"2 of the top 5 fail the lake's physical check (column check): ..."``; None
        when all pass or nothing was checked."""
        entries = self.top if which == "final" else self.search_top
        failing = [e for e in entries if e.check]
        if not self.checked or not failing:
            return None
        order = (
            f"ranked after the {len(entries) - len(failing)} that pass"
            if which == "final"
            else "the final answer ranks every structure that passes before them"
        )
        whose = "top" if which == "final" else "search's own top"
        return (
            f"{len(failing)} of the {whose} {len(entries)} fail the lake's physical check (column check; `csp ingest` "
            "would refuse them): likely artefacts of the surrogate models, which the search's looser distance "
            f"rule lets through (docs/bad-input.md); {order}."
        )

    def refinement_line(self) -> str | None:
        """The refinement counted in words, e.g. ``"19 structures relaxed with chgnet-0.3.0: 9 converged,
        2 stopped at the step limit (ranked, marked unconverged), 8 collapsed (not ranked)."``; None when
        refinement did not run."""
        r = self.refinement
        if not r:
            return None
        parts = [f"{r['converged']} converged"]
        if r["unconverged"]:
            parts.append(f"{r['unconverged']} stopped at the step limit (ranked, marked unconverged)")
        for what in ("collapsed", "exploded", "failed"):
            if r[what]:
                parts.append(f"{r[what]} {what} (not ranked)")
        return f"{r['relaxed']} structures relaxed with {r['potential']}: " + ", ".join(parts) + "."


def _once_each(check: StructureCheck | None) -> StructureCheck | None:
    """``check`` asked once per structure object: the answer's ranking, its entries and the search's own top k
    meet the same structures (a check builds neighbour lists: about 0.1 s a structure)."""
    if check is None:
        return None
    seen: dict[
        int, tuple[Any, str | None]
    ] = {}  # id -> (the structure, kept alive so its id stays its own; answer)

    def once(structure: Structure) -> str | None:
        if id(structure) not in seen:
            seen[id(structure)] = (structure, check(structure))
        return seen[id(structure)][1]

    return once


def _checked_first(key: Callable[[dict[str, Any]], Any], check: StructureCheck | None) -> Callable[..., Any]:
    """``key`` with the rows whose structure fails ``check`` after every row that passes (None stays None)."""
    if check is None:
        return key
    from csp.structures.matching import row_crystal

    fails: dict[int, bool] = {}

    def ordered(row: dict[str, Any]) -> Any:
        value = key(row)
        if value is None:
            return None
        if id(row) not in fails:
            fails[id(row)] = check(row_crystal(row).to_pymatgen()) is not None
        return (fails[id(row)], value)

    return ordered


def _passing_first(
    rows: Sequence[dict[str, Any]],
    k: int,
    key: Callable[[dict[str, Any]], Any],
    check: StructureCheck | None,
    ranked: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The one rule of the answer: the top ``k`` of ``rows`` by ``key``, those whose structure passes ``check``
    before any that fails. ``ranked`` (already ``rank(rows, k, key)``, or None) is returned itself when
    nothing in it fails, so the rows are checked only when an entry of the plain ranking fails."""
    from csp.structures.matching import rank

    if ranked is None:
        ranked = rank(rows, k=k, key=key)
    if check is None or not any(check(item["structure"]) for item in ranked):
        return ranked
    return rank(rows, k=k, key=_checked_first(key, check))


def _entries(
    ranked: list[dict[str, Any]], energy_col: str | None, check: StructureCheck | None = None
) -> list[ResultEntry]:
    base = None
    out = []
    for item in ranked:
        row = item["row"]
        value = row.get(energy_col) if energy_col else None
        if base is None and value is not None:
            base = value
        delta = None if value is None or base is None else 1000.0 * (float(value) - float(base))
        refined = row.get("stage") == REFINED_STAGE
        out.append(
            ResultEntry(
                rank=int(item["rank"]),
                stage=str(row.get("stage")),
                formula=item["formula"],
                spacegroup=int(item["spacegroup"]),
                spacegroup_symbol=item["spacegroup_symbol"],
                wyckoff=item.get("wyckoff"),
                family_spacegroup=item.get("family_spacegroup"),
                family_wyckoff=item.get("family_wyckoff"),
                a=float(item["a"]),
                b=float(item["b"]),
                c=float(item["c"]),
                alpha=float(item["alpha"]),
                beta=float(item["beta"]),
                gamma=float(item["gamma"]),
                delta_e_mev_per_atom=delta,
                energy_potential_ev_per_atom=row.get("energy_potential_ev_per_atom") if refined else None,
                dhf_potential_ev_per_atom=row.get("dhf_potential_ev_per_atom") if refined else None,
                converged=row.get("converged") if refined else None,
                relax_steps=row.get("relax_steps") if refined else None,
                dhf_pred_ev_per_atom=row.get("dhf_pred_ev_per_atom"),
                p_syn=row.get("p_syn"),
                p_syn_std=row.get("p_syn_std"),
                fitness=row.get("fitness"),
                exploitation_gap_ev_per_atom=item.get("exploitation_gap_ev_per_atom"),
                duplicates=int(item["duplicates"]),
                outer_step=int(row.get("outer_step", -1)),
                key=(str(row.get("stage")), int(row.get("outer_step", -1)), int(row.get("inner_step", -1))),
                check=check(item["structure"]) if check is not None else None,
                structure=item["structure"],
            )
        )
    return out


def refinement_counts(refined: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts of refined rows: ``relaxed``, ``converged``, ``unconverged`` (valid but stopped at the step
    limit), ``collapsed``, ``exploded``, ``failed`` and the ``potential`` name."""
    reasons = Counter(str(r.get("reject_reason") or "").split(":")[0] for r in refined)
    return {
        "relaxed": len(refined),
        "converged": sum(bool(r.get("converged")) for r in refined),
        "unconverged": sum(bool(r.get("valid")) and not r.get("converged") for r in refined),
        "collapsed": reasons.get("collapsed", 0),
        "exploded": reasons.get("exploded", 0),
        "failed": reasons.get("failed", 0),
        "potential": refined[0].get("potential") if refined else None,
    }


def check_k(k: Any) -> None:
    """Refuse a top-k size that is not a whole number of at least 1 (``0``, ``-1``, ``2.5``, NaN, ``True``).

    Raises:
        InputError: one sentence with the value (also a ``ValueError``).
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise InputError(f"k must be an integer of at least 1, not {k!r}.")


def campaign_result(
    rows: Sequence[dict[str, Any]],
    *,
    k: int = 5,
    rule: RankingRule = DEFAULT_RANKING,
    check: StructureCheck | None = None,
) -> CampaignResult:
    """The one result of a campaign from its rows (see the module docstring for the rank rule).

    Args:
        rows: the campaign's rows as the search and refinement write them (dicts with ``stage``,
            ``outer_step``, ``inner_step``, ``lattice`` (9 floats, Angstrom), ``numbers``, ``frac_coords``
            (3n floats), scores and refined columns); inner rows are ignored.
        k: entries in ``top`` and ``search_top``.
        rule: the campaign's ``refine_ranking`` (used when refined rows exist).
        check: a physical check of a structure (the lake's: ``storage.validation.structure_problem``): the
            final top k holds the structures that pass it first, and every entry says why it fails. None: no
            check (entries unmarked, ``checked`` False).

    Returns:
        The :class:`CampaignResult`; its ``top`` is empty when no row was scored.

    Raises:
        ValueError: ``k`` not an integer of at least 1 (:func:`check_k`) or an unknown ``rule``.
    """
    from csp.potentials.refine import attach_gaps
    from csp.structures.matching import rank

    check_k(k)
    check = _once_each(check)
    outer = [r for r in rows if r.get("stage") == "outer"]
    refined = [r for r in rows if r.get("stage") == REFINED_STAGE]
    probes = [r for r in rows if r.get("stage") == "single_point"]
    by_fitness = tie_broken(lambda r: r.get("fitness"))
    search = rank(outer, k=k, key=by_fitness)
    attach_gaps(search, refined or probes)
    usable = [r for r in refined if r.get("valid") and r.get("energy_potential_ev_per_atom") is not None]
    final = _passing_first(usable, k, tie_broken(ranking_key(usable, rule)), check) if usable else []
    if final:
        attach_gaps(final, refined)
        for entry in final:  # a refined row is its own probe: its gap is that of its source
            entry["exploitation_gap_ev_per_atom"] = entry["row"].get("exploitation_gap_ev_per_atom")
    potential = refined[0].get("potential") if refined else None
    search_entries = _entries(search, "dhf_pred_ev_per_atom", check)
    if final:
        return CampaignResult(
            formula=final[0]["formula"],
            rule=rule,
            rank_rule=rank_rule_text(rule, True, potential),
            refined=True,
            top=_entries(final, "energy_potential_ev_per_atom", check),
            search_top=search_entries,
            refinement=refinement_counts(refined),
            energy_kind=f"energy of {potential} per atom of the relaxed structure",
            checked=check is not None,
        )
    top = search_entries
    answer = _passing_first(outer, k, by_fitness, check, search)
    if answer is not search:  # the answer holds those that pass first; the search's own order kept aside
        attach_gaps(answer, refined or probes)
        top = _entries(answer, "dhf_pred_ev_per_atom", check)
    return CampaignResult(
        formula=search[0]["formula"] if search else "",
        rule="search-fitness",
        rank_rule=rank_rule_text("fitness", False),
        refined=False,
        top=top,
        search_top=search_entries,
        refinement=refinement_counts(refined) if refined else {},
        energy_kind="the models' predicted formation enthalpy dHf (not the ranking quantity)",
        checked=check is not None,
    )


def predict(
    composition: str,
    config: Any = None,
    scorer: Any = None,
    *,
    k: int = 5,
    sink: Any = None,
    campaign_id: str = "local",
    progress: Any = None,
    check: StructureCheck | None = None,
) -> CampaignResult:
    """The one-call front door: search ``composition``, refine when ``config.refine`` (the default), and
    return the campaign's :class:`CampaignResult`, the same answer ``csp campaign run`` gives for the same
    parameters (no Prefect, no lake).

    ``csp.run_search`` is the search alone (the paper's method; the ``search`` room may not import a
    potential), so it cannot refine; this function adds what a campaign adds after it
    (:func:`csp.potentials.refine.refine_or_probe`) and ranks with :func:`campaign_result`.

    Args:
        composition: a formula, e.g. ``"GaAs"``.
        config: a :class:`csp.search.two_stage.SearchConfig` (default ``SearchConfig()``: fixed cubic,
            refinement on with CHGNet).
        scorer: the models (default :func:`csp.models.scoring.load_scorer`, the shipped ones, on
            ``config.score_device``).
        k: entries in the top k.
        sink: where rows go (default a fresh :class:`csp.search.two_stage.InMemorySink`; pass your own to
            keep every row).
        campaign_id: the rows' campaign id.
        progress: called once per outer step (see :func:`csp.search.two_stage.run_search`).
        check: the physical check of :func:`campaign_result` (``csp`` never imports the lake: pass
            ``storage.validation.structure_problem`` to mark and rank last what ``csp ingest`` would refuse, as
            every face of ``flows`` does).

    Returns:
        The :class:`CampaignResult` (``result.top``: the final top k; ``result.search_top``: the search's).

    Raises:
        csp.errors.InputError: a bad composition or configuration, a ``k`` that is not an integer of at
            least 1, or a refinement potential that is not installed (refused before any search).
        csp.errors.ModelError: a model folder or the potential cannot be loaded.
    """
    from csp.potentials.refine import check_refinement, refine_or_probe
    from csp.search.two_stage import InMemorySink, SearchConfig, run_search

    check_k(k)  # before any search
    config = config if config is not None else SearchConfig()
    check_refinement(config)  # the potential installed and its device present, before any search
    if scorer is None:
        from csp.models.scoring import load_scorer

        scorer = load_scorer(score_device=config.score_device)
    sink = sink if sink is not None else InMemorySink()
    found = run_search(composition, config, scorer, sink, campaign_id=campaign_id, progress=progress)
    refine_or_probe(found.outer_rows, config, scorer, sink, campaign_id)
    return campaign_result(sink.history(campaign_id), k=k, rule=config.refine_ranking, check=check)
