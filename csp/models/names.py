"""Model folder names: what a model is and when (matgl's ``M3GNet-MP-2018.6.1-Eform`` style).

``<architecture>-<training data>-<year.month>-<target>``: ``ALIGNN-DFT-2026.11-Eform`` is the ALIGNN
formation-enthalpy model trained on DFT data exported in November 2026; ``ExpTL`` is that model
transfer-learned on experimental enthalpies; ``PU`` the positive-unlabeled synthesizability ensemble whose
target is ``Psyn``. The earlier short names
(``alignn-dft``, ``alignn-exp``, ``alignn-pu``) still resolve, for one release, through
:func:`resolve_model` -- the one function that turns a configured name into a folder.
"""

from __future__ import annotations

from pathlib import Path

#: the shipped models: earlier short name -> descriptive folder name
ALIASES: dict[str, str] = {
    "alignn-dft": "ALIGNN-DFT-2026.11-Eform",
    "alignn-exp": "ALIGNN-ExpTL-2026.11-Eform",
    "alignn-pu": "ALIGNN-PU-2026.11-Psyn",
}
#: the default folder of each model kind
DEFAULT_MODELS: dict[str, str] = {
    "dft": ALIASES["alignn-dft"],
    "exp": ALIASES["alignn-exp"],
    "pu": ALIASES["alignn-pu"],
}


def resolve_model(models_dir: Path | str, name: str | Path) -> Path:
    """The folder of model ``name`` under ``models_dir``.

    Args:
        models_dir: folder of model folders.
        name: a folder name, or an alias of one (old short name <-> descriptive name, either way), or a
            path to a model folder by either name (``onnx_models/alignn-exp``, relative to the current
            folder or to ``models_dir``'s parent, or absolute).

    Returns:
        The first existing folder of: ``models_dir / name``; the path ``name`` itself; the alias of its
        last part beside it (in the folder the path names, or in ``models_dir``). Else ``models_dir /
        name``, so that the caller's "no model.json" error names what was asked for.
    """
    root = Path(models_dir)
    given = Path(name).expanduser()
    direct = root / given
    if direct.is_dir():
        return direct
    if given.is_dir():
        return given
    reverse = {new: old for old, new in ALIASES.items()}
    other = ALIASES.get(given.name) or reverse.get(given.name)
    if other is None:
        return direct
    folders = [root]
    if given.parent != Path():  # a path: beside it, where the cwd or the models folder's parent puts it
        folders = [
            given.parent,
            root.parent / given.parent,
            *([root] if given.parent.name == root.name else []),
        ]
    for folder in folders:
        if (folder / other).is_dir():
            return folder / other
    return direct
