"""Structure prototypes: the AFLOW Library of Crystallographic Prototypes that ships inside pymatgen,
decorated with the elements of a composition.

A prototype fits a composition when its species, in some order, occur in the same proportions as the
composition's elements; each such assignment gives one decoration (rock salt NaCl and the inverse
assignment are the same crystal, NiAs and anti-NiAs are not, so every distinct assignment is kept).
The decorated cell is scaled isotropically to the sum of the atomic volumes of its atoms (the volume
the search's constraints are centred on); a relaxation then finds the potential's own volume.
"""

from __future__ import annotations

import gzip
import itertools
import json
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np

from csp.structures import elements
from csp.structures.composition import Composition
from csp.structures.crystal import Crystal

#: common names for the Strukturbericht designations used in reports (rock salt, CsCl, ...)
COMMON_NAMES = {
    "B1": "rock salt",
    "B2": "CsCl",
    "B3": "zincblende",
    "B4": "wurtzite",
    "B8_1": "NiAs",
    "C1": "fluorite",
    "C4": "rutile",
    "C5": "anatase",
    "C6": "CdI2",
    "E2_1": "perovskite",
    "H1_1": "spinel",
    "A1": "fcc",
    "A2": "bcc",
    "A3": "hcp",
    "A4": "diamond",
}


@dataclass(frozen=True, slots=True)
class Prototype:
    """One prototype: its AFLOW label, Strukturbericht designation (may be empty), mineral name, and the
    cell with its sites grouped by species (``groups[k]`` = indices of the sites of the k-th species)."""

    label: str
    strukturbericht: str
    mineral: str
    lattice: np.ndarray
    frac_coords: np.ndarray
    groups: tuple[tuple[int, ...], ...]

    @property
    def num_sites(self) -> int:
        return len(self.frac_coords)

    @property
    def name(self) -> str:
        """A readable name: the common name where one is known, else the mineral, else the label."""
        return COMMON_NAMES.get(self.strukturbericht) or self.mineral or self.label

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(len(g) for g in self.groups)


@dataclass(frozen=True, slots=True)
class Decoration:
    """A prototype decorated with elements: ``assignment`` maps prototype species k to a symbol."""

    prototype: Prototype
    assignment: tuple[str, ...]
    crystal: Crystal

    @property
    def tag(self) -> str:
        """Identifier of the decoration: AFLOW label and the element on each species, e.g.
        ``AB_cF8_225_a_b:Cl,Na``."""
        return f"{self.prototype.label}:{','.join(self.assignment)}"


def _library_path() -> Path:
    # found, not imported: importing pymatgen.analysis.prototypes loads its own copy of the library and parses
    # every entry's BibTeX (~4-5 s on 2 cores), none of which is used here
    from importlib.util import find_spec

    spec = find_spec("pymatgen.analysis.prototypes")
    if spec is None or spec.origin is None:
        return Path("pymatgen/analysis/prototypes/aflow_prototypes.json.gz")  # reported missing by the caller
    return Path(spec.origin).with_name("aflow_prototypes.json.gz")


@lru_cache(maxsize=1)
def load_prototypes() -> tuple[Prototype, ...]:
    """Every ordered prototype of the library, in the library's order."""
    path = _library_path()
    if not path.exists():
        raise FileNotFoundError(
            f"The AFLOW prototype library was not found at {path}; it ships with pymatgen "
            "(pymatgen.analysis.prototypes)."
        )
    with gzip.open(path, "rt") as fh:
        raw = json.load(fh)
    out = []
    seen: dict[str, int] = {}
    for entry in raw:
        snl, tags = entry["snl"], entry["tags"]
        sites = snl["sites"]
        if any(len(s["species"]) != 1 or s["species"][0]["occu"] < 1 for s in sites):
            continue
        symbols = [s["species"][0]["element"] for s in sites]
        order = list(dict.fromkeys(symbols))
        groups = tuple(tuple(i for i, sym in enumerate(symbols) if sym == el) for el in order)
        label = tags["aflow"]
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:  # the library holds a few labels twice, with other parameters
            label = f"{label}-{seen[label]}"
        out.append(
            Prototype(
                label=label,
                strukturbericht=tags.get("strukturbericht") or "",
                mineral=tags.get("mineral") or "",
                lattice=np.asarray(snl["lattice"]["matrix"], dtype=np.float64),
                frac_coords=np.mod(np.asarray([s["abc"] for s in sites], dtype=np.float64), 1.0),
                groups=groups,
            )
        )
    return tuple(out)


def _ratio(counts: tuple[int, ...]) -> tuple[int, ...]:
    g = 0
    for c in counts:
        g = gcd(g, c)
    return tuple(c // g for c in counts)


def decorations(composition: Composition, *, max_sites: int = 24) -> list[Decoration]:
    """Every decoration of every library prototype that fits ``composition`` (at most ``max_sites``).

    Prototypes with a Strukturbericht designation (the well-known types) come first, then by size.
    """
    symbols = composition.symbols
    counts = tuple(n for _, n in composition.counts)
    target = _ratio(counts)
    found: list[Decoration] = []
    for proto in load_prototypes():
        if len(proto.groups) != len(symbols) or proto.num_sites > max_sites:
            continue
        seen: set[tuple[str, ...]] = set()
        for perm in itertools.permutations(range(len(symbols))):
            # species k of the prototype gets element perm[k]
            if _ratio(tuple(proto.counts[k] for k in range(len(symbols)))) != tuple(
                target[perm[k]] for k in range(len(symbols))
            ):
                continue
            assignment = tuple(symbols[perm[k]] for k in range(len(symbols)))
            if assignment in seen:
                continue
            seen.add(assignment)
            found.append(Decoration(proto, assignment, _decorate(proto, assignment)))
    found.sort(key=lambda d: (d.prototype.strukturbericht == "", d.prototype.num_sites, d.tag))
    return found


def _decorate(proto: Prototype, assignment: tuple[str, ...]) -> Crystal:
    numbers = np.empty(proto.num_sites, dtype=np.int64)
    for k, group in enumerate(proto.groups):
        numbers[list(group)] = elements.atomic_number(assignment[k])
    target_volume = float(elements.atomic_volume(numbers).sum())
    volume = abs(float(np.linalg.det(proto.lattice)))
    lattice = proto.lattice * (target_volume / volume) ** (1.0 / 3.0)
    return Crystal(lattice, numbers, proto.frac_coords)


def find_prototype(label_or_name: str) -> Prototype:
    """A prototype by AFLOW label, Strukturbericht designation (``B1``) or common name (``rock salt``)."""
    key = label_or_name.strip().lower()
    for proto in load_prototypes():
        names = {proto.label.lower(), proto.strukturbericht.lower(), proto.name.lower()}
        if key in names:
            return proto
    raise KeyError(f"No prototype called {label_or_name!r} in the AFLOW library.")
