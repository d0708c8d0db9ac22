"""The rooms of ``csp/`` and who may import whom (DESIGN.md 7b), read from the source, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

CSP = Path(__file__).resolve().parents[2] / "csp"

#: group -> the other groups it may import (``csp.errors`` and the front door's own names are open to all)
MAY_IMPORT = {
    "structures": set(),
    "models": {"structures"},
    "search": {"structures", "models"},
    "potentials": {"structures", "models", "search"},
    "evaluation": {"structures", "models", "search", "potentials", "plots"},
    "plots": {"structures"},
}
#: loose modules; errors and pool_workers (process-pool plumbing: workers leave Ctrl-C to the parent) serve every room
TOP_LEVEL_MODULES = {"__init__", "errors", "plots", "pool_workers"}
FORBIDDEN_EVERYWHERE = ("storage", "flows", "prefect", "benchmarks")


def import_statements(source: str, package: str) -> list[tuple[int, str, list[str] | None]]:
    """Every import statement of a file of ``package``, at any depth (function-level imports count):
    ``(line, module, names)`` with ``module`` absolute (relative imports resolved) and ``names`` the names
    of a ``from module import names`` (``None`` for ``import module``, one entry per module)."""
    found: list[tuple[int, str, list[str] | None]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]) if base else ".".join(parent)
            found.append((node.lineno, base, [alias.name for alias in node.names]))
    return found


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """Every module a file of ``package`` imports, at any depth (function-level imports count), absolute."""
    found = []
    for line, module, names in import_statements(source, package):
        found.append((line, module))
        if module == "csp" and names:  # "from csp import x" names a module of the front door
            found += [(line, f"csp.{name}") for name in names]
    return found


def group_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "csp" or len(parts) < 2:
        return None
    return parts[1]


def test_csp_has_only_its_rooms_and_few_loose_modules():
    modules = {p.stem for p in CSP.glob("*.py")}
    assert modules == TOP_LEVEL_MODULES
    groups = {p.name for p in CSP.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert groups == set(MAY_IMPORT) - {"plots"}
    for group in groups:  # every room says what it holds and what it may import
        doc = ast.get_docstring(ast.parse((CSP / group / "__init__.py").read_text())) or ""
        assert "What it holds" in doc and "What it may import" in doc, group


def test_imports_between_rooms_follow_the_rules():
    broken = []
    for path in sorted(CSP.rglob("*.py")):
        rel = path.relative_to(CSP)
        own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if own in ("__init__", "errors", "pool_workers"):
            continue
        package = ".".join(path.relative_to(CSP.parent).with_suffix("").parts[:-1])
        for line, module in imported_modules(path.read_text(), package):
            if module.split(".")[0] in FORBIDDEN_EVERYWHERE:
                broken.append(f"{rel}:{line} imports {module}")
                continue
            group = group_of(module)
            if group is None or group in ("errors", "pool_workers", own):
                continue
            if group not in MAY_IMPORT[own]:
                broken.append(f"{rel}:{line} ({own}) imports {module} ({group})")
    assert not broken, "\n".join(broken)


def test_the_rule_reader_sees_lazy_and_relative_imports():
    source = "def f():\n    from csp.search import generate\n    from . import crystal\n    from csp import plots\n"
    found = {m for _, m in imported_modules(source, "csp.structures")}
    assert {"csp.search", "csp.structures", "csp.plots"} <= found
