"""Ptychodus assembled diffraction files (``diffraction.h5``) and photon counts -> amplitudes."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ptychopinn.files import atomic_path
from ptychopinn.io.ptychodus import _keys as k
from ptychopinn.io.ptychodus._common import (
    as_float64,
    as_int64,
    attr_scalar,
    decode,
    finite,
    open_h5,
    require_dataset,
)

if TYPE_CHECKING:
    from ptychopinn.io.ptychodus.bridge import Backend

logger = logging.getLogger(__name__)

__all__ = ["amplitudes_from_counts", "check_counts", "read_diffraction_file",
           "write_diffraction_file"]


def read_diffraction_file(
    path: str | os.PathLike[str], *, frames: slice | None = None, backend: Backend = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Read Ptychodus's assembled diffraction file (``diffraction.h5``).

    Parameters
    ----------
    path : path-like
        File written by ``ptychodus.api.io.save_diffraction_data`` (or
        :func:`write_diffraction_file`).
    frames : slice, optional
        Read only these frames (HDF5 partial read, always with h5py); default all.
    backend : {"auto", "ptychodus", "h5py"}
        ``"auto"``: ``ptychodus.api.io.load_diffraction_data`` when Ptychodus is installed, and
        the h5py reader for a file it refuses (e.g. one from Ptychodus < 1.7 without detector
        pixel sizes); ``"ptychodus"``: Ptychodus only; ``"h5py"``: the plain reader. Both
        return the same arrays.

    Returns
    -------
    patterns : numpy.ndarray
        (n, H, W) raw photon counts in the stored dtype (not converted, not masked), DC at pixel
        (H // 2, W // 2).
    indexes : numpy.ndarray
        (n,) int64 scan indexes; pair with the product's ``probe_position_indexes`` by value.
    bad_pixels : numpy.ndarray or None
        (H, W) bool, True where the detector pixel is invalid; None if the file has none.
    attrs : dict
        ``detector_pixel_width_m`` / ``detector_pixel_height_m`` (float metres, or None when
        absent, as in files from Ptychodus < 1.7), ``probe_photon_counts`` ((n,) float64 or None)
        and any other attributes found on the ``patterns`` dataset or the root.

    Raises
    ------
    ValueError
        One line naming the file and key for a missing or inconsistent dataset.
    """
    from ptychopinn.io.ptychodus import bridge

    path = Path(path)
    if frames is None and bridge.use_ptychodus(backend) and path.is_file():
        try:
            return bridge.read_diffraction_with_ptychodus(path)
        except bridge.READ_ERRORS as exc:
            if backend == "ptychodus":
                msg = " ".join(str(exc).split()) or type(exc).__name__
                raise ValueError(f"{path}: Ptychodus cannot read this diffraction file "
                                 f"({msg})") from None
            logger.debug("%s: Ptychodus's loader refused the file (%s); reading with h5py",
                         path, exc)
    return _read_diffraction_h5py(path, frames)


