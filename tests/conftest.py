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


# --- pytest-xdist (make test: -n 2 --dist loadfile) ---------------------------------------------------------
# Each worker builds its own module- and session-scoped fixtures. --dist loadfile keeps a file's tests on one
# worker, so a module-scoped fixture (a trained model, a history lake, a relax server) is built once. The
# files whose tests use the session's Prefect server (tests/flows/conftest.py) are one unit more, so that
# one worker starts one server. (--dist loadgroup with xdist_group marks would say this per test, but
# pytest-xdist 3.8.0 writes the group into ``item._nodeid``, which pytest 9.2 no longer reads: the marks
# have no effect there, and every test is a unit of its own.)

#: the test files that use the ``prefect_api`` fixture; tests/flows/conftest.py checks the list at collection
PREFECT_API_FILES = frozenset({"tests/flows/test_campaign_ids_prefect.py", "tests/flows/test_deployments.py"})


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler for the mode asked for
    from xdist.scheduler import LoadFileScheduling

    class FileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "prefect-api" if scope in PREFECT_API_FILES else scope

    return FileScheduling(config, log)
