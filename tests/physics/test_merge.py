from __future__ import annotations

import torch

from ptychopinn.physics.merge import group_canvas_size, merge_and_recut
from ptychopinn.physics.patches import extract_patches


def _groups(rng, b=6, c=4, n=16):
    patches = torch.randn(b, c, n, n, dtype=torch.complex64, generator=rng)
    offsets = (torch.rand(b, c, 2, generator=rng) - 0.5) * 8
    offsets = offsets - offsets.mean(1, keepdim=True)
    return patches, offsets


def test_merge_is_per_group_independent_of_batching(rng):
    patches, offsets = _groups(rng, b=20)
    full = merge_and_recut(patches, offsets)
    for bs in (1, 3, 7, 16):
        parts = [merge_and_recut(patches[i : i + bs], offsets[i : i + bs])
                 for i in range(0, 20, bs)]
        torch.testing.assert_close(torch.cat(parts), full, rtol=1e-5, atol=1e-5)


def test_merge_of_consistent_patches_returns_them(rng):
    obj = torch.randn(64, 64, dtype=torch.complex128, generator=rng)
    centre = torch.tensor([32.0, 32.0], dtype=torch.float64)
    offsets = torch.tensor([[-3.0, -2.0], [-3.0, 2.0], [3.0, -2.0], [3.0, 2.0]],
                           dtype=torch.float64)
    patches = extract_patches(obj, centre + offsets, 16)[None]
    out = merge_and_recut(patches, offsets[None])
    torch.testing.assert_close(out, patches)


def test_zero_coverage_not_amplified(rng):
    patches, offsets = _groups(rng, b=2)
    out = merge_and_recut(patches, offsets)
    assert out.abs().max() <= patches.abs().max() * 1.0001
    assert group_canvas_size(16, offsets) % 2 == 0


def test_gridsize_one_is_identity(rng):
    p = torch.randn(5, 1, 16, 16, dtype=torch.complex64, generator=rng)
    assert merge_and_recut(p, torch.zeros(5, 1, 2)) is p
