"""Checks of output targets and command-line inputs, run before any work starts (nothing is written).

Each check raises ``ValueError`` with a one-sentence message; the CLI prints it as a one-line error.
"""

from __future__ import annotations

import os
from pathlib import Path


def _nearest_existing(path: Path) -> Path:
    here = path
    while not here.exists() and here != here.parent:
        here = here.parent
    return here


def _shown(path: Path, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else text[: limit - 20] + f"... ({len(text)} characters)"


def output_folder(path: Path) -> Path:
    """A folder files will be written into: an existing writable folder, or one that can be created.

    Raises:
        ValueError: if ``path`` is an existing file, or its nearest existing parent is not a writable folder.
    """
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{_shown(path)} exists and is not a folder; give a folder for the files.")
    base = _nearest_existing(path.resolve())
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write into {_shown(base)}; give a folder you can write to.")
    return path


def output_file(path: Path) -> Path:
    """A file that will be written (created or replaced): not a folder, in a writable folder.

    Raises:
        ValueError: if ``path`` is a folder or its folder cannot be written.
    """
    path = path.expanduser()
    if path.is_dir():
        raise ValueError(f"{_shown(path)} is a folder; give a file name for the output.")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{_shown(path)} cannot be overwritten; give another file name.")
    base = _nearest_existing(path.resolve().parent)
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write into {_shown(base)}; give a folder you can write to.")
    return path


def parse_inputs(items: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` options as ``{name: path}``; raises ``ValueError`` for a malformed item."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--input takes NAME=PATH, not {item[:80]!r}.")
        if name in out:
            raise ValueError(f"--input names {name[:40]!r} twice.")
        out[name] = Path(path).expanduser()
    return out
