"""Read every structure source of the data mirror and write one line per record: what became of it.

Run it in two trees and compare, to see that a reader change refuses no valid file and changes no stored crystal
(from each tree's root):

    PYTHONPATH=. CSP_DATA_MIRROR=../shared/data python benchmarks/reader_outcomes.py /tmp/outcomes-<tree>.tsv
    diff <(sort /tmp/outcomes-main.tsv) <(sort /tmp/outcomes-branch.tsv)

Each line is ``source <tab> record <tab> OK|REJ <tab> detail``: a stored record's id with its reduced formula,
site count and space group, a refused one's file, row and id with the reason. The counts per source go to stdout.
The MP sources are read without their Jang labels (labels change no structure).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import storage
from storage.readers import Rejection, default_mirror, sources_in_order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the .tsv file to write")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"storage from {Path(storage.__file__).parent}", flush=True)
    mirror = default_mirror()
    with args.out.open("w", encoding="utf-8") as out:
        for spec in sources_in_order():
            if spec.table != "structures":
                continue
            options: dict[str, object] = {"workers": args.workers}
            if spec.label_sources:
                options["labels"] = {}
            start, stored, refused = time.perf_counter(), 0, 0
            for item in spec.read(mirror, **options):
                if isinstance(item, Rejection):
                    refused += 1
                    where = f"{item.file}:{item.row}:{item.source_id}"
                    reason = " ".join(item.reason.split())
                    out.write(f"{spec.name}\t{where}\tREJ\t{reason}\n")
                else:
                    stored += 1
                    row = item.row
                    detail = f"{row['reduced_formula']} {row['nsites']} {row['spacegroup']}"
                    out.write(f"{spec.name}\t{row['source_id']}\tOK\t{detail}\n")
            seconds = time.perf_counter() - start
            print(f"{spec.name}: {stored} stored, {refused} refused, {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
