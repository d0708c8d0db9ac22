"""notebooks/search_history.ipynb runs top to bottom headless, draws real images, is stored stripped, and is
parameterised by lake and campaign in its first code cell (papermill's ``parameters`` tag)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "search_history.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_the_first_code_cell_holds_the_parameters():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", [])
    assert "LAKE = None" in first.source and "CAMPAIGN = None" in first.source


def _execute(tmp_path, monkeypatch, parameters: str | None = None):
    """The notebook run headless in a kernel that imports this checkout and writes only under tmp_path;
    ``parameters`` replaces the parameters cell (as papermill injects its own). Returns (images, text)."""
    from nbclient import NotebookClient

    repo = str(NOTEBOOK.parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for name in ("CSP_NOTEBOOK_LAKE", "CSP_NOTEBOOK_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if parameters is not None:
        next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source = parameters
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    return images, "".join(o.get("text", "") for o in outputs)


@pytest.mark.slow
def test_notebook_runs_headless(tmp_path, monkeypatch):
    images, text = _execute(tmp_path, monkeypatch)
    # the exported winners (top 3, fewer when fewer are distinct) are the refined structures
    (exported,) = re.findall(r"exporting (\d+) entries of stage refined", text)
    assert 1 <= int(exported) <= 3 and "structures relaxed with chgnet" in text
    assert "cif " in text and "entry " in text and "top.parquet" in text
    # convergence, energies, space groups, P_syn vs dHf, optimizers, and refined vs unrefined (the first
    # campaign refines), then one card (cell and powder pattern) and its strongest lines per exported entry
    assert re.findall(r"rank (\d+) strongest lines:", text) == [str(r) for r in range(1, int(exported) + 1)]
    assert len(images) == 6 + int(exported), len(images)


@pytest.mark.slow
def test_notebook_opens_the_lake_and_campaign_given_as_parameters(tmp_path, monkeypatch):
    from tests.storage.history_fixtures import make_history_lake

    lake = make_history_lake(tmp_path / "lake")
    images, text = _execute(tmp_path, monkeypatch, f"LAKE = {str(lake.root)!r}\nCAMPAIGN = 'hist-b'")
    assert "MgO completed rs" in text  # the given campaign (hist-b: rs/rs), nothing run
    assert not list(tmp_path.glob("csp-notebook-*/lake"))  # no campaign of its own was run
    assert "exporting 1 entries of stage outer" in text and "No refined rows" in text
    assert "rank 1 strongest lines:" in text and len(images) == 5 + 1
