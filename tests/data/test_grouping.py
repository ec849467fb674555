from __future__ import annotations

import numpy as np
import pytest

from ptychopinn.data.grouping import (
    GroupingConfig,
    covering_groups,
    make_groups,
    nearest_groups,
    relative_offsets,
)
from ptychopinn.errors import PtychoInputError


def _grid(side=5, step=10.0):
    g = np.arange(side) * step
    yy, xx = np.meshgrid(g, g, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], 1)


def test_gridsize_one_each_pattern_its_own_group():
    pos = _grid()
    g = make_groups(pos, GroupingConfig(gridsize=1), rng=0)
    assert g.shape == (25, 1)
    assert sorted(g[:, 0]) == list(range(25))


def test_groups_are_near_neighbours_and_distinct():
    pos = _grid()
    g = make_groups(pos, GroupingConfig(gridsize=2, neighbor_count=4), rng=1)
    assert g.shape == (25, 4)
    for grp in g:
        assert len(set(grp)) == 4
        d = np.linalg.norm(pos[grp] - pos[grp[:, None]], axis=-1)
        assert d.max() <= 2 * 10 * np.sqrt(2) + 1e-9  # within 2 grid steps diagonally


def test_nearest_groups_known_answer():
    pos = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [50, 50], [50, 51], [51, 50], [51, 51.0]])
    g = nearest_groups(pos, 2, seeds=np.array([0, 7]))
    assert set(g[0]) == {0, 1, 2, 3} and set(g[1]) == {4, 5, 6, 7}
    off = relative_offsets(pos, g)
    np.testing.assert_allclose(np.abs(off), 0.5)
    np.testing.assert_allclose(off.sum(axis=1), 0)


def test_covering_groups_hold_every_pattern_with_few_groups():
    pos = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [50, 50], [50, 51], [51, 50], [51, 51.0]])
    g = covering_groups(pos, 2)
    assert g.shape == (2, 4)  # two clusters of four: one group each
    assert {frozenset(r) for r in g.tolist()} == {frozenset({0, 1, 2, 3}),
                                                   frozenset({4, 5, 6, 7})}
    rnd = np.random.default_rng(0).uniform(0, 300, (2000, 2))
    cov = covering_groups(rnd, 2)
    assert np.array_equal(np.unique(cov), np.arange(2000))
    assert len(cov) < 2000 / 2  # far fewer forward passes than one group per pattern
    np.testing.assert_array_equal(covering_groups(rnd, 1)[:, 0], np.arange(2000))


def test_n_groups_and_subsample_seeded():
    pos = np.random.default_rng(0).uniform(0, 100, (200, 2))
    cfg = GroupingConfig(gridsize=2, n_groups=50, n_subsample=120)
    a, b = make_groups(pos, cfg, rng=7), make_groups(pos, cfg, rng=7)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50, 4)
    assert len(np.unique(a)) <= 120


def test_oversampling_requires_flag_and_pool():
    pos = _grid()
    with pytest.raises(PtychoInputError, match="set enable_oversampling"):
        make_groups(pos, GroupingConfig(gridsize=2, n_groups=60), rng=0)
    with pytest.raises(PtychoInputError, match="neighbor_pool_size >= C = 4"):
        make_groups(pos, GroupingConfig(gridsize=2, n_groups=60, enable_oversampling=True,
                                        neighbor_pool_size=3), rng=0)
    g = make_groups(pos, GroupingConfig(gridsize=2, n_groups=60, enable_oversampling=True,
                                        neighbor_pool_size=8), rng=0)
    assert g.shape == (60, 4)


def test_oversampling_refused_for_gridsize_one():
    with pytest.raises(PtychoInputError, match="impossible with gridsize 1"):
        make_groups(_grid(), GroupingConfig(gridsize=1, n_groups=30, enable_oversampling=True,
                                            neighbor_pool_size=4), rng=0)


def test_neighbor_count_too_small_refused():
    with pytest.raises(PtychoInputError, match="neighbor_count \\(2\\) must be >= C-1 = 3"):
        GroupingConfig(gridsize=2, neighbor_count=2)


def test_million_positions_group_in_seconds():
    import time

    pos = np.random.default_rng(0).uniform(0, 5000, (1_000_000, 2))
    t0 = time.perf_counter()
    g = make_groups(pos, GroupingConfig(gridsize=2), rng=0)
    assert g.shape == (1_000_000, 4)
    assert time.perf_counter() - t0 < 30
