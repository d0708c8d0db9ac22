"""OPTIMADE filters over the lake's ``candidates`` and ``structures``, translated to DuckDB SQL.

The filter language is OPTIMADE's (v1.2 grammar, parsed by the ``optimade`` package's Lark parser); the
translation of the parse tree to SQL is ours and binds every user value as a parameter (``?``): no value
from a filter is ever spliced into the SQL text. Field names are OPTIMADE's standard ones plus ``_csp_``
fields for this project's columns (see :data:`FIELDS`).

Each table is read through a *source* query (:func:`source_sql`) that adds the standard fields as
columns (``elements``, ``nsites``, ``chemical_formula_reduced``, ...); for candidates it also adds
``evaluation`` (1-based order of scoring within a campaign and stage), ``best_fitness`` (best-so-far
fitness up to and including that evaluation; fitness is set on outer rows only) and ``best_dhf_ev_per_atom``
(best-so-far predicted formation enthalpy of a valid candidate), computed before any filter applies.

Semantics worth knowing:
    * a comparison with an unknown (null) value is false, and so is its ``NOT`` (SQL three-valued logic);
      use ``IS KNOWN`` / ``IS UNKNOWN`` to ask for nulls;
    * ``HAS ONLY`` is true when every element of the list is among the given values;
    * zipped set comparisons (``a:b HAS "x":"y"``) and operators inside value lists are not supported and
      give a one-line error.
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from storage.errors import StorageError

Kind = Literal["number", "string", "bool", "timestamp", "list", "matrix"]
Table = Literal["candidates", "structures"]


@cache
def element_symbols() -> list[str]:
    """Element symbols by atomic number from pymatgen; index 0 is a placeholder, so ``[Z]`` is element Z."""
    from pymatgen.core.periodic_table import Element

    return ["X"] + [Element.from_Z(z).symbol for z in range(1, 119)]


#: OPTIMADE anonymous-formula letters: A..Z, then Aa..Za, Ab..Zb, ...
_LETTERS = list(string.ascii_uppercase) + [u + lower for lower in "ab" for u in string.ascii_uppercase]


@dataclass(frozen=True)
class Field:
    """One filterable field: the column of the source query that holds it and its value kind."""

    column: str
    kind: Kind
    doc: str


_STANDARD: dict[str, Field] = {
    "id": Field("id", "string", "row id: campaign/stage/outer_step/inner_step, or source:source_id"),
    "elements": Field("elements", "list", "distinct element symbols, sorted"),
    "nelements": Field("nelements", "number", "number of distinct elements"),
    "nsites": Field("nsites", "number", "sites in the cell"),
    "chemical_formula_reduced": Field("chemical_formula_reduced", "string", "e.g. MgO, BaO3Zr"),
    "chemical_formula_anonymous": Field("chemical_formula_anonymous", "string", "e.g. AB, A3BC"),
    "nperiodic_dimensions": Field("nperiodic_dimensions", "number", "always 3"),
    "lattice_vectors": Field("lattice_vectors", "matrix", "rows a, b, c in Angstrom"),
    "species_at_sites": Field("species_at_sites", "list", "element symbol of every site"),
    "last_modified": Field("last_modified", "timestamp", "when the row was written (UTC)"),
}

FIELDS: dict[str, dict[str, Field]] = {
    "candidates": {
        **_STANDARD,
        "_csp_campaign_id": Field("campaign_id", "string", "campaign id"),
        "_csp_stage": Field("stage", "string", "inner, outer, refined or single_point"),
        "_csp_outer_step": Field("outer_step", "number", "family number, 0-based"),
        "_csp_inner_step": Field("inner_step", "number", "structure within the family (-1: family row)"),
        "_csp_evaluation": Field("evaluation", "number", "1-based scoring order within campaign and stage"),
        "_csp_family_index": Field("family_index", "number", "index of the symmetry family"),
        "_csp_formula": Field("formula", "string", "reduced formula of the composition searched"),
        "_csp_formula_units": Field("formula_units", "number", "Z"),
        "_csp_spacegroup": Field(
            "spacegroup", "number", "space-group number detected by spglib (0.1 A, 5 degrees)"
        ),
        "_csp_crystal_system": Field("crystal_system", "string", "crystal system of the detected group"),
        "_csp_wyckoff": Field("wyckoff", "string", "Wyckoff string of the detected group"),
        "_csp_family_spacegroup": Field("family_spacegroup", "number", "the search template's space group"),
        "_csp_family_wyckoff": Field("family_wyckoff", "string", "the search template's Wyckoff assignment"),
        "_csp_potential": Field(
            "potential", "string", "universal potential of a refined row, e.g. chgnet-0.3.0"
        ),
        "_csp_energy_potential": Field(
            "energy_potential_ev_per_atom", "number", "the potential's energy (refined rows), eV/atom"
        ),
        "_csp_dhf_potential": Field(
            "dhf_potential_ev_per_atom", "number", "the potential's formation enthalpy, eV/atom"
        ),
        "_csp_exploitation_gap": Field(
            "exploitation_gap_ev_per_atom", "number", "potential dHf at the found geometry minus model dHf"
        ),
        "_csp_converged": Field("converged", "bool", "the relaxation reached fmax (refined rows)"),
        "_csp_relax_steps": Field("relax_steps", "number", "FIRE steps of the relaxation"),
        "_csp_fmax": Field("fmax_ev_per_angstrom", "number", "largest force at the end of relaxation, eV/A"),
        "_csp_source_outer_step": Field("source_outer_step", "number", "outer step a refined row came from"),
        "_csp_dhf": Field("dhf_pred_ev_per_atom", "number", "predicted formation enthalpy, eV/atom"),
        "_csp_dhf_std": Field(
            "dhf_pred_std_ev_per_atom",
            "number",
            "spread of the enthalpy over the ensemble's members, eV/atom",
        ),
        "_csp_p_syn": Field("p_syn", "number", "synthesizability probability"),
        "_csp_p_syn_std": Field("p_syn_std", "number", "spread of P_syn over the bagged models"),
        "_csp_fitness": Field("fitness", "number", "fitness (lower is better)"),
        "_csp_best_fitness": Field("best_fitness", "number", "best-so-far fitness at this evaluation"),
        "_csp_best_dhf": Field("best_dhf_ev_per_atom", "number", "best-so-far valid dHf, eV/atom"),
        "_csp_valid": Field("valid", "bool", "passed the structure checks"),
        "_csp_reject_reason": Field("reject_reason", "string", "why an invalid candidate was rejected"),
        "_csp_seed": Field("seed", "number", "random seed"),
        "_csp_seconds": Field("seconds", "number", "campaign wall time when scored, s"),
        "_csp_model_ids": Field("model_ids", "list", "name:sha256-prefix of each model"),
        "_csp_run_id": Field("run_id", "string", "run that wrote the row"),
    },
    "structures": {
        **_STANDARD,
        "_csp_source": Field("source", "string", "data source"),
        "_csp_source_id": Field("source_id", "string", "id in the source"),
        "_csp_license": Field("license", "string", "licence of the source"),
        "_csp_spacegroup": Field("spacegroup", "number", "international space-group number"),
        "_csp_crystal_system": Field("crystal_system", "string", "cubic, hexagonal, ..."),
        "_csp_dhf": Field("dhf_dft_ev_per_atom", "number", "formation enthalpy (source scale), eV/atom"),
        "_csp_energy_kind": Field("energy_kind", "string", "which source column the energy came from"),
        "_csp_energy_method": Field("energy_method", "string", "dft or mlip"),
        "_csp_e_above_hull": Field("e_above_hull_ev_per_atom", "number", "hull distance, eV/atom"),
        "_csp_icsd_label": Field("icsd_label", "number", "1 experimentally reported, 0 unlabeled"),
        "_csp_split": Field("split", "string", "train, val or test"),
        "_csp_volume": Field("volume_angstrom3", "number", "cell volume, Angstrom^3"),
        "_csp_run_id": Field("run_id", "string", "run that wrote the row"),
    },
}

#: evaluation order of each table's rows
ORDER_BY = {
    "candidates": "campaign_id, stage, outer_step, inner_step",
    "structures": "source, source_id",
}


class FilterError(StorageError, ValueError):
    """A filter that cannot be run: malformed, an unknown field, or a value of the wrong kind.

    Attributes:
        column: 1-based character position of the offending token in the filter (None if unknown).
        token: the offending text.
    """

    def __init__(self, message: str, *, column: int | None = None, token: str | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.token = token


# ------------------------------------------------------------------------------------ source queries


def _sql_list(items: list[str]) -> str:
    # our own constants (element symbols, letters): never user input
    return "[" + ", ".join(f"'{s}'" for s in items) + "]"


def _formula_columns(inner: str) -> str:
    """Wrap ``inner`` (which has ``species_at_sites``) with elements, counts and the two formulas."""
    counts = "list_transform(elements, lambda el: len(list_filter(species_at_sites, lambda s: s = el)))"
    with_counts = (
        f"SELECT *, {counts} AS _counts FROM (SELECT * REPLACE (list_sort(list_distinct(species_at_sites)) "
        f"AS elements) FROM ({inner}))"
    )
    gcd = "list_reduce(_counts, lambda a, b: gcd(a, b))"
    reduced = (
        "array_to_string(list_transform(list_zip(elements, _counts), lambda p: p[1] || "
        f"CASE WHEN p[2] // {gcd} = 1 THEN '' ELSE (p[2] // {gcd})::VARCHAR END), '')"
    )
    anonymous = (
        f"array_to_string(list_transform(list_reverse_sort(list_transform(_counts, lambda n: n // {gcd})), "
        f"lambda n, i: ({_sql_list(_LETTERS)})[i] || CASE WHEN n = 1 THEN '' ELSE n::VARCHAR END), '')"
    )
    return (
        f"SELECT * EXCLUDE (_counts), len(elements) AS nelements, {reduced} AS chemical_formula_reduced, "
        f"{anonymous} AS chemical_formula_anonymous FROM ({with_counts})"
    )


@cache
def source_sql(table: Table) -> str:
    """The SELECT a filter runs over: the lake view plus the standard fields as columns.

    Raises:
        FilterError: for a table other than ``candidates`` or ``structures``.
    """
    if table == "candidates":
        lattice = "[lattice_angstrom[1:3], lattice_angstrom[4:6], lattice_angstrom[7:9]]"
        window = "PARTITION BY campaign_id, stage ORDER BY outer_step, inner_step"
        inner = (
            "SELECT *, "
            "campaign_id || '/' || stage || '/' || outer_step::VARCHAR || '/' || inner_step::VARCHAR AS id, "
            f"row_number() OVER ({window}) AS evaluation, "
            f"min(fitness) OVER ({window} ROWS UNBOUNDED PRECEDING) AS best_fitness, "
            "min(CASE WHEN valid THEN dhf_pred_ev_per_atom END) "
            f"OVER ({window} ROWS UNBOUNDED PRECEDING) AS best_dhf_ev_per_atom, "
            f"list_transform(numbers, lambda z: ({_sql_list(element_symbols())})[z + 1]) AS species_at_sites, "
            "NULL::VARCHAR[] AS elements, len(numbers) AS nsites, 3 AS nperiodic_dimensions, "
            f"{lattice} AS lattice_vectors, written_at AS last_modified "
            "FROM candidates"
        )
    elif table == "structures":
        lattice = "[lattice_angstrom[1:3], lattice_angstrom[4:6], lattice_angstrom[7:9]]"
        inner = (
            "SELECT * EXCLUDE (nelements), source || ':' || source_id AS id, species AS species_at_sites, "
            f"3 AS nperiodic_dimensions, {lattice} AS lattice_vectors, written_at AS last_modified "
            "FROM structures"
        )
    else:
        raise FilterError(f"Filters run over 'candidates' or 'structures', not {table!r}.")
    return _formula_columns(inner)


# ---------------------------------------------------------------------------------------- the parser


@cache
def _parser() -> Any:
    from optimade.filterparser import LarkParser

    return LarkParser(version=(1, 2, 0))


def parse(filter_: str) -> Any:
    """Parse an OPTIMADE filter into a Lark tree; raises :class:`FilterError` pointing at the bad token."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
    from optimade.exceptions import BadRequest

    text = filter_.strip()
    if not text:
        raise FilterError('The filter is empty; e.g. \'elements HAS ALL "Mg","O" AND nsites<=8\'.')
    try:
        return _parser().parse(text)
    except BadRequest as exc:
        cause = exc.__cause__
        tok = getattr(cause, "token", None)
        if isinstance(cause, UnexpectedEOF) or (tok is not None and tok.type == "$END"):
            raise FilterError(
                f"Malformed filter: it ends too early after {text[-20:]!r} (a value or ')' is missing).",
                column=len(text) + 1,
            ) from None
        if isinstance(cause, UnexpectedToken) and tok is not None and tok.column is not None:
            raise FilterError(
                f"Malformed filter at column {tok.column}: unexpected {str(tok)!r} "
                f"in ...{_excerpt(text, tok.column)}...",
                column=tok.column,
                token=str(tok),
            ) from None
        if isinstance(cause, UnexpectedCharacters):
            col = cause.column
            word = re.match(r"\w+|\S", text[col - 1 :]) if 0 < col <= len(text) else None
            bad = word.group(0) if word else ""
            raise FilterError(
                f"Malformed filter at column {col}: unexpected {bad!r} in ...{_excerpt(text, col)}... "
                "(strings take double quotes, fields are lowercase, e.g. nsites<=8)",
                column=col,
                token=bad,
            ) from None
        raise FilterError(f"Malformed filter: {str(cause).splitlines()[0]}") from None


