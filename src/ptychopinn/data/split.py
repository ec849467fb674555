"""Spatial train/test split (test regions never seen in training)."""

from __future__ import annotations

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError


def split_indices(positions: np.ndarray, *, axis: str = "y",
                  fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Indices of patterns before/after the cut at ``fraction`` of the scan extent.

    Parameters
    ----------
    positions : ndarray (M, 2) (row, col)
    axis : {"y", "x"}
        Split along rows (``y``) or columns (``x``).
    fraction : float in (0, 1)
        Where to cut, as a fraction of the extent (train gets the low side).
    """
    if axis not in ("y", "x"):
        raise PtychoInputError(f"axis must be 'y' or 'x', got {axis!r}")
    if not 0 < fraction < 1:
        raise PtychoInputError(f"fraction must be in (0, 1), got {fraction}")
    v = positions[:, 0 if axis == "y" else 1]
    cut = v.min() + fraction * (v.max() - v.min())
    train = np.flatnonzero(v < cut)
    test = np.flatnonzero(v >= cut)
    if train.size == 0 or test.size == 0:
        raise PtychoInputError(f"split at fraction {fraction} along {axis} leaves an empty side")
    return train, test


def split_dataset(data: PtychoData, *, axis: str = "y",
                  fraction: float = 0.5) -> tuple[PtychoData, PtychoData]:
    """Split into (train, test) datasets; both keep the full object frame."""
    tr, te = split_indices(data.positions, axis=axis, fraction=fraction)
    out = []
    for name, idx in (("train", tr), ("test", te)):
        d = data.subset(idx)
        d.metadata["split"] = {"part": name, "axis": axis, "fraction": fraction,
                               "n_patterns": int(idx.size)}
        out.append(d)
    return out[0], out[1]
