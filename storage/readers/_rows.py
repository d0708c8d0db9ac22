"""Helpers that assemble the scalar columns of a ``structures`` row and read JSON safely."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storage.readers._common import (
    LineSource,
    OutOfRangeError,
    Rejection,
    TextRecord,
    excerpt,
    parse_float,
    short_token,
)


def clean_json(value: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by ``None``, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def extra_json(extra: dict[str, Any]) -> str | None:
    """Serialise source-specific fields (``None`` values dropped); ``None`` when nothing is left."""
    kept = {k: v for k, v in clean_json(extra).items() if v is not None and v != [] and v != ""}
    return json.dumps(kept, sort_keys=True) if kept else None


def check_finite(value: Any, what: str) -> tuple[float | None, str | None]:
    """Read an optional number that must be finite when present: ``(value, None)`` or ``(None, reason)``."""
    try:
        number = parse_float(value)
    except OutOfRangeError as exc:
        return None, f"{what} {exc}"
    except ValueError:
        return None, f"{what} {excerpt(str(value), 40)!r} is not a number"
    if number is not None and not math.isfinite(number):
        return None, f"{what} is {number}"
    return number, None


def label_from_flag(flag: Any) -> int | None:
    """1/0 from a boolean or 0/1 flag, ``None`` when absent."""
    if flag is None or flag == "":
        return None
    if isinstance(flag, bool):
        return int(flag)
    try:
        value = int(float(flag))
    except OverflowError:  # ``inf``, or a 400-digit JSON integer: a ValueError, so one record's reason
        value = -1
    if value not in (0, 1):
        raise ValueError(f"label {short_token(repr(flag))} is neither 0 nor 1")
    return value


def structure_scalars(
    *,
    source: str,
    source_id: str,
    license: str,
    raw_formula: str,
    dhf: float | None,
    energy_kind: str | None,
    e_above_hull: float | None = None,
    icsd_label: int | None = None,
    label_origin: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``structures`` columns a reader knows before the cell is parsed."""
    return {
        "source": source,
        "source_id": source_id,
        "license": license,
        "raw_formula": raw_formula,
        "dhf_dft_ev_per_atom": dhf,
        "energy_kind": energy_kind if dhf is not None else None,
        "energy_method": "dft" if dhf is not None else None,
        "relaxation": None,  # universal-potential rows only (flows.augmentation sets them)
        "relax_steps": None,
        "e_above_hull_ev_per_atom": e_above_hull,
        "icsd_label": icsd_label,
        "label_origin": label_origin if icsd_label is not None else None,
        "extra_json": extra_json(extra or {}),
    }


def iter_json_lines(path: Path) -> Iterator[tuple[TextRecord, dict[str, Any]] | Rejection]:
    """Stream a JSON Lines file as ``(record, object)`` pairs; bad lines become :class:`Rejection`."""
    from storage.readers._common import iter_lines

    file = Path(path).name
    for item in iter_lines(path):
        if isinstance(item, Rejection):
            yield item
            continue
        try:
            obj = json.loads(item.text)
        except json.JSONDecodeError as exc:
            yield Rejection(file, item.index, None, f"malformed JSON: {exc}", excerpt(item.text))
            continue
        if not isinstance(obj, dict):
            yield Rejection(file, item.index, None, "JSON line is not an object", excerpt(item.text))
            continue
        yield item, obj


def read_text(path: Path) -> tuple[str, str | None]:
    """The whole decoded text of a plain or gzip file and, if the stream broke, why."""
    source = LineSource(path)
    text = "".join(source)
    return text, source.error


def iter_json_array(text: str) -> Iterator[tuple[int, Any] | str]:
    """Decode the elements of a top-level JSON array one by one.

    Yields ``(index, element)`` pairs; a decoding failure yields one message string and stops,
    so the elements before it are kept.
    """
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if not text.startswith("[", pos):
        yield "file is not a JSON array"
        return
    pos += 1
    index = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            yield f"JSON array is cut off after {index} elements"
            return
        if text[pos] == "]":
            return
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield f"malformed JSON after {index} elements: {exc}"
            return
        yield index, value
        index += 1
