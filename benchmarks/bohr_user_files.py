"""Real mirror CIFs through the user-file path, as written and in Bohr: what the units check refuses.

Usage (reads the data mirror; writes only under a temporary folder)::

    CSP_DATA_MIRROR=<mirror> PYTHONPATH=. python benchmarks/bohr_user_files.py [--per-source 500] [--seed 0]

Draws ``--per-source`` CIFs at random (``numpy.random.default_rng(seed)``) from each mirror source that ships CIF
text (``mp_flla2015``, ``mp_chemeleon_mp40``, ``gnome``, ``experimental_prototypes``: AFLOW prototypes, minerals and
COD CIFs with their symmetry), writes each into an ``id_prop.csv`` folder as it is and once more with its three
``_cell_length_*`` values multiplied by 1.8897 (the lengths read as Bohr), and reads both folders with
:func:`storage.readers.read_id_prop_folder` (what ``csp ingest folder`` runs). Prints, per source and overall:

- as written: stored, refused by the units check (:func:`storage.validation.stretched_cell_problem`: false
  refusals of real structures), refused for another reason;
- in Bohr: refused by the units check (caught with the Bohr reason), refused for another reason, stored
  (missed);
- each false refusal with its reason.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from storage.readers import Rejection, default_mirror, read_id_prop_folder
from storage.validation import BOHR_ANGSTROM

SOURCES = {
    "mp_flla2015": "dft/mp_flla2015.jsonl.gz",
    "mp_chemeleon_mp40": "dft/mp_chemeleon_mp40.jsonl.gz",
    "gnome": "dft/gnome_structures.jsonl.gz",
    "experimental_prototypes": "synth/experimental_prototypes.jsonl.gz",
}
UNITS_MARKS = (
    "lengths look like Bohr",  # the declared-density reason (storage.validation.compare_density)
    "no bond as short as in known crystals",  # storage.validation.stretched_cell_problem
)
_LENGTH = re.compile(r"^(\s*_cell[._]length_[abc]\s+)([0-9.eE+-]+)(\(\d+\))?", re.MULTILINE)


def in_bohr(cif: str) -> str:
    """The CIF with its cell lengths multiplied by 1 / BOHR_ANGSTROM (fractional coordinates unchanged)."""
    return _LENGTH.sub(lambda m: f"{m.group(1)}{float(m.group(2)) / BOHR_ANGSTROM:.6f}", cif)


def sample(mirror: Path, per_source: int, seed: int) -> list[tuple[str, str, str]]:
    """``(source, id, cif)`` rows, ``per_source`` at random from each source."""
    rng = np.random.default_rng(seed)
    out = []
    for name, rel in SOURCES.items():
        with gzip.open(mirror / rel, "rt") as fh:
            rows = [json.loads(line) for line in fh]
        rows = [r for r in rows if r.get("cif")]
        for k in sorted(rng.choice(len(rows), size=min(per_source, len(rows)), replace=False)):
            out.append((name, str(rows[k]["id"]), rows[k]["cif"]))
    return out


def ingest(rows: list[tuple[str, str, str]], folder: Path, scale: bool, workers: int) -> list[str | None]:
    """Each row's refusal reason (None: stored) read through ``read_id_prop_folder``."""
    folder.mkdir()
    lines = []
    for k, (_, _, cif) in enumerate(rows):
        (folder / f"s{k:05d}.cif").write_text(in_bohr(cif) if scale else cif)
        lines.append(f"s{k:05d}.cif,-1.0\n")
    (folder / "id_prop.csv").write_text("".join(lines))
    out: list[str | None] = []
    for item in read_id_prop_folder(folder, source="bench", license="bench", workers=workers):
        out.append(item.reason if isinstance(item, Rejection) else None)
    return out


def units(reason: str | None) -> bool:
    return reason is not None and any(mark in reason for mark in UNITS_MARKS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-source", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = sample(default_mirror(), args.per_source, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        plain = ingest(rows, Path(tmp) / "angstrom", False, args.workers)
        bohr = ingest(rows, Path(tmp) / "bohr", True, args.workers)
        seconds = time.perf_counter() - start
    print(
        f"{len(rows)} CIFs ({args.per_source} per source, seed {args.seed}); {seconds:.0f} s for both folders"
    )
    header = ["source", "CIFs", "stored", "units-refused", "other", "| Bohr:", "caught", "other", "stored"]
    print("".join(h.rjust(14) if i else h.ljust(26) for i, h in enumerate(header)))
    by_source: dict[str, list[int]] = defaultdict(list)
    for k, (name, _, _) in enumerate(rows):
        by_source[name].append(k)
    for name, idx in [*by_source.items(), ("all", list(range(len(rows))))]:
        a = Counter("stored" if plain[k] is None else "units" if units(plain[k]) else "other" for k in idx)
        b = Counter("stored" if bohr[k] is None else "units" if units(bohr[k]) else "other" for k in idx)
        cells = [len(idx), a["stored"], a["units"], a["other"], "", b["units"], b["other"], b["stored"]]
        print(name.ljust(26) + "".join(str(c).rjust(14) for c in cells))
    print("\nreal CIFs refused by the units check (false refusals):")
    for k, reason in enumerate(plain):
        if units(reason):
            print(f"  {rows[k][0]}:{rows[k][1]}: {reason}")
    other_bohr = Counter(re.sub(r"[-0-9.]+", "#", (bohr[k] or "").split(": ", 1)[-1])[:70]
                         for k in range(len(rows)) if bohr[k] is not None and not units(bohr[k]))  # fmt: skip
    print("\nBohr cells refused for another reason (reason, numbers as #):")
    for reason, n in other_bohr.most_common(8):
        print(f"  {n:5d}  {reason}")
    missed = [k for k in range(len(rows)) if bohr[k] is None]
    print(f"\nBohr cells stored (missed): {len(missed)}")
    for k in missed[:20]:
        print(f"  {rows[k][0]}:{rows[k][1]}")


if __name__ == "__main__":
    main()
