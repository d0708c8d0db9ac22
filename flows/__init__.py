"""The faces of the project: the ``csp`` command line (:mod:`flows.cli`) and the Prefect deployments
(:mod:`flows.deployments`), wiring :mod:`csp` (the science) to :mod:`storage` (the lake).

Wiring modules, one per noun: :mod:`flows.campaigns` (campaign parameters, prepare and run),
:mod:`flows.models` (training sets, training, model folders), :mod:`flows.augmentation` (polymorph
augmentation), :mod:`flows.service` (the local Prefect service), :mod:`flows.settings` (settings and lake).

Earlier module paths (``flows.campaign``, ``flows.train``, ...) still import, for one release, as aliases of
their new homes (:data:`MOVED`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: earlier module path -> where it lives now (kept importable for one release)
MOVED = {
    "flows.campaign": "flows.deployments.campaign",
    "flows.train": "flows.deployments.train",
    "flows.export": "flows.deployments.export",
    "flows.augment": "flows.deployments.augment",
    "flows.ingest": "flows.deployments.ingest",
    "flows.training": "flows.models",
    "flows.datasets": "flows.models",
}


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an earlier module path as the module that now holds its code (the same object)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module) -> None:
        return None


if not any(isinstance(f, _Moved) for f in sys.meta_path):
    sys.meta_path.insert(0, _Moved())  # before the path finders, which could find a stale copy elsewhere
