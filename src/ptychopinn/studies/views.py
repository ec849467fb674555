"""Overlap views: thin a scan to a minimum centre spacing, and measure the overlap achieved."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["overlap_stats", "spacing_for_overlap", "thin_positions"]


def thin_positions(positions: np.ndarray, min_spacing: float,
                   rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Greedy thinning: indices of positions kept so that no two are closer than ``min_spacing``.

    Positions are visited in a random order (``rng``); one is kept when no already-kept
    position lies within ``min_spacing``. Deterministic for a given ``rng`` seed.

    Parameters
    ----------
    positions : ndarray of shape (M, 2), float
        Patch centres (row, col) in pixels.
    min_spacing : float
        Minimum centre distance in pixels; 0 keeps every position.
    rng : numpy Generator, int or None
        Visiting order.

    Returns
    -------
    ndarray of shape (K,), int64
        Sorted indices of the kept positions (K >= 1 when M >= 1).

    Examples
    --------
    >>> thin_positions(np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 5.0]]), 2.0, rng=0).size
    2
    """
    pos = np.asarray(positions, dtype=np.float64)
    m = pos.shape[0]
    if min_spacing <= 0 or m < 2:
        return np.arange(m, dtype=np.int64)
    order = np.random.default_rng(rng).permutation(m)
    # Strictly closer than min_spacing conflicts: shrink the ball radius by a hair.
    neighbours = cKDTree(pos).query_ball_point(pos, r=min_spacing * (1 - 1e-12))
    kept = np.zeros(m, dtype=bool)
    for i in order:
        if not kept[neighbours[i]].any():
            kept[i] = True
    return np.flatnonzero(kept).astype(np.int64)


def overlap_stats(positions: np.ndarray, probe_diameter: float) -> dict[str, float]:
    """Scan geometry of a view.

    Parameters
    ----------
    positions : ndarray of shape (M, 2), float
        Patch centres (row, col) in pixels.
    probe_diameter : float
        Effective probe diameter in pixels (:func:`ptychopinn.data.simulate.probe_diameter`).

    Returns
    -------
    dict
        ``n_positions``; ``mean_nn_px``, ``median_nn_px``, ``min_nn_px`` (nearest-neighbour
        centre spacing, pixels); ``overlap_fraction`` = max(0, 1 - median_nn / diameter)
        (the linear overlap reported by ``ptychopinn inspect``); ``probe_diameter_px``.
    """
    pos = np.asarray(positions, dtype=np.float64)
    m = pos.shape[0]
    nn = cKDTree(pos).query(pos, k=2)[0][:, 1] if m >= 2 else np.full(1, np.nan)
    med = float(np.median(nn))
    return {
        "n_positions": int(m),
        "mean_nn_px": float(np.mean(nn)),
        "median_nn_px": med,
        "min_nn_px": float(np.min(nn)),
        "overlap_fraction": float(max(0.0, 1 - med / probe_diameter)) if m >= 2 else 0.0,
        "probe_diameter_px": float(probe_diameter),
    }


def spacing_for_overlap(positions: np.ndarray, probe_diameter: float, target_overlap: float,
                        rng_seed: int, *, iterations: int = 30) -> float:
    """Minimum spacing whose thinned scan has an achieved overlap closest to ``target_overlap``.

    Bisection on the spacing (the achieved overlap falls as the spacing grows); the same
    ``rng_seed`` is used for every trial so that the result is deterministic.

    Parameters
    ----------
    positions : ndarray of shape (M, 2), float
        Patch centres (row, col) in pixels.
    probe_diameter : float
        Effective probe diameter in pixels.
    target_overlap : float in [0, 1)
        Wanted linear overlap fraction (see :func:`overlap_stats`).
    rng_seed : int
        Seed of the thinning order.

    Returns
    -------
    float
        Spacing in pixels (0 when the full scan does not exceed the target).
    """
    def achieved(d: float) -> float:
        idx = thin_positions(positions, d, rng_seed)
        return overlap_stats(positions[idx], probe_diameter)["overlap_fraction"]

    if achieved(0.0) <= target_overlap:
        return 0.0
    lo, hi = 0.0, float(probe_diameter)
    best, best_err = hi, abs(achieved(hi) - target_overlap)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        a = achieved(mid)
        if abs(a - target_overlap) < best_err:
            best, best_err = mid, abs(a - target_overlap)
        if a > target_overlap:
            lo = mid
        else:
            hi = mid
    return best
