"""Converters from other packages' files into our dataset contract."""

from __future__ import annotations

import bz2
import io
import logging
from pathlib import Path

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.physics.probe import probe_norm_factor

logger = logging.getLogger(__name__)


def _open_maybe_bz2(path: Path) -> dict[str, np.ndarray]:
    from ptychopinn.files import read_npz

    if not path.exists():
        raise PtychoInputError("file not found", path=path)
    if path.suffix == ".bz2":
        try:
            with bz2.open(path, "rb") as fh:
                raw = fh.read()
        except (OSError, EOFError) as e:
            raise PtychoInputError(f"corrupt bz2 archive ({e})", path=path) from None
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except ValueError as e:
            raise PtychoInputError(f"not a numeric NPZ inside the bz2 ({e})", path=path) from None
    return read_npz(path)


def convert_tike(path: str | Path, *, margin: int = 4) -> PtychoData:
    """Convert a tike ptychography NPZ (``data``, ``scan``, ``probe``; optionally ``.bz2``).

    tike stores intensities with DC at pixel [0, 0] and scan positions as the top-left corner of
    the probe window in pixels (``scan[..., 0]`` rows, ``scan[..., 1]`` cols). We fftshift the
    patterns, take sqrt, and convert positions to patch centres (``+ N/2``) shifted so the whole
    scan sits in a positive object frame with ``margin`` pixels to spare. The initial probe is
    rescaled so that |F(P)|² carries the mean total counts (unit-amplitude object assumption).
    """
    path = Path(path)
    z = _open_maybe_bz2(path)
    for k in ("data", "scan", "probe"):
        if k not in z:
            raise PtychoInputError("missing required array (tike layout)", path=path, key=k)
    data = np.asarray(z["data"])
    while data.ndim > 3:
        data = data[0]
    scan = np.asarray(z["scan"], dtype=np.float64)
    while scan.ndim > 2:
        scan = scan[0]
    probe = np.asarray(z["probe"])
    while probe.ndim > 2:
        probe = probe[0]
    if data.ndim != 3 or data.shape[1] != data.shape[2]:
        raise PtychoInputError(f"expected (M, N, N) patterns, got {data.shape}", path=path,
                               key="data")
    if scan.shape != (data.shape[0], 2):
        raise PtychoInputError(f"expected ({data.shape[0]}, 2) positions, got {scan.shape}",
                               path=path, key="scan")
    n = data.shape[-1]
    if probe.shape != (n, n):
        raise PtychoInputError(f"probe shape {probe.shape} must be ({n}, {n})", path=path,
                               key="probe")
    if not np.all(np.isfinite(data)) or float(data.min()) < 0:
        raise PtychoInputError("expected finite, non-negative counts", path=path, key="data")
    amp = np.sqrt(np.fft.fftshift(data.astype(np.float32), axes=(-2, -1)))
    centres = scan + n / 2
    centres = centres - centres.min(axis=0) + n / 2 + margin
    mean_counts = float(np.mean(np.sum(data.astype(np.float64), axis=(1, 2))))
    # scale the probe so that sum|P|^2 = mean total counts (Parseval, |O| = 1)
    p = probe.astype(np.complex128)
    p = p * probe_norm_factor(p) * np.sqrt(mean_counts) / (n / 2)
    extent = np.ceil(centres.max(axis=0) + n / 2 + margin).astype(int)
    meta = {
        "units": {"diffraction": "sqrt(photon counts)", "positions": "object pixels"},
        "provenance": f"converted from tike file {path.name}",
        "photons_per_pattern": mean_counts,
        "object_shape": [int(extent[0]), int(extent[1])],
        "probe_note": "analytic initial guess from tike; refine before trusting",
    }
    return PtychoData(
        diffraction=amp.astype(np.float32),
        positions=centres,
        probe=p.astype(np.complex64),
        scan_index=np.zeros(len(centres), np.int64),
        metadata=meta,
        source=str(path),
    )
