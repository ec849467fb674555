"""Registration of a reconstruction onto a reference object (SPEC §7).

A ptychographic reconstruction is only defined up to a few ambiguities that carry no
information about its quality: a global translation (positions are relative), a global phase
offset (``O`` and ``O * exp(i phi0)`` give the same diffraction), a linear phase ramp (a
sub-pixel shift of the diffraction pattern centre / probe) and, for most solvers, an amplitude
scale that trades off against the probe. :func:`align_to_reference` removes all of them, in the
order of SPEC §7, before any metric is computed:

1. crop both images to the scanned region (:func:`scanned_region`),
2. estimate the sub-pixel translation (:func:`register_translation`),
3. shift the test image (:func:`shift_image`, Fourier, mirror-extended) and crop away the
   border of ``ceil(|shift|) + margin`` pixels that the shift filled with content from
   outside the crop,
4. scale the test amplitude to the reference mean (:func:`scale_amplitude`),
5. remove the global phase offset or a phase plane (:func:`remove_phase_offset`).

All functions are pure numpy: arrays in, arrays out, no side effects. Axis order is
(row, col); shifts are ``(drow, dcol)`` in pixels and move image content by ``+shift``
(SPEC §3).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "AlignedPair",
    "align_to_reference",
    "register_translation",
    "remove_phase_offset",
    "scale_amplitude",
    "scanned_region",
    "shift_image",
]

Region = tuple[slice, slice]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _as_2d(image: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (row, col) array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return arr


def _as_complex(image: np.ndarray, name: str) -> np.ndarray:
    """Return a 2-D complex128 copy-or-view; real input is an object with zero phase."""
    arr = _as_2d(image, name)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return arr.astype(np.complex128, copy=False)


def _float_dtype_for(arr: np.ndarray) -> np.dtype:
    """Floating (or complex) dtype that keeps the precision of ``arr`` (ints -> float64)."""
    if np.iscomplexobj(arr):
        return arr.dtype
    if np.issubdtype(arr.dtype, np.floating):
        return arr.dtype
    return np.dtype(np.float64)


# --------------------------------------------------------------------------------------------
# cropping
# --------------------------------------------------------------------------------------------
def scanned_region(coverage: np.ndarray, *, threshold: float = 0.5, margin: int = 0) -> Region:
    """Bounding box of the well-covered part of a stitched reconstruction.

    Parameters
    ----------
    coverage : ndarray of shape (H, W), float
        Summed stitching weight of a reconstruction (``coverage`` of ``reconstruction.npz``;
        0 where nothing was reconstructed).
    threshold : float, optional
        Relative level in (0, 1]: the region is the bounding box of the pixels with
        ``coverage >= threshold * coverage.max()``.
    margin : int, optional
        Number of pixels by which the bounding box is shrunk on every side.

    Returns
    -------
    region : tuple of (slice, slice)
        ``(row_slice, col_slice)`` with explicit integer ``start``/``stop`` (step ``None``), so
        that ``image[region]`` is the scanned region of any array on the same pixel frame.

    Raises
    ------
    ValueError
        If ``coverage`` is not 2-D, has no positive value, contains NaN, or the margin leaves an
        empty region.

    Notes
    -----
    A bounding box, not a mask: metrics such as SSIM and FRC need a rectangular image. With
    the default threshold the box excludes the sparsely covered rim of the scan, where the
    reconstruction is poorly constrained.

    Examples
    --------
    >>> cov = np.zeros((10, 12)); cov[2:8, 3:11] = 1.0
    >>> scanned_region(cov)
    (slice(2, 8, None), slice(3, 11, None))
    """
    cov = _as_2d(coverage, "coverage").astype(np.float64, copy=False)
    if np.isnan(cov).any():
        raise ValueError("coverage contains NaN values")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    peak = float(cov.max())
    if not peak > 0.0:
        raise ValueError("coverage has no positive value: nothing was reconstructed")
    mask = cov >= threshold * peak
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1 = int(rows[0]) + margin, int(rows[-1]) + 1 - margin
    c0, c1 = int(cols[0]) + margin, int(cols[-1]) + 1 - margin
    if r1 <= r0 or c1 <= c0:
        raise ValueError(
            f"scanned region {rows[-1] - rows[0] + 1}x{cols[-1] - cols[0] + 1} px is empty "
            f"after removing a margin of {margin} px"
        )
    return slice(r0, r1), slice(c0, c1)


def _intersect_regions(a: Region, b: Region) -> Region:
    """Intersection of two ``(row_slice, col_slice)`` boxes on the same frame."""
    out = []
    for sa, sb in zip(a, b, strict=True):
        lo, hi = max(sa.start, sb.start), min(sa.stop, sb.stop)
        if hi <= lo:
            raise ValueError(f"regions {a} and {b} do not overlap")
        out.append(slice(lo, hi))
    return out[0], out[1]


# --------------------------------------------------------------------------------------------
# translation
# --------------------------------------------------------------------------------------------
Space = Literal["auto", "amplitude", "complex", "phase_gradient"]


def _phase_gradient(arr: np.ndarray) -> np.ndarray:
    """``d(phase)/drow + i d(phase)/dcol`` from neighbour products (wrap-free), (H-1, W-1)."""
    z = arr.astype(np.complex128) if np.iscomplexobj(arr) else np.exp(1j * arr)
    grow = np.angle(z[1:, :] * np.conj(z[:-1, :]))[:, :-1]
    gcol = np.angle(z[:, 1:] * np.conj(z[:, :-1]))[:-1, :]
    return grow + 1j * gcol


def _choose_space(reference: np.ndarray) -> Literal["amplitude", "phase_gradient"]:
    """``"amplitude"`` unless the reference structure is mostly in its phase."""
    amp = np.abs(reference)
    if not np.iscomplexobj(reference):
        return "amplitude"
    positive = amp > 1e-6 * amp.max() if amp.max() > 0 else np.zeros(amp.shape, bool)
    log_amp_std = float(np.std(np.log(amp[positive]))) if positive.any() else 0.0
    # Phase structure, insensitive to a global offset (circular spread about the mean).
    unit = np.exp(1j * np.angle(reference[positive])) if positive.any() else np.ones(1)
    phase_std = float(np.std(np.angle(unit * np.conj(np.mean(unit)))))
    return "amplitude" if log_amp_std >= 0.5 * phase_std else "phase_gradient"


def _registration_image(
    image: np.ndarray, space: Literal["amplitude", "complex", "phase_gradient"]
) -> np.ndarray:
    arr = np.asarray(image)
    if space == "amplitude":
        out = np.abs(arr).astype(np.float64)
    elif space == "phase_gradient":
        out = _phase_gradient(arr)
    elif space == "complex":
        out = arr.astype(np.complex128)
    else:
        raise ValueError(
            f"space must be 'auto', 'amplitude', 'complex' or 'phase_gradient', got {space!r}"
        )
    return out - out.mean()


def _apodization(shape: tuple[int, int], window: Literal["tukey", "hann"] | None) -> np.ndarray:
    from scipy.signal import windows

    if window is None:
        return np.ones(shape)
    if window == "tukey":
        return np.outer(windows.tukey(shape[0], 0.5), windows.tukey(shape[1], 0.5))
    if window == "hann":
        return np.outer(windows.hann(shape[0], sym=False), windows.hann(shape[1], sym=False))
    raise ValueError(f"window must be 'tukey', 'hann' or None, got {window!r}")


def _correlate(
    ref: np.ndarray,
    mov: np.ndarray,
    *,
    upsample_factor: int,
    space: Literal["amplitude", "complex", "phase_gradient"],
    window: Literal["tukey", "hann"] | None,
    normalization: Literal["phase"] | None,
) -> np.ndarray:
    from skimage.registration import phase_cross_correlation

    ref_r = _registration_image(ref, space)
    mov_r = _registration_image(mov, space)
    if not (np.any(np.abs(ref_r) > 1e-12) and np.any(np.abs(mov_r) > 1e-12)):
        logger.warning("register_translation: an image is constant; returning a zero shift")
        return np.zeros(2)
    win = _apodization(ref_r.shape, window)
    shift, _, _ = phase_cross_correlation(
        ref_r * win, mov_r * win, upsample_factor=upsample_factor, normalization=normalization
    )
    return np.asarray(shift, dtype=np.float64)


def register_translation(
    reference_image: np.ndarray,
    moving_image: np.ndarray,
    *,
    upsample_factor: int = 50,
    space: Space = "auto",
    window: Literal["tukey", "hann"] | None = "tukey",
    refine: int = 1,
    normalization: Literal["phase"] | None = None,
) -> np.ndarray:
    """Sub-pixel translation that aligns ``moving_image`` to ``reference_image``.

    Parameters
    ----------
    reference_image, moving_image : ndarray of shape (H, W), real or complex
        Images on the same pixel grid.
    upsample_factor : int, optional
        Upsampling of the cross-correlation peak (precision ``1 / upsample_factor`` px).
        SPEC §7 asks for at least 50.
    space : {"auto", "amplitude", "complex", "phase_gradient"}, optional
        What is correlated (each feature image has its mean removed first, so a flat
        background does not dominate the correlation):

        - ``"amplitude"``: ``|image|``; insensitive to a global phase offset *and* to a linear
          phase ramp, the two phase ambiguities of ptychography.
        - ``"phase_gradient"``: ``dphi/drow + i dphi/dcol`` computed from neighbour products
          (no unwrapping); a ramp only adds a constant, removed with the mean, so this is also
          blind to offset and ramp. For objects whose structure is in the phase.
        - ``"complex"``: the complex images; blind to a global phase, but a phase ramp of more
          than ~1 rad across the image moves or destroys the correlation peak.
        - ``"auto"`` (default): ``"amplitude"`` if the reference has at least half as much
          log-amplitude as phase variation (std, radians), else ``"phase_gradient"``.
    window : {"tukey", "hann", None}, optional
        Apodization applied to both (mean-subtracted) images before correlating. The default
        separable Tukey window (alpha 0.5) suppresses the spurious zero-shift peak caused by
        the non-periodic edges of a crop.
    refine : int, optional
        Number of refinement passes: the moving image is shifted by the current estimate, both
        images are cropped by ``ceil(|shift|) + 2`` px on every side (dropping wrapped content)
        and the residual shift is estimated and added. One pass removes most of the edge bias
        of the first estimate.
    normalization : {None, "phase"}, optional
        Passed to :func:`skimage.registration.phase_cross_correlation`. The default ``None``
        (plain cross-correlation) is the robust choice for noisy reconstructions; ``"phase"``
        selects phase correlation.

    Returns
    -------
    shift_rc : ndarray of shape (2,), float64
        ``(drow, dcol)`` in pixels. ``shift_image(moving_image, shift_rc)`` is aligned with
        ``reference_image`` (content moves by ``+shift_rc``, SPEC §3).

    Notes
    -----
    Wrapper around :func:`skimage.registration.phase_cross_correlation` (upsampled-DFT
    cross-correlation of Guizar-Sicairos et al.). The correlation is computed with FFTs, i.e.
    the images are treated as periodic; the window and the refinement pass make the estimate
    accurate to ~0.01 px on non-periodic crops of smooth images (shifts of a few px on
    128 x 128 crops), against ~0.2 px without them.

    References
    ----------
    .. [1] M. Guizar-Sicairos, S. T. Thurman, J. R. Fienup, "Efficient subpixel image
       registration algorithms", Opt. Lett. 33, 156-158 (2008).

    Examples
    --------
    >>> import scipy.ndimage as ndi
    >>> rng = np.random.default_rng(0)
    >>> ref = ndi.gaussian_filter(rng.random((64, 64)), 2)
    >>> np.round(register_translation(ref, shift_image(ref, (1.5, -2.0))), 1)
    array([-1.5,  2. ])
    """
    ref = _as_2d(reference_image, "reference_image")
    mov = _as_2d(moving_image, "moving_image")
    if ref.shape != mov.shape:
        raise ValueError(f"images differ in shape: {ref.shape} vs {mov.shape}")
    if upsample_factor < 1:
        raise ValueError(f"upsample_factor must be >= 1, got {upsample_factor}")
    if refine < 0:
        raise ValueError(f"refine must be >= 0, got {refine}")
    if space == "auto":
        space = _choose_space(ref)
        logger.debug("register_translation: correlating %s images", space)
    correlate = functools.partial(
        _correlate,
        upsample_factor=upsample_factor,
        space=space,
        window=window,
        normalization=normalization,
    )
    shift = correlate(ref, mov)
    h, w = ref.shape
    for _ in range(refine):
        br = math.ceil(abs(float(shift[0]))) + 2
        bc = math.ceil(abs(float(shift[1]))) + 2
        if h - 2 * br < 8 or w - 2 * bc < 8:
            logger.debug("register_translation: image too small to refine the estimate")
            break
        inner = (slice(br, h - br), slice(bc, w - bc))
        moved = shift_image(mov, shift, boundary="symmetric")
        shift = shift + correlate(ref[inner], moved[inner])
    return shift


def shift_image(
    image: np.ndarray,
    shift_rc: tuple[float, float] | np.ndarray,
    *,
    boundary: Literal["periodic", "symmetric"] = "periodic",
) -> np.ndarray:
    """Shift an image by a (sub-pixel) translation with a Fourier phase ramp.

    Parameters
    ----------
    image : ndarray of shape (H, W), real or complex
        Image to shift.
    shift_rc : array_like of shape (2,), float
        ``(drow, dcol)`` in pixels; image content moves by ``+shift_rc`` (SPEC §3).
    boundary : {"periodic", "symmetric"}, optional
        ``"periodic"`` (default): plain Fourier shift of the image, exact for periodic
        (band-limited) content; content leaving one edge re-enters at the opposite edge.
        ``"symmetric"``: the image is first extended by mirror reflection to (2H, 2W), which is
        continuous across every edge, shifted, and cropped back. Use this for crops of a larger
        object: a periodic shift of a non-periodic image rings with a 1/distance tail from the
        edge discontinuity, the mirrored extension removes that jump (the residual ringing,
        from the slope discontinuity, decays as 1/distance**2).

    Returns
    -------
    shifted : ndarray of shape (H, W)
        Same dtype as ``image`` for float/complex input (float64 for integer input). Real input
        gives a real output (the real part of the inverse FFT).

    Notes
    -----
    The Fourier shift itself is :func:`ptychopinn.physics.patches.shift_image` (one phase-ramp
    implementation). Within ``ceil(|shift|)`` pixels of the edges the output is made of wrapped
    (periodic) or mirrored (symmetric) content, not of the image: exclude that border, plus a
    small margin, before computing metrics (:func:`align_to_reference` does this). Integer
    periodic shifts are exact circular rolls up to rounding.

    Examples
    --------
    >>> img = np.zeros((8, 8)); img[2, 3] = 1.0
    >>> np.argwhere(np.abs(shift_image(img, (1, -2))) > 0.5).tolist()
    [[3, 1]]
    """
    arr = _as_2d(image, "image")
    shift = np.asarray(shift_rc, dtype=np.float64)
    if shift.shape != (2,) or not np.all(np.isfinite(shift)):
        raise ValueError(f"shift_rc must be two finite numbers (drow, dcol), got {shift_rc!r}")
    if boundary not in ("periodic", "symmetric"):
        raise ValueError(f"boundary must be 'periodic' or 'symmetric', got {boundary!r}")
    import torch

    from ptychopinn.physics.patches import shift_image as fourier_shift

    out_dtype = _float_dtype_for(arr)
    work = arr.astype(np.complex128, copy=False)
    h, w = arr.shape
    if boundary == "symmetric":
        # Even extension [[a, fliplr a], [flipud a, flip a]]: periodic *and* continuous.
        work = np.pad(work, ((0, h), (0, w)), mode="symmetric")
    shifted = fourier_shift(torch.from_numpy(work), tuple(shift)).numpy()[:h, :w]
    if not np.iscomplexobj(arr):
        return shifted.real.astype(out_dtype, copy=False)
    return shifted.astype(out_dtype, copy=False)


# --------------------------------------------------------------------------------------------
# amplitude and phase ambiguities
# --------------------------------------------------------------------------------------------
def scale_amplitude(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Scale ``test`` so that its mean amplitude equals that of ``reference``.

    Parameters
    ----------
    reference : ndarray of shape (H, W), real or complex
        Reference image (its ``abs`` is used).
    test : ndarray of shape (H, W), real or complex
        Image to scale; the phase is untouched (a positive real factor).

    Returns
    -------
    scaled : ndarray of shape (H, W)
        ``test * mean(|reference|) / mean(|test|)``, same kind (real/complex) as ``test``.
        If ``test`` is identically zero it is returned unchanged (with a logged warning).

    Examples
    --------
    >>> scale_amplitude(np.full((2, 2), 2.0), np.full((2, 2), 0.5))
    array([[2., 2.],
           [2., 2.]])
    """
    ref = _as_2d(reference, "reference")
    tst = _as_2d(test, "test")
    if ref.shape != tst.shape:
        raise ValueError(f"images differ in shape: {ref.shape} vs {tst.shape}")
    mean_test = float(np.mean(np.abs(tst)))
    if mean_test == 0.0:
        logger.warning("scale_amplitude: test image is zero everywhere; not scaled")
        return tst.copy()
    return tst * (float(np.mean(np.abs(ref))) / mean_test)


