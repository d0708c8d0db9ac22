"""The cached space-group operations of the CIF reader are pymatgen's, in pymatgen's order, and cannot change."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.symmetry.groups import SpaceGroup

from storage.readers._structure import _number_group, setting_operations


@pytest.mark.parametrize("setting", ["F d -3 m:2", "R -3 m:R", "P 1", "I a -3 d"])
def test_cached_setting_operations_are_pymatgens_built_once_and_read_only(setting: str) -> None:
    fresh = list(SpaceGroup(setting).symmetry_ops)
    cached = setting_operations(setting)
    assert isinstance(cached, tuple)
    assert len(cached) == len(fresh)
    for mine, theirs in zip(cached, fresh, strict=True):
        assert np.array_equal(mine.affine_matrix, theirs.affine_matrix)
        assert mine.as_xyz_str() == theirs.as_xyz_str()
        assert mine is not theirs  # copies: pymatgen's own objects stay writable
    assert setting_operations(setting) is cached
    op = cached[-1]
    assert not op.affine_matrix.flags.writeable and not op.rotation_matrix.flags.writeable
    with pytest.raises(ValueError):
        op.affine_matrix[0, 3] = 0.5
    with pytest.raises(ValueError):
        setting_operations("Q 9 z")


def test_cached_number_group_is_pymatgens() -> None:
    for number in (1, 166, 227, 230):
        group = SpaceGroup.from_int_number(number)
        assert _number_group(number) == (group.symbol, group.order)
        assert _number_group(number) is _number_group(number)
