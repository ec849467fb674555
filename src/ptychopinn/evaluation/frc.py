r"""Fourier ring correlation (FRC) between two images.

.. math::

    \mathrm{FRC}(k) = \frac{\mathrm{Re}\sum_{f \in R_k} F_1(f)\, F_2^*(f)}
                           {\sqrt{\sum_{f \in R_k} |F_1(f)|^2 \sum_{f \in R_k} |F_2(f)|^2}}

where :math:`F_i` are the 2-D DFTs of the two images and :math:`R_k` is the ring of spatial
frequencies with ``round(|f| / df) == k``. For real images the sum over a ring is real
(Hermitian symmetry); for complex images the real part is the correlation coefficient.

References
----------
.. [1] M. van Heel, M. Schatz, "Fourier shell correlation threshold criteria", J. Struct. Biol.
   151, 250-262 (2005).
.. [2] N. Banterle et al., "Fourier ring correlation as a resolution criterion for
   super-resolution microscopy", J. Struct. Biol. 183, 363-367 (2013).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["FRC_HALF", "FRC_ONE_SEVENTH", "NYQUIST", "frc", "frc_crossing"]

#: The 0.5 threshold.
FRC_HALF = 0.5
#: The 1/7 threshold (Rosenthal & Henderson).
FRC_ONE_SEVENTH = 1.0 / 7.0
#: Nyquist frequency in cycles per pixel; :func:`frc_crossing` returns it when no crossing.
NYQUIST = 0.5


def _ring_index(shape: tuple[int, int], ring_width: float) -> tuple[np.ndarray, float]:
    """Ring index of every DFT pixel and the ring spacing ``df`` in cycles/pixel."""
    h, w = shape
    df = ring_width / min(h, w)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    return np.floor(radius / df + 0.5).astype(np.int64), df


def frc(
    image_true: np.ndarray,
    image_test: np.ndarray,
    *,
    ring_width: float = 1.0,
    window: Literal["hann"] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring correlation of two images.

    Parameters
    ----------
    image_true, image_test : ndarray of shape (H, W), real or complex
        Images on the same pixel grid (non-square allowed).
    ring_width : float, optional
        Ring width in units of ``1 / min(H, W)`` cycles/pixel (the DFT spacing along the
        shorter axis).
    window : {None, "hann"}, optional
        Apodization applied to both images before the DFT. ``None`` (default) uses the images
        as they are; ``"hann"`` removes each image's mean and multiplies both by a separable
        periodic Hann window, which removes the edge-discontinuity cross (shared by any two
        images of the same crop, so it biases the curve high) at the cost of a slight low-pass.

    Returns
    -------
    freqs : ndarray of shape (K,), float64
        Ring centres ``k * df`` in cycles/pixel, ``k = 0 .. floor(0.5 / df)`` (up to Nyquist;
        the corners of the spectrum beyond 0.5 are not used).
    curve : ndarray of shape (K,), float64
        FRC per ring, in [-1, 1]. NaN for a ring where either image has no power.

    Notes
    -----
    Ring ``k`` collects frequencies with ``round(|f| / df) == k``; ring 0 is the DC term only.
    No smoothing is applied to the curve.

    Examples
    --------
    >>> img = np.random.default_rng(0).random((32, 32))
    >>> freqs, curve = frc(img, img)
    >>> freqs[[0, 1, -1]].tolist(), bool(np.allclose(curve, 1.0))
    ([0.0, 0.03125, 0.5], True)
    """
    a = np.asarray(image_true)
    b = np.asarray(image_test)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"frc needs two 2-D images of equal shape, got {a.shape} and {b.shape}")
    if min(a.shape) < 2:
        raise ValueError(f"images are too small for an FRC: {a.shape}")
    if ring_width <= 0:
        raise ValueError(f"ring_width must be > 0, got {ring_width}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("frc: images contain NaN or Inf values")
    if window == "hann":
        from scipy.signal import windows

        win = np.outer(windows.hann(a.shape[0], sym=False), windows.hann(a.shape[1], sym=False))
        a, b = (a - a.mean()) * win, (b - b.mean()) * win
    elif window is not None:
        raise ValueError(f"window must be None or 'hann', got {window!r}")

    fa = np.fft.fft2(a)
    fb = np.fft.fft2(b)
    ring, df = _ring_index(a.shape, ring_width)
    n_rings = int(np.floor(NYQUIST / df + 1e-9)) + 1
    keep = ring < n_rings
    idx = ring[keep]
    cross = np.bincount(idx, weights=np.real(fa * np.conj(fb))[keep], minlength=n_rings)
    pa = np.bincount(idx, weights=(np.abs(fa) ** 2)[keep], minlength=n_rings)
    pb = np.bincount(idx, weights=(np.abs(fb) ** 2)[keep], minlength=n_rings)
    denom = np.sqrt(pa * pb)
    valid = denom > 0
    curve = np.full(n_rings, np.nan)
    curve[valid] = np.clip(cross[valid] / denom[valid], -1.0, 1.0)
    freqs = np.arange(n_rings) * df
    return freqs, curve


def frc_crossing(freqs: np.ndarray, curve: np.ndarray, threshold: float) -> float:
    """First frequency at which an FRC curve falls below a threshold.

    Parameters
    ----------
    freqs : ndarray of shape (K,), float
        Ring frequencies in cycles/pixel, increasing (as returned by :func:`frc`).
    curve : ndarray of shape (K,), float
        FRC values; NaN rings are ignored.
    threshold : float
        E.g. :data:`FRC_HALF` (0.5) or :data:`FRC_ONE_SEVENTH` (1/7).

    Returns
    -------
    float
        Frequency (cycles/pixel) where the curve first drops below ``threshold``, linearly
        interpolated between the last ring at or above it and the first ring below it. The DC
        ring (``freqs == 0``) is not a candidate. Returns the Nyquist frequency 0.5 when the
        curve never drops below the threshold, and ``freqs`` of the first usable ring when it
        is already below the threshold there.

    Examples
    --------
    >>> frc_crossing(np.array([0.0, 0.1, 0.2, 0.3]), np.array([1.0, 0.9, 0.3, 0.1]), 0.5)
    0.16666666666666669
    """
    f = np.asarray(freqs, dtype=np.float64)
    c = np.asarray(curve, dtype=np.float64)
    if f.shape != c.shape or f.ndim != 1:
        raise ValueError(f"freqs and curve must be 1-D of equal length, got {f.shape}, {c.shape}")
    use = np.isfinite(c) & np.isfinite(f) & (f > 0)
    f, c = f[use], c[use]
    if f.size == 0:
        logger.warning("frc_crossing: no usable ring; returning NaN")
        return float("nan")
    below = np.flatnonzero(c < threshold)
    if below.size == 0:
        return NYQUIST
    i = int(below[0])
    if i == 0:
        return float(f[0])
    f0, f1, c0, c1 = f[i - 1], f[i], c[i - 1], c[i]
    return float(f0 + (c0 - threshold) * (f1 - f0) / (c0 - c1))
