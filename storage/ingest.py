"""Ingest: stream a source through its reader, add split and lineage, write good rows and quarantine.

Each source is read by its reader (``storage.readers``); good records are written in batches to their
table (keyed by source and source id, so running an ingest twice adds nothing) and every rejection
lands in ``quarantine`` with its file, row and reason. A killed ingest leaves whole batches only; a
re-run skips what is stored and completes the table.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from storage.lake import Lake
from storage.licences import MLIP_PREFIXES
from storage.readers import SOURCES, Record, Rejection, load_mp_labels, mp_labels
from storage.source_names import MAX_SOURCE_NAME_CHARS, SourceNameError, check_source_name, look_alike
from storage.splits import split_of

BATCH_ROWS = 5000

__all__ = [
    "BATCH_ROWS",
    "MAX_SOURCE_NAME_CHARS",
    "IngestReport",
    "SourceNameError",
    "check_source_name",
    "check_user_source_name",
    "ingest_records",
    "ingest_source",
    "new_run_id",
    "ordered_sources",
    "reserved_source_problem",
    "source_names_in_use",
    "stored_labels",
]


@dataclass
class IngestReport:
    """What one source's ingest read, wrote and quarantined.

    Attributes:
        read: good records per table (:attr:`n_read` counts every record read, quarantined ones too).
        written: rows newly written per data table (quarantine rows are never counted here).
        rejected: quarantined records per kind of reason (numbers masked, see :func:`_reason_class`).
        examples: the first full reason of each kind, digits intact (what a user reads).
        quarantine_written: rows newly written to ``quarantine``.
    """

    source: str
    run_id: str
    read: Counter = field(default_factory=Counter)
    written: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    quarantine_written: int = 0
    seconds: float = 0.0

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def n_read(self) -> int:
        """Records read from the input: the good ones and the quarantined ones."""
        return sum(self.read.values()) + self.n_rejected

    @property
    def n_written(self) -> int:
        """Rows newly written to the data tables."""
        return sum(self.written.values())

    @property
    def n_already_present(self) -> int:
        """Good records whose row the lake held already (a re-ingest): ``n_read`` is always
        ``n_written + n_rejected + n_already_present``."""
        return sum(self.read.values()) - self.n_written

    def reasons(self) -> list[tuple[str, int]]:
        """``(reason, count)`` per kind of fault, most frequent first; the reason is a real one, unmasked."""
        return [(self.examples.get(kind, kind), n) for kind, n in self.rejected.most_common()]


def new_run_id(prefix: str = "ingest") -> str:
    """A fresh lineage id for rows written by one run."""
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def _reason_class(reason: str) -> str:
    """The reason with its standalone numbers masked, so that counts group by kind of fault.

    Digits that are part of a word (``utf-8``, ``Fe2O3``, ``mp-149``) are kept; only numbers standing
    alone (``0.31 A``, ``row 12``) become ``N``. Users see :attr:`IngestReport.examples`, never this key.
    """
    return re.sub(r"(?<![\w.\-])-?\d+(\.\d+)?(?![\w.\-])", "N", reason)[:160]


def source_names_in_use(lake: Lake) -> list[str]:
    """The registered source names and every source name stored in the lake (``structures``,
    ``experimental_enthalpies``, ``synth_labels``, ``quarantine``); a lake without folders yet is not created."""
    names = set(SOURCES)
    if lake.exists:
        rows = lake.query(
            "SELECT source FROM structures UNION SELECT source FROM experimental_enthalpies "
            "UNION SELECT source FROM synth_labels UNION SELECT source FROM quarantine"
        ).column("source")
        names.update(name for name in rows.to_pylist() if name is not None)
    return sorted(names)


def reserved_source_problem(name: str) -> str | None:
    """Why user data may not be stored under ``name``, or None: the registered mirror sources (what
    ``csp ingest run`` writes, with their licence and energy method) and the labels of a universal potential
    (``chgnet-0.3.0``: what ``csp augment ingest`` writes; a name of that family is read as MLIP labels)
    belong to their own commands. A user's POSCAR stored as ``gnome`` would pass for a GNoME DFT row."""
    owner = _reserved_for(name)
    if owner is None:
        return None
    return (
        f"The source name {name!r} is reserved for {owner}; give your data its own name (e.g. --source my-{name})."
    )


def _reserved_for(name: str) -> str | None:
    """What a reserved source name belongs to (:func:`reserved_source_problem`), or None."""
    if name in SOURCES:
        return "the registered mirror source that `csp ingest run` writes"
    family = name.split("-")[0].casefold()
    if family in MLIP_PREFIXES:
        return (
            f"{family} labels that `csp augment ingest` writes (names starting with its family are read as "
            "universal-potential labels)"
        )
    return None


def check_user_source_name(source: str, lake: Lake) -> str:
    """``source`` as :func:`check_source_name` accepts it against the names in use, and neither a reserved one
    (:func:`reserved_source_problem`) nor one that differs from a reserved one only by case, separators or
    look-alike characters (``Castelli_CDVAE`` beside ``castelli_cdvae``: user data cannot be added to it, so the
    refusal suggests a name of the user's own).

    Raises:
        SourceNameError: the name is refused; the message says why in one line.
    """
    in_use = source_names_in_use(lake)
    reserved = [n for n in in_use if _reserved_for(n)]
    name = check_source_name(source, known=[n for n in in_use if n not in reserved])
    problem = reserved_source_problem(name)
    if problem:
        raise SourceNameError(problem)
    other = look_alike(name, reserved)
    if other is not None:
        raise SourceNameError(
            f"The source name {name!r} differs only in case, separators or look-alike characters from "
            f"{other!r}, which is reserved for {_reserved_for(other)}; give your data its own name "
            f"(e.g. --source my-{name})."
        )
    return name


