"""The one rule for a source name (``--source`` of every ingest, the label sources of the flows).

A source name labels every row an ingest writes and is how a user finds them again, so two names that look
the same must be one name, and a name must look like what it is. :func:`check_source_name` returns the name
in Unicode NFKC form (full-width, ligature and other compatibility letters become the plain ones: ``ｃｏｄ``
is ``cod``; ``é`` typed as one code point or as ``e`` and a combining accent is one name) and refuses, in one
sentence each:

- an empty or blank name, one with leading or trailing spaces or two spaces in a row, and one longer than
  :data:`MAX_SOURCE_NAME_CHARS` characters;
- invisible characters: control, format (zero-width space, bidirectional overrides), line and paragraph
  separators, private-use, unassigned and surrogate code points;
- letters of more than one script (``cоd`` with a Cyrillic ``о``), except Latin with the scripts a Chinese,
  Japanese or Korean name combines (Han with Hiragana and Katakana, with Bopomofo, or with Hangul), as
  Unicode's "highly restrictive" identifier profile (UTS #39) allows; digits other than 0-9, and
  punctuation or symbols outside ASCII (``‐``, ``∕``, ``․`` look like ``-``, ``/``, ``.``);
- a name written wholly in Cyrillic or Greek letters that all look like Latin ones (Cyrillic ``сор`` reads
  as ``cop``);
- a name that looks like a path: ``.`` or ``..`` (any name of dots only), or one holding ``/``, ``\\`` or
  ``:``;
- a name that is no plain identifier (issue 22, cif22c): it may hold letters, digits 0-9 and the separators
  ``_``, ``-`` and ``.`` only (no space, ``~``, ``*``, ``$``, quotes, brackets: ``~`` and ``$HOME`` read as a
  home folder or a variable, ``x*`` as a wildcard), must begin with a letter or digit (``-x`` reads as an
  option, ``.x`` as a hidden file), must not end with ``.`` (Windows drops it), and must not be a name Windows
  reserves for a device (``con``, ``prn``, ``aux``, ``nul``, ``com0``-``com9``, ``lpt0``-``lpt9``, in any case
  and before any extension: ``con.cifs``), since a source name also names files and folders;
- a name that differs from a registered or stored source name only by case, by the separators ``-``, ``_``,
  ``.`` and space (swapped, added or left out: ``my_cifs``, ``my cifs``, ``my.cifs`` and ``mycifs`` beside
  ``my-cifs``), or by look-alike characters (``0``/``O``, ``1``/``l``/``I``, ``rn``/``m``, ``vv``/``w``):
  ``COD`` beside a stored ``cod``, ``gnorne`` beside ``gnome``. The same name again is of course accepted
  (ingest is idempotent).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from storage.errors import StorageError

MAX_SOURCE_NAME_CHARS = 64
"""Longest source name accepted, in characters (after NFKC normalisation)."""

#: script combinations a single name may use (besides any one script alone), after UTS #39 "highly restrictive"
_COMBINATIONS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
_SCRIPT_ALIASES = {"CJK": "HAN", "KATAKANA-HIRAGANA": "KATAKANA", "IDEOGRAPHIC": "HAN"}
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"})

#: Cyrillic and Greek letters that look like a Latin letter, and that letter (upper and lower case)
_LATIN_LOOKALIKES = {
    **dict(zip("аАВсСеЕһНіІјЈкКМоОрРѕЅТхХуУԁԛԝӏ", "aABcCeEhHiIjJkKMoOpPsSTxXyYdqwl", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧαικνορυχ", "ABEZHIKMNOPTYXaikvopux", strict=True)),
}
#: characters that look alike within Latin and the digits, folded onto one of them for the comparison
_FOLD = {"0": "o", "O": "o", "1": "l", "I": "l", "|": "l", "ı": "i", "_": "", "-": "", ".": "", " ": ""}
#: characters that make a name look like a path (a folder separator, a drive or URL colon)
_PATH_CHARACTERS = "/\\:"
_FOLD_SEQUENCES = (("rn", "m"), ("vv", "w"))
#: the ASCII characters a source name may hold besides letters and digits
_SEPARATORS = "_-."
#: device names Windows reserves, as a whole name or before an extension (``con``, ``con.txt``)
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{k}" for k in range(10)), *(f"lpt{k}" for k in range(10))}
)


class SourceNameError(StorageError, ValueError):
    """A source name that cannot label rows (empty, invisible characters, mixed scripts, a look-alike, ...)."""


def _script(ch: str) -> str:
    """The script of a letter or mark, from its Unicode name (``LATIN SMALL LETTER A`` -> ``LATIN``)."""
    word = unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
    return _SCRIPT_ALIASES.get(word, word)


def _refuse(text: str, why: str) -> SourceNameError:
    return SourceNameError(f"The source name {text!r} {why}.")


def source_skeleton(name: str) -> tuple[str, str]:
    """Two keys under which look-alike names agree: case folded first, then look-alikes folded (``COD`` and
    ``cod``), and look-alikes folded first (``I`` and ``l``, which differ once case is folded). The separators
    ``-``, ``_``, ``.`` and space are left out of both, so ``att1``, ``att_1``, ``at t1`` and ``att.1`` agree."""

    def fold(text: str) -> str:
        text = "".join(_FOLD.get(c, _LATIN_LOOKALIKES.get(c, c)) for c in text)
        for many, one in _FOLD_SEQUENCES:
            text = text.replace(many, one)
        return text

    text = unicodedata.normalize("NFKC", name)
    return fold(text.casefold()), fold(text).casefold()


def _identifier_problem(text: str) -> str | None:
    """Why a name (NFKC, visible, no path characters) is no plain identifier, else None: only letters (with
    their combining marks), digits 0-9 and :data:`_SEPARATORS`; a letter or digit first; no ``.`` last; no
    name of :data:`_WINDOWS_RESERVED` before its first ``.``."""
    plain = "letters, digits 0-9, '_', '-' and '.'; e.g. my-cifs or icsd_2024.1"
    bad = [c for c in text if c.isascii() and not (c.isalnum() or c in _SEPARATORS)]
    if bad:
        shown = ", ".join(repr(c) for c in dict.fromkeys(bad))
        return f"holds {shown}; a source name is a plain identifier of {plain}"
    first = text[0]
    if not (first.isalpha() or first in "0123456789"):
        return f"begins with {first!r}; begin it with a letter or digit (a source name is a plain identifier of {plain})"
    if text.endswith("."):
        return "ends with '.', which Windows drops from a file name; end it with a letter or digit"
    stem = text.split(".", 1)[0].casefold()
    if stem in _WINDOWS_RESERVED:
        return (
            f"is (or begins with) {stem!r}, a device name Windows reserves, so no file or folder can bear it; "
            "give another name"
        )
    return None


def check_source_name(name: str, *, known: Iterable[str] = ()) -> str:
    """The source name in Unicode NFKC form, refused when it could be mistaken (module docstring's rules).

    Args:
        name: the name as typed.
        known: names already in use (registered sources, sources stored in the lake); a name that differs
            from one of them only by case, separators or look-alike characters is refused.

    Raises:
        SourceNameError: the name breaks one of the rules; the message says which, in one sentence.
    """
    text = unicodedata.normalize("NFKC", str(name))
    if not text.strip():
        raise SourceNameError("The source name is empty; give a name such as --source my-cifs.")
    bad = [c for c in text if unicodedata.category(c) in _INVISIBLE or (c.isspace() and c != " ")]
    if bad:
        raise _refuse(
            text,
            f"holds the invisible character(s) {', '.join(f'U+{ord(c):04X}' for c in dict.fromkeys(bad))}; "
            "give a name of visible characters",
        )
    if text != text.strip():
        raise _refuse(text, "starts or ends with spaces; give it without them")
    if "  " in text:
        raise _refuse(text, "holds two spaces in a row; use one")
    if not text.strip("."):
        raise _refuse(
            text, "is made of dots only, which reads as a folder; give a name with letters or digits"
        )
    path_like = [c for c in _PATH_CHARACTERS if c in text]
    if path_like:
        raise _refuse(
            text,
            f"holds {' and '.join(repr(c) for c in path_like)}, so it looks like a path; use '-' or '_' "
            "instead",
        )
    if len(text) > MAX_SOURCE_NAME_CHARS:
        raise _refuse(
            text[:MAX_SOURCE_NAME_CHARS] + "...",
            f"has {len(text)} characters, more than {MAX_SOURCE_NAME_CHARS}; give a shorter name",
        )
    scripts: dict[str, str] = {}
    previous = ""
    for c in text:
        category = unicodedata.category(c)
        if c.isascii():
            pass
        elif category == "Nd":
            raise _refuse(text, f"holds the digit {c!r} (U+{ord(c):04X}); write digits as 0-9")
        elif category[0] in "PSZN":
            raise _refuse(
                text,
                f"holds {c!r} (U+{ord(c):04X}, {unicodedata.name(c, 'unnamed').lower()}); use ASCII punctuation",
            )
        elif category[0] == "M" and not previous.isalpha():
            raise _refuse(text, f"holds a combining mark U+{ord(c):04X} that follows no letter")
        if c.isalpha():
            scripts.setdefault(_script(c), c)
        previous = c if category[0] != "M" else previous
    problem = _identifier_problem(text)
    if problem:
        raise _refuse(text, problem)
    if len(scripts) > 1 and not any(set(scripts) <= allowed for allowed in _COMBINATIONS):
        names = ", ".join(f"{script.title()} ({example!r})" for script, example in scripts.items())
        raise _refuse(
            text, f"mixes the scripts {names}, so it can look like another name; write it in one script"
        )
    if scripts and set(scripts) <= {"CYRILLIC", "GREEK"}:
        letters = [c for c in text if c.isalpha()]
        if all(c in _LATIN_LOOKALIKES for c in letters):
            latin = "".join(_LATIN_LOOKALIKES.get(c, c) for c in text)
            raise _refuse(
                text, f"is written in {next(iter(scripts)).title()} letters that read as the Latin {latin!r}"
            )
    other = look_alike(text, known)
    if other is not None:
        raise _refuse(
            text,
            f"looks like the source {other!r} already in use (they differ only in case, separators or "
            f"look-alike characters); use {other!r} to add to it, or a distinct name",
        )
    return text


def look_alike(name: str, known: Iterable[str]) -> str | None:
    """The first of ``known`` that ``name`` differs from only by case, separators or look-alike characters
    (:func:`source_skeleton`), or None; also None when ``name`` itself is among ``known`` (the same source)."""
    known = list(known)
    if name in known:
        return None
    mine = source_skeleton(name)
    for other in known:
        theirs = source_skeleton(other)
        if mine[0] == theirs[0] or mine[1] == theirs[1]:
            return other
    return None
