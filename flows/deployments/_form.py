"""A flow's parameters taken from a pydantic model: one declaration for Python, the CLI and the UI form.

Prefect draws a deployment's form from the flow function's signature and the ``Args:`` section of its
docstring. :func:`fields_of` gives a flow function the signature of a model's fields (types, ``Literal``
choices, defaults) and documents each from the field's description, so a field added to
:class:`csp.search.two_stage.SearchParameters` appears in the flow and its form with no second copy. Range limits
are left to the model: the flow's first task validates into it and fails with one clear
``CampaignError`` line, writing nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

F = TypeVar("F", bound=Callable[..., Any])


def fields_of(
    model: type[BaseModel],
    *,
    defaults: Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    first: Sequence[str] = (),
    extra: Sequence[tuple[str, Any, Any, str]] = (),
) -> Callable[[F], F]:
    """Give the decorated ``fn(**params)`` the parameters of ``model``'s fields.

    Args:
        model: the pydantic model whose fields become the parameters (in declaration order).
        defaults: per-flow defaults that replace the model's (e.g. a shorter budget).
        only: the fields to take (default: all).
        first: fields drawn first in the form (then the rest in declaration order).
        extra: further parameters as ``(name, annotation, default, description)``.
    """
    overrides = dict(defaults or {})
    names = list(only) if only is not None else list(model.model_fields)
    names = [n for n in first if n in names] + [n for n in names if n not in first]

    def decorate(fn: F) -> F:
        params, annotations, docs = [], {}, []
        for name in names:
            info = model.model_fields[name]
            default = overrides.get(name, info.default)
            if default is PydanticUndefined:
                default = inspect.Parameter.empty
            annotation = info.annotation
            params.append(
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
                )
            )
            annotations[name] = annotation
            docs.append(f"    {name}: {info.description or name}")
        for name, annotation, default, description in extra:
            params.append(
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
                )
            )
            annotations[name] = annotation
            docs.append(f"    {name}: {description}")
        returns = inspect.signature(fn).return_annotation
        fn.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
        fn.__annotations__ = {**annotations, "return": returns}
        fn.__doc__ = (inspect.cleandoc(fn.__doc__ or "") + "\n\nArgs:\n" + "\n".join(docs)).strip()
        return fn

    return decorate


def with_defaults(fn: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` completed with the defaults of ``fn``'s (generated) signature."""
    bound = inspect.signature(fn).bind(**params)
    bound.apply_defaults()
    return dict(bound.arguments)