#: the deepest nesting of parentheses a filter may use (the translator recurses once per level)
MAX_FILTER_DEPTH = 50


def _check_depth(text: str) -> None:
    """Refuse parentheses nested deeper than :data:`MAX_FILTER_DEPTH` (outside double-quoted strings)."""
    depth, quoted, escaped = 0, False, False
    for column, char in enumerate(text, 1):
        if quoted:
            escaped, quoted = (not escaped and char == "\\"), quoted and (escaped or char != '"')
            continue
        if char == '"':
            quoted = True
        elif char == "(":
            depth += 1
            if depth > MAX_FILTER_DEPTH:
                raise FilterError(
                    f"The filter nests parentheses more than {MAX_FILTER_DEPTH} deep (at column {column}); "
                    "write it with fewer levels.",
                    column=column,
                    token="(",
                )
        elif char == ")":
            depth -= 1


def _excerpt(text: str, column: int, width: int = 12) -> str:
    start = max(0, column - 1 - width)
    return text[start : column - 1 + width]


# ------------------------------------------------------------------------------------ the translation

_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class Translation:
    """A filter as a SQL condition over :func:`source_sql` with its bound parameters."""

    table: Table
    where: str
    params: tuple[Any, ...]

    def sql(self, *, limit: int | None = None) -> str:
        """The full SELECT (ordered by evaluation order; ``limit`` is a bound parameter if given)."""
        text = f"SELECT * FROM ({source_sql(self.table)}) WHERE {self.where} ORDER BY {ORDER_BY[self.table]}"
        return text + (" LIMIT ?" if limit is not None else "")

    def all_params(self, *, limit: int | None = None) -> list[Any]:
        return [*self.params, *([int(limit)] if limit is not None else [])]


