"""Per-group merge of C patches into one canvas and re-cut (the overlap constraint)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ptychopinn.physics.patches import extract_patches, place_patches


def group_canvas_size(n: int, offsets: Tensor) -> int:
    """Even canvas side S = N + 2·ceil(max|r| + 1) holding every member of every group."""
    r = float(offsets.detach().abs().max()) if offsets.numel() else 0.0
    return n + 2 * math.ceil(r + 1)


def merge_and_recut(patches: Tensor, offsets: Tensor, *, eps: float = 1e-3) -> Tensor:
    """Merge each group's C patches (coverage-normalised) and cut them out again.

    Each group gets its own canvas (never shared across the batch). Member i sits at
    canvas-centre + r_i. The merged value is Σ placed / max(coverage, eps), so pixels with no
    coverage stay 0 and are never amplified.

    Parameters
    ----------
    patches : Tensor (B, C, N, N) complex
    offsets : Tensor (B, C, 2) float
        Member offsets r_i = p_i − c (row, col) from the group centre, pixels.

    Returns
    -------
    Tensor (B, C, N, N) complex: the merged canvas re-cut at each member's position.
    """
    b, c, n, _ = patches.shape
    if c == 1:
        return patches
    s = group_canvas_size(n, offsets)
    pos = offsets + s / 2  # canvas centre is index S/2 (same convention as patches)
    ones = torch.ones_like(patches.real)
    acc = place_patches(patches, pos, (s, s))  # (B, S, S)
    cov = place_patches(ones, pos, (s, s))
    canvas = acc / cov.clamp_min(eps).to(acc.dtype)
    return extract_patches(canvas, pos, n)
