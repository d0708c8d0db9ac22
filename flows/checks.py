"""Checks of output targets and command-line inputs, run before any work starts.

Each check raises ``ValueError`` with a one-sentence message that names the option; the CLI prints it as a
one-line error. Two kinds of input have one check each:

- **output paths** (:func:`output_path`): every ``--out``, ``--csv``, ``--parquet`` and ``--export-cif``.
  The target is tried the way it will be written (the file or folder made and removed again, or a file
  made and removed inside an existing folder), so a path the operating system refuses is refused up front
  with its reason: ``/proc/x``, a folder under a file, a read-only folder, a name that is too long, a
  folder that does not exist. :func:`write_failure` words an error that still happens while writing.
- **numbers** (:func:`number_problem`, :func:`parameter_error`): every numeric option must be finite and
  inside its range; the message names the option, the range and the value.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import types
import typing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError
    from pydantic.fields import FieldInfo

#: what an output option names: a file, a folder of files, or either (decided by ``--format``)
OutputKind = Literal["file", "folder", "file or folder"]


class OutputPathError(ValueError):
    """An output path that cannot be written; ``str()`` is one line naming the option, path and reason."""


def _shown(path: Path | str, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else text[: limit - 20] + f"... ({len(text)} characters)"


def write_failure(exc: OSError, path: Path, option: str) -> str:
    """One line for an ``OSError`` met writing ``path`` (named by ``option``): the path, the operating
    system's reason and its errno symbol, and what to do; a refusal of the disk (full, read-only, no
    permission) in the words of :func:`storage.errors.describe_write_failure`."""
    from storage.errors import WRITE_ERRNOS, describe_write_failure

    code = exc.errno or 0
    advice = f"or choose another {option}"
    if code in WRITE_ERRNOS:
        return describe_write_failure(exc, _shown(path), advice)
    reason, remedy = (os.strerror(code) if code else str(exc).splitlines()[0]).lower(), "check the path"
    if code == errno.ENOENT and not _exists(path.parent):
        reason, remedy = f"the folder {_shown(path.parent)} does not exist", "create it first"
    elif code == errno.ENOTDIR:
        reason = f"{_shown(_nearest_existing(path.parent))} is a file, not a folder"
    elif code == errno.EISDIR:
        reason, remedy = "a folder of that name is in the way", "remove or rename that folder"
    symbol = errno.errorcode.get(code, "")
    return (
        f"Cannot write {_shown(path)}: {reason}"
        + (f" ({symbol})" if symbol else "")
        + f"; {remedy}, {advice}."
    )


def written_output(exc: OSError, outputs: dict[Path, str]) -> str | None:
    """:func:`write_failure` of ``exc`` when it names a path at or under one of ``outputs`` (``{path:
    option}``: the output paths a command checked), else None. pyarrow names the file only in its message."""
    import re

    named = [exc.filename, exc.filename2, *re.findall(r"'([^']+)'", str(exc))]
    for text in (n for n in named if n):
        where = Path(os.fsdecode(text)).absolute()
        for path, option in outputs.items():
            if where == path.absolute() or path.absolute() in where.parents:
                return write_failure(exc, where, option)
    return None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a name too long to look up
        return False


def _nearest_existing(path: Path) -> Path:
    here = path
    while not _exists(here) and here != here.parent:
        here = here.parent
    return here


def output_path(path: Path, option: str = "--out", kind: OutputKind = "folder") -> Path:
    """Check an output target before any work: raises :class:`OutputPathError` (a ``ValueError``) when the
    operating system would refuse to write it.

    A new target is made and removed again (a file, or a folder for ``kind="folder"``); the folder it goes
    into must exist. An existing folder gets a file made and removed inside it; an existing file is
    opened for writing without being changed. Nothing is left behind.

    Args:
        path: the path as given (``~`` is expanded).
        option: the option that named it, for the message (``--out``, ``--csv``, ``--export-cif``).
        kind: ``"file"`` (an existing folder is refused), ``"folder"`` (an existing file is refused) or
            ``"file or folder"`` (the format decides later).

    Returns:
        The expanded path.
    """
    path = path.expanduser()
    try:  # a name too long for the file system fails even to be looked at
        if kind == "folder" and path.exists() and not path.is_dir():
            raise OutputPathError(
                f"{option} {_shown(path)} exists and is not a folder; give a folder for the files."
            )
        if kind == "file" and path.is_dir():
            raise OutputPathError(f"{option} {_shown(path)} is a folder; give a file name for the output.")
        if path.is_dir():
            probe = path / f".csp-write-check-{uuid.uuid4().hex[:12]}"
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            probe.unlink()
        elif path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))  # writable, and left as it is
        elif kind == "folder":
            path.mkdir()
            path.rmdir()
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            path.unlink()
    except OSError as exc:
        raise OutputPathError(write_failure(exc, path, option)) from exc
    return path


def output_folder(path: Path, option: str = "--export-cif") -> Path:
    """:func:`output_path` of a folder (kept for the campaign wiring's ``export_dir``)."""
    return output_path(path, option, "folder")


@contextlib.contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """A hidden temporary name beside ``path`` to write a one-file output to, renamed onto ``path`` only
    when the block ends without an error: a write that fails half-way leaves ``path`` as it was (absent,
    or the earlier file) and no partial file. An ``OSError`` with an errno names ``path``, not the
    temporary file (pyarrow names it only in its message)."""
    tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:12]}")
    try:
        yield tmp
        tmp.replace(path)
    except OSError as exc:
        if exc.errno:
            raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ numbers


