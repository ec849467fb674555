from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychopinn.physics.patches import extract_patches, place_patches, shift_image

RTOL = {torch.complex64: 1e-5, torch.complex128: 1e-12}


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_extract_place_adjoint(dtype, rng):
    obj = torch.randn(37, 41, dtype=dtype, generator=rng)  # odd, non-square
    pos = torch.tensor([[10.3, 12.7], [20.5, 30.1], [1.2, 39.9], [35.0, 2.0], [18.0, 20.0]],
                       dtype=torch.float64)  # sub-pixel, some partly outside
    y = torch.randn(5, 8, 8, dtype=dtype, generator=rng)
    lhs = torch.vdot(extract_patches(obj, pos, 8).flatten(), y.flatten())
    rhs = torch.vdot(obj.flatten(), place_patches(y, pos, obj.shape).flatten())
    assert abs(lhs - rhs) <= RTOL[dtype] * abs(lhs)


def test_batched_adjoint_matches_unbatched(rng):
    obj = torch.randn(3, 30, 30, dtype=torch.complex128, generator=rng)
    pos = torch.rand(3, 4, 2, dtype=torch.float64, generator=rng) * 14 + 8
    batched = extract_patches(obj, pos, 8)
    for b in range(3):
        torch.testing.assert_close(batched[b], extract_patches(obj[b], pos[b], 8))
    y = torch.randn(3, 4, 8, 8, dtype=torch.complex128, generator=rng)
    placed = place_patches(y, pos, (30, 30))
    for b in range(3):
        torch.testing.assert_close(placed[b], place_patches(y[b], pos[b], (30, 30)))


def test_integer_positions_equal_numpy_slicing(np_rng):
    obj = np_rng.standard_normal((40, 50)) + 1j * np_rng.standard_normal((40, 50))
    n = 16
    pos = np.array([[8, 8], [20, 31], [32, 42]], dtype=np.float64)
    got = extract_patches(torch.from_numpy(obj), torch.from_numpy(pos), n).numpy()
    for k, (y, x) in enumerate(pos.astype(int)):
        np.testing.assert_array_equal(got[k], obj[y - n // 2 : y + n // 2, x - n // 2 : x + n // 2])


def test_patch_centre_is_index_n_over_2():
    obj = torch.zeros(32, 32)
    obj[13, 17] = 1.0
    patch = extract_patches(obj, torch.tensor([[13.0, 17.0]]), 8)[0]
    assert patch[4, 4] == 1.0 and patch.sum() == 1.0


def test_extract_then_stitch_reproduces_object(rng):
    obj = torch.randn(48, 48, dtype=torch.complex128, generator=rng)
    pos = torch.rand(200, 2, dtype=torch.float64, generator=rng) * 24 + 12
    patches = extract_patches(obj, pos, 16)
    num = place_patches(patches, pos, (48, 48))
    den = place_patches(torch.ones_like(patches.real), pos, (48, 48))
    covered = den > 0.5
    # bilinear extract-then-place is a smoothing; compare with the same smoothing of obj
    ref = place_patches(extract_patches(obj, pos, 16), pos, (48, 48))
    torch.testing.assert_close(num, ref)
    # integer positions: exact reproduction on covered pixels
    ipos = torch.round(pos)
    num = place_patches(extract_patches(obj, ipos, 16), ipos, (48, 48))
    den = place_patches(torch.ones(200, 16, 16, dtype=torch.float64), ipos, (48, 48))
    covered = den > 0
    assert covered.sum() > 1000
    torch.testing.assert_close((num / den.clamp_min(1))[covered], obj[covered])


def test_shift_image_integer_is_roll_and_moves_content_by_plus_t(rng):
    img = torch.randn(20, 24, dtype=torch.float64, generator=rng)
    out = shift_image(img, (3, -5))
    torch.testing.assert_close(out, torch.roll(img, (3, -5), (0, 1)))


def test_forward_of_shifted_object_equals_shifted_extraction(rng):
    # smooth periodic object so the Fourier shift and bilinear extraction agree closely
    f = torch.fft.fftfreq(64, dtype=torch.float64)
    lp = torch.exp(-((f[:, None] ** 2 + f[None, :] ** 2) / 0.004))
    obj = torch.fft.ifft2(torch.fft.fft2(torch.randn(64, 64, dtype=torch.complex128,
                                                     generator=rng)) * lp)
    t = torch.tensor([2.25, -1.5], dtype=torch.float64)
    pos = torch.tensor([[30.0, 31.0], [25.5, 40.25]], dtype=torch.float64)
    a = extract_patches(shift_image(obj, t), pos + t, 16)
    b = extract_patches(obj, pos, 16)
    assert torch.linalg.norm(a - b) / torch.linalg.norm(b) < 0.02


def test_place_drops_out_of_bounds_and_extract_reads_zero():
    obj = torch.ones(10, 10)
    p = extract_patches(obj, torch.tensor([[0.0, 0.0]]), 4)[0]
    assert p[:2].sum() == 0 and p[2:, 2:].sum() == 4
    placed = place_patches(torch.ones(1, 4, 4), torch.tensor([[0.0, 0.0]]), (10, 10))
    assert placed.sum() == 4


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_place_into_a_canvas_adds_in_place(dtype, rng):
    from ptychopinn.physics.patches import PatchGeometry

    pos = torch.tensor([[3.25, 4.5], [9.0, 0.5]], dtype=torch.float64)  # one partly outside
    y = torch.randn(2, 4, 4, dtype=dtype, generator=rng)
    canvas = torch.randn(12, 11, dtype=dtype, generator=rng)
    expected = canvas + place_patches(y, pos, (12, 11))
    out = PatchGeometry(pos, 4, (12, 11)).place(y, out=canvas)
    assert out is canvas
    torch.testing.assert_close(canvas, expected)


def test_one_bilinear_splat():
    """Stitching and the pty-chi coverage map place through PatchGeometry (no own splat)."""
    import inspect

    from ptychopinn.inference import stitch
    from ptychopinn.iterative import ptychi_backend
    from ptychopinn.physics import patches

    assert not hasattr(patches, "bilinear_splat")
    for src in (inspect.getsource(stitch.Stitcher.add),
                inspect.getsource(ptychi_backend.coverage_map)):
        assert ".place(" in src and "index_add" not in src and "bincount" not in src
