"""Disjoint inference groups: every pattern once, compact, deterministic."""

import numpy as np
import pytest

from ptychopinn.data.grouping import covering_groups, partition_groups
from ptychopinn.errors import PtychoInputError


def _radius(positions, groups):
    p = positions[groups]
    return np.linalg.norm(p - p.mean(axis=1, keepdims=True), axis=-1).max(axis=1)


def test_partition_holds_each_pattern_once_and_tops_up_one_group():
    pos = np.random.default_rng(3).uniform(0, 200, (1003, 2))
    groups = partition_groups(pos, 3)
    assert groups.shape == (112, 9)  # ceil(1003 / 9)
    counts = np.bincount(groups.ravel(), minlength=1003)
    assert counts.min() == 1
    assert counts.sum() - 1003 == 112 * 9 - 1003  # only the topped-up group repeats patterns
    assert all(len(set(g)) == 9 for g in groups.tolist())  # no pattern twice in one group


def test_partition_groups_are_compact_and_need_fewer_members_than_cover():
    pos = np.random.default_rng(4).uniform(0, 200, (1000, 2))
    part, cover = partition_groups(pos, 5), covering_groups(pos, 5)
    assert part.size < 0.7 * cover.size  # the cover predicts patterns about twice
    # a cell of 25 random points in a 200² field of 1000 spans about sqrt(25/1000)·200 ≈ 32 px
    assert np.median(_radius(pos, part)) < 1.3 * np.median(_radius(pos, cover))


def test_partition_is_deterministic_and_refuses_too_few_patterns():
    pos = np.random.default_rng(5).uniform(0, 100, (300, 2))
    np.testing.assert_array_equal(partition_groups(pos, 2), partition_groups(pos.copy(), 2))
    np.testing.assert_array_equal(partition_groups(pos, 1), np.arange(300)[:, None])
    with pytest.raises(PtychoInputError, match="only 3 patterns; a group needs C = 4"):
        partition_groups(pos[:3], 2)
