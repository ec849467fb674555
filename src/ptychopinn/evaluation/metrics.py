"""Image-quality metrics for reconstructions (SPEC §7).

Every metric takes the reference first (``image_true``) and the image under test second
(``image_test``), both real 2-D arrays of the same shape, and returns a Python float.
:func:`evaluate` runs the whole SPEC §7 protocol on complex objects: registration
(:func:`~ptychopinn.evaluation.registration.align_to_reference`), then every metric on the
amplitude and on the phase.

Data range
----------
PSNR and SSIM need the dynamic range ``L`` of the signal. Here it is always the range of the
**reference**, ``L = max(image_true) - min(image_true)``, so that all models compared with one
reference are scored with the same constant. If the reference is constant (e.g. the amplitude
of a pure phase object), ``L = max(|image_true|)`` is used instead, or 1 if that is 0 too.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from scipy.ndimage import uniform_filter

from ptychopinn.evaluation.frc import FRC_HALF, FRC_ONE_SEVENTH, frc, frc_crossing
from ptychopinn.evaluation.registration import AlignedPair, align_to_reference

logger = logging.getLogger(__name__)

__all__ = [
    "METRIC_NAMES",
    "MS_SSIM_WEIGHTS",
    "PARTS",
    "evaluate",
    "evaluate_aligned",
    "mae",
    "ms_ssim",
    "mse",
    "part_images",
    "psnr",
    "psnr255",
    "ssim",
]

#: The two parts of a complex object that are scored.
PARTS: tuple[str, str] = ("amplitude", "phase")
#: Metric names returned by :func:`evaluate`, in table order.
METRIC_NAMES: tuple[str, ...] = (
    "mae",
    "mse",
    "psnr",
    "psnr255",
    "ssim",
    "ms_ssim",
    "frc50",
    "frc17",
)
#: Per-scale exponents of MS-SSIM, finest scale first (Wang, Simoncelli & Bovik 2003).
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

_K1 = 0.01
_K2 = 0.03
_DEFAULT_WIN = 7


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _pair(image_true: np.ndarray, image_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(image_true)
    b = np.asarray(image_test)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("images are empty")
    if np.iscomplexobj(a) or np.iscomplexobj(b):
        raise TypeError("metrics take real images; score amplitude and phase separately")
    a = a.astype(np.float64, copy=False)
    b = b.astype(np.float64, copy=False)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("images contain NaN or Inf values")
    return a, b


def _reference_range(image_true: np.ndarray, data_range: float | None) -> float:
    if data_range is not None:
        if not data_range > 0:
            raise ValueError(f"data_range must be > 0, got {data_range}")
        return float(data_range)
    span = float(np.max(image_true) - np.min(image_true))
    if span > 0:
        return span
    peak = float(np.max(np.abs(image_true)))
    logger.warning(
        "reference image is constant; using data_range = max|reference| = %g (or 1 if 0)", peak
    )
    return peak if peak > 0 else 1.0


def _window_size(shape: tuple[int, ...], win_size: int) -> int:
    """Largest odd window <= ``win_size`` that fits in ``shape``."""
    side = min(shape)
    if side < 3:
        raise ValueError(f"image of shape {shape} is too small for SSIM (needs >= 3x3)")
    ws = min(win_size, side)
    return ws if ws % 2 == 1 else ws - 1


# --------------------------------------------------------------------------------------------
# pixel-wise metrics
# --------------------------------------------------------------------------------------------
def mae(image_true: np.ndarray, image_test: np.ndarray) -> float:
    """Mean absolute error.

    Parameters
    ----------
    image_true, image_test : ndarray of shape (H, W), float
        Reference and test images.

    Returns
    -------
    float
        ``mean(|image_test - image_true|)``.

    Examples
    --------
    >>> mae(np.zeros((2, 2)), np.array([[1.0, -1.0], [0.0, 2.0]]))
    1.0
    """
    a, b = _pair(image_true, image_test)
    return float(np.mean(np.abs(b - a)))


def mse(image_true: np.ndarray, image_test: np.ndarray) -> float:
    """Mean squared error.

    Parameters
    ----------
    image_true, image_test : ndarray of shape (H, W), float
        Reference and test images.

    Returns
    -------
    float
        ``mean((image_test - image_true) ** 2)``.

    Examples
    --------
    >>> mse(np.zeros((2, 2)), np.array([[1.0, -1.0], [0.0, 2.0]]))
    1.5
    """
    a, b = _pair(image_true, image_test)
    return float(np.mean((b - a) ** 2))


def psnr(
    image_true: np.ndarray, image_test: np.ndarray, *, data_range: float | None = None
) -> float:
    r"""Peak signal-to-noise ratio in dB, peak = data range of the reference.

    .. math:: \mathrm{PSNR} = 10 \log_{10} \frac{L^2}{\mathrm{MSE}}

    Parameters
    ----------
    image_true, image_test : ndarray of shape (H, W), float
        Reference and test images.
    data_range : float, optional
        ``L``. Default: ``max(image_true) - min(image_true)`` (see the module notes for a
        constant reference).

    Returns
    -------
    float
        PSNR in dB; ``inf`` for identical images. Same value as
        :func:`skimage.metrics.peak_signal_noise_ratio` with the same ``data_range``.

    Examples
    --------
    >>> round(psnr(np.array([[0.0, 1.0]]), np.array([[0.1, 0.9]])), 6)
    20.0
    """
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _pair(image_true, image_test)
    rng = _reference_range(a, data_range)
    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(a, b, data_range=rng))


def psnr255(image_true: np.ndarray, image_test: np.ndarray) -> float:
    r"""PSNR with a fixed peak of 255, as in the published PtychoPINN tables.

    .. math:: \mathrm{PSNR}_{255} = 10 \log_{10} \frac{255^2}{\mathrm{MSE}}

    computed on the **raw** values (no rescaling to 0..255), i.e. exactly what
    ``cv2.PSNR(target, pred)`` (default ``R = 255``) returns on float images, which is what
    PtychoPINN's ``ptycho/evaluation.py`` reports: for the amplitude after scaling the
    prediction to the reference mean, for the phase after offset/plane removal. Use it only to
    compare with those tables; it is not a meaningful PSNR for data in [0, 1] or in radians
    (it equals ``psnr(..., data_range=255)``; numbers are ~48 dB + 10 log10(1 / MSE)).

    Parameters
    ----------
    image_true, image_test : ndarray of shape (H, W), float
        Reference and test images (already aligned and scaled).

    Returns
    -------
    float
        PSNR in dB; ``inf`` for identical images (cv2 would return 361.2 there).

    Notes
    -----
    Linearly mapping both images to 0..255 with the reference's min/max and then taking the
    255-peak PSNR gives *exactly* :func:`psnr` with the default data range (the map scales
    the error by ``255 / L``), so that variant would add nothing; this function implements
    the one actually used in the PtychoPINN code.

    Examples
    --------
    >>> round(psnr255(np.zeros((4, 4)), np.ones((4, 4))), 4)  # 20 log10(255), MSE = 1
    48.1308
    """
    a, b = _pair(image_true, image_test)
    err = float(np.mean((b - a) ** 2))
    if err == 0.0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / err))


# --------------------------------------------------------------------------------------------
# structural similarity
# --------------------------------------------------------------------------------------------
def ssim(
    image_true: np.ndarray,
    image_test: np.ndarray,
    *,
    data_range: float | None = None,
    win_size: int = _DEFAULT_WIN,
) -> float:
    """Structural similarity index (mean SSIM), via :func:`skimage.metrics.structural_similarity`.

    Parameters
    ----------
    image_true, image_test : ndarray of shape (H, W), float
        Reference and test images, at least 3 x 3.
    data_range : float, optional
        Dynamic range ``L`` in the constants ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``.
        Default: range of the reference (module notes).
    win_size : int, optional
        Side of the uniform sliding window (skimage's default 7). Reduced to the largest odd
        size that fits when the image is smaller.

    Returns
    -------
    float
        Mean SSIM over the valid window positions, in [-1, 1].

    Notes
    -----
    skimage defaults otherwise: uniform window, sample covariance, K1 = 0.01, K2 = 0.03, and
    the mean is taken after cropping ``(win_size - 1) // 2`` pixels at each border.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment:
       from error visibility to structural similarity", IEEE TIP 13, 600-612 (2004).

    Examples
    --------
    >>> img = np.random.default_rng(0).random((16, 16))
    >>> ssim(img, img)
    1.0
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(image_true, image_test)
    rng = _reference_range(a, data_range)
    ws = _window_size(a.shape, win_size)
    return float(structural_similarity(a, b, data_range=rng, win_size=ws))


def _ssim_and_cs(a: np.ndarray, b: np.ndarray, data_range: float, ws: int) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term, with skimage's conventions."""
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    n_px = ws * ws
    cov_norm = n_px / (n_px - 1.0)
    ux = uniform_filter(a, size=ws)
    uy = uniform_filter(b, size=ws)
    vx = cov_norm * (uniform_filter(a * a, size=ws) - ux * ux)
    vy = cov_norm * (uniform_filter(b * b, size=ws) - uy * uy)
    vxy = cov_norm * (uniform_filter(a * b, size=ws) - ux * uy)
    cs_map = (2.0 * vxy + c2) / (vx + vy + c2)
    lum_map = (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1)
    pad = (ws - 1) // 2
    inner = (slice(pad, a.shape[0] - pad), slice(pad, a.shape[1] - pad))
    return float(np.mean((lum_map * cs_map)[inner])), float(np.mean(cs_map[inner]))


def _downsample2(img: np.ndarray) -> np.ndarray:
    """2 x 2 block average (an odd last row/column is dropped)."""
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    v = img[:h, :w]
    return 0.25 * (v[0::2, 0::2] + v[1::2, 0::2] + v[0::2, 1::2] + v[1::2, 1::2])


def ms_ssim(
    image_true: np.ndarray,
    image_test: np.ndarray,
    *,
    data_range: float | None = None,
    win_size: int = _DEFAULT_WIN,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> float:
    r"""Multi-scale structural similarity (MS-SSIM).

    .. math:: \mathrm{MS\text{-}SSIM} = \mathrm{SSIM}_M^{\,w_M}
              \prod_{j=1}^{M-1} \mathrm{cs}_j^{\,w_j}

    where :math:`\mathrm{cs}_j` is the mean contrast-structure term at scale :math:`j`
    (scale 1 = full resolution) and :math:`\mathrm{SSIM}_M` the mean SSIM at the coarsest
    scale; each scale is the previous one averaged over 2 x 2 blocks.

    Parameters
    ----------
    image_true, image_test : ndarray of shape (H, W), float
        Reference and test images, at least 3 x 3.
    data_range : float, optional
        ``L`` (same constants at every scale). Default: range of the full-resolution
        reference.
    win_size : int, optional
        Uniform window side at scales where it fits (SSIM conventions of :func:`ssim`).
    weights : tuple of float, optional
        Exponents ``w_j``, finest first; default the standard five
        (0.0448, 0.2856, 0.3001, 0.2363, 0.1333).

    Returns
    -------
    float
        MS-SSIM in [0, 1]; 1 for identical images.

    Notes
    -----
    Small images: at each scale the window shrinks to the largest odd size <= ``win_size``
    that fits (down to 3 x 3), so a 48 x 48 image has all five scales (48, 24, 12, 6, 3 px;
    the coarsest is scored with one 3 x 3 window). Images with ``min(H, W) < 48`` use only the
    ``M`` scales that are at least 3 px and the first ``M`` weights renormalised to sum to 1
    (logged); compare such values only with values for images of the same size. Negative
    ``cs``/SSIM values (anti-correlated structure) are clipped to 0 before the fractional
    powers, which makes the product 0.

    This is the standard definition; PtychoPINN's published ``ms_ssim`` differed (full SSIM
    at every scale, decimation by ``[::2, ::2]`` without averaging, optional pre-smoothing).

    References
    ----------
    .. [1] Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for image
       quality assessment", Proc. 37th Asilomar Conf. Signals, Systems and Computers (2003).

    Examples
    --------
    >>> img = np.random.default_rng(0).random((48, 48))
    >>> ms_ssim(img, img)
    1.0
    """
    a, b = _pair(image_true, image_test)
    rng = _reference_range(a, data_range)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or np.any(w < 0):
        raise ValueError(f"weights must be a non-empty sequence of non-negative numbers: {weights}")
    _window_size(a.shape, win_size)  # validates the size
    n_scales = 1
    while n_scales < w.size and min(a.shape) // 2**n_scales >= 3:
        n_scales += 1
    if n_scales < w.size:
        logger.info(
            "ms_ssim: image %s supports %d of %d scales; weights renormalised",
            a.shape,
            n_scales,
            w.size,
        )
        w = w[:n_scales] / w[:n_scales].sum()
    terms = []
    for level in range(n_scales):
        ws = _window_size(a.shape, win_size)
        full, cs = _ssim_and_cs(a, b, rng, ws)
        terms.append(full if level == n_scales - 1 else cs)
        if level < n_scales - 1:
            a, b = _downsample2(a), _downsample2(b)
    values = np.clip(np.asarray(terms), 0.0, None)
    return float(np.prod(values**w))


# --------------------------------------------------------------------------------------------
# complex objects
# --------------------------------------------------------------------------------------------
def part_images(pair: AlignedPair) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Real images scored for each part of an aligned pair.

    Parameters
    ----------
    pair : AlignedPair
        Output of :func:`~ptychopinn.evaluation.registration.align_to_reference`.

    Returns
    -------
    dict
        ``{"amplitude": (|ref|, |test|), "phase": (phi_ref, phi_test)}``, float64 arrays of
        shape (h, w). ``phi_ref = angle(ref)`` and ``phi_test = phi_ref + angle(test *
        conj(ref))``: the test phase is unwrapped *relative to the reference*, so a phase
        error is always taken modulo 2 pi (in (-pi, pi]) and a reference phase near +-pi does
        not produce spurious 2 pi errors.
    """
    ref, tst = pair.reference, pair.test
    phi_ref = np.angle(ref)
    phi_test = phi_ref + np.angle(tst * np.conj(ref))
    return {
        "amplitude": (np.abs(ref), np.abs(tst)),
        "phase": (phi_ref, phi_test),
    }


def _score(a: np.ndarray, b: np.ndarray, *, ring_width: float,
           frc_window: Literal["hann"] | None) -> dict[str, float]:
    freqs, curve = frc(a, b, ring_width=ring_width, window=frc_window)
    return {
        "mae": mae(a, b),
        "mse": mse(a, b),
        "psnr": psnr(a, b),
        "psnr255": psnr255(a, b),
        "ssim": ssim(a, b),
        "ms_ssim": ms_ssim(a, b),
        "frc50": frc_crossing(freqs, curve, FRC_HALF),
        "frc17": frc_crossing(freqs, curve, FRC_ONE_SEVENTH),
    }


def evaluate_aligned(pair: AlignedPair, *, ring_width: float = 1.0,
                     frc_window: Literal["hann"] | None = "hann") -> dict[str, dict[str, float]]:
    """All SPEC §7 metrics of an already aligned pair.

    Parameters
    ----------
    pair : AlignedPair
        Output of :func:`~ptychopinn.evaluation.registration.align_to_reference`.
    ring_width : float, optional
        FRC ring width (see :func:`~ptychopinn.evaluation.frc.frc`).
    frc_window : {"hann", None}, optional
        Apodization of both crops before the FRC (default Hann: without it the crop edges
        correlate and the crossings come out too high).

    Returns
    -------
    dict
        ``{part: {metric: value}}`` for part in :data:`PARTS` and metric in
        :data:`METRIC_NAMES`; ``frc50``/``frc17`` are the 0.5 and 1/7 FRC crossings in
        cycles/pixel (0.5 = never crosses).
    """
    return {part: _score(a, b, ring_width=ring_width, frc_window=frc_window)
            for part, (a, b) in part_images(pair).items()}


def evaluate(
    reference_complex: np.ndarray,
    test_complex: np.ndarray,
    *,
    ring_width: float = 1.0,
    frc_window: Literal["hann"] | None = "hann",
    **align_kwargs: Any,
) -> dict[str, dict[str, float]]:
    """Register a reconstruction to a reference and compute every metric (SPEC §7).

    Parameters
    ----------
    reference_complex : ndarray of shape (H, W), complex
        Ground truth or reference reconstruction.
    test_complex : ndarray of shape (H, W), complex
        Reconstruction on the same pixel frame.
    ring_width : float, optional
        FRC ring width.
    frc_window : {"hann", None}, optional
        FRC apodization (see :func:`evaluate_aligned`).
    **align_kwargs
        Passed to :func:`~ptychopinn.evaluation.registration.align_to_reference`
        (``coverage``, ``region``, ``upsample_factor``, ``phase``, ``crop_margin``, ...).

    Returns
    -------
    dict
        ``{"amplitude": {...}, "phase": {...}}`` with keys ``mae, mse, psnr, psnr255, ssim,
        ms_ssim, frc50, frc17`` (floats).

    Notes
    -----
    Phase metrics use the phase of the test relative to the reference (see
    :func:`part_images`); PSNR and SSIM use the range of the reference part as data range.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> obj = np.exp(1j * rng.random((64, 64)))
    >>> evaluate(obj, obj * np.exp(0.3j))["phase"]["ssim"]
    1.0
    """
    pair = align_to_reference(reference_complex, test_complex, **align_kwargs)
    return evaluate_aligned(pair, ring_width=ring_width, frc_window=frc_window)
