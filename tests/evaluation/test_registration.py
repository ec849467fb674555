"""Registration: cropping, sub-pixel shifts, phase/amplitude ambiguities, full pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ptychopinn.evaluation.registration import (
    AlignedPair,
    align_to_reference,
    register_translation,
    remove_phase_offset,
    scale_amplitude,
    scanned_region,
    shift_image,
)

from .conftest import smooth_image, smooth_object

PLANTED_SHIFT = (1.3, -2.7)


def _phase_residual_rms(reference: np.ndarray, test: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.angle(test * np.conj(reference)) ** 2)))


# ------------------------------------------------------------------ scanned_region
def test_scanned_region_bounding_box_threshold_and_margin():
    cov = np.zeros((20, 30))
    cov[4:15, 6:25] = 1.0
    cov[5:14, 8:22] = 3.0  # denser core
    assert scanned_region(cov) == (slice(5, 14), slice(8, 22))  # >= 1.5
    assert scanned_region(cov, threshold=0.1) == (slice(4, 15), slice(6, 25))
    assert scanned_region(cov, threshold=0.1, margin=2) == (slice(6, 13), slice(8, 23))


@pytest.mark.parametrize(
    ("coverage", "kwargs"),
    [
        (np.zeros((8, 8)), {}),
        (np.ones((8, 8)), {"margin": 4}),
        (np.ones((8, 8)), {"threshold": 0.0}),
        (np.ones(8), {}),
    ],
)
def test_scanned_region_rejects_bad_input(coverage, kwargs):
    with pytest.raises(ValueError, match=r"coverage|margin|threshold|2-D"):
        scanned_region(coverage, **kwargs)


# ------------------------------------------------------------------ shift_image
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_shift_image_integer_shift_is_a_roll_and_keeps_dtype(rng, dtype):
    img = rng.standard_normal((12, 17)).astype(dtype)
    if np.iscomplexobj(img):
        img = img + 1j * rng.standard_normal(img.shape).astype(dtype)
    out = shift_image(img, (3, -5))
    assert out.dtype == img.dtype
    tol = 1e-5 if img.dtype in (np.float32, np.complex64) else 1e-12
    assert_allclose(out, np.roll(img, (3, -5), axis=(0, 1)), atol=tol)


def test_shift_image_moves_content_by_plus_shift():
    # SPEC §3: shift(img, t) moves content by +t (rows, cols).
    img = np.zeros((64, 64))
    img[20, 30] = 1.0
    import scipy.ndimage as ndi

    blob = ndi.gaussian_filter(img, 2.0)
    moved = shift_image(blob, (2.5, -4.25))
    com0 = np.array(ndi.center_of_mass(blob))
    com1 = np.array(ndi.center_of_mass(moved))
    assert_allclose(com1 - com0, [2.5, -4.25], atol=1e-4)


def test_shift_image_rejects_bad_shift():
    with pytest.raises(ValueError, match="shift_rc"):
        shift_image(np.zeros((4, 4)), (1.0, np.nan))


# ------------------------------------------------------------------ register_translation
@pytest.mark.parametrize("space", ["auto", "amplitude", "complex"])
def test_register_recovers_planted_subpixel_shift(rng, space):
    obj = smooth_object(rng, (128, 128), sigma=2.0)
    moving = shift_image(obj, PLANTED_SHIFT)
    shift = register_translation(obj, moving, upsample_factor=50, space=space)
    # The shift that re-aligns the moving image undoes the planted one.
    assert_allclose(shift, -np.asarray(PLANTED_SHIFT), atol=0.05)
    assert_allclose(shift_image(moving, shift)[8:-8, 8:-8], obj[8:-8, 8:-8], atol=0.05)


def test_register_recovers_planted_shift_of_a_real_image(rng):
    img = smooth_image(rng, (96, 80), sigma=2.0)
    shift = register_translation(img, shift_image(img, PLANTED_SHIFT))
    assert_allclose(shift, -np.asarray(PLANTED_SHIFT), atol=0.05)


def test_register_non_periodic_crop_with_noise_phase_offset_and_ramp(rng):
    """Realistic case: crops of a larger object (edges not periodic), noise, phase ramp."""
    big = smooth_object(rng, (220, 220), sigma=3.0)
    moved = shift_image(big, PLANTED_SHIFT)
    ref, mov = big[40:168, 50:178], moved[40:168, 50:178]
    rows, cols = np.mgrid[0:128, 0:128]
    mov = mov * np.exp(1j * (0.7 + 0.05 * rows - 0.03 * cols))
    mov = mov + 0.005 * (rng.standard_normal(mov.shape) + 1j * rng.standard_normal(mov.shape))
    shift = register_translation(ref, mov)  # amplitude: blind to the phase ramp
    assert_allclose(shift, -np.asarray(PLANTED_SHIFT), atol=0.05)


@pytest.mark.parametrize("space", ["auto", "phase_gradient"])
def test_register_phase_only_object_with_ramp(rng, space):
    # A pure phase object: the amplitude carries nothing; the phase gradient is blind to the
    # offset and to the ramp (which would defeat a complex correlation).
    obj = np.exp(1j * 2.0 * smooth_image(rng, (96, 96), sigma=2.5))
    rows, cols = np.mgrid[0:96, 0:96]
    moving = shift_image(obj, PLANTED_SHIFT) * np.exp(1j * (0.4 + 0.08 * rows - 0.05 * cols))
    shift = register_translation(obj, moving, space=space)
    assert_allclose(shift, -np.asarray(PLANTED_SHIFT), atol=0.05)


def test_register_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        register_translation(np.zeros((8, 8)), np.zeros((8, 9)))


# ------------------------------------------------------------------ amplitude / phase
def test_scale_amplitude_matches_reference_mean(rng):
    ref = smooth_object(rng, (32, 32))
    test = 0.2 * ref * np.exp(0.3j)
    out = scale_amplitude(ref, test)
    assert np.mean(np.abs(out)) == pytest.approx(np.mean(np.abs(ref)), rel=1e-12)
    assert_allclose(np.angle(out), np.angle(test), atol=1e-12)  # phase untouched


@pytest.mark.parametrize("offset", [0.7, -2.9, 3.1])
def test_remove_global_phase_offset(rng, offset):
    ref = smooth_object(rng, (64, 64))
    ref = ref * np.exp(2.5j)  # reference phases straddle the +-pi wrap
    test = ref * np.exp(1j * offset)
    out = remove_phase_offset(ref, test, mode="mean")
    assert _phase_residual_rms(ref, out) < 1e-3
    assert_allclose(np.abs(out), np.abs(test), rtol=1e-12)


def test_remove_phase_offset_accepts_reference_phase_image(rng):
    ref = smooth_object(rng, (40, 40))
    out = remove_phase_offset(np.angle(ref), ref * np.exp(-1.2j))
    assert _phase_residual_rms(ref, out) < 1e-3


@pytest.mark.parametrize(
    ("a", "b", "c"),
    [(0.4, 0.02, -0.03), (-2.0, 0.35, 0.6), (3.0, -1.1, 0.05)],  # up to ~70 wraps per axis
)
def test_remove_phase_plane(rng, a, b, c):
    ref = smooth_object(rng, (64, 80))
    rows, cols = np.mgrid[0:64, 0:80]
    test = ref * np.exp(1j * (a + b * rows + c * cols))
    out = remove_phase_offset(ref, test, mode="plane")
    assert _phase_residual_rms(ref, out) < 1e-3


def test_remove_phase_plane_with_noise_is_unbiased(rng):
    ref = smooth_object(rng, (64, 64))
    rows, cols = np.mgrid[0:64, 0:64]
    noisy_phase = 0.05 * rng.standard_normal(ref.shape)
    test = ref * np.exp(1j * (1.0 + 0.1 * rows - 0.2 * cols + noisy_phase))
    out = remove_phase_offset(ref, test, mode="plane")
    residual = np.angle(out * np.conj(ref))
    # Only the noise remains: its rms, and no plane left in it.
    assert np.sqrt(np.mean(residual**2)) < 0.06
    coef = np.linalg.lstsq(
        np.column_stack([np.ones(rows.size), rows.ravel(), cols.ravel()]),
        residual.ravel(),
        rcond=None,
    )[0]
    assert_allclose(coef[1:], 0.0, atol=2e-4)


def test_remove_phase_offset_rejects_real_test_and_bad_mode(rng):
    ref = smooth_object(rng, (16, 16))
    with pytest.raises(TypeError, match="complex"):
        remove_phase_offset(ref, np.abs(ref))
    with pytest.raises(ValueError, match="mode"):
        remove_phase_offset(ref, ref, mode="median")


# ------------------------------------------------------------------ full pipeline
@pytest.mark.parametrize("phase", ["mean", "plane"])
def test_align_to_reference_undoes_shift_scale_and_phase(rng, phase):
    ref = smooth_object(rng, (96, 96), sigma=2.0)
    ramp = 0.0
    if phase == "plane":
        rows, cols = np.mgrid[0:96, 0:96]
        ramp = 0.04 * rows - 0.07 * cols
    test = 0.37 * shift_image(ref, PLANTED_SHIFT) * np.exp(1j * (0.8 + ramp))
    pair = align_to_reference(ref, test, phase=phase, crop_margin=2)
    assert isinstance(pair, AlignedPair)
    assert_allclose(pair.shift_rc, -np.asarray(PLANTED_SHIFT), atol=0.05)
    # border of ceil(|shift|) + margin removed on each side: rows 2 + 2, cols 3 + 2
    assert pair.reference.shape == pair.test.shape == (96 - 8, 96 - 10)
    assert pair.region == (slice(4, 92), slice(5, 91))
    assert_allclose(pair.reference, ref[pair.region])
    assert np.max(np.abs(pair.test - pair.reference)) < 0.02


def test_align_to_reference_crops_to_coverage(rng):
    ref = smooth_object(rng, (80, 90))
    coverage = np.zeros((80, 90), dtype=np.float32)
    coverage[10:70, 12:80] = 4.0
    test = np.where(coverage > 0, ref, 0.0)  # nothing reconstructed outside
    pair = align_to_reference(ref, test, coverage=coverage, crop_margin=1)
    assert_allclose(pair.shift_rc, 0.0, atol=0.03)
    assert pair.region == (slice(11, 69), slice(13, 79))
    assert np.max(np.abs(pair.test - pair.reference)) < 1e-6


def test_align_to_reference_explicit_region_and_no_registration(rng):
    ref = smooth_object(rng, (40, 40))
    pair = align_to_reference(ref, ref * 2.0, region=(slice(5, 35), slice(0, 40)), register=False)
    assert pair.region == (slice(7, 33), slice(2, 38))
    assert_allclose(pair.test, pair.reference, atol=1e-12)


def test_align_to_reference_errors(rng):
    ref = smooth_object(rng, (32, 32))
    with pytest.raises(ValueError, match="same pixel frame"):
        align_to_reference(ref, ref[:, :30])
    bad = ref.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        align_to_reference(ref, bad)
    with pytest.raises(ValueError, match="too small"):
        align_to_reference(ref, ref, crop_margin=16)