def _read_diffraction_h5py(
    path: Path, frames: slice | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    with open_h5(path) as h5:
        h5_patterns = require_dataset(h5, k.PATTERNS, path, "(n, H, W) diffraction intensities")
        if h5_patterns.ndim != 3:
            raise ValueError(
                f"{path}: {k.PATTERNS!r} has shape {h5_patterns.shape}; expected (n, H, W)"
            )
        if h5_patterns.dtype.kind not in "uif":
            raise ValueError(
                f"{path}: {k.PATTERNS!r} has dtype {h5_patterns.dtype}; expected real photon counts"
            )
        sel = slice(None) if frames is None else frames
        patterns = h5_patterns[sel]
        h5_indexes = require_dataset(h5, k.INDEXES, path, "(n,) integer scan indexes")
        try:
            indexes = as_int64(h5_indexes[()], k.INDEXES)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if indexes.size != h5_patterns.shape[0]:
            raise ValueError(
                f"{path}: {k.INDEXES!r} has {indexes.size} entries for "
                f"{h5_patterns.shape[0]} patterns; expected one per pattern"
            )
        indexes = np.array(indexes[sel])  # writable copy
        bad_pixels = None
        if k.BAD_PIXELS in h5:
            raw = require_dataset(h5, k.BAD_PIXELS, path, "")[()]
            if raw.shape != h5_patterns.shape[1:]:
                raise ValueError(
                    f"{path}: {k.BAD_PIXELS!r} has shape {raw.shape}; expected "
                    f"{h5_patterns.shape[1:]} like one pattern"
                )
            bad_pixels = np.asarray(raw).astype(bool)
        attrs: dict[str, Any] = {key: decode(h5.attrs[key]) for key in h5.attrs}
        for key in h5_patterns.attrs:
            attrs[key] = decode(h5_patterns.attrs[key])
        for key in (k.DETECTOR_PIXEL_WIDTH, k.DETECTOR_PIXEL_HEIGHT):
            attrs[key] = (
                attr_scalar(h5_patterns.attrs, key, path, "'patterns'")
                if key in h5_patterns.attrs
                else None
            )
        counts = None
        if k.POSITION_PHOTON_COUNTS in h5:
            counts = np.asarray(
                require_dataset(h5, k.POSITION_PHOTON_COUNTS, path, "")[()], dtype=np.float64
            )[sel]
        attrs[k.POSITION_PHOTON_COUNTS] = counts
    return patterns, indexes, bad_pixels, attrs


def write_diffraction_file(
    path: str | os.PathLike[str],
    patterns: np.ndarray,
    *,
    detector_pixel_width_m: float,
    detector_pixel_height_m: float,
    indexes: np.ndarray | None = None,
    bad_pixels: np.ndarray | None = None,
    probe_photon_counts: np.ndarray | None = None,
    compression: str | None = "lzf",
    backend: Backend = "auto",
) -> Path:
    """Write an assembled diffraction file in the Ptychodus 1.7 layout, atomically.

    Parameters
    ----------
    path : path-like
        Destination, conventionally ``<batch dir>/diffraction.h5``.
    patterns : numpy.ndarray
        (n, H, W) photon counts (intensities, not amplitudes), DC at (H // 2, W // 2). Stored in
        the given dtype.
    detector_pixel_width_m, detector_pixel_height_m : float
        Detector pixel size in metres.
    indexes : numpy.ndarray, optional
        (n,) scan indexes; default ``arange(n)``.
    bad_pixels : numpy.ndarray, optional
        (H, W) bool mask; default all False (Ptychodus requires the dataset).
    probe_photon_counts : numpy.ndarray, optional
        (n,) measured photons per pattern.
    compression : str or None
        HDF5 filter ("lzf", like Ptychodus, or None).
    backend : {"auto", "ptychodus", "h5py"}
        ``"auto"``: ``ptychodus.api.io.save_diffraction_data`` when Ptychodus is installed, else
        the h5py writer; ``"ptychodus"`` / ``"h5py"``: that one only. Same file content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import h5py

    from ptychopinn.io.ptychodus import bridge

    path = Path(path)
    patterns = np.asarray(patterns)
    if patterns.ndim != 3 or patterns.dtype.kind not in "uif":
        raise ValueError(
            f"patterns: expected real (n, H, W) intensities, got {patterns.dtype} {patterns.shape}"
        )
    n = patterns.shape[0]
    indexes = np.arange(n, dtype=np.int64) if indexes is None else as_int64(indexes, k.INDEXES)
    if indexes.size != n:
        raise ValueError(f"indexes: expected {n} entries, got {indexes.size}")
    if bad_pixels is None:
        bad_pixels = np.zeros(patterns.shape[1:], dtype=bool)
    bad_pixels = np.asarray(bad_pixels, dtype=bool)
    if bad_pixels.shape != patterns.shape[1:]:
        raise ValueError(f"bad_pixels: expected shape {patterns.shape[1:]}, got {bad_pixels.shape}")
    width = finite(detector_pixel_width_m, k.DETECTOR_PIXEL_WIDTH, positive=True)
    height = finite(detector_pixel_height_m, k.DETECTOR_PIXEL_HEIGHT, positive=True)
    counts = None
    if probe_photon_counts is not None:
        counts = as_float64(probe_photon_counts, k.POSITION_PHOTON_COUNTS)
        if counts.size != n:
            raise ValueError(f"probe_photon_counts: expected {n} entries, got {counts.size}")
    if bridge.use_ptychodus(backend):
        return bridge.write_diffraction_with_ptychodus(
            path, patterns, detector_pixel_width_m=width, detector_pixel_height_m=height,
            indexes=np.array(indexes), bad_pixels=bad_pixels, probe_photon_counts=counts,
            compression=compression)

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset(k.INDEXES, data=indexes, compression=compression)
        h5_patterns = h5.create_dataset(k.PATTERNS, data=patterns, compression=compression)
        h5_patterns.attrs[k.DETECTOR_PIXEL_WIDTH] = width
        h5_patterns.attrs[k.DETECTOR_PIXEL_HEIGHT] = height
        h5.create_dataset(k.BAD_PIXELS, data=bad_pixels, compression=compression)
        if counts is not None:
            h5.create_dataset(k.POSITION_PHOTON_COUNTS, data=counts, compression=compression)
    return path



def check_counts(intensities: np.ndarray, bad_pixels: np.ndarray | None, where: Any) -> None:
    """Refuse NaN/Inf or negative photon counts at good pixels (one line naming ``where``)."""
    good = np.ones(intensities.shape[1:], dtype=bool) if bad_pixels is None else ~bad_pixels
    values = intensities[:, good]
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where}: 'patterns' has NaN/Inf at good pixels; expected photon counts")
    if values.size and float(values.min()) < 0:
        raise ValueError(
            f"{where}: 'patterns' has negative values (min {float(values.min()):.3g}) "
            "at good pixels; expected non-negative photon counts"
        )


def amplitudes_from_counts(
    intensities: np.ndarray, bad_pixels: np.ndarray | None = None, *, where: Any = "patterns"
) -> np.ndarray:
    """Ptychodus photon counts -> ptychopinn amplitudes, bad pixels zeroed.

    Parameters
    ----------
    intensities : numpy.ndarray
        (n, H, W) photon counts (any real dtype), DC at (H // 2, W // 2) -- as in
        ``diffraction.h5`` and ``ReconstructInput.diffraction_patterns`` (no shift needed).
    bad_pixels : numpy.ndarray, optional
        (H, W) bool, True where the detector pixel is invalid; those pixels become 0.
    where : str or path-like
        Named in error messages (the file or the input).

    Returns
    -------
    numpy.ndarray
        (n, H, W) float32 ``sqrt(counts)``.

    Raises
    ------
    ValueError
        One line naming ``where`` for a wrong shape, or NaN/Inf or negative counts at good pixels.
    """
    counts = np.asarray(intensities)
    if counts.ndim != 3 or counts.dtype.kind not in "uif":
        raise ValueError(
            f"{where}: 'patterns' is {counts.dtype} {counts.shape}; expected real (n, H, W) counts"
        )
    counts = counts.astype(np.float32, copy=False)
    if bad_pixels is not None:
        bad_pixels = np.asarray(bad_pixels, dtype=bool)
        if bad_pixels.shape != counts.shape[1:]:
            raise ValueError(
                f"{where}: 'bad_pixels' has shape {bad_pixels.shape}; expected {counts.shape[1:]}"
            )
    check_counts(counts, bad_pixels, where)
    if bad_pixels is not None and bad_pixels.any():
        counts = np.where(bad_pixels[None], np.float32(0), counts)
    return np.sqrt(np.maximum(counts, 0)).astype(np.float32, copy=False)

