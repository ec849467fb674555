"""Neighbour groups of scan positions (SPEC §4). Pure functions returning indices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ptychopinn.errors import PtychoInputError


@dataclass(frozen=True, kw_only=True)
class GroupingConfig:
    """How patterns are grouped.

    ``gridsize`` g gives groups of C = g² patterns: a seed plus C−1 of its ``neighbor_count``
    nearest neighbours. ``n_groups`` (default: one per kept pattern) groups are drawn from the
    ``n_subsample`` kept patterns (default all). Drawing more groups than patterns needs
    ``enable_oversampling`` and ``neighbor_pool_size`` ≥ C.

    ``inference_members`` says how inference forms groups: ``"nearest"`` (a seed and its C−1
    nearest neighbours) or ``"pool"`` (C−1 drawn with a fixed seed from its ``neighbor_count``
    nearest, the same distribution of member spacings as training). ``inference_gridsize``
    (None = ``gridsize``) groups more patterns per forward pass at inference, for networks
    whose weights act on the group canvas (``model.kind: unrolled``): more measurements per
    canvas, more data consistency.
    """

    gridsize: int = 2
    neighbor_count: int = 6
    n_groups: int | None = None
    n_subsample: int | None = None
    enable_oversampling: bool = False
    neighbor_pool_size: int | None = None
    inference_members: str = "nearest"
    inference_gridsize: int | None = None

    def __post_init__(self) -> None:
        if self.inference_gridsize is not None and self.inference_gridsize < 1:
            raise PtychoInputError(f"inference_gridsize must be >= 1, got "
                                   f"{self.inference_gridsize}")
        if self.inference_members not in ("nearest", "pool"):
            raise PtychoInputError("inference_members must be 'nearest' or 'pool', got "
                                   f"{self.inference_members!r}")
        if self.gridsize < 1:
            raise PtychoInputError(f"gridsize must be >= 1, got {self.gridsize}")
        c = self.gridsize**2
        if self.gridsize > 1 and self.neighbor_count < c - 1:
            raise PtychoInputError(
                f"neighbor_count ({self.neighbor_count}) must be >= C-1 = {c - 1} for "
                f"gridsize {self.gridsize}")
        if self.n_groups is not None and self.n_groups < 1:
            raise PtychoInputError(f"n_groups must be >= 1, got {self.n_groups}")
        if self.n_subsample is not None and self.n_subsample < 1:
            raise PtychoInputError(f"n_subsample must be >= 1, got {self.n_subsample}")

    @property
    def group_size(self) -> int:
        """C = gridsize²."""
        return self.gridsize**2


def _order_members(positions: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sort each group's members by angle around the group centre (stable channel order)."""
    if groups.shape[1] == 1:
        return groups
    p = positions[groups]  # (G, C, 2)
    r = p - p.mean(axis=1, keepdims=True)
    ang = np.arctan2(r[..., 0], r[..., 1])
    order = np.argsort(ang, axis=1, kind="stable")
    return np.take_along_axis(groups, order, axis=1)


