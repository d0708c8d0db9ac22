"""ALIGNN-CSP, the science: crystal-structure prediction calibrated to experiment.

The front door (names load on first use, so ``import csp`` is cheap)::

    import csp

    result = csp.predict("GaAs", csp.SearchConfig(outer_steps=20, inner_steps=120))
    result.top          # the final top 5: refined with CHGNet (refine=True, the default), deduplicated,
    result.rank_rule    # ranked by the potential's energy; the same answer as `csp campaign show`
    result.search_top   # the search's own top 5 by FV, for comparison

    # the search alone (the paper's method, no potential): run_search never refines
    scorer = csp.load_scorer()                     # the shipped ONNX models, sha256-checked
    found = csp.run_search("GaAs", csp.SearchConfig(refine=False), scorer, csp.InMemorySink())
    top = csp.rank(found.outer_rows, k=5)          # deduplicated, best fitness first

Histories of campaigns in the lake are read by :mod:`storage.query`; :mod:`csp.plots` draws them.

| name | what it is (module) |
| --- | --- |
| Composition | a parsed formula (:mod:`csp.structures.composition`; ``parse_composition`` makes one) |
| Crystal | lattice (Angstrom), atomic numbers, fractional coordinates (:mod:`csp.structures.crystal`) |
| SearchParameters | the campaign fields a person chooses, declared once (:mod:`csp.search.parameters`) |
| SearchConfig | ``SearchParameters`` plus the search's expert knobs (:mod:`csp.search.two_stage`) |
| predict | search, refine (when ``refine``) and rank: the one campaign result (:mod:`csp.potentials.result`) |
| CampaignResult | the final ranked, deduplicated top k with its rank rule (:mod:`csp.potentials.result`) |
| run_search | the two-stage search alone, never refined (:mod:`csp.search.two_stage`) |
| InMemorySink | where scored candidates go in a notebook (:mod:`csp.search.two_stage`) |
| load_scorer | the enthalpy + synthesizability models for the search (:mod:`csp.models.scoring`) |
| rank | deduplicate and rank a search's outer rows (:mod:`csp.structures.matching`) |
| matches | StructureMatcher match and the same space group (:mod:`csp.structures.matching`) |
| write_structures | structures to CIF, POSCAR, extxyz, JSON or ComputedStructureEntry files (:mod:`csp.structures.io`; ``read_structure`` reads any of them back) |
| CSPError | base of every error the science raises; ``InputError``, ``ModelError`` below it |

``csp`` never imports Prefect or the lake (``storage``); those are wired in by ``flows``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS = {
    "Composition": "csp.structures.composition",
    "parse_composition": "csp.structures.composition",
    "Crystal": "csp.structures.crystal",
    "SearchParameters": "csp.search.parameters",
    "SearchConfig": "csp.search.two_stage",
    "run_search": "csp.search.two_stage",
    "predict": "csp.potentials.result",
    "CampaignResult": "csp.potentials.result",
    "InMemorySink": "csp.search.two_stage",
    "load_scorer": "csp.models.scoring",
    "rank": "csp.structures.matching",
    "matches": "csp.structures.matching",
    "write_structures": "csp.structures.io",
    "read_structure": "csp.structures.io",
    "CSPError": "csp.errors",
    "InputError": "csp.errors",
    "ModelError": "csp.errors",
}

__all__ = [
    "CSPError",
    "CampaignResult",
    "Composition",
    "Crystal",
    "InMemorySink",
    "InputError",
    "ModelError",
    "SearchConfig",
    "SearchParameters",
    "load_scorer",
    "matches",
    "parse_composition",
    "predict",
    "rank",
    "read_structure",
    "run_search",
    "write_structures",
]

if TYPE_CHECKING:
    from csp.errors import CSPError, InputError, ModelError
    from csp.models.scoring import load_scorer
    from csp.potentials.result import CampaignResult, predict
    from csp.search.parameters import SearchParameters
    from csp.search.two_stage import InMemorySink, SearchConfig, run_search
    from csp.structures.composition import Composition, parse_composition
    from csp.structures.crystal import Crystal
    from csp.structures.io import read_structure, write_structures
    from csp.structures.matching import matches, rank


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'csp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
