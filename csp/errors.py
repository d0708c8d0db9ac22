"""Every error the science raises, under one base class.

Callers that want "any bad input or model problem of this library" catch :class:`CSPError`; each subclass
also derives from the built-in exception its callers caught before (``ValueError`` for bad input,
``RuntimeError`` for a broken model file), so older ``except ValueError`` code keeps working.
"""

from __future__ import annotations

__all__ = ["CSPError", "InputError", "ModelError", "ModelNotFoundError"]


class CSPError(Exception):
    """Base of every error raised by :mod:`csp`: the message says what was wrong and what to do."""


class InputError(CSPError, ValueError):
    """Input the science cannot use: a formula, a parameter, a structure outside what the models saw."""


class ModelError(CSPError, RuntimeError):
    """A model folder that cannot be used: missing or corrupt file, wrong task, checksum mismatch."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model folder without its ``model.onnx`` or ``model.json`` (also a ``FileNotFoundError``)."""
