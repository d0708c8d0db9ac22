"""Typer options generated from a pydantic model's fields: one declaration, no renames.

Every field becomes ``--field-name`` (underscores as dashes) with the field's description as help and its
``Literal`` choices listed; :data:`EARLIER_NAMES` is the one table of earlier option spellings kept as
aliases. Values reach the command as a dict keyed by field name, which the wiring validates into the model
at once (so that a refused request is still recorded, with its reason, where the wiring records it).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

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
            if name in arguments:
                marker = typer.Argument(help=text)
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


def option(name: str, annotation: Any, default: Any, help: str, *flags: str) -> inspect.Parameter:
    """A further typer option for :func:`model_options` (``--name`` from ``name`` unless ``flags`` are given)."""
    marker = typer.Option(*(flags or ("--" + name.replace("_", "-"),)), help=help)
    return inspect.Parameter(
        name,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=default,
        annotation=Annotated[annotation, marker],
    )