def make_groups(positions: np.ndarray, cfg: GroupingConfig,
                rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Draw groups of pattern indices.

    Parameters
    ----------
    positions : ndarray (M, 2) float
        Patch centres (row, col).
    cfg : GroupingConfig
    rng : Generator, int or None
        Random source (seeded).

    Returns
    -------
    ndarray (G, C) int64
        Indices into ``positions``; members of a group are distinct.
    """
    rng = np.random.default_rng(rng)
    m = positions.shape[0]
    c = cfg.group_size
    keep = np.arange(m)
    if cfg.n_subsample is not None and cfg.n_subsample < m:
        keep = np.sort(rng.choice(m, cfg.n_subsample, replace=False))
    mk = keep.size
    n_groups = cfg.n_groups if cfg.n_groups is not None else mk
    if n_groups > mk:
        if cfg.gridsize == 1:
            raise PtychoInputError(
                f"n_groups ({n_groups}) exceeds the {mk} patterns; oversampling is impossible "
                "with gridsize 1 (each pattern is its own group)")
        if not cfg.enable_oversampling:
            raise PtychoInputError(
                f"n_groups ({n_groups}) exceeds the {mk} patterns; set enable_oversampling "
                "and neighbor_pool_size >= C to draw more groups than patterns")
        if cfg.neighbor_pool_size is None or cfg.neighbor_pool_size < c:
            raise PtychoInputError(
                f"oversampling needs neighbor_pool_size >= C = {c}, got {cfg.neighbor_pool_size}")
    if c == 1:
        seeds = rng.choice(mk, n_groups, replace=False) if n_groups < mk else np.arange(mk)
        return keep[seeds][:, None].astype(np.int64)
    if mk < c:
        raise PtychoInputError(f"only {mk} patterns; a group needs C = {c}")
    oversample = n_groups > mk
    k = cfg.neighbor_pool_size if oversample else cfg.neighbor_count
    k = min(k, mk - 1)
    tree = cKDTree(positions[keep])
    _, nbr = tree.query(positions[keep], k=k + 1, workers=-1)  # (mk, k+1), column 0 = itself
    nbr = nbr[:, 1:]
    if oversample:
        seeds = np.concatenate([rng.permutation(mk) for _ in range(-(-n_groups // mk))])[:n_groups]
    else:
        seeds = rng.choice(mk, n_groups, replace=False) if n_groups < mk else rng.permutation(mk)
    members = _draw_members(nbr[seeds], c, rng)
    groups = np.concatenate([seeds[:, None], members], axis=1)
    return _order_members(positions, keep[groups].astype(np.int64))


def _draw_members(nbr: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    """C−1 distinct neighbours per row of ``nbr`` (S, K), uniformly: random keys, the C−1
    smallest. Returns (S, C−1)."""
    keys = rng.random(nbr.shape)
    pick = np.argpartition(keys, c - 2, axis=1)[:, : c - 1]
    return np.take_along_axis(nbr, pick, axis=1)


def nearest_groups(positions: np.ndarray, gridsize: int, *,
                   seeds: np.ndarray | None = None, pool: int | None = None) -> np.ndarray:
    """Deterministic groups: each seed with C−1 neighbours (inference).

    ``pool`` None: the C−1 nearest. ``pool`` K ≥ C−1: C−1 of the K nearest, drawn with a fixed
    seed (reproducible; the spacing statistics of training groups drawn from K neighbours).
    Returns (G, C) int64, the seed first before members are ordered by angle.
    """
    c = gridsize**2
    seeds = np.arange(positions.shape[0]) if seeds is None else np.asarray(seeds)
    if c == 1:
        return seeds[:, None].astype(np.int64)
    k = c if pool is None else min(max(pool, c - 1) + 1, positions.shape[0])
    _, nbr = cKDTree(positions).query(positions[seeds], k=k, workers=-1)
    nbr = np.asarray(nbr, dtype=np.int64).reshape(seeds.size, k)
    nbr[:, 0] = seeds  # guard against duplicate positions
    if pool is not None and k > c:
        members = _draw_members(nbr[:, 1:], c, np.random.default_rng(0))
        nbr = np.concatenate([nbr[:, :1], members], axis=1)
    return _order_members(positions, nbr)


def covering_groups(positions: np.ndarray, gridsize: int, *,
                    pool: int | None = None) -> np.ndarray:
    """Few deterministic groups that together hold every pattern at least once (inference).

    Greedy over the patterns in position order (row, then column, so the result does not
    depend on the order of the patterns in the file): a pattern not yet in a kept group seeds
    one with its C−1 nearest neighbours. About M/C…M/2 groups instead of M, so a whole scan
    needs that many fewer forward passes when every member of a group is stitched.

    Returns (G, C) int64, members ordered as in :func:`nearest_groups`.
    """
    groups = nearest_groups(positions, gridsize, pool=pool)
    if groups.shape[1] == 1:
        return groups
    covered = np.zeros(positions.shape[0], dtype=bool)
    keep = np.zeros(positions.shape[0], dtype=bool)
    order = np.lexsort((positions[:, 1], positions[:, 0]))
    for i in order.tolist():
        if not covered[i]:
            keep[i] = True
            covered[groups[i]] = True
    return groups[order[keep[order]]]


def partition_groups(positions: np.ndarray, gridsize: int) -> np.ndarray:
    """Disjoint compact groups of C = gridsize² patterns: every pattern in exactly one group
    (inference without the covering groups' ≈2× redundancy).

    Balanced recursive bisection: a cell of n patterns that needs g = ⌈n/C⌉ groups is cut
    across its longer side so that one part holds exactly C·⌊g/2⌋ patterns. Every leaf then
    holds exactly C patterns except one, which is topped up with the patterns nearest its
    centre (those few are predicted twice). Deterministic; the cut order depends on the
    positions only (ties broken by index).

    Parameters
    ----------
    positions : ndarray (M, 2) float
        Pattern centres (row, col), pixels; M ≥ C.
    gridsize : int

    Returns
    -------
    ndarray (⌈M/C⌉, C) int64, members ordered as in :func:`nearest_groups`.
    """
    pos = np.asarray(positions, dtype=np.float64)
    m, c = pos.shape[0], gridsize**2
    if c == 1:
        return np.arange(m, dtype=np.int64)[:, None]
    if m < c:
        raise PtychoInputError(f"only {m} patterns; a group needs C = {c}")
    leaves: list[np.ndarray] = []
    stack = [np.arange(m, dtype=np.int64)]
    while stack:
        idx = stack.pop()
        g = -(-idx.size // c)
        if g == 1:
            leaves.append(idx)
            continue
        p = pos[idx]
        axis = int(np.argmax(np.ptp(p, axis=0)))
        order = idx[np.argsort(p[:, axis], kind="stable")]
        cut = c * (g // 2)
        stack += [order[cut:], order[:cut]]
    groups = np.zeros((len(leaves), c), dtype=np.int64)
    for i, leaf in enumerate(leaves):
        if leaf.size < c:  # the one short leaf: add the nearest other patterns
            _, near = cKDTree(pos).query(pos[leaf].mean(axis=0), k=min(m, 2 * c))
            inside = set(leaf.tolist())
            extra = [j for j in np.atleast_1d(near).tolist() if j not in inside]
            leaf = np.concatenate([leaf, np.asarray(extra[: c - leaf.size], dtype=np.int64)])
        groups[i] = leaf
    return _order_members(pos, groups)


def relative_offsets(positions: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Offsets r_i = p_i − c of each member from its group centre: (G, C, 2) float."""
    p = positions[groups]
    return p - p.mean(axis=1, keepdims=True)
