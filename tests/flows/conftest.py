"""Fixtures of the flow tests: one Prefect API server for the whole session and a fresh lake per test.

The server is the project's own (:func:`flows.service.start_server`: ``prefect server start`` on a free
loopback port, a temporary ``PREFECT_HOME``). Starting one costs 15-25 s on 2 cores, most of it database
migrations, so it starts in the background as soon as collection shows that a test will ask for it: the
tests before that one run meanwhile (pytest runs on one core; the server migrates on the other). Under
pytest-xdist a worker starts it when a test first asks for it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from tests.conftest import PREFECT_API_FILES
from tests.flows.cli_process import free_port

_SERVER: dict[str, object] = {}


def _start_server_in_background(config: pytest.Config) -> None:
    from flows.service import Service, down, start_server

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    svc = Service(port=free_port(), home=Path(tempfile.mkdtemp(prefix="csp-test-prefect-")))
    errors: list[BaseException] = []

    def start() -> None:
        try:
            start_server(svc, log=lambda _message: None)
        except (
            RuntimeError,
            OSError,
            subprocess.SubprocessError,
        ) as exc:  # reported by the fixture, in the test that needs the server
            errors.append(exc)

    thread = threading.Thread(target=start, name="prefect-server-start", daemon=True)
    thread.start()
    _SERVER.update(service=svc, thread=thread, errors=errors)

    def stop() -> None:
        thread.join(120)
        down(svc, log=lambda _message: None)

    config.add_cleanup(stop)


def pytest_collection_finish(session):
    # the items left after -k/-m selection; nothing starts for --collect-only
    if session.config.option.collectonly:
        return
    users = {item.nodeid.split("::")[0] for item in session.items if "prefect_api" in item.fixturenames}
    if users - PREFECT_API_FILES:  # make test hands these files to one worker (tests/conftest.py)
        raise pytest.UsageError(
            f"add {sorted(users - PREFECT_API_FILES)} to PREFECT_API_FILES in tests/conftest.py: the tests "
            "of the session's Prefect server run on one pytest-xdist worker"
        )
    # an xdist worker sees the whole collection but runs only what it is handed: it starts the server when a
    # test first asks (its wait leaves its core to the server's migrations while the other worker runs tests)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if any("prefect_api" in getattr(item, "fixturenames", ()) for item in session.items):
        _start_server_in_background(session.config)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory, request):
    """The session's Prefect API: this process's client talks to it within the tests that ask for it."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_HOME,
        temporary_settings,
    )

    if not _SERVER:  # asked for dynamically (request.getfixturevalue), outside collection's view
        _start_server_in_background(request.config)
    svc, thread, errors = _SERVER["service"], _SERVER["thread"], _SERVER["errors"]
    thread.join(180)
    if thread.is_alive() or errors:
        pytest.fail(f"The session's Prefect server did not start: {errors or 'no answer in 180 s'}")
    home = tmp_path_factory.mktemp("prefect_home")
    with temporary_settings(
        {PREFECT_API_URL: svc.api_url, PREFECT_HOME: str(home), PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        yield svc.api_url


@pytest.fixture
def csp_home(tmp_path, monkeypatch):
    home = tmp_path / "csp_home"
    monkeypatch.setenv("CSP_HOME", str(home))
    return home
