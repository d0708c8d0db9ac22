"""Shared pieces of every reader: the two things a reader yields, file streaming and field checks.

A reader never raises on bad input. It yields a :class:`Record` per good input record and a
:class:`Rejection` per bad one, and keeps going; a broken file (truncated gzip, undecodable bytes)
ends in one last :class:`Rejection` after every record that could be read.
"""

from __future__ import annotations

import csv
import gzip
import math
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from storage.errors import StorageError

MAX_ABS_DHF_EV_PER_ATOM = 10.0
"""Formation enthalpies beyond this magnitude (eV/atom) are physically absurd and rejected."""

EXCERPT_CHARS = 300

TABLES = ("structures", "experimental_enthalpies", "synth_labels")


@dataclass(frozen=True, slots=True)
class Record:
    """One good input record, ready for a lake table.

    Attributes:
        table: ``"structures"``, ``"experimental_enthalpies"`` or ``"synth_labels"``.
        row: every column of that table's schema except ``split``, ``run_id`` and ``written_at``
            (``experimental_enthalpies`` rows from a source with its own split also carry ``split``).
    """

    table: str
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One input record (or a whole file) that could not be ingested, destined for ``quarantine``.

    Attributes:
        file: the file's name as given to the reader (no directories); for a folder with ``id_prop.csv``, the
            structure file's name relative to the folder when the fault is that file's, else ``id_prop.csv``.
        row: 0-based record index in the file (the header line of a CSV is not a record).
        source_id: the record's id in its source when it could be read, else ``None``.
        reason: one sentence saying what is wrong, on one line: a reason holding line breaks (pymatgen's
            messages span several) is joined into one by :func:`one_line` when the rejection is made.
        raw_excerpt: the start of the offending input, for a human to look at.
    """

    file: str
    row: int
    source_id: str | None
    reason: str
    raw_excerpt: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", one_line(self.reason))


def one_line(text: str) -> str:
    """``text`` on one line: its lines (any line break, ``\\r\\n`` to ``U+2029``), stripped, joined by one space,
    blank lines dropped. A quarantine reason is read in a table and in ``csp sql`` output, a row per line."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


Item = Record | Rejection


class Reader(Protocol):
    """The call signature every reader has (plus optional reader-specific keywords)."""

    def __call__(self, path: Path, *, source: str, license: str, **kwargs: Any) -> Iterator[Item]: ...


def excerpt(raw: Any, limit: int = EXCERPT_CHARS) -> str:
    """Return the first ``limit`` characters of ``raw`` (as text), marking a cut with an ellipsis."""
    text = raw if isinstance(raw, str) else repr(raw)
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "..."


