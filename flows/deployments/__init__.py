"""Prefect deployments of ``prefect.yaml``: one module per deployment, named like it.

``campaign`` (and the scheduled ``nightly``), ``benchmark``, ``campaigns``, ``ingest``, ``train``,
``export``, ``augment`` and ``active``. The modules are thin: parameters come from the typed models of the
wiring modules (:mod:`flows.campaigns`, :mod:`flows.models`, :mod:`flows.augmentation`, :mod:`flows.active`);
the UI pieces live in
:mod:`flows.deployments.artifacts`.
"""