def ingest_records(
    lake: Lake,
    items: Iterable[Record | Rejection],
    *,
    source: str,
    run_id: str,
    progress: Callable[[int], None] | None = None,
    registered: bool = False,
) -> IngestReport:
    """Write a stream of reader outputs to the lake in batches; returns the counts.

    Args:
        registered: the caller writes a registered source (:func:`ingest_source`) or a potential's labels
            (``csp augment ingest``); otherwise the items are user data, and a reserved name
            (:func:`reserved_source_problem`) is refused.

    Raises:
        SourceNameError: ``source`` is not a usable name (:func:`storage.source_names.check_source_name`,
            against the names in use: :func:`source_names_in_use`), or is reserved; nothing is written.
    """
    if registered:
        source = check_source_name(source, known=source_names_in_use(lake))
    else:
        source = check_user_source_name(source, lake)
    report = IngestReport(source=source, run_id=run_id)
    start = time.perf_counter()
    pending: dict[str, list[dict]] = defaultdict(list)

    def flush(force: bool = False) -> None:
        for table, rows in list(pending.items()):
            if rows and (force or len(rows) >= BATCH_ROWS):
                added = lake.append(table, rows, run_id=run_id)
                if table == "quarantine":
                    report.quarantine_written += added
                else:
                    report.written[table] += added
                pending[table] = []

    for n, item in enumerate(items, 1):
        if isinstance(item, Rejection):
            # one kind for one fault of many files: the file name a folder's reason begins with is left out
            kind = _reason_class(item.reason.removeprefix(f"{PurePath(item.file).name}: "))
            report.rejected[kind] += 1
            report.examples.setdefault(kind, item.reason)
            pending["quarantine"].append(
                {
                    "source": source,
                    "file": item.file,
                    "row": int(item.row),
                    "source_id": item.source_id,
                    "reason": item.reason,
                    "raw_excerpt": (item.raw_excerpt or "")[:500],
                }
            )
        else:
            row = dict(item.row)
            if isinstance(row.get("source"), str):
                row["source"] = unicodedata.normalize("NFKC", row["source"])
            if item.table in SPLIT_TABLES and row.get("split") is None:
                row["split"] = split_of(row["reduced_formula"])
            report.read[item.table] += 1
            pending[item.table].append(row)
        flush()
        if progress is not None and n % 500 == 0:
            progress(n)
    flush(force=True)
    report.seconds = time.perf_counter() - start
    return report


#: tables whose rows get a formula-hash split when the reader gives none
SPLIT_TABLES = frozenset({"structures", "experimental_enthalpies"})


def ingest_source(
    lake: Lake,
    name: str,
    mirror: Path,
    *,
    run_id: str | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 2,
) -> IngestReport:
    """Ingest one registered source from the data mirror (structure parsing on ``workers`` processes)."""
    if name not in SOURCES:
        raise KeyError(f"Unknown source {name!r}; registered sources: {', '.join(sorted(SOURCES))}.")
    spec = SOURCES[name]
    run_id = run_id or new_run_id()
    options: dict = {}
    if spec.table == "structures":
        options["workers"] = workers
    if spec.label_sources:
        options["labels"] = stored_labels(lake, spec.label_sources) or load_mp_labels(Path(mirror))
    items = spec.read(Path(mirror), **options)
    return ingest_records(lake, items, source=name, run_id=run_id, progress=progress, registered=True)


def stored_labels(lake: Lake, sources: Iterable[str]) -> dict[str, int]:
    """``{material_id: label}`` from the ``synth_labels`` rows of ``sources`` already in the lake."""
    rows = lake.query(
        "SELECT material_id, icsd_label FROM synth_labels WHERE list_contains(?, source)", [list(sources)]
    ).to_pylist()
    return mp_labels(rows)


def ingested_sources(lake: Lake) -> dict[str, int]:
    """Rows per source already in the lake (``structures``, ``experimental_enthalpies`` and ``synth_labels``);
    a source that was never ingested is absent."""
    rows = lake.query(
        "SELECT source, count(*) AS n FROM structures GROUP BY source "
        "UNION ALL SELECT source, count(*) AS n FROM experimental_enthalpies GROUP BY source "
        "UNION ALL SELECT source, count(*) AS n FROM synth_labels GROUP BY source"
    ).to_pylist()
    out: dict[str, int] = {}
    for r in rows:
        out[r["source"]] = out.get(r["source"], 0) + int(r["n"])
    return dict(sorted(out.items()))


def ordered_sources(names: Iterable[str] | None = None) -> list[str]:
    """Registered sources in dependency order (label lists before the rows that use them)."""
    chosen = list(SOURCES) if names is None else list(names)
    unknown = [n for n in chosen if n not in SOURCES]
    if unknown:
        raise KeyError(f"Unknown sources {unknown}; registered sources: {', '.join(sorted(SOURCES))}.")
    return sorted(chosen, key=lambda n: (SOURCES[n].order, n))
