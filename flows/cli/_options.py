"""Typer options generated from a pydantic model's fields: one declaration, no renames.

Every field becomes ``--field-name`` (underscores as dashes) with the field's description as help and its
``Literal`` choices listed; :data:`EARLIER_NAMES` is the one table of earlier option spellings kept as
aliases. Values reach the command as a dict keyed by field name, which the wiring validates into the model
at once (:func:`flows.checks.parameter_error` words a refusal).

The two checked kinds of option of every command are declared here too: :func:`number_option` (a value
outside its range, or not finite, is refused while the command line is read: numeric fields of a model
get it from their ``ge``/``gt``/``le``/``lt``) and :func:`output_option` (the path is tried before any
work, :func:`flows.checks.output_path`, and an error writing it later is one line too). Both refusals are
:class:`OptionValueError`, which the root command prints as one ``error:`` line
(:class:`flows.cli._common.OneLineErrors`).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from flows.checks import (
    OutputKind,
    OutputPathError,
    allowed_numbers,
    number_problem,
    numeric_bounds,
    output_path,
)

F = TypeVar("F", bound=Callable[..., Any])

#: field name -> earlier option spellings that still work
EARLIER_NAMES: dict[str, tuple[str, ...]] = {
    "outer_optimizer": ("--optimizer",),
    "formula_units_max": ("--z-max",),
    "init_run": ("--init",),
    "sources": ("--source", "-s"),
}


def _plain(annotation: Any) -> tuple[Any, list[str]]:
    """The command-line type of a field (``str`` for ``Literal``s, keeping ``| None``) and its choices."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return str, [str(a) for a in args]
    if typing.get_origin(annotation) is list and args and typing.get_origin(args[0]) is Literal:
        return list[str], [str(a) for a in typing.get_args(args[0])]  # a repeated option of choices
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        inner, choices = _plain(next(a for a in args if a is not type(None)))
        return inner | None, choices
    return annotation, []


def model_options(
    model: type[BaseModel],
    *,
    arguments: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    extra: Sequence[inspect.Parameter] = (),
) -> Callable[[F], F]:
    """Give the decorated ``command(**values)`` one typer option per field of ``model``.

    A numeric field with bounds becomes a :func:`number_option`; a path field whose ``json_schema_extra``
    holds ``{"csp_output": "file" | "folder" | "file or folder"}`` an :func:`output_option`.

    Args:
        model: the pydantic model (e.g. :class:`flows.campaigns.CampaignParameters`).
        arguments: fields taken as positional arguments instead of options.
        defaults: command defaults that replace the model's.
        extra: further typer parameters of the command (ids, output folders).
    """
    overrides = dict(defaults or {})

    def decorate(fn: F) -> F:
        params = []
        for name, info in model.model_fields.items():
            kind, choices = _plain(info.annotation)
            text = (info.description or name) + (f" One of: {', '.join(choices)}." if choices else "")
            default = overrides.get(name, info.default)
            bounds = numeric_bounds(info)
            output = (
                (info.json_schema_extra or {}).get("csp_output")
                if isinstance(info.json_schema_extra, dict)
                else None
            )
            if name in arguments:
                marker = typer.Argument(help=text)
            elif output is not None:  # a path the command writes: tried before any work
                marker = output_option(
                    text, output, "--" + name.replace("_", "-"), *EARLIER_NAMES.get(name, ())
                )
            elif bounds is not None:
                marker = number_option(
                    text, "--" + name.replace("_", "-"), *EARLIER_NAMES.get(name, ()), **bounds
                )
            else:
                flag = "--" + name.replace("_", "-")
                if kind is bool and default is True:  # on by default: the option turns it off
                    flag = f"{flag}/--no-{flag[2:]}"
                marker = typer.Option(flag, *EARLIER_NAMES.get(name, ()), help=text)
            params.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=inspect.Parameter.empty if default is PydanticUndefined else default,
                    annotation=Annotated[kind, marker],
                )
            )
        params += list(extra)
        params.sort(key=lambda p: p.default is not inspect.Parameter.empty)  # required ones first
        fn.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        fn.__annotations__ = {p.name: p.annotation for p in params}
        return fn

    return decorate


def option(
    name: str, annotation: Any, default: Any, help: str, *flags: str, marker: Any = None
) -> inspect.Parameter:
    """A further typer option for :func:`model_options` (``--name`` from ``name`` unless ``flags`` are given;
    ``marker``: a ready ``typer.Option``, e.g. of :func:`output_option`)."""
    marker = marker or typer.Option(*(flags or ("--" + name.replace("_", "-"),)), help=help)
    return inspect.Parameter(
        name,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=default,
        annotation=Annotated[annotation, marker],
    )


#: ``ctx.meta`` key of the output paths a command checked: ``{path: option}`` (read by the root command)
OUTPUTS = "csp.outputs"


class OptionValueError(typer.BadParameter):
    """A refused option value whose message is a whole sentence naming the option (printed as is)."""

    def format_message(self) -> str:
        return self.message


def number_option(
    help: str,
    *flags: str,
    low: float | None = None,
    high: float | None = None,
    integer: bool = True,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A ``typer.Option`` for a number: one that is not finite or lies outside ``low``..``high`` is refused
    while the command line is read, with one line naming the option, its range and the value
    (:func:`flows.checks.number_problem`). The range is added to ``help``."""
    bounds = {"low": low, "high": high, "integer": integer, "low_open": low_open, "high_open": high_open}

    def check(param: typer.CallbackParam, value: Any) -> Any:
        problem = number_problem(param.opts[0], value, **bounds)
        if problem:
            raise OptionValueError(problem)
        return value

    shown = allowed_numbers(low, high, integer=integer, low_open=low_open, high_open=high_open)
    marker = typer.Option(*flags, help=f"{help} ({shown[0].upper()}{shown[1:]}.)", callback=check)
    marker.csp_bounds = bounds  # what the check allows (read by tests/flows/test_option_checks.py)
    return marker


def output_option(help: str, kind: OutputKind, *flags: str) -> Any:
    """A ``typer.Option`` for an output path (``kind``: a file, a folder, or either): tried before any work
    (:func:`flows.checks.output_path`), and kept in ``ctx.meta[OUTPUTS]`` so that an error the operating
    system raises while writing under it later is one line too."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
        if value is None:
            return None
        option = param.opts[0]
        try:
            path = output_path(value, option, kind)
        except OutputPathError as exc:
            raise OptionValueError(str(exc)) from exc
        ctx.meta.setdefault(OUTPUTS, {})[path] = option
        return path

    marker = typer.Option(*flags, help=help, callback=check)
    marker.csp_output = kind  # an output path of this kind (read by tests/flows/test_option_checks.py)
    return marker