def _number(value: float | int) -> str:
    """``0``, ``1``, ``2592000``, ``0.05``, ``-0.1``, ``nan``, ``inf``: whole floats without ``.0``."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def allowed_numbers(
    low: float | None,
    high: float | None,
    *,
    integer: bool,
    low_open: bool = False,
    high_open: bool = False,
) -> str:
    """The values a numeric option takes, in words: ``an integer from 1 to 10000``, ``a finite number
    above 0``, ``an integer of at least 0``."""
    kind = "an integer" if integer else "a finite number"
    if low is not None and high is not None and not (low_open or high_open):
        return f"{kind} from {_number(low)} to {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"above {_number(low)}" if low_open else f"of at least {_number(low)}")
    if high is not None:
        parts.append(f"below {_number(high)}" if high_open else f"of at most {_number(high)}")
    return " ".join([kind, " and ".join(parts)]) if parts else kind


def number_problem(
    option: str,
    value: Any,
    low: float | None,
    high: float | None,
    *,
    integer: bool,
    low_open: bool = False,
    high_open: bool = False,
) -> str | None:
    """The one-line refusal of ``value`` for a numeric ``option``, or None when it is allowed (finite and
    inside ``low``..``high``; ``*_open``: the bound itself is excluded)."""
    if value is None or isinstance(value, bool):
        return None
    bad = not math.isfinite(value) if isinstance(value, float) else False
    bad = bad or (low is not None and (value < low or (low_open and value == low)))
    bad = bad or (high is not None and (value > high or (high_open and value == high)))
    if not bad:
        return None
    allowed = allowed_numbers(low, high, integer=integer, low_open=low_open, high_open=high_open)
    return f"{option} must be {allowed}, not {_number(value)}."


def numeric_bounds(field: FieldInfo) -> dict[str, Any] | None:
    """``low``, ``high``, ``integer``, ``low_open`` and ``high_open`` of a pydantic field of type int or
    float (optional or not), from its ``ge``/``gt``/``le``/``lt``; None for any other field."""
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), None)
    if annotation not in (int, float):
        return None
    out: dict[str, Any] = {"low": None, "high": None, "integer": annotation is int}
    out.update(low_open=False, high_open=False)
    for item in field.metadata:
        for attr, key, is_open in (
            ("ge", "low", False),
            ("gt", "low", True),
            ("le", "high", False),
            ("lt", "high", True),
        ):
            if getattr(item, attr, None) is not None:
                out[key] = getattr(item, attr)
                out[f"{key}_open"] = is_open
    return out


def option_name(field: str) -> str:
    """The command-line spelling of a parameter field: ``outer_steps`` -> ``--outer-steps``."""
    return "--" + field.replace("_", "-")


#: names in the science's messages that are no single field: the options that set them
_OPTION_GROUPS = {"formula_units": "--formula-units-min/--formula-units-max"}


def option_words(message: str, model: type[BaseModel]) -> str:
    """``message`` with the Python names of ``model``'s fields (those with an underscore: ``formula_units_min``,
    ``spread_penalty``, ``max_atoms``) spelt as the command line's options (``--formula-units-min``), and a
    "(--option)" right after the option it repeats left out."""
    names = {n: option_name(n) for n in model.model_fields if "_" in n} | _OPTION_GROUPS
    pattern = (
        r"(?<![\w./'\"-])(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")(?![\w'\"])"
    )
    text = re.sub(pattern, lambda m: names[m.group(1)], message)
    return re.sub(r"(--[\w-]+)( [^()]*?) \(\1\)", r"\1\2", text)


def parameter_error(exc: ValidationError, model: type[BaseModel]) -> str:
    """One sentence for the first error of a parameter model (:class:`flows.campaigns.CampaignParameters`,
    :class:`flows.models.TrainParameters`): the option, what it takes (its range or its choices) and the
    value given; a rule between fields in its own words."""

    first = exc.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ").rstrip(".") + "."
    if not first["loc"]:
        return option_words(message, model)
    name = str(first["loc"][0])
    option = option_name(name)
    field = model.model_fields.get(name)
    if field is None:
        return f"{option}: {message}"
    value = first.get("input")
    bounds = numeric_bounds(field)
    if bounds is not None and isinstance(value, int | float):
        return number_problem(option, value, **bounds) or f"{option}: {message}"
    choices = _choices(field.annotation)
    if choices:
        return f"{option} must be one of {', '.join(choices)}, not {str(value)[:60]!r}."
    return f"{option}: {message}"


def _choices(annotation: Any) -> list[str]:
    """The strings of a ``Literal`` annotation, optional or not (none for any other annotation)."""
    if typing.get_origin(annotation) is Literal:
        return [a for a in typing.get_args(annotation) if isinstance(a, str)]
    return [c for a in typing.get_args(annotation) if a is not type(None) for c in _choices(a)]


def parse_inputs(items: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` options as ``{name: path}``; raises ``ValueError`` for a malformed item."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--input takes NAME=PATH, not {item[:80]!r}.")
        if name in out:
            raise ValueError(f"--input names {name[:40]!r} twice.")
        out[name] = Path(path).expanduser()
    return out
