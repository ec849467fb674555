"""Stitching = placement (adjoint of extraction) of weighted patches ÷ placed weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# the dataset's object frame is dataset geometry (ptychopinn.data.container); re-exported here
from ptychopinn.data.container import ObjectFrame, object_frame
from ptychopinn.physics.patches import PatchGeometry

__all__ = ["ObjectFrame", "Stitcher", "object_frame"]


class Stitcher:
    """Accumulates Σ w·O and Σ w on a canvas, batch by batch (memory bounded by the canvas).

    Parameters
    ----------
    frame : ObjectFrame
    weight : Tensor (N, N) float
        Per-patch stitching weight (e.g. normalised probe intensity).
    """

    def __init__(self, frame: ObjectFrame, weight: Tensor, *, device: torch.device | str = "cpu"):
        self.frame = frame
        self.weight = weight.to(device)
        self.num = torch.zeros(frame.shape, dtype=torch.complex64, device=device)
        self.den = torch.zeros(frame.shape, dtype=torch.float32, device=device)
        self._origin = torch.tensor(frame.origin, dtype=torch.float64, device=device)

    def add(self, patches: Tensor, positions: Tensor) -> None:
        """Add patches (K, N, N) complex at absolute positions (K, 2) (row, col).

        Costs O(K N²), independent of the canvas size: the placement of ``place_patches``
        (:meth:`~ptychopinn.physics.patches.PatchGeometry.place`) adds into the running sums
        (pixels outside the canvas are dropped).
        """
        k = patches.shape[0]
        pos = positions.to(torch.float64) - self._origin
        geo = PatchGeometry(pos, patches.shape[-1], self.frame.shape)
        geo.place(patches * self.weight, out=self.num)
        geo.place(self.weight.expand(k, -1, -1), out=self.den)

    def add_groups(self, patches: Tensor, positions: Tensor) -> None:
        """Add groups of patches (B, C, N, N) complex at (B, C, 2), each group first rotated by
        the global phase that best matches what is already on the canvas where it lands.

        A group reconstructed on its own is only defined up to a global phase (the measured
        moduli do not change under O -> O·e^{iφ}); stitching independent groups as they come
        leaves a patchwork of offsets wherever the object's phase is far from the starting
        guess over a whole group. Group b is multiplied by e^{-iφ_b} with
        φ_b = arg Σ conj(Σ w·O) · w · patch over its footprint (a weighted least-squares fit
        of one phase to the canvas so far); a group that overlaps nothing yet is added as is.
        Groups are aligned in the order given, so spatially ordered groups (``partition``)
        chain their phases across the scan. Cost: one extra extraction per group.
        """
        b, c, n, _ = patches.shape
        pos = positions.to(torch.float64) - self._origin
        for i in range(b):
            geo = PatchGeometry(pos[i], n, self.frame.shape)
            wp = patches[i] * self.weight
            corr = (geo.extract(self.num).conj() * wp).sum()
            if corr.abs() > 0:
                wp = wp * (corr.conj() / corr.abs())
            geo.place(wp, out=self.num)
            geo.place(self.weight.expand(c, -1, -1), out=self.den)

    def result(self, *, floor: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
        """(object (H, W) complex64, coverage (H, W) float32); object is 0 where coverage is."""
        cov = self.den
        ok = cov > floor * cov.max().clamp_min(1e-30)
        obj = torch.where(ok, self.num / cov.clamp_min(1e-30), torch.zeros_like(self.num))
        cov = torch.where(ok, cov, torch.zeros_like(cov))
        return obj.cpu().numpy().astype(np.complex64), cov.cpu().numpy().astype(np.float32)


def stitch(patches: np.ndarray, positions: np.ndarray, frame: ObjectFrame,
           weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One-shot stitching of (M, N, N) patches; returns (object, coverage)."""
    n = patches.shape[-1]
    w = torch.ones(n, n) if weight is None else torch.from_numpy(np.asarray(weight, np.float32))
    s = Stitcher(frame, w)
    s.add(torch.from_numpy(patches.astype(np.complex64)), torch.from_numpy(positions))
    return s.result()
