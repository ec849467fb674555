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


def test_groups_with_planted_global_phases_are_stitched_back_into_one_object():
    """Each group is only defined up to a global phase: groups cut from one object and rotated
    by planted phases are realigned onto the first (the object comes back up to that one
    phase); plain stitching leaves the overlaps blurred."""
    from ptychopinn.physics.patches import extract_patches

    rng = np.random.default_rng(0)
    h = w = 64
    obj = (0.6 + 0.4 * rng.random((h, w))) * np.exp(1j * rng.uniform(-2, 2, (h, w)))
    obj_t = torch.from_numpy(obj.astype(np.complex64))
    # 3 groups of 4 patches (16 px) along a row, neighbouring groups overlapping
    cols = [[16.0, 22.0, 28.0, 34.0], [30.0, 36.0, 42.0, 48.0], [44.0, 46.0, 48.0, 50.0]]
    pos = torch.tensor([[[32.0, c] for c in g] for g in cols], dtype=torch.float64)
    patches = extract_patches(obj_t, pos.reshape(-1, 2), 16).reshape(3, 4, 16, 16)
    planted = torch.tensor([0.0, 1.2, -2.5])
    rotated = patches * torch.exp(1j * planted)[:, None, None, None]
    frame = ObjectFrame((h, w), (0.0, 0.0))
    aligned, plain = Stitcher(frame, torch.ones(16, 16)), Stitcher(frame, torch.ones(16, 16))
    aligned.add_groups(rotated, pos)
    plain.add(rotated.reshape(-1, 16, 16), pos.reshape(-1, 2))
    (got, cov), (blur, _) = aligned.result(), plain.result()
    ok = cov > 0
    np.testing.assert_allclose(got[ok], obj[ok], atol=1e-4)
    assert np.abs(blur[ok] - obj[ok]).max() > 0.5
