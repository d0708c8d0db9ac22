"""The shape of one OPTIMADE ``structures`` entry, checked in one place before any value is used.

:class:`OptimadeEntry` and :class:`OptimadeAttributes` are pydantic models in strict mode with the types of the
OPTIMADE specification (v1.0 to v1.2) for every field this reader uses: an ``nsites`` of ``5.0`` or ``"5"``,
an ``nperiodic_dimensions`` of ``"3"``, a ``dimension_types`` of ``"abc"``, a ``concentration`` of ``1.0`` or
``["abc"]``, a ``dimension_types`` of ``[true, true, true]`` or ``[1.0, 1, 1]``, a species given as the string
``"Li"`` or an ``id`` of ``["a"]`` or ``5`` (the specification's id is a string) are each refused with the path
of the field and what it should be, never coerced and never a traceback. Fields the reader does not use pass
through (``extra="allow"``). Two spellings the specification itself has are both read: ``mass`` as one number
(v1.0) or one number per chemical symbol (v1.1 and later).

:func:`check_entry` and :func:`check_attributes` return the validated models or raise
:class:`~storage.validation.StructureError` with one sentence; :func:`visible_text_problem` is the one rule for
ids and names that end up in the lake or on a terminal (no control, format or line-separator characters).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from storage.readers._common import short_token, visible_text_problem
from storage.validation import StructureError


def _number_to_list(value: Any) -> Any:
    """OPTIMADE v1.0 ``mass``: one number (a species of one chemical symbol); v1.1+: a list."""
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else value


def _int_to_text(value: Any) -> Any:
    """An integer (not a boolean) as its decimal text, to name a refused entry by; anything else as given."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _integer_only(value: Any) -> Any:
    """A JSON integer as given; ``true``/``false`` or ``1.0`` is refused as no integer (a ``Literal[0, 1]``
    alone would take ``True`` for ``1``, since ``True == 1`` in Python)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Vector = Annotated[list[float], Field(min_length=3, max_length=3)]
#: a lattice vector: OPTIMADE writes null components along a non-periodic direction (refused later, by name)
LatticeVector = Annotated[list[float | None], Field(min_length=3, max_length=3)]
#: one item of ``dimension_types``: the integer 0 (not periodic) or 1 (periodic), never a boolean
Periodicity = Annotated[Literal[0, 1], BeforeValidator(_integer_only)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class OptimadeSpecies(_Strict):
    """One item of ``species``: what a name of ``species_at_sites`` stands for."""

    name: str
    chemical_symbols: list[str]
    concentration: list[float]
    mass: Annotated[list[float] | None, BeforeValidator(_number_to_list)] = None
    original_name: str | None = None
    attached: list[str] | None = None
    nattached: list[int] | None = None


class OptimadeAttributes(_Strict):
    """The ``attributes`` of a structures entry, as far as this reader uses them."""

    lattice_vectors: Annotated[list[LatticeVector], Field(min_length=3, max_length=3)]
    cartesian_site_positions: list[Vector]
    species_at_sites: list[str]
    species: list[OptimadeSpecies] | None = None
    nsites: int | None = Field(None, ge=0)
    nperiodic_dimensions: int | None = Field(None, ge=0, le=3)
    dimension_types: Annotated[list[Periodicity], Field(min_length=3, max_length=3)] | None = None
    assemblies: list[Any] | None = None
    elements: list[str] | None = None
    structure_features: list[str] | None = None
    nelements: int | None = Field(None, ge=0)
    chemical_formula_reduced: str | None = None
    chemical_formula_descriptive: str | None = None
    chemical_formula_anonymous: str | None = None
    chemical_formula_hill: str | None = None
    elements_ratios: list[float] | None = None


class OptimadeEntry(_Strict):
    """One item of the response's ``data``: its id, its type and its attributes."""

    id: str
    type: str
    attributes: dict[str, Any]


_EXPECTED = {
    "float_type": "a number",
    "int_type": "an integer",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return short_token(value)  # "10000000000000000000... (401 digits)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def shape_error(exc: ValidationError, where: str) -> StructureError:
    """One sentence for the first fault pydantic found (and how many more there are)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = _path(tuple(first["loc"]))
    more = f" (and {len(errors) - 1} more fault(s))" if len(errors) > 1 else ""
    if first["type"] == "missing":
        return StructureError(f"OPTIMADE entry lacks {where} {path!r}{more}")
    expected = _EXPECTED.get(first["type"])
    if expected is None:
        message = str(first["msg"])
        expected = message[0].lower() + message[1:]
        return StructureError(
            f"malformed OPTIMADE {where} {path}: {_shown(first['input'])} ({expected}){more}"
        )
    return StructureError(
        f"malformed OPTIMADE {where} {path}: {_shown(first['input'])} is not {expected}{more}"
    )


def readable_id(value: Any) -> str | None:
    """An entry's id as it may be stored beside a rejection: visible, non-empty text (an integer as its text),
    else None."""
    text = _int_to_text(value)
    if not isinstance(text, str) or id_problem(text, "id"):
        return None
    return text


def id_problem(text: str, what: str) -> str | None:
    """Why ``text``, exactly as the provider wrote it, cannot be an id, or None: it is empty or blank, holds
    control or invisible characters, or begins or ends with whitespace (``NBSP``, ``U+3000``, a tab). Nothing
    is stripped first: ``"mgo-1\\u0085"`` is refused, never stored as ``mgo-1``."""
    if not text.strip():
        return "entry has no id"
    problem = visible_text_problem(text, what)
    if problem:
        return problem
    if text != text.strip():
        ends = dict.fromkeys(c for c in text[:1] + text[-1:] if c.isspace())
        codes = ", ".join(f"U+{ord(c):04X}" for c in ends)
        return f"{what} {text!r} begins or ends with whitespace ({codes}); ids are stored as written: remove it"
    return None


def check_entry(entry: Any) -> OptimadeEntry:
    """The entry's id, type and attributes object, validated; the id, as written, must be visible text with
    no whitespace at its ends (:func:`id_problem`).

    Raises:
        StructureError: the entry is no object, its id is missing, empty, no string (an integer too), holds
            control characters or begins or ends with whitespace, or its attributes are no object.
    """
    if isinstance(entry, dict) and (entry.get("id") is None or _int_to_text(entry.get("id")) == ""):
        raise StructureError("entry has no id")
    try:
        checked = OptimadeEntry.model_validate(entry)
    except ValidationError as exc:
        raise shape_error(exc, "entry") from None
    problem = id_problem(checked.id, "entry id")
    if problem:
        raise StructureError(problem)
    return checked


def check_attributes(attributes: Any) -> OptimadeAttributes:
    """The attributes, validated against :class:`OptimadeAttributes`; raises :class:`StructureError`."""
    try:
        checked = OptimadeAttributes.model_validate(attributes)
    except ValidationError as exc:
        raise shape_error(exc, "attribute") from None
    names = [s.name for s in checked.species or []]
    for text, what in [(n, "species name") for n in names] + [
        (sym, "chemical symbol") for s in checked.species or [] for sym in s.chemical_symbols
    ]:
        problem = visible_text_problem(text, f"OPTIMADE {what}")
        if problem:
            raise StructureError(problem)
    for field in (
        "chemical_formula_reduced",
        "chemical_formula_descriptive",
        "chemical_formula_anonymous",
        "chemical_formula_hill",
    ):
        value = getattr(checked, field)
        problem = visible_text_problem(value, f"OPTIMADE {field}") if value else None
        if problem:
            raise StructureError(problem)
    return checked
