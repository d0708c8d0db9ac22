"""The ``csp`` command line (console script ``flows.cli:app``; also ``python -m flows.cli``)."""

from __future__ import annotations

from flows.cli.main import app

__all__ = ["app"]
