"""MkDocs hook: the PNG figures of a benchmark report are published beside the page that includes it.

A report (``benchmarks/results/paper/report.md``) links its figures by file name, which works on GitHub
beside the report; the docs page that includes it (``docs/benchmarks/paper.md``) lives elsewhere, so its
figures are added to the site at the page's folder. Nothing is copied into ``docs/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: report folder (relative to the repository) -> the docs folder whose pages include that report
FIGURE_FOLDERS = {"benchmarks/results/paper": "benchmarks"}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    root = Path(config["config_file_path"]).parent
    for folder, dest in FIGURE_FOLDERS.items():
        for png in sorted((root / folder).glob("*.png")):
            files.append(File.generated(config, f"{dest}/{png.name}", abs_src_path=str(png)))
    return files
