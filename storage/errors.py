"""Every error the data layer raises, under one base class (``storage`` never imports ``csp``).

Each subclass also derives from the built-in exception its callers caught before (``RuntimeError`` for the
lake, ``ValueError`` for unreadable input), so older ``except`` clauses keep working. The faces catch
:class:`StorageError` and :class:`csp.errors.CSPError`.
"""

from __future__ import annotations

__all__ = ["StorageError"]


class StorageError(Exception):
    """Base of every error raised by :mod:`storage`: the message says what was wrong and what to do."""
