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


# --- pytest-xdist (make test: -n 2 --dist loadgroup --no-loadscope-reorder) -------------------------------
# Each worker builds its own module- and session-scoped fixtures. Under --dist loadgroup a test's work unit is
# its xdist_group, else the test alone; so that no expensive fixture is built twice, the tests of a file that
# use a module-scoped fixture (a trained model, a history lake, a relax server) form one group, and every
# test of the session's Prefect server (tests/flows/conftest.py) one more, run by one worker that starts one
# server. The other tests spread one by one. Units are handed out in collection order: the units with the
# most slow tests go first, so that a long test never starts last while the other worker idles.

_BROAD_SCOPES = {"module", "class", "package"}


def _xdist_group(item) -> str | None:
    if item.get_closest_marker("xdist_group") is not None:
        return None  # the test names its own group
    if "prefect_api" in item.fixturenames:
        return "prefect-api"
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    if any(d.scope in _BROAD_SCOPES for chain in defs for d in chain):
        return item.nodeid.split("::")[0]
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which writes the groups into the node ids
def pytest_collection_modifyitems(config, items):
    if not getattr(config.option, "loadgroup", False):  # set in an xdist worker under --dist loadgroup
        return
    unit_of: dict[int, str] = {}
    for item in items:
        group = _xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        mark = item.get_closest_marker("xdist_group")
        unit_of[id(item)] = (
            (mark.args[0] if mark.args else mark.kwargs.get("name", "default")) if mark else item.nodeid
        )
    slow: dict[str, int] = {}
    size: dict[str, int] = {}
    for item in items:
        unit = unit_of[id(item)]
        size[unit] = size.get(unit, 0) + 1
        slow[unit] = slow.get(unit, 0) + (item.get_closest_marker("slow") is not None)
    first = {unit: i for i, unit in reversed(list(enumerate(unit_of[id(item)] for item in items)))}

    def order(unit: str) -> tuple:
        return (unit != "prefect-api", -slow[unit], -size[unit], first[unit])

    items[:] = sorted(items, key=lambda item: order(unit_of[id(item)]))  # stable: a unit keeps its order
