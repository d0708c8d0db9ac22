"""The documentation site's contracts that need no build: every page in the nav, every results file and model
card shown, every public module of ``csp`` in the API reference, and a short README.

``make docs-check`` (``mkdocs build --strict``, run by CI) checks links, anchors and the references themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def nav_pages(entry) -> list[str]:
    """Every page path named in a (nested) mkdocs nav."""
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, list):
        return [page for item in entry for page in nav_pages(item)]
    if isinstance(entry, dict):
        return [page for value in entry.values() for page in nav_pages(value)]
    return []


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    in_nav = nav_pages(config["nav"])
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(on_disk - set(in_nav)) == []
    assert sorted(set(in_nav) - on_disk) == []
    assert len(in_nav) == len(set(in_nav))


def test_every_results_file_and_model_card_has_its_page():
    for results in sorted((REPO / "benchmarks" / "results").glob("*.md")):
        page = DOCS / "benchmarks" / results.name
        assert f'--8<-- "benchmarks/results/{results.name}"' in page.read_text(), page
    for card in sorted((REPO / "onnx_models").glob("*/README.md")):
        page = DOCS / "models" / f"{card.parent.name}.md"
        assert f'--8<-- "onnx_models/{card.parent.name}/README.md"' in page.read_text(), page


def test_the_api_reference_covers_every_public_module_of_csp():
    documented = {
        m for p in (DOCS / "api").glob("*.md") for m in re.findall(r"^::: ([\w.]+)", p.read_text(), re.M)
    }
    csp = REPO / "csp"
    public = {"csp"}
    for path in csp.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            public.add(".".join(parts))
    assert sorted(public - documented) == []


def test_the_readme_is_short_and_points_to_the_docs():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / link).is_file(), link