def _wrap(phase: np.ndarray) -> np.ndarray:
    """Wrap phases to [-pi, pi)."""
    return (phase + np.pi) % (2.0 * np.pi) - np.pi


def _parabolic_peak(values: np.ndarray, index: int) -> float:
    """Sub-bin offset of a peak from its two (periodic) neighbours, in [-0.5, 0.5]."""
    left, mid, right = values[index - 1], values[index], values[(index + 1) % values.size]
    denom = left - 2.0 * mid + right
    return 0.0 if denom >= 0 else float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


def _fit_phase_plane(
    ratio: np.ndarray, weights: np.ndarray, *, iterations: int = 8
) -> tuple[float, float, float]:
    """Weighted least-squares plane ``a + b*row + c*col`` for the phase of ``ratio``.

    ``ratio`` has unit modulus (``exp(i * phase difference)``). A coarse ramp is taken from the
    peak of the (2x zero-padded for images up to 1024 x 1024) FFT of ``weights * ratio``,
    refined by parabolic interpolation; this is robust to any number of wraps. It is then
    refined by Gauss-Newton steps of least squares on the wrapped residual, which after the
    coarse step is far from the wrap points, so no 2-D phase unwrapping is needed.
    """
    h, w = ratio.shape
    pad = 2 if h * w <= 1024 * 1024 else 1
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    spec = np.abs(np.fft.fft2(weights * ratio, s=(pad * h, pad * w)))
    pr, pc = np.unravel_index(int(np.argmax(spec)), spec.shape)
    fr = (pr + _parabolic_peak(spec[:, pc], int(pr))) / (pad * h)
    fc = (pc + _parabolic_peak(spec[pr, :], int(pc))) / (pad * w)
    b = 2.0 * np.pi * (fr - np.round(fr))  # cycles/pixel -> rad/pixel, in [-pi, pi]
    c = 2.0 * np.pi * (fc - np.round(fc))
    a = float(np.angle(np.sum(weights * ratio * np.exp(-1j * (b * rows + c * cols)))))
    sw = np.sqrt(weights.ravel())
    design = np.column_stack([np.ones(h * w), rows.ravel(), cols.ravel()]) * sw[:, None]
    for _ in range(iterations):
        residual = _wrap(np.angle(ratio) - (a + b * rows + c * cols))
        delta, *_ = np.linalg.lstsq(design, residual.ravel() * sw, rcond=None)
        a, b, c = a + delta[0], b + delta[1], c + delta[2]
        if np.max(np.abs(delta)) < 1e-12:
            break
    return float(_wrap(np.asarray(a))), float(b), float(c)


