"""The streaming Stitcher (per-patch supports) equals whole-canvas placement, in any batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychopinn.inference.stitch import ObjectFrame, Stitcher
from ptychopinn.physics.patches import place_patches


def _reference(patches, pos, weight, frame):
    """The direct path: place_patches of weighted patches and weights on the whole canvas."""
    rel = pos - torch.tensor(frame.origin, dtype=torch.float64)
    w = weight.expand(patches.shape[0], -1, -1)
    return place_patches(patches * w, rel, frame.shape), place_patches(w, rel, frame.shape)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_stitcher_equals_whole_canvas_placement(batch, rng):
    n, k = 8, 60
    frame = ObjectFrame((29, 41), (-3.0, 5.0))  # odd, non-square, origin off zero
    patches = torch.randn(k, n, n, dtype=torch.complex64, generator=rng)
    weight = torch.rand(n, n, generator=rng) + 0.1
    # centres spread so that some patches hang over every edge of the canvas
    lo = torch.tensor(frame.origin, dtype=torch.float64) - 3
    span = torch.tensor(frame.shape, dtype=torch.float64) + 6
    pos = lo + span * torch.rand(k, 2, generator=rng, dtype=torch.float64)
    pos[:4] = torch.floor(pos[:4])  # and a few integer positions
    num_ref, den_ref = _reference(patches, pos, weight, frame)
    s = Stitcher(frame, weight)
    for i in range(0, k, batch):
        s.add(patches[i : i + batch], pos[i : i + batch])
    scale = num_ref.abs().max()
    assert (s.num - num_ref).abs().max() <= 1e-5 * scale
    assert (s.den - den_ref).abs().max() <= 1e-5 * den_ref.max()


def test_stitcher_on_a_large_canvas_writes_only_the_supports():
    """Patches at the far corners and inside a 4000² canvas land on their own supports only."""
    frame = ObjectFrame((4000, 4000), (0.0, 0.0))
    s = Stitcher(frame, torch.ones(8, 8))
    s.add(torch.ones(3, 8, 8, dtype=torch.complex64),
          torch.tensor([[10.0, 10.0], [2000.5, 30.25], [3999.0, 3999.0]], dtype=torch.float64))
    touched = int(torch.count_nonzero(s.den))
    assert 0 < touched <= 3 * 9 * 9
    obj, cov = s.result()
    np.testing.assert_allclose(obj[cov > 0], 1.0, rtol=1e-6)
