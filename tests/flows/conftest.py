"""Fixtures of the flow tests: one temporary Prefect API for the whole session (prefect_test_harness;
starting one takes 15-20 s on 2 cores) and a fresh lake per test."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_HOME, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect_home")
    with (
        temporary_settings({PREFECT_HOME: str(home), PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(server_startup_timeout=60),
    ):
        yield


@pytest.fixture
def csp_home(tmp_path, monkeypatch):
    home = tmp_path / "csp_home"
    monkeypatch.setenv("CSP_HOME", str(home))
    return home