def remove_phase_offset(
    reference: np.ndarray,
    test: np.ndarray,
    *,
    mode: Literal["mean", "plane"] = "mean",
    weights: np.ndarray | None = None,
) -> np.ndarray:
    r"""Remove the global phase offset (or a phase plane) of ``test`` relative to a reference.

    Parameters
    ----------
    reference : ndarray of shape (H, W), complex or real
        Reference object (complex), or its phase in radians (real).
    test : ndarray of shape (H, W), complex
        Object to correct.
    mode : {"mean", "plane"}, optional
        ``"mean"``: multiply ``test`` by ``exp(i * phi0)`` where ``phi0`` is the circular mean
        of the phase difference, ``phi0 = angle(sum(w * exp(i * (phi_ref - phi_test))))``.
        ``"plane"``: multiply by ``exp(i * (a + b * row + c * col))``, the phase plane fitted
        by least squares to the (wrapped) phase difference, see Notes.
    weights : ndarray of shape (H, W), float, optional
        Non-negative per-pixel weights ``w`` (e.g. ``|reference|`` to down-weight pixels whose
        phase is meaningless because the amplitude is ~0). Default: uniform.

    Returns
    -------
    corrected : ndarray of shape (H, W), complex
        ``test`` multiplied by a unit-modulus phase factor; amplitude unchanged; same complex
        dtype as ``test``.

    Notes
    -----
    The phase difference is formed as the complex ratio ``exp(i (phi_ref - phi_test))`` so that
    wraps in either image cancel. For ``"plane"`` the ramp is first located to a fraction of a
    Fourier pixel by the peak of the zero-padded spectrum of that ratio, then refined by
    weighted least squares on the residual phase wrapped to [-pi, pi) (a few Gauss-Newton
    steps), so arbitrarily steep ramps are handled without 2-D phase unwrapping:

    .. math:: \min_{a,b,c} \sum_{m,n} w_{mn}\,
              \mathrm{wrap}\big(\phi^{ref}_{mn} - \phi^{test}_{mn} - a - b m - c n\big)^2

    (``m`` = row, ``n`` = column index).

    Examples
    --------
    >>> ref = np.exp(1j * np.linspace(-1, 1, 16)).reshape(4, 4)
    >>> out = remove_phase_offset(ref, ref * np.exp(0.7j))
    >>> bool(np.allclose(out, ref))
    True
    """
    tst = _as_2d(test, "test")
    if not np.iscomplexobj(tst):
        raise TypeError("test must be a complex object (amplitude * exp(i * phase))")
    ref = _as_2d(reference, "reference")
    if ref.shape != tst.shape:
        raise ValueError(f"images differ in shape: {ref.shape} vs {tst.shape}")
    ref_phase = np.angle(ref) if np.iscomplexobj(ref) else ref.astype(np.float64)
    if weights is None:
        w = np.ones(tst.shape)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != tst.shape or np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite, non-negative and of the image shape")
        if not np.any(w > 0):
            raise ValueError("weights are zero everywhere")
    ratio = np.exp(1j * (ref_phase - np.angle(tst)))
    if mode == "mean":
        phi0 = float(np.angle(np.sum(w * ratio)))
        correction = np.exp(1j * phi0)
    elif mode == "plane":
        a, b, c = _fit_phase_plane(ratio, w)
        rows, cols = np.mgrid[0 : tst.shape[0], 0 : tst.shape[1]]
        correction = np.exp(1j * (a + b * rows + c * cols))
    else:
        raise ValueError(f"mode must be 'mean' or 'plane', got {mode!r}")
    return (tst * correction).astype(tst.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# the full pipeline
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlignedPair:
    """Reference and test objects after :func:`align_to_reference`.

    Attributes
    ----------
    reference : ndarray of shape (h, w), complex128
        Reference cropped to the evaluated region.
    test : ndarray of shape (h, w), complex128
        Test object shifted, cropped to the same region, amplitude-scaled and phase-corrected.
    shift_rc : ndarray of shape (2,), float64
        Translation ``(drow, dcol)`` that was applied to the test object (content moved by
        ``+shift_rc``).
    region : tuple of (slice, slice)
        The evaluated region in the pixel frame of the *input* arrays
        (``reference_input[region] == reference``).
    """

    reference: np.ndarray
    test: np.ndarray
    shift_rc: np.ndarray
    region: Region


def align_to_reference(
    reference: np.ndarray,
    test: np.ndarray,
    *,
    coverage: np.ndarray | None = None,
    region: Region | None = None,
    threshold: float = 0.5,
    upsample_factor: int = 50,
    phase: Literal["mean", "plane"] = "mean",
    crop_margin: int = 2,
    register_on: Space = "auto",
    register: bool = True,
    boundary: Literal["periodic", "symmetric"] = "symmetric",
) -> AlignedPair:
    """Align a reconstruction to a reference object (the SPEC §7 pipeline).

    Parameters
    ----------
    reference : ndarray of shape (H, W), complex (real = zero phase)
        Ground truth or reference reconstruction.
    test : ndarray of shape (H, W), complex (real = zero phase)
        Reconstruction on the same object-pixel frame as ``reference``.
    coverage : ndarray of shape (H, W), float, optional
        Stitching weight of ``test``; when given, both images are first cropped to
        ``scanned_region(coverage, threshold=threshold)``.
    region : tuple of (slice, slice), optional
        Explicit crop (overrides ``coverage``), e.g. the intersection of the scanned regions of
        several reconstructions so that all are scored on the same pixels.
    threshold : float, optional
        Relative coverage level for :func:`scanned_region`.
    upsample_factor : int, optional
        Sub-pixel precision of the registration, ``1 / upsample_factor`` px.
    phase : {"mean", "plane"}, optional
        Remove the global phase offset or a phase plane (:func:`remove_phase_offset`).
    crop_margin : int, optional
        Extra pixels cropped on every side beyond ``ceil(|shift|)`` to exclude the wrap-around
        and ringing of the Fourier shift.
    register_on : {"auto", "amplitude", "complex", "phase_gradient"}, optional
        Image used for registration, see :func:`register_translation`.
    register : bool, optional
        If False, skip the translation step (shift 0, no wrap-around border beyond
        ``crop_margin``).
    boundary : {"symmetric", "periodic"}, optional
        Boundary handling of the Fourier shift (:func:`shift_image`). The default mirror
        extension avoids the long-range ringing that a periodic shift of a non-periodic crop
        produces.

    Returns
    -------
    AlignedPair
        Cropped reference and aligned test (complex128, same shape), the shift applied and the
        evaluated region.

    Raises
    ------
    ValueError
        On shape mismatch, non-finite values in the evaluated region, or when the crops leave
        no pixels.

    Notes
    -----
    Order of operations: crop to the region; estimate the shift on the crop; Fourier-shift the
    crop of ``test`` (mirror-extended, see ``boundary``); crop ``ceil(|drow|) + crop_margin``
    rows and ``ceil(|dcol|) + crop_margin`` columns from each side of both images (content that
    the shift brought in from outside the crop lies within ``ceil(|shift|)`` of the edges);
    scale the amplitude of ``test`` to the mean of ``reference``; remove the phase offset
    (circular mean of the phase difference, uniform weights) or the phase plane. The amplitude
    scale is applied before the phase correction; the two commute.

    Translation, global phase, phase ramp and amplitude scale are ambiguities of ptychography
    (positions are relative; ``O exp(i phi0)`` and ``O`` give the same data; a ramp trades
    off against a diffraction-centre offset; the scale against the probe), so removing them is
    what makes the remaining differences meaningful.

    Examples
    --------
    >>> import scipy.ndimage as ndi
    >>> rng = np.random.default_rng(1)
    >>> ref = np.exp(1j * ndi.gaussian_filter(rng.random((64, 64)), 3) * 20)
    >>> pair = align_to_reference(ref, 0.5 * shift_image(ref, (2.0, 1.0)) * np.exp(1j))
    >>> np.round(pair.shift_rc, 2), pair.test.shape
    (array([-2., -1.]), (56, 58))
    """
    ref = _as_2d(reference, "reference")
    tst = _as_2d(test, "test")
    if ref.shape != tst.shape:
        raise ValueError(
            f"reference {ref.shape} and test {tst.shape} are not on the same pixel frame"
        )
    if crop_margin < 0:
        raise ValueError(f"crop_margin must be >= 0, got {crop_margin}")
    full: Region = (slice(0, ref.shape[0]), slice(0, ref.shape[1]))
    if region is not None:
        if len(region) != 2 or any(s.step not in (None, 1) for s in region):
            raise ValueError(f"region must be two unit-step slices (rows, cols), got {region!r}")
        rows_sl = slice(*region[0].indices(ref.shape[0])[:2])
        cols_sl = slice(*region[1].indices(ref.shape[1])[:2])
        box = _intersect_regions(full, (rows_sl, cols_sl))
    elif coverage is not None:
        cov = _as_2d(coverage, "coverage")
        if cov.shape != ref.shape:
            raise ValueError(f"coverage {cov.shape} does not match the images {ref.shape}")
        box = scanned_region(cov, threshold=threshold)
    else:
        box = full
    ref_c = _as_complex(ref[box], "reference (evaluated region)")
    tst_c = _as_complex(tst[box], "test (evaluated region)")

    if register:
        shift = register_translation(
            ref_c, tst_c, upsample_factor=upsample_factor, space=register_on
        )
        limit = 0.25 * np.asarray(ref_c.shape, dtype=float)
        if np.any(np.abs(shift) > limit):
            # Both images share one object frame: a shift this large means the correlation
            # peak is spurious (e.g. an unconverged reconstruction), so do not trust it.
            logger.warning("registration shift %s exceeds a quarter of the %s region; "
                           "evaluating without a shift", np.round(shift, 2).tolist(),
                           ref_c.shape)
            shift = np.zeros(2)
        else:
            tst_c = shift_image(tst_c, shift, boundary=boundary)
    else:
        shift = np.zeros(2)
    br = math.ceil(abs(float(shift[0])) - 1e-9) + crop_margin
    bc = math.ceil(abs(float(shift[1])) - 1e-9) + crop_margin
    h, w = ref_c.shape
    if h - 2 * br < 1 or w - 2 * bc < 1:
        raise ValueError(
            f"evaluated region {h}x{w} px is too small for shift {shift.round(2).tolist()} "
            f"and crop_margin {crop_margin}"
        )
    inner = (slice(br, h - br), slice(bc, w - bc))
    ref_c, tst_c = ref_c[inner], tst_c[inner]
    final_region: Region = (
        slice(box[0].start + br, box[0].stop - br),
        slice(box[1].start + bc, box[1].stop - bc),
    )
    tst_c = scale_amplitude(ref_c, tst_c)
    tst_c = remove_phase_offset(ref_c, tst_c, mode=phase)
    logger.debug(
        "aligned: region rows %s cols %s, shift %s px",
        final_region[0],
        final_region[1],
        np.round(shift, 3).tolist(),
    )
    return AlignedPair(reference=ref_c, test=tst_c, shift_rc=shift, region=final_region)
