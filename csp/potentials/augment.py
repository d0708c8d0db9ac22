"""Polymorph augmentation: many structures per composition, to be labelled by a universal potential.

For each composition a *plan* lists

1. decorations of the library prototypes that fit its stoichiometry (:mod:`csp.structures.prototypes`), to be
   relaxed for a bounded number of steps;
2. symmetric random structures from the search's own generator (space group + Wyckoff assignment,
   with the paper's distance/angle/volume constraints), to be labelled by a single point;

and the labeller adds 3. strained and perturbed copies of every relaxed decoration (:func:`distort`).
Elemental reference structures (every element of the plan in the library's one-element prototypes,
plus any ground states the caller supplies) are relaxed too, so that formation enthalpies come from
references computed with the same potential (:func:`formation_enthalpies`).

A plan is a :class:`StructureSet`: flat arrays in one ``.npz`` (numpy only, so the labeller runs on
machines without pymatgen's structure tools). This module generates and does arithmetic; the labelling
itself lives in :mod:`csp.potentials.relaxer`, and the lake's side in ``flows.augment``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from csp.errors import InputError
from csp.structures import elements
from csp.structures.composition import Composition, parse_composition
from csp.structures.crystal import Crystal

if TYPE_CHECKING:
    from csp.structures.prototypes import Decoration

#: what each plan row is: how it was made, and what the labeller does with it (``search``: a campaign's own
#: top structure, labelled by the active loop, :mod:`csp.potentials.active`)
KINDS = ("prototype", "random", "element", "reference", "distorted", "search")
ACTIONS = ("relax", "single")


@dataclass
class StructureSet:
    """Structures with string metadata, as flat arrays (S structures, A atoms in all).

    ``ids`` are unique; ``formula`` is the reduced formula; ``kind`` one of :data:`KINDS`; ``action``
    ``relax`` or ``single``; ``tag`` says which prototype / family / parent it came from. Labelled sets
    add float columns in ``values`` (e.g. ``energy_ev_per_atom``) and string columns in ``labels``.
    """

    natoms: np.ndarray
    lattice: np.ndarray
    numbers: np.ndarray
    frac_coords: np.ndarray
    ids: np.ndarray
    formula: np.ndarray
    kind: np.ndarray
    action: np.ndarray
    tag: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        S = len(self.natoms)
        for name in ("lattice", "ids", "formula", "kind", "action", "tag"):
            if len(getattr(self, name)) != S:
                raise InputError(
                    f"StructureSet column '{name}' has {len(getattr(self, name))} rows, not {S}."
                )
        for name, col in {**self.values, **self.labels}.items():
            if len(col) != S:
                raise InputError(f"StructureSet column '{name}' has {len(col)} rows, not {S}.")
        if int(np.sum(self.natoms)) != len(self.numbers) or len(self.numbers) != len(self.frac_coords):
            raise InputError("StructureSet atom arrays do not add up to natoms.")
        if len(set(self.ids.tolist())) != S:
            raise InputError("StructureSet ids must be unique.")

    def __len__(self) -> int:
        return len(self.natoms)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.natoms, dtype=np.int64)])

    def crystal(self, i: int) -> Crystal:
        off = self.offsets
        return Crystal(
            self.lattice[i], self.numbers[off[i] : off[i + 1]], self.frac_coords[off[i] : off[i + 1]]
        )

    def crystals(self) -> list[Crystal]:
        return [self.crystal(i) for i in range(len(self))]

    def take(self, index: Sequence[int] | np.ndarray) -> StructureSet:
        """The rows at ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        off = self.offsets
        atoms = (
            np.concatenate([np.arange(off[i], off[i + 1]) for i in index])
            if len(index)
            else np.zeros(0, np.int64)
        )
        return StructureSet(
            natoms=self.natoms[index],
            lattice=self.lattice[index],
            numbers=self.numbers[atoms],
            frac_coords=self.frac_coords[atoms],
            ids=self.ids[index],
            formula=self.formula[index],
            kind=self.kind[index],
            action=self.action[index],
            tag=self.tag[index],
            values={k: v[index] for k, v in self.values.items()},
            labels={k: v[index] for k, v in self.labels.items()},
        )

    def save(self, path: Path, *, precision: type = np.float64) -> Path:
        """Write one compressed ``.npz`` (written to a temporary name, then renamed)."""
        path = Path(path)
        tmp = path.with_name(f".tmp-{path.name}")
        arrays = {
            "natoms": self.natoms.astype(np.int32),
            "lattice": self.lattice.astype(precision),
            "numbers": self.numbers.astype(np.int16),
            "frac_coords": self.frac_coords.astype(precision),
            "ids": self.ids.astype(str),
            "formula": self.formula.astype(str),
            "kind": self.kind.astype(str),
            "action": self.action.astype(str),
            "tag": self.tag.astype(str),
        }
        arrays |= {f"value__{k}": v.astype(np.float64) for k, v in self.values.items()}
        arrays |= {f"label__{k}": v.astype(str) for k, v in self.labels.items()}
        with tmp.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> StructureSet:
        with np.load(Path(path), allow_pickle=False) as data:
            missing = {"natoms", "lattice", "numbers", "frac_coords", "ids"} - set(data.files)
            if missing:
                raise InputError(f"{path} is not a structure set: it lacks {sorted(missing)}.")
            return cls(
                natoms=data["natoms"].astype(np.int64),
                lattice=data["lattice"].astype(np.float64).reshape(-1, 3, 3),
                numbers=data["numbers"].astype(np.int64),
                frac_coords=data["frac_coords"].astype(np.float64).reshape(-1, 3),
                ids=data["ids"].astype(str),
                formula=data["formula"].astype(str),
                kind=data["kind"].astype(str),
                action=data["action"].astype(str),
                tag=data["tag"].astype(str),
                values={k[7:]: data[k].astype(np.float64) for k in data.files if k.startswith("value__")},
                labels={k[7:]: data[k].astype(str) for k in data.files if k.startswith("label__")},
            )

    @classmethod
    def concatenate(cls, sets: Sequence[StructureSet]) -> StructureSet:
        sets = [s for s in sets if len(s)]
        if not sets:
            return empty_set()
        value_keys = set.intersection(*(set(s.values) for s in sets))
        label_keys = set.intersection(*(set(s.labels) for s in sets))
        return cls(
            natoms=np.concatenate([s.natoms for s in sets]),
            lattice=np.concatenate([s.lattice for s in sets]),
            numbers=np.concatenate([s.numbers for s in sets]),
            frac_coords=np.concatenate([s.frac_coords for s in sets]),
            ids=np.concatenate([s.ids for s in sets]),
            formula=np.concatenate([s.formula for s in sets]),
            kind=np.concatenate([s.kind for s in sets]),
            action=np.concatenate([s.action for s in sets]),
            tag=np.concatenate([s.tag for s in sets]),
            values={k: np.concatenate([s.values[k] for s in sets]) for k in sorted(value_keys)},
            labels={k: np.concatenate([s.labels[k] for s in sets]) for k in sorted(label_keys)},
        )


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One structure to label."""

    id: str
    formula: str
    kind: str
    action: str
    tag: str
    crystal: Crystal


def empty_set() -> StructureSet:
    return from_rows([])


def from_rows(rows: Sequence[PlanRow]) -> StructureSet:
    """Pack plan rows into a :class:`StructureSet`."""
    if not rows:
        z = np.zeros(0)
        return StructureSet(
            natoms=z.astype(np.int64),
            lattice=np.zeros((0, 3, 3)),
            numbers=z.astype(np.int64),
            frac_coords=np.zeros((0, 3)),
            ids=z.astype(str),
            formula=z.astype(str),
            kind=z.astype(str),
            action=z.astype(str),
            tag=z.astype(str),
        )
    return StructureSet(
        natoms=np.array([r.crystal.num_sites for r in rows], dtype=np.int64),
        lattice=np.stack([r.crystal.lattice for r in rows]),
        numbers=np.concatenate([r.crystal.numbers for r in rows]),
        frac_coords=np.concatenate([r.crystal.frac_coords for r in rows]),
        ids=np.array([r.id for r in rows], dtype=str),
        formula=np.array([r.formula for r in rows], dtype=str),
        kind=np.array([r.kind for r in rows], dtype=str),
        action=np.array([r.action for r in rows], dtype=str),
        tag=np.array([r.tag for r in rows], dtype=str),
    )


def composition_seed(formula: str, seed: int) -> int:
    """A per-composition seed, so that a plan extended later reproduces the rows already made."""
    digest = hashlib.sha256(f"{seed}:{formula}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def plan_composition(
    formula: str,
    *,
    seed: int = 0,
    max_prototypes: int = 12,
    random_structures: int = 8,
    max_sites: int = 24,
    max_random_atoms: int = 16,
    random_spacegroups: int = 24,
) -> list[PlanRow]:
    """The prototype decorations (to relax) and symmetric random structures (single points) of one
    composition. The well-known prototypes (Strukturbericht types) are always kept; the rest of the
    ``max_prototypes`` are drawn at random."""
    from csp.structures.prototypes import decorations

    comp, _ = parse_composition(formula).reduced()
    name = comp.formula
    rng = np.random.default_rng(composition_seed(name, seed))
    rows: list[PlanRow] = []
    decos = decorations(comp, max_sites=max_sites)
    known = [d for d in decos if d.prototype.strukturbericht]
    other = [d for d in decos if not d.prototype.strukturbericht]
    chosen = known[:max_prototypes]
    if len(chosen) < max_prototypes and other:
        pick = rng.choice(len(other), size=min(len(other), max_prototypes - len(chosen)), replace=False)
        chosen += [other[i] for i in sorted(pick)]
    rows += [decoration_row(name, d) for d in chosen]
    if random_structures > 0:
        rows += _random_rows(comp, rng, random_structures, max_random_atoms, random_spacegroups, seed)
    return rows


def decoration_row(formula: str, decoration: Decoration) -> PlanRow:
    """The plan row of a prototype decoration (to relax); its id is the same in every plan, so labels
    from different runs of one composition merge by id."""
    return PlanRow(
        f"{formula}|proto|{decoration.tag}", formula, "prototype", "relax", decoration.tag, decoration.crystal
    )


def _random_rows(
    comp: Composition, rng: np.random.Generator, n: int, max_atoms: int, n_groups: int, seed: int = 0
) -> list[PlanRow]:
    """Up to ``n`` symmetric random structures of ``comp`` from the search's own generator (single points).

    Ids are ``<formula>|random|<i>`` for plan seed 0 (the first plans' ids) and ``<formula>|random|s<seed>-<i>``
    for any other seed: a plan of another seed adds rows, never a second structure under an id labelled
    before.
    """
    stem = f"{comp.formula}|random|" + ("" if seed == 0 else f"s{seed}-")
    from csp.search.generate import build_template, enumerate_families, sample_valid

    z_max = max(1, max_atoms // comp.num_atoms)
    groups = rng.choice(np.arange(2, 231), size=n_groups, replace=False).tolist()
    families = enumerate_families(comp, list(range(1, z_max + 1)), groups, rng, max_per_group=2)
    rows: list[PlanRow] = []
    if not families:
        return rows
    order = rng.permutation(len(families))
    for idx in order:
        if len(rows) >= n:
            break
        family = families[int(idx)]
        template = build_template(family)
        u, valid, _ = sample_valid(template, 1, rng, max_draws=256, chunk=64)
        if not valid[0]:
            continue
        batch = template.build(u)
        crystal = Crystal(batch.lattices[0], batch.numbers, batch.frac_coords[0])
        tag = f"Z{family.formula_units} SG{family.spacegroup} {family.wyckoff}"
        rows.append(
            PlanRow(f"{stem}{len(rows)}", comp.formula, "random", "single", tag, crystal)
        )
    return rows


def element_rows(symbols: Iterable[str], *, max_sites: int = 8) -> list[PlanRow]:
    """Every element in every one-element library prototype with at most ``max_sites`` sites (fcc,
    bcc, hcp, diamond, alpha-La, the molecular crystals, ...), to relax: the lowest energy per atom
    becomes the element's reference."""
    from csp.structures.prototypes import load_prototypes

    rows = []
    for sym in sorted(set(symbols)):
        z = elements.atomic_number(sym)
        for proto in load_prototypes():
            if len(proto.groups) != 1 or proto.num_sites > max_sites:
                continue
            numbers = np.full(proto.num_sites, z)
            volume = float(elements.atomic_volume(numbers).sum())
            lattice = proto.lattice * (volume / abs(np.linalg.det(proto.lattice))) ** (1 / 3)
            crystal = Crystal(lattice, numbers, proto.frac_coords)
            rows.append(
                PlanRow(f"{sym}|element|{proto.label}", sym, "element", "relax", proto.label, crystal)
            )
    return rows


def distort(
    crystal: Crystal,
    rng: np.random.Generator,
    n: int,
    *,
    max_strain: float = 0.04,
    displacement_angstrom: float = 0.05,
) -> list[Crystal]:
    """``n`` strained and perturbed copies: a random symmetric strain with components in
    ``[-max_strain, max_strain]`` and Gaussian atomic displacements of ``displacement_angstrom``."""
    out = []
    for _ in range(n):
        e = rng.uniform(-max_strain, max_strain, size=(3, 3))
        e = 0.5 * (e + e.T)
        lattice = crystal.lattice @ (np.eye(3) + e)
        cart = crystal.frac_coords @ crystal.lattice @ (np.eye(3) + e)
        cart = cart + rng.normal(0.0, displacement_angstrom, size=cart.shape)
        frac = np.mod(cart @ np.linalg.inv(lattice), 1.0)
        out.append(Crystal(lattice, crystal.numbers, frac))
    return out


def formation_enthalpies(
    numbers: np.ndarray, offsets: np.ndarray, energy_per_atom: np.ndarray, references: dict[int, float]
) -> np.ndarray:
    """Formation enthalpy per atom: E/atom minus the composition-weighted elemental references
    (eV/atom, keyed by atomic number). NaN where an element has no reference or the energy is NaN."""
    ref = np.full(max(119, int(numbers.max(initial=0)) + 1), np.nan)
    for z, e in references.items():
        ref[int(z)] = e
    per_atom = ref[numbers]
    sums = np.add.reduceat(per_atom, offsets[:-1]) if len(per_atom) else np.zeros(0)
    counts = np.diff(offsets)
    return np.asarray(energy_per_atom, dtype=np.float64) - sums / counts


def elemental_references(labelled: StructureSet, energy: str = "energy_ev_per_atom") -> dict[int, float]:
    """The lowest energy per atom of each element over the labelled one-element structures."""
    out: dict[int, float] = {}
    off = labelled.offsets
    e = labelled.values[energy]
    for i in range(len(labelled)):
        zs = np.unique(labelled.numbers[off[i] : off[i + 1]])
        if len(zs) != 1 or not np.isfinite(e[i]):
            continue
        z = int(zs[0])
        if z not in out or e[i] < out[z]:
            out[z] = float(e[i])
    return out


def plan_symbols(formulas: Iterable[str]) -> set[str]:
    """Every element symbol in ``formulas``."""
    out: set[str] = set()
    for f in formulas:
        out.update(parse_composition(f).symbols)
    return out


def with_formation_enthalpies(
    labelled: StructureSet, fallback: dict[int, float] | None = None
) -> tuple[StructureSet, dict[int, float]]:
    """Add ``dhf_ev_per_atom`` from the set's own relaxed elemental rows, and for elements the set has no
    such row of, from ``fallback`` (eV/atom by atomic number: the same potential's shipped references,
    :func:`csp.potentials.refine.shipped_references`); NaN where a reference or the energy is missing.
    Returns the set and the references used (eV/atom by atomic number)."""
    is_element = (labelled.kind == "element") & np.isin(
        labelled.labels["relaxation"], ("relaxed", "partially_relaxed")
    )
    refs = {**(fallback or {}), **elemental_references(labelled.take(np.flatnonzero(is_element)))}
    labelled.values["dhf_ev_per_atom"] = formation_enthalpies(
        labelled.numbers, labelled.offsets, labelled.values["energy_ev_per_atom"], refs
    )
    return labelled, refs


#: labelled kinds that are training data (elemental references and evaluation rows are not)
TRAINING_KINDS = ("prototype", "random", "distorted", "search")


def training_rows(labelled: StructureSet, *, max_abs_ev_per_atom: float = 10.0) -> np.ndarray:
    """Indices of the labelled rows usable as training data: a training kind and a finite
    formation enthalpy within ``max_abs_ev_per_atom`` (call :func:`with_formation_enthalpies` first)."""
    dhf = labelled.values["dhf_ev_per_atom"]
    ok = np.isin(labelled.kind, TRAINING_KINDS) & np.isfinite(dhf)
    ok[ok] &= np.abs(dhf[ok]) <= max_abs_ev_per_atom
    return np.flatnonzero(ok)


def merge_labelled(sets: Sequence[StructureSet]) -> StructureSet:
    """Several labelled sets as one, one row per id: a later run's row replaces an earlier one, except
    that a failed label never replaces a good one (a resumed run relabels what failed)."""
    chosen: dict[str, tuple[int, int]] = {}
    for k, labelled in enumerate(sets):
        failed = labelled.labels.get("relaxation", np.full(len(labelled), "")) == "failed"
        for i, rid in enumerate(labelled.ids.tolist()):
            if rid in chosen and failed[i]:
                prev_k, prev_i = chosen[rid]
                prev = sets[prev_k].labels.get("relaxation", np.full(len(sets[prev_k]), ""))[prev_i]
                if prev != "failed":
                    continue
            chosen[rid] = (k, i)
    parts = []
    for k, labelled in enumerate(sets):
        index = sorted(i for kk, i in chosen.values() if kk == k)
        parts.append(labelled.take(index))
    return StructureSet.concatenate(parts)
