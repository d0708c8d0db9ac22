"""Chemical compositions: parsing formulas such as ``MgO``, ``BaZrO3``, ``K2Se`` or ``Ca(OH)2``.

A :class:`Composition` is an ordered mapping element symbol -> count per formula unit. Parsing is strict:
anything that is not a well-formed formula of supported elements with positive integer counts raises
:class:`CompositionError` (a ``ValueError``) with a one-sentence message naming the problem.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from csp.errors import InputError
from csp.structures import elements

#: Default cap on atoms per unit cell that the search handles.
DEFAULT_MAX_ATOMS = 40
#: longest formula text accepted (40 atoms of two-letter elements with counts fit in far fewer)
MAX_FORMULA_CHARS = 256

_TOKEN = re.compile(r"[A-Z][a-z]*|[0-9]+(?:\.[0-9]*)?|\.[0-9]+|[()]|\s+|.", re.DOTALL)
_MAX_DEPTH = 8
#: Greek and Cyrillic letters that look like the Latin letters of element symbols (a formula typed or
#: pasted with them is refused with the plain spelling as a hint; NFKC covers full-width and the like)
_LOOK_ALIKES = str.maketrans(
    "\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u03bf"
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0430\u0435\u043e\u0440\u0441\u0445",
    "ABEZHIKMNOPTYXoABEKMHOPCTXaeopcx",
)


def reduced_formula(composition: Any) -> str:
    """The reduced formula of a crystal's pymatgen ``Composition``, as pymatgen writes it (``LiH``, ``BaZrO3``)
    except for a single element: pymatgen names elemental H, N, O, F and Cl after their molecules (``H2``, ...),
    which a crystal of the element is not, so a crystal of hydrogen is ``H``; nor are pymatgen's other special
    names kept (its peroxides: 1:1 K:O is ``KO``, not ``K2O2``), as the lake spells them."""
    found = composition.elements
    if len(found) == 1:
        return found[0].symbol
    name = composition.reduced_formula
    plain = {special: written for written, special in type(composition).special_formulas.items()}
    return plain.get(name, name)


class CompositionError(InputError):
    """A formula that cannot be searched: malformed, unknown element, bad count, or too many atoms."""


@dataclass(frozen=True, slots=True)
class Composition:
    """Element symbol -> atoms per formula unit, in order of first appearance in the formula."""

    counts: tuple[tuple[str, int], ...]

    @property
    def symbols(self) -> list[str]:
        return [s for s, _ in self.counts]

    @property
    def num_atoms(self) -> int:
        """Atoms per formula unit."""
        return sum(n for _, n in self.counts)

    @property
    def formula(self) -> str:
        """Canonical formula: symbols in order, a count only where it is not 1 (``Ca(OH)2`` -> ``CaO2H2``)."""
        return "".join(s if n == 1 else f"{s}{n}" for s, n in self.counts)

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    def reduced(self) -> tuple[Composition, int]:
        """The reduced composition and the factor it was divided by (``Mg2O2`` -> ``(MgO, 2)``)."""
        factor = reduce(math.gcd, (n for _, n in self.counts))
        return Composition(tuple((s, n // factor) for s, n in self.counts)), factor

    def numbers(self, formula_units: int = 1) -> np.ndarray:
        """Atomic numbers of one cell with ``formula_units`` formula units, grouped by element."""
        return np.array(
            [elements.atomic_number(s) for s, n in self.counts for _ in range(n * formula_units)],
            dtype=np.int64,
        )

    def max_formula_units(self, max_atoms: int = DEFAULT_MAX_ATOMS) -> int:
        """The largest number of formula units whose cell holds at most ``max_atoms`` atoms."""
        return max_atoms // self.num_atoms


def parse_composition(text: str, *, max_atoms: int = DEFAULT_MAX_ATOMS) -> Composition:
    """Parse a chemical formula into a :class:`Composition`.

    Args:
        text: a formula such as ``"MgO"``, ``"BaZrO3"`` or ``"Ca(OH)2"``; surrounding whitespace is ignored.
        max_atoms: the most atoms per cell (the campaign's ``max_atoms``); a formula unit with more is refused.

    Returns:
        The composition with counts per formula unit (not reduced; repeated elements are summed).

    Raises:
        CompositionError: for an empty or malformed string, a character outside ASCII (a full-width
            letter, a Greek or Cyrillic look-alike: the message names it and gives the plain spelling
            where there is one), an unknown element, a zero or non-integer count, or more than
            ``max_atoms`` atoms per formula unit.
    """
    if not isinstance(text, str):
        raise CompositionError(f"A formula must be a string, not {type(text).__name__}.")
    stripped = text.strip()
    if not stripped:
        raise CompositionError("The formula is empty; give one such as 'MgO' or 'BaZrO3'.")
    if len(stripped) > MAX_FORMULA_CHARS:
        raise CompositionError(
            f"The formula is {len(stripped):,} characters long (it starts {stripped[:24]!r}); a formula "
            f"the search supports has at most {MAX_FORMULA_CHARS} characters."
        )
    _check_ascii(stripped)
    tokens = _TOKEN.findall(stripped)
    pos, totals = _parse_group(tokens, 0, stripped, depth=0)
    if pos != len(tokens):
        raise CompositionError(f"Unbalanced ')' in formula {stripped!r}.")
    if not totals:
        raise CompositionError(f"Formula {stripped!r} contains no elements.")
    composition = Composition(tuple(totals.items()))
    if composition.num_atoms > max_atoms:
        raise CompositionError(
            f"Formula {stripped!r} has {composition.num_atoms} atoms per formula unit, more than max_atoms "
            f"({max_atoms} atoms per cell{', the default' if max_atoms == DEFAULT_MAX_ATOMS else ''}) allows; "
            "raise max_atoms, or choose a smaller formula."
        )
    return composition


def _check_ascii(text: str) -> None:
    """Refuse a formula with a character outside ASCII, naming the first one (its Unicode name and code
    point) and, where NFKC or the look-alike table gives one, the plain spelling."""
    import unicodedata

    where = next((i for i, ch in enumerate(text) if not ch.isascii()), None)
    if where is None:
        return
    ch = text[where]
    name = unicodedata.name(ch, "unnamed character")
    plain = unicodedata.normalize("NFKC", text).translate(_LOOK_ALIKES)
    hint = "."
    if plain.isascii():
        try:
            parse_composition(plain, max_atoms=10**6)
            hint = f"; did you mean {plain!r}?"
        except CompositionError:
            pass  # no plain spelling that parses: name the character only
    raise CompositionError(
        f"Formula {text!r} holds {ch!r} ({name}, U+{ord(ch):04X}) at character {where + 1}: element symbols "
        f"and counts are plain ASCII letters and digits{hint}"
    )


def _parse_count(tokens: list[str], pos: int, text: str) -> tuple[int, int]:
    """Read an optional count after an element or a closing bracket."""
    if pos < len(tokens) and tokens[pos][0] in "0123456789.":
        token = tokens[pos]
        if not token.isdigit():
            raise CompositionError(f"Count {token!r} in formula {text!r} is not a whole number.")
        value = int(token)
        if value == 0:
            raise CompositionError(f"Formula {text!r} has a zero count; every count must be at least 1.")
        return value, pos + 1
    return 1, pos


def _parse_group(tokens: list[str], pos: int, text: str, depth: int) -> tuple[int, dict[str, int]]:
    totals: dict[str, int] = {}
    while pos < len(tokens):
        token = tokens[pos]
        if token == ")":
            if depth == 0:
                raise CompositionError(f"Unbalanced ')' in formula {text!r}.")
            return pos, totals
        if token == "(":
            if depth >= _MAX_DEPTH:
                raise CompositionError(f"Formula {text!r} nests brackets more than {_MAX_DEPTH} deep.")
            end, inner = _parse_group(tokens, pos + 1, text, depth + 1)
            if end >= len(tokens) or tokens[end] != ")":
                raise CompositionError(f"Unclosed '(' in formula {text!r}.")
            if not inner:
                raise CompositionError(f"Empty brackets '()' in formula {text!r}.")
            count, pos = _parse_count(tokens, end + 1, text)
            for sym, n in inner.items():
                totals[sym] = totals.get(sym, 0) + n * count
            continue
        if token[0].isupper():
            if not elements.is_supported_symbol(token):
                raise CompositionError(
                    f"Unknown or unsupported element symbol {token!r} in formula {text!r}."
                )
            count, pos = _parse_count(tokens, pos + 1, text)
            totals[token] = totals.get(token, 0) + count
            continue
        if token[0] in "0123456789.":
            raise CompositionError(f"Count {token!r} in formula {text!r} does not follow an element.")
        raise CompositionError(f"Unexpected character {token[0]!r} in formula {text!r}.")
    if depth > 0:
        raise CompositionError(f"Unclosed '(' in formula {text!r}.")
    return pos, totals
