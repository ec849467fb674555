"""Metrics: agreement with scikit-image, known answers, MS-SSIM behaviour, evaluate()."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ptychopinn.evaluation.metrics import (
    METRIC_NAMES,
    PARTS,
    _ssim_and_cs,
    evaluate,
    mae,
    ms_ssim,
    mse,
    psnr,
    psnr255,
    ssim,
)
from ptychopinn.evaluation.registration import shift_image

from .conftest import smooth_image, smooth_object


@pytest.fixture
def image_pair(rng):
    ref = smooth_image(rng, (64, 72), sigma=1.5)
    test = ref + 0.2 * rng.standard_normal(ref.shape)
    return ref, test


# ------------------------------------------------------------------ pixel-wise
def test_mae_mse_known_values():
    ref = np.array([[0.0, 1.0], [2.0, 3.0]])
    test = np.array([[1.0, 1.0], [0.0, 3.0]])
    assert mae(ref, test) == pytest.approx(0.75)
    assert mse(ref, test) == pytest.approx(1.25)


def test_psnr_equals_skimage_with_reference_range(image_pair):
    ref, test = image_pair
    expected = peak_signal_noise_ratio(ref, test, data_range=ref.max() - ref.min())
    assert psnr(ref, test) == pytest.approx(expected, rel=1e-12)
    expected = peak_signal_noise_ratio(ref, test, data_range=3.0)
    assert psnr(ref, test, data_range=3.0) == pytest.approx(expected, rel=1e-12)


def test_psnr_of_identical_images_is_inf_without_warning(image_pair):
    ref, _ = image_pair
    assert psnr(ref, ref.copy()) == math.inf
    assert psnr255(ref, ref.copy()) == math.inf


def test_psnr255_known_answer():
    # MSE = (0 + 0 + 0 + 2**2) / 4 = 1  ->  10 log10(255**2 / 1) = 48.1308 dB
    ref = np.array([[0.0, 1.0], [2.0, 3.0]])
    test = np.array([[0.0, 1.0], [2.0, 5.0]])
    assert psnr255(ref, test) == pytest.approx(20 * math.log10(255.0), abs=1e-12)
    assert psnr255(ref, test) == pytest.approx(48.1308036, abs=1e-6)
    # MSE = 0.25 -> + 6.0206 dB; no dependence on the reference range
    assert psnr255(ref * 10, ref * 10 + 0.5) == pytest.approx(48.1308036 + 6.0205999, abs=1e-6)
    assert psnr255(ref, test) == pytest.approx(psnr(ref, test, data_range=255.0), rel=1e-12)


def test_constant_reference_uses_peak_as_range(caplog):
    ref = np.full((16, 16), 2.0)
    test = ref + 0.1
    with caplog.at_level(logging.WARNING):
        value = psnr(ref, test)
    assert value == pytest.approx(10 * math.log10(4.0 / 0.01))
    assert "constant" in caplog.text


def test_metrics_reject_complex_and_mismatched():
    with pytest.raises(TypeError, match="real"):
        mae(np.ones((4, 4), complex), np.ones((4, 4), complex))
    with pytest.raises(ValueError, match="shape"):
        mse(np.ones((4, 4)), np.ones((4, 5)))


# ------------------------------------------------------------------ SSIM
def test_ssim_equals_skimage(image_pair):
    ref, test = image_pair
    expected = structural_similarity(ref, test, data_range=ref.max() - ref.min())
    assert ssim(ref, test) == pytest.approx(expected, rel=1e-12)
    assert ssim(ref, ref) == pytest.approx(1.0)


def test_ssim_small_image_shrinks_the_window(rng):
    ref = rng.random((5, 6))
    test = ref + 0.1 * rng.random((5, 6))
    expected = structural_similarity(ref, test, data_range=ref.max() - ref.min(), win_size=5)
    assert ssim(ref, test) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="too small"):
        ssim(np.ones((2, 8)), np.ones((2, 8)))


def test_internal_ssim_terms_match_skimage(image_pair):
    # ms_ssim's own SSIM implementation must agree with skimage at full resolution.
    ref, test = image_pair
    data_range = ref.max() - ref.min()
    full, cs = _ssim_and_cs(ref, test, data_range, 7)
    assert full == pytest.approx(structural_similarity(ref, test, data_range=data_range))
    assert -1.0 <= cs <= 1.0


# ------------------------------------------------------------------ MS-SSIM
def test_ms_ssim_identical_is_one(image_pair):
    ref, _ = image_pair
    assert ms_ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_decreases_with_noise(rng):
    ref = smooth_image(rng, (96, 96), sigma=2.0)
    noise = rng.standard_normal(ref.shape)
    values = [ms_ssim(ref, ref + level * noise) for level in (0.0, 0.05, 0.2, 0.5, 1.0)]
    assert values[0] == pytest.approx(1.0)
    assert all(b < a for a, b in zip(values, values[1:], strict=False))
    assert 0.0 <= values[-1] < 0.9


def test_ms_ssim_on_48x48_uses_five_scales(rng, caplog):
    ref = smooth_image(rng, (48, 48), sigma=1.5)
    test = ref + 0.3 * rng.standard_normal(ref.shape)
    with caplog.at_level(logging.INFO):
        value = ms_ssim(ref, test)
    assert 0.0 < value < 1.0
    assert "scales" not in caplog.text  # no scale was dropped


def test_ms_ssim_small_image_renormalises_weights(rng, caplog):
    ref = smooth_image(rng, (24, 30), sigma=1.5)
    test = ref + 0.3 * rng.standard_normal(ref.shape)
    with caplog.at_level(logging.INFO):
        value = ms_ssim(ref, test)
    assert 0.0 < value < 1.0
    assert "supports 4 of 5 scales" in caplog.text


def test_ms_ssim_single_scale_is_ssim(image_pair):
    ref, test = image_pair
    assert ms_ssim(ref, test, weights=(1.0,)) == pytest.approx(ssim(ref, test), rel=1e-12)


def test_ms_ssim_anticorrelated_is_zero(image_pair):
    ref, _ = image_pair
    assert ms_ssim(ref, -ref) == 0.0


# ------------------------------------------------------------------ evaluate
def _assert_complete(result):
    assert set(result) == set(PARTS)
    for part in PARTS:
        assert tuple(result[part]) == METRIC_NAMES
        assert all(isinstance(v, float) for v in result[part].values())


def test_evaluate_shift_phase_and_scale_are_forgiven(rng):
    ref = smooth_object(rng, (96, 96), sigma=2.0)
    test = 0.5 * shift_image(ref, (1.3, -2.7)) * np.exp(1.1j)
    result = evaluate(ref, test)
    _assert_complete(result)
    for part in PARTS:
        assert result[part]["ssim"] > 0.99
        assert result[part]["ms_ssim"] > 0.99
        # Hann-windowed FRC: correlated up to where this smooth (sigma 2 px) object has
        # essentially no power (< e^-12 of DC beyond 0.4 cycles/px)
        assert result[part]["frc50"] > 0.35
    unwindowed = evaluate(ref, test, frc_window=None)
    for part in PARTS:
        assert unwindowed[part]["frc50"] == 0.5  # never drops below 0.5
    assert result["amplitude"]["mae"] < 1e-2
    assert result["phase"]["mae"] < 1e-2


def test_evaluate_plane_mode_removes_ramp(rng):
    ref = smooth_object(rng, (80, 80), sigma=2.0)
    rows, cols = np.mgrid[0:80, 0:80]
    test = 2.0 * ref * np.exp(1j * (3.0 + 0.2 * rows - 0.15 * cols))
    result = evaluate(ref, test, phase="plane")
    assert result["phase"]["ssim"] > 0.999
    assert result["phase"]["mae"] < 1e-6
    # the plain offset removal cannot fix a ramp
    assert evaluate(ref, test, phase="mean")["phase"]["ssim"] < 0.5


def test_evaluate_phase_error_is_modulo_two_pi(rng):
    """A phase field that crosses +-pi (wrapped by np.angle), reconstructed with a global
    offset and 0.02 rad noise: the error is the noise, not the 2 pi jumps a naive difference
    of angles sees wherever reference and test land on opposite sides of the cut."""
    phi = np.pi + 0.8 * smooth_image(rng, (64, 64), sigma=3.0)
    ref = (0.9 + 0.05 * smooth_image(rng, (64, 64))) * np.exp(1j * phi)
    wrapped = np.angle(ref)
    assert (wrapped > 2.5).mean() > 0.2 and (wrapped < -2.5).mean() > 0.2  # really wraps
    err = 0.02 * rng.standard_normal(ref.shape)
    test = ref * np.exp(1j * (0.4 + err))
    result = evaluate(ref, test, register=False)
    assert result["phase"]["mae"] == pytest.approx(np.mean(np.abs(err - err.mean())), rel=0.05)
    assert result["phase"]["ssim"] > 0.99
    # what a metric on raw angles would report (after the same offset removal)
    d = np.angle(test) - wrapped
    naive = np.abs(d - np.angle(np.mean(np.exp(1j * d))))
    assert (naive > np.pi).mean() > 0.05 and naive.mean() > 10 * result["phase"]["mae"]


def test_evaluate_degrades_with_noise(rng):
    ref = smooth_object(rng, (96, 96), sigma=2.0)
    noise = rng.standard_normal(ref.shape) + 1j * rng.standard_normal(ref.shape)
    clean = evaluate(ref, ref + 0.01 * noise)
    noisy = evaluate(ref, ref + 0.1 * noise)
    for part in PARTS:
        assert noisy[part]["ssim"] < clean[part]["ssim"]
        assert noisy[part]["psnr"] < clean[part]["psnr"]
        assert noisy[part]["mse"] > clean[part]["mse"]
        assert noisy[part]["frc50"] <= clean[part]["frc50"]
        assert noisy[part]["frc17"] >= noisy[part]["frc50"]
    # object values are << 255, so the fixed-peak variant is always the larger number
    assert noisy["amplitude"]["psnr255"] > noisy["amplitude"]["psnr"]
