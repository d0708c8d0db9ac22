"""Shared fixtures: the real data mirror (never copied into the repo) and a fresh lake per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def mirror_path() -> Path:
    env = os.environ.get("CSP_DATA_MIRROR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    path = mirror_path()
    if not (path / "README.md").exists():
        pytest.fail(f"The data mirror is missing at {path}; set CSP_DATA_MIRROR.")
    return path


@pytest.fixture
def lake(tmp_path):
    from storage.lake import Lake

    return Lake(tmp_path / "home").init()


def pytest_configure(config):
    # subprocesses started by tests (the CLI) find the data mirror the same way the tests do
    os.environ.setdefault("CSP_DATA_MIRROR", str(mirror_path()))
