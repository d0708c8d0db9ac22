"""``Structure.from_spacegroup`` for the tests' hand-made crystals, without rebuilding the space group each time.

pymatgen caches its ``SpaceGroup`` instances only weakly, so every ``Structure.from_spacegroup("Fm-3m", ...)``
rebuilt the group's operation set (~0.4-0.8 s for a cubic group of 192 operations on 2 cores). The group is
held here once per session; pymatgen's own cache then returns that very instance, so the structures built
are the ones pymatgen builds.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pymatgen.core import Structure


@cache
def _held(spacegroup: str | int) -> Any:
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup.from_int_number(spacegroup) if isinstance(spacegroup, int) else SpaceGroup(spacegroup)


def from_spacegroup(spacegroup: str | int, *args: Any, **kwargs: Any) -> Structure:
    """``Structure.from_spacegroup`` with the space group held for the session."""
    _held(spacegroup)
    return Structure.from_spacegroup(spacegroup, *args, **kwargs)
