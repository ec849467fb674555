r"""Fourier ring correlation: identities, independence, an analytic crossing.

Analytic case used below. Let ``x`` be white noise with power ``P`` per Fourier pixel,
``y = h * x + n`` where ``h`` is a Gaussian blur of standard deviation ``sigma`` pixels with
transfer function :math:`H(f) = \exp(-2\pi^2\sigma^2 |f|^2)` (applied exactly in Fourier space)
and ``n`` independent white noise of power ``r P``. Per ring the expectations are
:math:`E[X Y^*] = H P`, :math:`E|X|^2 = P`, :math:`E|Y|^2 = (H^2 + r) P`, hence

.. math:: \mathrm{FRC}(f) \simeq \frac{H(f)}{\sqrt{H(f)^2 + r}}.

It equals 0.5 where :math:`H = \sqrt{r / 3}`, i.e. at
:math:`f_{0.5} = \sqrt{\ln(1 / H_c)} / (\sqrt{2}\,\pi\,\sigma)` with :math:`H_c = \sqrt{r/3}`.

Noise level: the FRC of one ring of ``m`` Fourier pixels fluctuates by ~(1 - FRC^2)/sqrt(m/2),
and the first-crossing statistic turns that into a frequency error of
~sqrt(k / pi) / ln(1 / H_c) rings at ring ``k``. With equal-power noise (r = 1) the curve is
flat at the crossing and the error is several rings (biased early); with r = 1e-3 and
sigma = 4 px on 128 x 128 the crossing is at ring 14.4 and the error is ~0.35 rings
(max 0.74 over 100 seeds), so +-1 ring is a real test of the implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ptychopinn.evaluation.frc import (
    FRC_HALF,
    FRC_ONE_SEVENTH,
    NYQUIST,
    frc,
    frc_crossing,
)

from .conftest import smooth_object


def test_frc_of_image_with_itself_is_one(rng):
    img = rng.random((64, 64))
    freqs, curve = frc(img, img)
    assert freqs.shape == curve.shape == (33,)
    assert_allclose(freqs, np.arange(33) / 64)
    assert_allclose(curve, 1.0, atol=1e-12)
    assert frc_crossing(freqs, curve, FRC_HALF) == NYQUIST


@pytest.mark.parametrize("window", [None, "hann"])
def test_frc_complex_and_non_square(rng, window):
    obj = smooth_object(rng, (48, 64), sigma=1.0)
    freqs, curve = frc(obj, obj, window=window)
    assert freqs[1] == pytest.approx(1 / 48)  # ring width = 1 / min(H, W)
    assert freqs[-1] == pytest.approx(0.5)
    assert_allclose(curve, 1.0, atol=1e-12)
    # A global phase rotation cos-scales the complex correlation coefficient.
    _, rotated = frc(obj, obj * np.exp(1j * np.pi / 3))
    assert_allclose(rotated, 0.5, atol=1e-12)


def test_frc_of_independent_noise_is_near_zero(rng):
    a = rng.standard_normal((128, 128))
    b = rng.standard_normal((128, 128))
    _, curve = frc(a, b)
    assert abs(np.mean(curve[1:])) < 0.1
    assert np.all(np.abs(curve[5:]) < 0.5)  # rings of >= ~30 px


def test_frc_ring_width(rng):
    img = rng.random((64, 64))
    freqs, curve = frc(img, img + rng.random((64, 64)), ring_width=2)
    assert_allclose(freqs, np.arange(17) * 2 / 64)
    assert np.all(np.isfinite(curve))


def test_frc_sign_and_scale_invariance(rng):
    a = rng.standard_normal((32, 32))
    b = a + 0.5 * rng.standard_normal((32, 32))
    _, c1 = frc(a, b)
    _, c2 = frc(3.0 * a, 0.1 * b)
    _, c3 = frc(a, -b)
    assert_allclose(c1, c2, atol=1e-12)
    assert_allclose(c3, -c1, atol=1e-12)


def _blur_pair(rng, n, sigma, noise_power_ratio):
    x = rng.standard_normal((n, n))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    transfer = np.exp(-2.0 * np.pi**2 * sigma**2 * (fy**2 + fx**2))
    y = np.fft.ifft2(np.fft.fft2(x) * transfer).real
    y = y + math.sqrt(noise_power_ratio) * rng.standard_normal((n, n))
    return x, y


def _crossing_prediction(sigma: float, ratio: float, level: float) -> float:
    """Frequency where H / sqrt(H^2 + r) = level, H(f) = exp(-2 pi^2 sigma^2 f^2)."""
    h_c = math.sqrt(ratio * level**2 / (1.0 - level**2))
    return math.sqrt(math.log(1.0 / h_c)) / (math.sqrt(2.0) * math.pi * sigma)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frc_half_crossing_of_blurred_noisy_copy_matches_transfer_function(seed):
    n, sigma, ratio = 128, 4.0, 1e-3
    x, y = _blur_pair(np.random.default_rng(seed), n, sigma, ratio)
    freqs, curve = frc(x, y)
    predicted = _crossing_prediction(sigma, ratio, FRC_HALF)  # H = sqrt(r / 3)
    assert predicted * n == pytest.approx(14.41, abs=0.01)
    assert abs(frc_crossing(freqs, curve, FRC_HALF) - predicted) <= 1.0 / n  # +-1 ring


def test_frc_one_seventh_crossing_matches_transfer_function(rng):
    # At 1/7 a single curve is ~3x noisier (see module docstring): average 8 realisations.
    n, sigma, ratio = 128, 4.0, 1e-3
    curves = []
    for _ in range(8):
        x, y = _blur_pair(rng, n, sigma, ratio)
        freqs, curve = frc(x, y)
        curves.append(curve)
    predicted = _crossing_prediction(sigma, ratio, FRC_ONE_SEVENTH)  # H = sqrt(r / 48)
    measured = frc_crossing(freqs, np.mean(curves, axis=0), FRC_ONE_SEVENTH)
    assert abs(measured - predicted) <= 1.0 / n


def test_frc_crossing_interpolates_linearly():
    freqs = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    curve = np.array([1.0, 0.9, 0.7, 0.3, 0.6, 0.1])
    # first drop below 0.5 between 0.2 (0.7) and 0.3 (0.3): 0.2 + 0.1 * 0.2 / 0.4
    assert frc_crossing(freqs, curve, 0.5) == pytest.approx(0.25)
    assert frc_crossing(freqs, curve, 1 / 7) == pytest.approx(0.4 + 0.1 * (0.6 - 1 / 7) / 0.5)
    assert frc_crossing(freqs, curve, 0.05) == NYQUIST  # never below


def test_frc_crossing_ignores_dc_and_nan():
    freqs = np.array([0.0, 0.1, 0.2, 0.3])
    assert frc_crossing(freqs, np.array([0.0, 0.9, np.nan, 0.1]), 0.5) == pytest.approx(
        0.1 + 0.2 * 0.4 / 0.8
    )
    assert frc_crossing(freqs, np.array([1.0, 0.2, 0.1, 0.0]), 0.5) == pytest.approx(0.1)


def test_frc_rings_without_power_are_nan():
    img = np.ones((16, 16))
    freqs, curve = frc(img, img)
    assert curve[0] == pytest.approx(1.0)
    assert np.all(np.isnan(curve[1:]))
    assert np.isnan(frc_crossing(freqs, curve, FRC_HALF))


def test_frc_rejects_bad_input():
    with pytest.raises(ValueError, match="equal shape"):
        frc(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="window"):
        frc(np.zeros((8, 8)), np.zeros((8, 8)), window="kaiser")
    with pytest.raises(ValueError, match="NaN"):
        frc(np.full((8, 8), np.nan), np.zeros((8, 8)))
