"""Small real structures for the model, graph, ONNX, inference and training tests.

Data come from the data mirror that :func:`tests.conftest.mirror_path` locates (``$CSP_DATA_MIRROR``, else
``../shared/data`` beside the checkout); tests that need it are marked ``mirror`` and fail when it is missing.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from csp.models.features import ELEMENT_TABLE_PATH
from csp.structures.crystal import Crystal
from tests.conftest import mirror_path

DATA = mirror_path()
TABLE1 = DATA / "validation" / "table1"
MP_FILE = DATA / "dft" / "mp_flla2015.jsonl.gz"

needs_data = pytest.mark.mirror


@lru_cache(maxsize=1)
def _symbol_to_z() -> dict[str, int]:
    rows = json.loads(ELEMENT_TABLE_PATH.read_text())["elements"]
    return {sym: row["Z"] for sym, row in rows.items()}


def table1_crystal(name: str) -> Crystal:
    """A validation reference structure (parsed with pymatgen, which the CPU test machine has)."""
    from pymatgen.core import Structure

    return Crystal.from_pymatgen(Structure.from_file(TABLE1 / f"{name}.cif"))


@lru_cache(maxsize=4)
def mp_crystals(count: int = 300, max_sites: int = 16) -> tuple[list[Crystal], np.ndarray, list[str]]:
    """The first ``count`` Materials Project structures with at most ``max_sites`` sites.

    Returns crystals, formation energies (eV/atom) and ids, parsed from the JSON lines directly.
    """
    z_of = _symbol_to_z()
    crystals, energies, ids = [], [], []
    with gzip.open(MP_FILE, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            sites = row["structure_pymatgen"]["sites"]
            if len(sites) > max_sites:
                continue
            symbols = [site["species"][0]["element"] for site in sites]
            if any(s not in z_of for s in symbols):
                continue
            crystals.append(
                Crystal(
                    lattice=np.array(row["structure_pymatgen"]["lattice"]["matrix"]),
                    numbers=np.array([z_of[s] for s in symbols]),
                    frac_coords=np.array([site["abc"] for site in sites]),
                )
            )
            energies.append(row["formation_energy_per_atom_eV"])
            ids.append(row["id"])
            if len(crystals) == count:
                break
    return crystals, np.array(energies, dtype=np.float32), ids


@lru_cache(maxsize=1)
def exported_small_models() -> dict[str, Path]:
    """Random-init small regression and PU models exported once per test session (temporary folder).

    Returns:
        {"dft": folder, "pu": folder}; tests that modify a model copy its folder first.
    """
    import atexit
    import shutil
    import tempfile

    import torch

    from csp.models import ALIGNN, SMALL_CONFIG, ALIGNNConfig
    from csp.models.onnx_export import export_model

    root = Path(tempfile.mkdtemp(prefix="csp-test-models-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    torch.manual_seed(0)
    dft = ALIGNN(SMALL_CONFIG).eval()
    torch.manual_seed(1)
    pu = ALIGNN(ALIGNNConfig(hidden=32, alignn_layers=1, gcn_layers=1, task="pu", n_bags=6)).eval()
    export_model(dft, root / "dft")
    export_model(pu, root / "pu")
    return {"dft": root / "dft", "pu": root / "pu", "dft_model": dft, "pu_model": pu}