class _Translator:
    def __init__(self, table: Table, text: str) -> None:
        self.fields = FIELDS[table]
        self.table = table
        self.text = text
        self.params: list[Any] = []

    # -- helpers
    def fail(self, message: str, token: Any) -> FilterError:
        column = getattr(token, "column", None)
        where = f" at column {column}" if column else ""
        return FilterError(f"{message}{where}.", column=column, token=str(token))

    def field(self, prop: Any) -> tuple[Field, Any]:
        tokens = list(prop.children)
        name = ".".join(str(t) for t in tokens)
        if len(tokens) > 1 or name not in self.fields:
            close = difflib.get_close_matches(name, list(self.fields), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            column = getattr(tokens[0], "column", None)
            raise FilterError(
                f"Unknown field {name!r} at column {column} ({hint}`csp {self.table} fields` lists the "
                f"{len(self.fields)} fields of {self.table}).",
                column=column,
                token=name,
            )
        return self.fields[name], tokens[0]

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def literal(self, node: Any) -> tuple[Any, str, Any]:
        """(python value, kind, token) of a value / constant node."""
        while node.data in ("value", "constant", "non_string_value", "not_implemented_string"):
            node = node.children[0]
        if node.data == "string":
            tok = node.children[0]
            raw = str(tok)[1:-1]
            return raw.replace('\\"', '"').replace("\\\\", "\\"), "string", tok
        if node.data == "number" or node.data == "signed_int":
            tok = node.children[0]
            text = str(tok)
            if tok.type == "SIGNED_FLOAT":
                return float(text), "number", tok
            number = int(text) if len(text.lstrip("+-")) <= 40 else None
            if number is None or not -(2**63) <= number < 2**63:  # DuckDB's raw "too large for 128-bit"
                digits = len(text.lstrip("+-"))
                shown = text if digits <= 40 else f"{text[:20]}... ({digits} digits)"
                raise self.fail(f"The integer {shown} is out of range (beyond 64 bits)", tok)
            return number, "number", tok
        if node.data == "bool":
            # "TRUE"/"FALSE" are anonymous tokens filtered out of the tree: read them back from the text
            return None, "bool", node
        if node.data == "property":
            return node, "property", node.children[0]
        raise self.fail(f"Unsupported value {node.data!r}", node)

    def value_sql(self, node: Any, field: Field, op_tok: Any) -> str:
        if node.data == "value" and node.children and node.children[0].data == "bool":
            return self.bool_sql(node.children[0], field, op_tok)
        value, kind, tok = self.literal(node)
        if kind == "property":
            other, _ = self.field(value)
            if other.kind != field.kind:
                raise self.fail(f"Cannot compare a {field.kind} field with a {other.kind} field", tok)
            return f'"{other.column}"'
        self.check_kind(field, kind, tok)
        if field.kind == "timestamp":
            return f"CAST({self.bind(value)} AS TIMESTAMPTZ)"
        return self.bind(value)

    def bool_sql(self, node: Any, field: Field, op_tok: Any) -> str:
        if field.kind != "bool":
            raise self.fail(f"TRUE/FALSE only compare with a boolean field, not a {field.kind} one", op_tok)
        end = getattr(op_tok, "end_pos", None)
        rest = self.text[end:].lstrip() if end is not None else ""
        return self.bind(rest.startswith("TRUE"))

    def check_kind(self, field: Field, kind: str, tok: Any) -> None:
        wanted = {"number": "number", "string": "string", "timestamp": "string", "list": "string"}
        if field.kind in ("bool", "matrix") or wanted.get(field.kind) != kind:
            shown = {"number": "a number", "string": "a string", "bool": "TRUE or FALSE"}
            need = {
                "number": "a number",
                "string": 'a "string"',
                "timestamp": 'a "date" string',
                "list": 'a "string" element',
                "bool": "TRUE or FALSE",
                "matrix": "nothing (only IS KNOWN, LENGTH)",
            }[field.kind]
            raise self.fail(
                f"The field {field.column!r} takes {need}, not {shown.get(kind, kind)} {str(tok)!r}", tok
            )

    # -- tree walk
    def expression(self, node: Any) -> str:
        clauses = [self.clause(c) for c in node.children]
        return clauses[0] if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")"

    def clause(self, node: Any) -> str:
        phrases = [self.phrase(p) for p in node.children]
        return phrases[0] if len(phrases) == 1 else "(" + " AND ".join(phrases) + ")"

    def phrase(self, node: Any) -> str:
        children = list(node.children)
        negate = bool(children) and not hasattr(children[0], "data") and str(children[0]) == "NOT"
        body = children[-1]
        sql = self.expression(body) if body.data == "expression" else self.comparison(body.children[0])
        return f"(NOT {sql})" if negate else sql

    def comparison(self, node: Any) -> str:
        if node.data == "constant_first_comparison":
            constant, op, rhs = node.children
            inner = rhs.children[0] if rhs.data == "non_string_value" else rhs
            if inner.data != "property":
                raise self.fail("A comparison needs a field on one side", op)
            field, _ = self.field(inner)
            self.check_order(field, str(op), op)
            return f'"{field.column}" {_OPS[_FLIP[str(op)]]} {self.value_sql(constant, field, op)}'
        prop, rhs = node.children
        field, tok = self.field(prop)
        kind = rhs.data
        if kind == "value_op_rhs":
            op, value = rhs.children
            self.check_order(field, str(op), op)
            return f'"{field.column}" {_OPS[str(op)]} {self.value_sql(value, field, op)}'
        if kind == "known_op_rhs":
            known = str(rhs.children[1]) == "KNOWN"
            return f'("{field.column}" IS {"NOT " if known else ""}NULL)'
        if kind == "fuzzy_string_op_rhs":
            return self.fuzzy(field, rhs)
        if kind == "set_op_rhs":
            return self.set_op(field, rhs)
        if kind == "length_op_rhs":
            if field.kind not in ("list", "matrix"):
                raise self.fail(f"LENGTH applies to list fields, not {field.column!r}", rhs.children[0])
            parts = list(rhs.children)
            op = str(parts[1]) if len(parts) == 3 else "="
            value, _, _ = self.literal(parts[-1])
            return f'len("{field.column}") {_OPS[op]} {self.bind(value)}'
        if kind == "set_zip_op_rhs":
            raise self.fail("Zipped set comparisons (a:b HAS ...) are not supported", tok)
        raise self.fail(f"Unsupported comparison {kind!r}", tok)

    def check_order(self, field: Field, op: str, tok: Any) -> None:
        if field.kind in ("list", "matrix"):
            raise self.fail(f"{field.column!r} is a list: use HAS, HAS ALL/ANY/ONLY or LENGTH, not {op}", tok)
        if field.kind == "bool" and op not in ("=", "!="):
            raise self.fail(f"{field.column!r} is TRUE/FALSE: compare it with = or !=", tok)

    def fuzzy(self, field: Field, rhs: Any) -> str:
        op_tok = rhs.children[0]
        if field.kind != "string":
            raise self.fail(f"{op_tok} applies to string fields, not {field.column!r}", op_tok)
        value, kind, tok = self.literal(rhs.children[-1])
        self.check_kind(field, kind, tok)
        fn = {"CONTAINS": "contains", "STARTS": "starts_with", "ENDS": "ends_with"}[str(op_tok)]
        return f'{fn}("{field.column}", {self.bind(value)})'

    def set_op(self, field: Field, rhs: Any) -> str:
        has, *rest = rhs.children
        if field.kind != "list":
            raise self.fail(f"HAS applies to list fields, not {field.column!r}", has)
        col = f'"{field.column}"'
        head = rest[0]
        if not hasattr(head, "data") and str(head) in ("ALL", "ANY", "ONLY"):
            values = []
            for child in rest[1].children:
                if not hasattr(child, "data"):
                    raise self.fail("Operators inside a value list are not supported", child)
                value, kind, tok = self.literal(child)
                self.check_kind(field, kind, tok)
                values.append(value)
            mode = str(head)
            if mode == "ALL":
                return f"list_has_all({col}, {self.bind(values)})"
            if mode == "ANY":
                return f"list_has_any({col}, {self.bind(values)})"
            return f"list_has_all({self.bind(values)}, {col})"
        op = "="
        if not hasattr(head, "data"):
            op, rest = str(head), rest[1:]
        value, kind, tok = self.literal(rest[0])
        self.check_kind(field, kind, tok)
        if op == "=":
            return f"list_contains({col}, {self.bind(value)})"
        return f"len(list_filter({col}, lambda v: v {_OPS[op]} {self.bind(value)})) > 0"


def translate(filter_: str, table: Table = "candidates") -> Translation:
    """Translate an OPTIMADE filter into a SQL condition with bound parameters.

    Args:
        filter_: e.g. ``elements HAS ALL "Mg","O" AND nsites<=8 AND _csp_p_syn>0.8``.
        table: ``candidates`` or ``structures`` (the fields differ; see :data:`FIELDS`).

    Returns:
        A :class:`Translation`; ``translation.sql()`` runs over the lake with ``translation.all_params()``.

    Raises:
        FilterError: malformed filter, unknown field or a value of the wrong kind; the message names the
            offending token and its column. Also a filter nested deeper than :data:`MAX_FILTER_DEPTH`.
    """
    if table not in FIELDS:
        raise FilterError(f"Filters run over 'candidates' or 'structures', not {table!r}.")
    _check_depth(filter_.strip())
    try:
        tree = parse(filter_)
        translator = _Translator(table, filter_.strip())
        expressions = [c for c in tree.children if getattr(c, "data", None) == "expression"]
        if len(expressions) != 1:
            raise FilterError("The filter is empty; e.g. 'nsites<=8'.")
        where = translator.expression(expressions[0])
    except RecursionError:  # deep nesting without parentheses (NOT NOT NOT ...)
        raise FilterError(
            "The filter nests too deeply to translate (a long chain of NOT or parentheses); write it with "
            f"fewer levels (at most {MAX_FILTER_DEPTH})."
        ) from None
    return Translation(table=table, where=where, params=tuple(translator.params))
