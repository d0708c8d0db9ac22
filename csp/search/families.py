"""A campaign's families listed once, with a time bound and progress: :func:`plan_families`.

Listing the families (every Z, space group and Wyckoff assignment the search may try) is pure CPU work
whose cost grows steeply with the atoms per cell: pyxtal's compatibility check and the randomised Wyckoff
descents of groups with many special positions. Measured on the 2-core development machine under load
(``benchmarks``-style timing of :func:`csp.search.two_stage.campaign_families`):

| request | cells up to | listing |
| --- | --- | --- |
| MgO, cubic, Z 1..4 (the default) | 8 atoms | 0.1 s |
| H, cubic, Z 1..64 | 64 atoms | 2.2 s |
| H, all crystal systems, Z 1..20 | 20 atoms | 3.3 s |
| H, all crystal systems, Z 1..40 (the default 40-atom cap) | 40 atoms | 79 s |
| H, all crystal systems, Z 1..64 (``--max-atoms 64``) | 64 atoms | 584 s |

Before this bound, ``csp campaign run H --strategy all --z-max 64`` spent ~470-580 s silent after the
campaign's ``running`` event: 79 s listing the searched families and the rest listing the families above
the 40-atom cap only to count them. Now the listing runs before anything is written (the campaign's
checks call it), reports progress, and is bounded by :data:`csp.search.budget.MAX_LISTING_S`: a search
whose own families take longer is refused with a one-line message (``force`` lifts the bound), and the
count of what the atom cap leaves out stops at the same deadline (it is then reported as not counted).
The plan is kept for the process, so the search itself does not list the families again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from csp.errors import InputError
from csp.search.generate import Family
from csp.structures.composition import Composition

__all__ = ["FamilyListingTimeError", "FamilyPlan", "plan_families"]

#: how many plans (one per composition, strategy, Z range, cap and seed) a process keeps
_KEPT = 4
_PLANS: dict[tuple[Any, ...], FamilyPlan] = {}


class FamilyListingTimeError(InputError):
    """Listing a search's families took longer than the bound; the message says how to narrow it."""


class _OutOfTimeError(Exception):
    """Raised by the listing's hook at the deadline (internal)."""


@dataclass(frozen=True)
class FamilyPlan:
    """The families a campaign will try (in the search's order) and what the atom cap leaves out
    (:func:`csp.search.two_stage.excluded_by_atom_cap`; ``families`` and ``space_groups`` None and
    ``counted`` False when that count stopped at the deadline)."""

    families: tuple[Family, ...]
    excluded: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _key(composition: Composition, config: Any) -> tuple[Any, ...]:
    return (
        composition,
        config.strategy,
        config.crystal_system,
        tuple(config.formula_units),
        config.max_atoms,
        config.seed,
        config.max_assignments_per_group,
    )


def plan_families(
    composition: Composition,
    config: Any,
    *,
    report: Callable[[dict[str, Any]], None] | None = None,
    time_limit_s: float | None = None,
) -> FamilyPlan:
    """List a campaign's families once (kept for the process: the search reuses the plan).

    Args:
        composition: the reduced composition.
        config: a :class:`csp.search.two_stage.SearchConfig` (strategy, crystal system, Z range, atom cap,
            seed and per-group cap pick the families).
        report: called before each (Z, space group) with ``stage`` ("search", or "beyond the cap" while
            the families the atom cap leaves out are counted), ``formula_units`` (Z), ``z_max`` (the last Z
            of the stage), ``spacegroup``, ``families`` (the search's, listed so far; None beyond the cap)
            and ``elapsed_s`` (seconds since the listing began); the caller decides how often to show it.
        time_limit_s: the bound in seconds (None: none). The count beyond the cap stops at the same
            deadline even when the search's own listing has no bound.

    Raises:
        FamilyListingTimeError: the search's own families took longer than ``time_limit_s``; one sentence
            with the request, how far the listing got, and what to narrow (or ``--force``).
    """
    from csp.search.budget import MAX_LISTING_S
    from csp.search.two_stage import _campaign_families, excluded_by_atom_cap

    key = _key(composition, config)
    if key in _PLANS:
        return _PLANS[key]
    start = time.monotonic()
    found: list[Family] = []
    lo, hi = config.formula_units
    top = min(hi, composition.max_formula_units(config.max_atoms))
    at = {"z": lo}

    def hook(stage: str, z_max: int, limit: float | None) -> Callable[[int, int], None]:
        def on_group(z: int, spacegroup: int) -> None:
            at["z"] = z
            elapsed = time.monotonic() - start
            if limit is not None and elapsed > limit:
                raise _OutOfTimeError
            if report is not None:
                info = {"stage": stage, "formula_units": z, "z_max": z_max, "spacegroup": spacegroup}
                report({**info, "families": len(found) if stage == "search" else None, "elapsed_s": elapsed})

        return on_group

    try:
        for family in _campaign_families(composition, config, hook("search", top, time_limit_s)):
            found.append(family)  # one at a time: the hook reports (and a refusal counts) what is found
    except _OutOfTimeError:
        raise _too_long(
            composition, config, at["z"], len(found), time.monotonic() - start, time_limit_s
        ) from None
    bound = MAX_LISTING_S if time_limit_s is None else time_limit_s
    try:
        excluded = excluded_by_atom_cap(
            composition, config, found, on_group=hook("beyond the cap", hi, bound)
        )
        excluded["counted"] = True
    except _OutOfTimeError:
        dropped = list(range(max(lo, top + 1), hi + 1))
        excluded = {"max_atoms": config.max_atoms, "formula_units": dropped, "families": None}
        excluded.update(space_groups=None, spacegroup_numbers=[], counted=False, bound_s=bound)
    plan = FamilyPlan(tuple(found), excluded, time.monotonic() - start)
    if len(_PLANS) >= _KEPT:
        _PLANS.pop(next(iter(_PLANS)))
    _PLANS[key] = plan
    return plan


def _too_long(
    composition: Composition, config: Any, reached: int, n: int, seconds: float, limit: float | None
) -> FamilyListingTimeError:
    where = "all crystal systems" if config.strategy == "all" else f"the {config.crystal_system} system"
    lo, hi = config.formula_units
    top = min(hi, composition.max_formula_units(config.max_atoms))
    return FamilyListingTimeError(
        f"Listing the symmetry families of {composition.formula} in {where} for Z {lo}..{top} (cells of up to "
        f"{top * composition.num_atoms} atoms) takes more than {limit:g} s: stopped at Z = {reached} after "
        f"{seconds:.0f} s with {n:,} families; fix the crystal system, lower --z-max or --max-atoms, or pass "
        "--force to list them all."
    )
