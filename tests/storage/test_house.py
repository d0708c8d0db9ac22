"""What ``storage/`` may import (docs/architecture.md): duckdb, pyarrow, pymatgen, and of ``csp`` only
``csp.structures.validity`` (the one distance rule the search, the scorer and ingest share); never torch,
prefect, flows or benchmarks. Read from the source (function-level and relative imports included) with the
reader of ``tests/csp/test_house.py``, and checked again in a fresh interpreter that loads every module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.csp.test_house import import_statements

REPO = Path(__file__).resolve().parents[2]
STORAGE = REPO / "storage"
#: what of csp storage may take (a name from it, or the module itself): the distance rule, the pool workers'
#: Ctrl-C plumbing and the spglib silencer (no science of the search or the models)
ALLOWED_CSP = ("csp.structures.validity", "csp.pool_workers", "csp.structures.symmetry.quiet_spglib")
FORBIDDEN = ("torch", "prefect", "flows", "benchmarks")


def forbidden_imports(source: str, package: str) -> list[str]:
    """``line: what`` for each import of ``source`` (a file of ``package``) that storage may not make.

    What a statement takes is ``module`` for ``import module`` and ``module.name`` for each name of
    ``from module import name``, so ``from csp.structures import validity`` takes the allowed module and
    ``from csp.structures import symmetry`` or ``from csp import structures`` do not.
    """
    broken = []
    for line, module, names in import_statements(source, package):
        taken = [module] if names is None else [f"{module}.{name}" for name in names]
        for item in taken:
            root = item.split(".")[0]
            allowed = any(item == a or item.startswith(a + ".") for a in ALLOWED_CSP)
            if root in FORBIDDEN or (root == "csp" and not allowed):
                broken.append(f"{line}: {item}")
    return broken


def test_storage_imports_only_the_distance_rule_of_csp():
    files = sorted(STORAGE.rglob("*.py"))
    assert len(files) > 20  # the whole package was read
    broken = []
    users = []
    for path in files:
        package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
        source = path.read_text()
        broken += [f"{path.relative_to(REPO)}:{hit}" for hit in forbidden_imports(source, package)]
        if any(m.startswith("csp") for _, m, _ in import_statements(source, package)):
            users.append(path.relative_to(REPO).as_posix())
    assert not broken, "\n".join(broken)
    assert users == ["storage/readers/_structure.py", "storage/validation.py"]  # the seams of docs/architecture.md


def test_the_storage_rule_reads_lazy_relative_and_aliased_imports():
    source = (
        "import csp.structures.validity as v\n"
        "from csp.structures.validity import distance_limits\n"
        "from csp.structures import validity\n"
        "from ..lake import Lake\n"
        "def f():\n"
        "    from csp.structures import symmetry\n"
        "    import csp\n"
        "    from csp import structures\n"
        "    from csp.search.two_stage import run_search\n"
        "    import torch.nn\n"
        "    from flows.settings import settings\n"
    )
    assert forbidden_imports(source, "storage.readers") == [
        "6: csp.structures.symmetry",
        "7: csp",
        "8: csp.structures",
        "9: csp.search.two_stage.run_search",
        "10: torch.nn",
        "11: flows.settings.settings",
    ]
    # a relative import resolves inside storage: storage.lake, not a module of csp
    assert [m for _, m, _ in import_statements(source, "storage.readers")][3] == "storage.lake"


def test_loading_every_storage_module_loads_no_more_of_csp_and_no_torch_or_prefect():
    script = (
        "import importlib, json, pkgutil, sys\n"
        "import storage\n"
        "for info in pkgutil.walk_packages(storage.__path__, 'storage.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "    ('csp', 'torch', 'prefect', 'flows', 'benchmarks'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == ["csp", "csp.errors", "csp.structures", "csp.structures.validity"]
