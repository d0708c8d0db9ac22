"""A CIF's data blocks as tag -> value, read by the one CIF tokenizer the reader uses (pymatgen's).

Every value the ingest checks (declared formula, Z, density, cell, symmetry operations, atom sites) and every
value pymatgen builds the crystal from come from the same tokens: :func:`cif_blocks` runs pymatgen's
``CifBlock`` tokenizer, so a value on the line after its tag, in a ``;`` text field, followed by a ``#``
comment, or beside a tag that merely starts alike (``_chemical_formula_sum_note``) is read exactly as pymatgen
reads it.

pymatgen's tokenizer deletes every character outside ASCII before it splits the text into tokens (``Ｌｉ``
vanished and shifted its loop by one value). Here each such character is carried through the tokenizer as an
ASCII escape and restored in the values, so a check sees the value as written; :func:`ascii_text` gives the text
pymatgen should parse, with each such character replaced by ``?`` rather than deleted, so its tokens are the same
tokens the checks saw.

Two things are settled before the tokenizer runs (issue 22, cif22c): blocks are split only at ``data_`` lines
outside ``;`` text fields (pymatgen split a block at a ``data_`` line inside an abstract and lost its sites), and
CIF2 (DDLm) dotted tags (``_atom_site.fract_x``, ``_cell.length_a``, ``_space_group.name_H-M_alt``,
``_space_group_symop.operation_xyz``) are written in their DDL1 form (``_atom_site_fract_x``, ...; the first
``.`` of a tag becomes ``_``), which pymatgen reads: a file written wholly in dotted form was refused as having
no atom sites.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from storage.validation import StructureError

_ESCAPE = re.compile("\x01([0-9a-f]+)\x02")
_BLOCK_START = re.compile(r"\s*data_", flags=re.IGNORECASE)  # a line that opens a data block
#: a CIF2 (DDLm) tag ``_category.item`` as a token (line start or after white space): group 1 is its category
_DOTTED_TAG = re.compile(r"(?<!\S)(_[A-Za-z][A-Za-z0-9_]*)\.(?=[A-Za-z0-9_])")

#: tags whose presence makes a data block a structure (pymatgen builds a structure only from atom sites)
_SITE_TAGS = ("_atom_site_label", "_atom_site_type_symbol", "_atom_site_fract_x", "_atom_site_cartn_x")


@dataclass(frozen=True, slots=True)
class CifBlockText:
    """One ``data_`` block of a CIF.

    Attributes:
        name: the block's name (after ``data_``).
        text: the block's own text, from its ``data_`` line to the next block, with CIF2 dotted tags written in
            their DDL1 form and a ``data_`` line inside a text field prefixed with ``.`` (``.data_``), so that
            pymatgen, given the block, does not split it again.
        tags: lower-case tag -> value as written (quotes removed, a text field's lines joined by spaces, a
            comment dropped): a string for a single value, a list of strings for a loop column. A CIF2 dotted tag
            (``_cell.formula_units_Z``) is given under its DDL1 spelling (``_cell_formula_units_z``).
        written_tags: the tags as the file spells them (pymatgen looks tags up case-sensitively).
        repeated: (lower-case tag, whether in a loop) for each tag the block states twice or more with different
            values (pymatgen keeps only the last: a second ``_atom_site`` loop replaced the first one's sites); a
            dotted and an underscore spelling of one tag count as the same tag.
    """

    name: str
    text: str
    tags: dict[str, Any]
    written_tags: frozenset[str]
    repeated: tuple[tuple[str, bool], ...] = ()

    @property
    def holds_structure(self) -> bool:
        """Whether the block lists atom sites (a ``data_global`` block of publication details does not)."""
        return any(tag in self.tags for tag in _SITE_TAGS)

    def scalar(self, tag: str) -> str | None:
        """The single value of ``tag`` (lower case), or None when it is absent or a loop column."""
        value = self.tags.get(tag)
        return value if isinstance(value, str) else None

    def column(self, tag: str) -> list[str]:
        """The values of ``tag`` (lower case) as a list: a loop column, a single value as one item, or []."""
        value = self.tags.get(tag)
        if value is None:
            return []
        return [value] if isinstance(value, str) else list(value)


def _escape(text: str) -> str:
    """The text with each character outside ASCII written as ``\\x01<hex>\\x02`` (one token character)."""
    if text.isascii():
        return text
    return "".join(ch if ch.isascii() else f"\x01{ord(ch):x}\x02" for ch in text)


def _unescape(value: str) -> str:
    return _ESCAPE.sub(_unescaped, value) if "\x01" in value else value


def _unescaped(match: re.Match[str]) -> str:
    """The character of one escape; a run of hex digits no character has (raw control bytes in the file, not an
    escape of :func:`ascii_text`) is left as written rather than raising ``OverflowError``/``ValueError``."""
    code = int(match.group(1)[:9], 16)
    return chr(code) if len(match.group(1)) <= 8 and code <= 0x10FFFF else match.group(0)


def ascii_text(text: str) -> str:
    """The text for pymatgen's parser: each character outside ASCII replaced by ``?`` (pymatgen would delete it
    and so merge or shift tokens)."""
    return text if text.isascii() else "".join(ch if ch.isascii() else "?" for ch in text)


@lru_cache(maxsize=8)
def cif_blocks(text: str) -> tuple[CifBlockText, ...]:
    """Every data block of a CIF, split and tokenized as pymatgen's ``CifFile.from_str`` does.

    Blocks of powder-diffraction data (``powder_pattern`` in the ``data_`` line) are skipped, as pymatgen skips
    them. Cached for the last few texts (the checks and the declared values read the same text).

    Raises:
        StructureError: ``malformed CIF: ...`` when a block cannot be tokenized (a loop whose values do not fill
            its rows, a loop without values).
    """
    from pymatgen.io.cif import CifBlock

    escaped = _escape(text.removeprefix("\ufeff"))  # a byte-order mark decoded as text
    blocks = []
    for chunk in _split_blocks(escaped):
        first_line = chunk.split("\n", 1)[0]
        if "powder_pattern" in first_line:
            continue
        name = _unescape(first_line.strip())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                block = CifBlock.from_str(f"data_{chunk}")
            except (ValueError, IndexError, ZeroDivisionError, KeyError) as exc:
                loop = isinstance(exc, ZeroDivisionError) or "zip()" in str(exc) or "multiple" in str(exc)
                detail = (
                    "a loop_'s values do not fill its rows (a value missing or extra, or a space inside an "
                    "unquoted value)"
                    if loop
                    else str(exc)
                )
                raise StructureError(f"malformed CIF: data block {name!r}: {detail}") from exc
        tags: dict[str, Any] = {}
        for key, value in block.data.items():
            tag = _unescape(key).lower()
            tags[tag] = _unescape(value) if isinstance(value, str) else [_unescape(str(v)) for v in value]
        repeated = _repeated_tags(CifBlock._process_string(f"data_{chunk}"))
        original = f"data_{chunk}"
        blocks.append(
            CifBlockText(
                name=name,
                text=_unescape(original),
                tags=tags,
                written_tags=frozenset(_unescape(k) for k in block.data),
                repeated=repeated,
            )
        )
    return tuple(blocks)


def _split_blocks(text: str) -> list[str]:
    """The text of each data block after its ``data_`` (as pymatgen's ``CifFile.from_str`` splits a CIF), split
    only at ``data_`` lines outside ``;`` text fields.

    Outside text fields each CIF2 dotted tag is written in its DDL1 form (:data:`_DOTTED_TAG`); inside one, a
    line that starts with ``data_`` is prefixed with ``.`` (text-field content is never read as a value of the
    crystal, and pymatgen, which splits at every such line, gets the block whole).
    """
    chunks: list[list[str]] = []
    in_field = False
    for line in text.splitlines(keepends=True):
        if line.startswith(";"):
            in_field = not in_field
        elif in_field:
            if _BLOCK_START.match(line):
                line = "." + line.lstrip()
        else:
            start = _BLOCK_START.match(line)
            if start:
                chunks.append([line[start.end() :]])
                continue
            line = _DOTTED_TAG.sub(r"\1_", line) if "." in line else line
        if chunks:
            chunks[-1].append(line)
    return ["".join(lines) for lines in chunks]


def _repeated_tags(tokens: Any) -> tuple[tuple[str, bool], ...]:
    """Each tag stated more than once with different values in a block's token stream, walked as pymatgen's
    ``CifBlock.from_str`` walks it: (lower-case tag, whether one of its statements is a loop column)."""
    seen: dict[str, list[tuple[bool, tuple[str, ...]]]] = {}
    deq = list(tokens)[1:]  # the data_ line
    i = 0
    while i < len(deq):
        token = deq[i]
        if token[0] == "_eof":
            break
        if token[0].startswith("_"):
            value = "".join(deq[i + 1]) if i + 1 < len(deq) else ""
            seen.setdefault(token[0].lower(), []).append((False, (value,)))
            i += 2
        elif token[0].startswith("loop_"):
            i += 1
            columns: list[str] = []
            while i < len(deq) and deq[i][0].startswith("_") and not deq[i][0].startswith("loop_"):
                columns.append("".join(deq[i]))
                i += 1
            items: list[str] = []
            while i < len(deq) and not deq[i][0].startswith(("loop_", "_")):
                items.append("".join(deq[i]).strip())
                i += 1
            for k, column in enumerate(columns):
                seen.setdefault(column.lower(), []).append((True, tuple(items[k :: len(columns)])))
        else:
            i += 1
    return tuple(
        (_unescape(tag), any(loop for loop, _ in stated))
        for tag, stated in seen.items()
        if len({values for _, values in stated}) > 1
    )


def structure_block(text: str) -> CifBlockText:
    """The one data block of a CIF that holds a structure (IUCr files put publication details in a
    ``data_global`` block beside it).

    Raises:
        StructureError: for a CIF whose blocks cannot be tokenized, with no block of atom sites, or with more
            than one (the lake stores one structure per file and could not tell which one the file's row means).
    """
    blocks = cif_blocks(text)
    holding = [b for b in blocks if b.holds_structure]
    if not holding:
        return _no_structure(blocks)
    if len(holding) > 1:
        names = ", ".join(f"data_{b.name}" for b in holding[:4]) + (", ..." if len(holding) > 4 else "")
        raise StructureError(
            f"the CIF holds {len(holding)} structures (data blocks {names}), one was expected; split it into one "
            "file per structure"
        )
    return holding[0]


def _no_structure(blocks: tuple[CifBlockText, ...]) -> CifBlockText:
    if not blocks:
        raise StructureError("malformed CIF: no data_ block (the text is no CIF)")
    raise StructureError(
        f"malformed CIF: no data block lists atom sites (_atom_site_label, _atom_site_fract_x, ...; "
        f"{len(blocks)} block(s) read)"
    )