def has_undecodable(text: str) -> bool:
    """Whether ``text`` holds bytes that were not valid UTF-8 (decoded with ``surrogateescape``)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")


def decode_text(data: bytes) -> str:
    """The text of a file a person wrote (a CIF, a POSCAR), whatever its common encoding.

    UTF-8 first (a byte-order mark dropped; UTF-16 with its mark too); else Windows-1252, the superset of
    Latin-1 that older CIFs use for accented author names (``Müller``), provided the result holds no control
    character other than tab, line and page breaks (binary data is no text).

    Raises:
        UnicodeDecodeError: the bytes are neither UTF-8 nor Windows-1252/Latin-1 text.
    """
    for mark, encoding in _BOMS:
        if data.startswith(mark):
            return data[len(mark) :].decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # the five bytes Windows-1252 leaves undefined are C1 controls here
    bad = next(
        (i for i, ch in enumerate(text) if ch not in _TEXT_CONTROLS and unicodedata.category(ch) == "Cc"),
        None,
    )
    if bad is not None:  # one byte is one character in both encodings: ``bad`` is the byte's position
        raise UnicodeDecodeError(
            "utf-8 or latin-1", data, bad, bad + 1, "the file is neither UTF-8 nor Latin-1 text"
        )
    return text


class LineSource:
    """Iterate the decoded lines of a plain or gzip-compressed text file, whatever its extension.

    Undecodable bytes become lone surrogates (``surrogateescape``) so the caller can reject the one
    record holding them; a UTF-8 byte-order mark at the start is dropped. A stream that breaks (truncated gzip, corrupt deflate data) stops the
    iteration cleanly; ``error`` then says why, and every line yielded before is complete.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.error: str | None = None
        self.lines_read = 0

    def __iter__(self) -> Iterator[str]:
        with self.path.open("rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
        try:
            with gzip.open(self.path, "rb") if compressed else self.path.open("rb") as handle:
                for raw in handle:
                    if self.lines_read == 0 and raw.startswith(b"\xef\xbb\xbf"):
                        raw = raw[3:]  # a UTF-8 byte-order mark (spreadsheets write one) is no text
                    self.lines_read += 1
                    yield raw.decode("utf-8", errors="surrogateescape")
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            self.error = f"file is truncated or corrupt after {self.lines_read} lines ({exc})"


def truncation_rejection(file: str, row: int, source: LineSource) -> Rejection:
    """The closing :class:`Rejection` for a stream that broke before its end."""
    return Rejection(
        file=file,
        row=row,
        source_id=None,
        reason=f"{source.error}; the {row} records before the break were read",
        raw_excerpt="",
    )


def empty_file_rejection(file: str) -> Rejection:
    """The :class:`Rejection` for a file without a single record."""
    return Rejection(file=file, row=0, source_id=None, reason="file is empty (no records)", raw_excerpt="")


@dataclass(slots=True)
class CsvRow:
    """One CSV record: its 0-based index, fields by header name, and its raw text."""

    index: int
    fields: dict[str, str]
    raw: str


class MissingColumnsError(StorageError, ValueError):
    """A file lacks columns its reader needs (raised before any record is read)."""


def iter_csv(
    path: Path, required: Iterable[str], *, header: bool = True, columns: list[str] | None = None
) -> Iterator[CsvRow | Rejection]:
    """Stream a CSV file (quoted multi-line fields allowed) as :class:`CsvRow` items.

    Undecodable records, ragged records and a record cut by a truncated stream become
    :class:`Rejection` items; a truncated stream ends with one extra :class:`Rejection`.

    Args:
        path: the file, plain or gzip-compressed.
        required: columns the reader needs.
        header: whether the first line names the columns; if not, ``columns`` must.
        columns: the column names of a header-less file.

    Raises:
        MissingColumnsError: if the header lacks a required column (nothing useful can be read).
    """
    file = Path(path).name
    source = LineSource(path)
    raw_lines: list[str] = []

    def feed() -> Iterator[str]:
        for line in source:
            raw_lines.append(line)
            yield line

    reader = csv.reader(feed())
    if header:
        head = next(reader, None)
        if head is None:
            if source.error:
                yield truncation_rejection(file, 0, source)
            else:
                yield empty_file_rejection(file)
            return
        names = [h.strip() for h in head]
    else:
        names = list(columns or [])
    missing = [c for c in required if c not in names]
    if missing:
        raise MissingColumnsError(f"{file} lacks the column(s) {missing}; its header is {names}.")
    index = 0
    for values in reader:
        raw = "".join(raw_lines)
        raw_lines.clear()
        if not values or (len(values) == 1 and not values[0].strip()):
            continue  # blank line
        if raw.count('"') % 2:  # ended inside a quoted field: only possible at the end of the input
            if source.error:
                break
            yield Rejection(
                file, index, None, "record ends inside an unterminated quoted field", excerpt(raw)
            )
            index += 1
            continue
        if has_undecodable(raw):
            yield Rejection(
                file, index, values[0] if values else None, "record is not valid UTF-8", excerpt(raw)
            )
        elif len(values) != len(names):
            expected = (
                f"the header has {len(names)}" if header else f"expected {len(names)}: {', '.join(names)}"
            )
            yield Rejection(
                file, index, values[0], f"record has {len(values)} fields, {expected}", excerpt(raw)
            )
        else:
            yield CsvRow(index, dict(zip(names, values, strict=True)), raw)
        index += 1
    if source.error:
        yield truncation_rejection(file, index, source)
    elif index == 0:
        yield empty_file_rejection(file)


@dataclass(slots=True)
class TextRecord:
    """One line-based record (JSON Lines, whitespace tables): its index and text."""

    index: int
    text: str


def iter_lines(path: Path) -> Iterator[TextRecord | Rejection]:
    """Stream non-blank lines as :class:`TextRecord` items, rejecting undecodable lines.

    A truncated stream ends with one :class:`Rejection`; an empty file yields one too.
    """
    file = Path(path).name
    source = LineSource(path)
    index = 0
    for line in source:
        if not line.strip():
            continue
        if has_undecodable(line):
            yield Rejection(file, index, None, "line is not valid UTF-8", excerpt(line))
        else:
            yield TextRecord(index, line.rstrip("\r\n"))
        index += 1
    if source.error:
        yield truncation_rejection(file, index, source)
    elif index == 0:
        yield empty_file_rejection(file)


class OutOfRangeError(ValueError):
    """A number too large for a 64-bit float (a JSON integer of 400 digits); its message is the reason's tail."""


def short_token(value: Any, keep: int = 20) -> str:
    """``value`` as text for a reason, a long token abbreviated: ``"10000000000000000000... (401 digits)"``.

    A reason is one readable line: a 400-digit number or a 10,000-character string printed in full is not.
    """
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError:  # an int beyond Python's 4,300-digit str() limit
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if len(text) <= 2 * keep:
        return text
    digits = text.lstrip("+-")
    unit = "digits" if digits.isdigit() else "characters"
    return f"{text[:keep]}... ({len(digits) if unit == 'digits' else len(text)} {unit})"


def parse_float(value: Any) -> float | None:
    """Read a number; ``None`` for a missing value (``None``, empty, ``nan`` is NOT missing).

    Raises:
        ValueError: if ``value`` is not a number; :class:`OutOfRangeError` (a ValueError) for an integer
            beyond a float's range, which ``float()`` would raise as ``OverflowError`` (uncaught, it ended a
            whole ingest).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            raise OutOfRangeError(f"{short_token(value)} is out of range (beyond +-1.8e308)") from None
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except OverflowError:  # a str subclass or an object whose __float__ overflows
        raise OutOfRangeError(f"{short_token(text)} is out of range (beyond +-1.8e308)") from None


def check_energy(value: Any, what: str = "formation energy") -> tuple[float | None, str | None]:
    """Validate a per-atom formation energy.

    Returns:
        ``(value, None)`` for a finite value within +-10 eV/atom or a missing one (``None``), else
        ``(None, reason)``.
    """
    try:
        number = parse_float(value)
    except OutOfRangeError as exc:
        return None, f"{what} {exc}"
    except ValueError:
        return None, f"{what} {short_token(excerpt(str(value), 40))!r} is not a number"
    if number is None:
        return None, None
    if math.isnan(number):
        return None, f"{what} is NaN"
    if math.isinf(number):
        return None, f"{what} is infinite"
    if abs(number) > MAX_ABS_DHF_EV_PER_ATOM:
        return None, f"|{what}| = {abs(number):.4g} eV/atom exceeds {MAX_ABS_DHF_EV_PER_ATOM:g} eV/atom"
    return number, None


#: Unicode categories that never belong in an id or a name: control (ESC, C1), format (bidirectional
#: overrides, zero-width characters), line and paragraph separators
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def visible_text_problem(text: str, what: str) -> str | None:
    """Why ``text`` (an id or a name that will be stored or printed) cannot be used, or None: it holds
    control or other invisible characters (``ESC [31m`` would recolour a terminal that prints it)."""
    bad = [c for c in text if unicodedata.category(c) in INVISIBLE_CATEGORIES]
    if not bad:
        return None
    codes = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(bad))
    return f"{what} {text!r} holds the control or invisible character(s) {codes}; use visible characters only"


class DuplicateGuard:
    """Remembers the source ids seen in one file and says when one comes again."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def check(self, source_id: str, index: int) -> str | None:
        """Return a rejection reason if ``source_id`` was seen before, else remember it."""
        first = self._seen.setdefault(source_id, index)
        if first != index:
            return f"duplicate source_id {source_id!r} in this file (first at record {first})"
        return None
