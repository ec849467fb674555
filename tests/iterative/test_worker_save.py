"""The pty-chi worker writes its result through the package's atomic write."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn.iterative._worker import _save


def test_save_writes_npz_atomically(tmp_path):
    out = tmp_path / "result.npz"
    _save(out, amplitudes=np.arange(6.0).reshape(2, 3), device=np.array("cpu"))
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == ["amplitudes", "device"]
        np.testing.assert_array_equal(z["amplitudes"], np.arange(6.0).reshape(2, 3))
    assert [p.name for p in tmp_path.iterdir()] == ["result.npz"]  # no temp file left


class _Unreadable:
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("device lost")


def test_failed_save_keeps_the_previous_file(tmp_path):
    out = tmp_path / "result.npz"
    _save(out, a=np.ones(3))
    with pytest.raises(RuntimeError, match="device lost"):
        _save(out, a=np.zeros(3), b=_Unreadable())  # fails after "a" was written
    with np.load(out, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["a"], np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["result.npz"]
