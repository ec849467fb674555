"""Lazy HDF5 reads: index arrays are read as runs, in any order, without the chunk cache."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn.io.dataset import load_dataset, save_dataset


@pytest.fixture(scope="module")
def lazy(tmp_path_factory, tiny_data):
    p = save_dataset(tiny_data, tmp_path_factory.mktemp("h5") / "a.h5", chunk=16)
    return load_dataset(p)


@pytest.mark.parametrize("idx", [
    [0, 1, 2, 3, 40, 41, 17, 63, 62],  # runs across chunk borders, out of order
    [7, 7, 7, 2],                       # duplicates
    [-1, 0, -64],                       # negative indices count from the end
    [5],
])
def test_index_arrays_match_memory(lazy, tiny_data, idx):
    idx = np.asarray(idx)
    np.testing.assert_array_equal(lazy.diffraction[idx], tiny_data.diffraction[idx])


def test_mask_slice_int_and_empty(lazy, tiny_data):
    mask = np.zeros(64, bool)
    mask[[3, 4, 50]] = True
    np.testing.assert_array_equal(lazy.diffraction[mask], tiny_data.diffraction[mask])
    np.testing.assert_array_equal(lazy.diffraction[10:30:3], tiny_data.diffraction[10:30:3])
    np.testing.assert_array_equal(lazy.diffraction[9], tiny_data.diffraction[9])
    assert lazy.diffraction[np.zeros(0, np.int64)].shape == (0, 16, 16)


def test_out_of_range_index_refused(lazy):
    with pytest.raises(IndexError, match="out of range for 64 patterns"):
        lazy.diffraction[np.array([1, 64])]
