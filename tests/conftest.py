"""Shared fixtures: the real data mirror (never copied into the repo) and a fresh lake per test.

The one place tests locate the data mirror: ``$CSP_DATA_MIRROR``, else ``../shared/data`` beside the
checkout. A test that needs it is marked ``mirror`` (or takes the ``data_mirror`` fixture) and FAILS with
a clear message when the mirror is missing; nothing skips silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def mirror_path() -> Path:
    """Where the data mirror is: CSP_DATA_MIRROR, else ../shared/data beside the checkout."""
    env = os.environ.get("CSP_DATA_MIRROR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _missing_mirror() -> str | None:
    path = mirror_path()
    if (path / "README.md").exists():
        return None
    return (
        f"This test needs the data mirror, which is missing at {path}: set CSP_DATA_MIRROR to the "
        "folder of the data files (the one with README.md, dft/, experimental/, validation/)."
    )


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    message = _missing_mirror()
    if message:
        pytest.fail(message, pytrace=False)
    return mirror_path()


@pytest.fixture
def lake(tmp_path):
    from storage.lake import Lake

    return Lake(tmp_path / "home").init()


def pytest_configure(config):
    # subprocesses started by tests (the CLI) find the data mirror the same way the tests do
    os.environ.setdefault("CSP_DATA_MIRROR", str(mirror_path()))
    # the CLI's output is read as piped output (flows/cli/_common.py: full width unless COLUMNS says
    # otherwise, read once when its consoles are made). pytest loads GNU readline, which sets COLUMNS=80
    # and LINES=24 in the C environment: every child inherits them, and pytest-xdist's workers find them
    # in os.environ, where the CLI's consoles took 80 columns and cut tables and messages. A test that
    # wants a width sets COLUMNS itself.
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)
        os.unsetenv(name)


def pytest_runtest_setup(item):
    if item.get_closest_marker("mirror") is not None:
        message = _missing_mirror()
        if message:
            pytest.fail(message, pytrace=False)
