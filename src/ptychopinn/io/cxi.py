"""CXI files (the Coherent X-ray Imaging format, NeXus-like HDF5): reader, report and writer.

Layout read (``entry_1`` only; soft links are followed)::

    /entry_1/data_1/data  or  /entry_1/instrument_1/detector_1/data   (n, H, W) intensities
    /entry_1/sample_1/geometry_1/translation                          (n, 3) sample, metres
    /entry_1/instrument_1/detector_1/distance                         sample-detector, metres
    /entry_1/instrument_1/detector_1/x_pixel_size, y_pixel_size       metres (x = columns)
    /entry_1/instrument_1/detector_1/mask           optional (H, W), nonzero = bad pixel
    /entry_1/instrument_1/detector_1/basis_vectors  optional lab vectors of the pixel axes
    /entry_1/instrument_1/source_1/energy           photon energy, J (or .../wavelength, m)
    /entry_1/instrument_1/source_1/illumination     optional (H, W) complex probe (also
                                                    ``.../source_1/probe``, ``/entry_1/probe``)

Conventions. Patterns are intensities (photon counts) with the zero frequency at pixel
``(H/2, W/2)``; we take ``sqrt`` and set bad pixels (mask != 0) to 0, recording them in the
metadata (``cxi.bad_pixels_rc``). ``translation`` is the sample's translation, so the beam
hits the sample at ``-translation``; its components along the detector's row and column axes
(``basis_vectors``: a (3, 2) array whose columns are the row and column pixel vectors, or a
(2, 3) array whose rows are; default rows along lab -y, columns along lab -x, which is also
what we write) divided by the far-field object pixel size

.. math:: \\Delta_{row} = \\lambda z / (H p_y), \\qquad \\Delta_{col} = \\lambda z / (W p_x)

give the patch centres in object pixels (no offset is added: positions may be negative; the
object frame follows the scan).

Near field. Nothing in a CXI file says whether it holds far-field diffraction patterns or
near-field (in-line, Fresnel) holograms, and a detector Fresnel number
``(N p)^2 / (lambda z)`` is >> 1 for every far-field experiment too. What tells them apart is
the data: a near-field hologram is a (magnified) image of the sample, so its features move on
the detector when the sample moves, by ``M * translation / p`` pixels (``M`` the cone-beam
magnification); a far-field pattern does not follow the scan. :func:`detect_near_field`
measures the shift between neighbouring flat-field-corrected patterns and fits it to the
translations; a consistent fit (R² >= 0.7 and shifts >= 1 px) is reported as near-field with
``M``, the effective pixel ``p / M``, the effective distance ``z / M``, the Fresnel number
``(N p / M)^2 / (lambda z / M)`` and the focus-sample distance ``z / (M - 1)``. Near-field
propagation is not in our forward model: loading such a file for reconstruction is refused;
:func:`cxi_report` (``ptychopinn inspect``) still reads it.

A file without a probe can be inspected but not loaded as a dataset (our datasets carry an
initial probe; no probe is estimated here).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.files import atomic_path, file_kind, open_hdf5
from ptychopinn.io.native import H5PatternStack

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_DETECTOR_PIXEL_M", "DEFAULT_DISTANCE_M", "DEFAULT_PHOTON_ENERGY_EV",
           "CxiScan", "NearField", "cxi_report", "detect_near_field", "is_cxi", "load_cxi",
           "read_cxi", "report_markdown", "save_cxi"]

#: Geometry written when neither the dataset's metadata nor the caller gives one.
DEFAULT_PHOTON_ENERGY_EV = 8000.0
DEFAULT_DISTANCE_M = 2.0
DEFAULT_DETECTOR_PIXEL_M = 75e-6

_HC_JM = 6.62607015e-34 * 299792458.0  # h c, J m
_EV_J = 1.602176634e-19

_ENTRY = "entry_1"
_DET = "entry_1/instrument_1/detector_1"
_SRC = "entry_1/instrument_1/source_1"
_DATA_KEYS = ("entry_1/data_1/data", f"{_DET}/data")
_TRANSLATION_KEYS = ("entry_1/sample_1/geometry_1/translation", "entry_1/data_1/translation")
_PROBE_KEYS = (f"{_SRC}/illumination", f"{_SRC}/probe", "entry_1/probe")
_OBJECT_KEY = "entry_1/image_1/data"
_META_KEY = "entry_1/ptychopinn_metadata_json"
_MAX_LISTED_BAD = 1000  # bad pixels listed in the metadata (their count always is)


# ------------------------------------------------------------------------------ detection
def is_cxi(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an HDF5 file in the CXI layout (an ``entry_1`` group)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        if file_kind(path) != "hdf5":
            return False
    except PtychoInputError:
        return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return isinstance(f.get(_ENTRY), h5py.Group)
    except OSError:
        return False


# --------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class NearField:
    """Outcome of :func:`detect_near_field` (``near_field`` False: far-field or undecided)."""

    near_field: bool
    reason: str
    magnification: float | None = None
    r2: float | None = None
    n_pairs: int = 0
    shift_rms_px: float | None = None
    effective_pixel_m: tuple[float, float] | None = None
    effective_distance_m: float | None = None
    fresnel_number: float | None = None
    focus_sample_m: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True, eq=False)
class CxiScan:
    """What a CXI file holds, validated (patterns are read on demand).

    Attributes
    ----------
    path : Path
    data_key : str
        HDF5 path of the (n, H, W) intensities.
    shape : tuple of int
        (n, H, W).
    dtype : numpy.dtype
        On-disk dtype of the intensities.
    translations_m : ndarray (n, 3) float64
        Sample translations (x, y, z) in metres.
    wavelength_m, distance_m : float
    pixel_size_m : tuple of float
        Detector pixel (along rows, along columns) in metres.
    axes : ndarray (2, 3) float64
        Unit lab vectors of the detector's row and column axes.
    bad_pixels : ndarray (H, W) bool or None
    probe : ndarray (H, W) complex64 or None
    obj : ndarray complex64 or None
        An ``objectGuess`` we wrote (``/entry_1/image_1/data``), else None.
    metadata : dict
        Our ``metadata_json`` if the file was written by us, else empty.
    """

    path: Path
    data_key: str
    shape: tuple[int, int, int]
    dtype: np.dtype
    translations_m: np.ndarray
    wavelength_m: float
    distance_m: float
    pixel_size_m: tuple[float, float]
    axes: np.ndarray
    bad_pixels: np.ndarray | None = None
    probe: np.ndarray | None = None
    obj: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def n_patterns(self) -> int:
        """Number of patterns n."""
        return self.shape[0]

    @property
    def object_pixel_m(self) -> tuple[float, float]:
        """Far-field object pixel (row, col): ``lambda z / (N p)`` per axis, metres."""
        _, h, w = self.shape
        lz = self.wavelength_m * self.distance_m
        return lz / (h * self.pixel_size_m[0]), lz / (w * self.pixel_size_m[1])

    def positions_px(self, pixel_m: tuple[float, float] | None = None) -> np.ndarray:
        """(n, 2) beam positions (row, col) on the sample in pixels of ``pixel_m`` (default:
        the far-field object pixel): ``-translation`` along the detector axes."""
        px = self.object_pixel_m if pixel_m is None else pixel_m
        along = -self.translations_m @ self.axes.T  # (n, 2) metres along (row, col)
        return along / np.asarray(px, dtype=np.float64)

    def patterns(self, idx: Any = slice(None)) -> np.ndarray:
        """Intensities of patterns ``idx`` as float64, bad pixels set to 0."""
        return _CxiStack(self)._intensities(idx)


def _read_scalar(f: Any, key: str, path: Path, *, required: bool = True) -> float | None:
    if key not in f:
        if required:
            raise PtychoInputError("missing required dataset", path=path, key=key)
        return None
    a = np.asarray(f[key][()])
    if a.size != 1 or not np.issubdtype(a.dtype, np.number):
        raise PtychoInputError(f"expected one number, got shape {a.shape} dtype {a.dtype}",
                               path=path, key=key)
    v = float(a.reshape(-1)[0])
    if not np.isfinite(v) or v <= 0:
        raise PtychoInputError(f"expected a positive number, got {v}", path=path, key=key)
    return v


def _read_axes(f: Any, path: Path) -> np.ndarray:
    key = f"{_DET}/basis_vectors"
    if key not in f:
        return np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])
    b = np.asarray(f[key][()], dtype=np.float64)
    if b.shape == (3, 2):
        b = b.T
    if b.shape != (2, 3) or not np.all(np.isfinite(b)):
        raise PtychoInputError(f"expected (3, 2) or (2, 3) pixel vectors, got {b.shape}",
                               path=path, key=key)
    norms = np.linalg.norm(b, axis=1)
    if np.any(norms == 0) or abs(float(np.dot(b[0], b[1]))) > 1e-6 * norms[0] * norms[1]:
        raise PtychoInputError("expected two nonzero, orthogonal pixel vectors", path=path,
                               key=key)
    return b / norms[:, None]


def read_cxi(path: str | os.PathLike) -> CxiScan:
    """Read and validate a CXI file's layout (patterns stay on disk).

    Raises
    ------
    PtychoInputError
        One line naming the file and the key: missing data or geometry, patterns that are
        not (n, H, W), a mask of another shape, translations of another length, a probe of
        another shape, non-finite values.
    """

    path = Path(path)
    file_kind(path)  # file not found / not HDF5: one line
    f = open_hdf5(path)
    try:
        with f:
            return _read_layout(f, path)
    except PtychoInputError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise PtychoInputError(f"corrupt CXI content ({e})", path=path) from None


def _read_layout(f: Any, path: Path) -> CxiScan:
    import h5py

    if not isinstance(f.get(_ENTRY), h5py.Group):
        raise PtychoInputError("not a CXI file (no entry_1 group)", path=path, key=_ENTRY)
    data_key = next((k for k in _DATA_KEYS if isinstance(f.get(k), h5py.Dataset)), None)
    if data_key is None:
        raise PtychoInputError(f"missing diffraction data (also looked for {_DATA_KEYS[1]})",
                               path=path, key=_DATA_KEYS[0])
    ds = f[data_key]
    shape = tuple(int(s) for s in ds.shape)
    if len(shape) != 3 or min(shape) < 1:
        raise PtychoInputError(f"expected (n, H, W) patterns, got shape {shape}", path=path,
                               key=data_key)
    if ds.dtype.kind not in "uif":
        raise PtychoInputError(f"expected real intensities, got dtype {ds.dtype}", path=path,
                               key=data_key)
    n, h, w = shape
    tkey = next((k for k in _TRANSLATION_KEYS if k in f), None)
    if tkey is None:
        raise PtychoInputError("missing sample translations", path=path,
                               key=_TRANSLATION_KEYS[0])
    t = np.asarray(f[tkey][()], dtype=np.float64)
    if t.ndim != 2 or t.shape[1] not in (2, 3):
        raise PtychoInputError(f"expected (n, 3) translations in metres, got shape {t.shape}",
                               path=path, key=tkey)
    if t.shape[0] != n:
        raise PtychoInputError(f"has {t.shape[0]} translations but the data hold {n} patterns",
                               path=path, key=tkey)
    if not np.all(np.isfinite(t)):
        raise PtychoInputError("NaN/Inf translations", path=path, key=tkey)
    if t.shape[1] == 2:
        t = np.concatenate([t, np.zeros((n, 1))], axis=1)
    distance = _read_scalar(f, f"{_DET}/distance", path)
    energy = _read_scalar(f, f"{_SRC}/energy", path, required=False)
    if energy is not None:
        wavelength = _HC_JM / energy
    else:
        wavelength = _read_scalar(f, f"{_SRC}/wavelength", path, required=False)
        if wavelength is None:
            raise PtychoInputError("missing photon energy (J; or source_1/wavelength in m)",
                                   path=path, key=f"{_SRC}/energy")
    axes = _read_axes(f, path)
    py = _read_scalar(f, f"{_DET}/y_pixel_size", path, required=False)
    px = _read_scalar(f, f"{_DET}/x_pixel_size", path, required=False)
    if (py is None or px is None) and f"{_DET}/basis_vectors" in f:
        b = np.asarray(f[f"{_DET}/basis_vectors"][()], dtype=np.float64)
        b = b.T if b.shape == (3, 2) else b
        norms = np.linalg.norm(b, axis=1)
        py = norms[0] if py is None else py
        px = norms[1] if px is None else px
    if py is None or px is None:
        raise PtychoInputError("missing detector pixel size (or basis_vectors)", path=path,
                               key=f"{_DET}/{'y' if py is None else 'x'}_pixel_size")
    bad = None
    if f"{_DET}/mask" in f:
        mkey = f"{_DET}/mask"
        mask = np.asarray(f[mkey][()])
        if mask.shape != (h, w):
            raise PtychoInputError(f"mask shape {mask.shape} differs from the pattern shape "
                                   f"{(h, w)}", path=path, key=mkey)
        bad = mask != 0
    probe = None
    pkey = next((k for k in _PROBE_KEYS if isinstance(f.get(k), h5py.Dataset)), None)
    if pkey is not None:
        probe = np.asarray(f[pkey][()])
        while probe.ndim > 2 and probe.shape[0] == 1:
            probe = probe[0]
        if probe.shape != (h, w):
            raise PtychoInputError(f"probe shape {probe.shape} differs from the pattern shape "
                                   f"{(h, w)}", path=path, key=pkey)
        if not np.issubdtype(probe.dtype, np.number) or not np.all(np.isfinite(probe)):
            raise PtychoInputError("expected a finite numeric probe", path=path, key=pkey)
        probe = probe.astype(np.complex64)
    obj = None
    ods = f.get(_OBJECT_KEY)
    if isinstance(ods, h5py.Dataset) and ods.attrs.get("ptychopinn_key") == "objectGuess":
        obj = np.asarray(ods[()]).astype(np.complex64)
    meta: dict = {}
    if _META_KEY in f:
        raw = f[_META_KEY][()]
        try:
            meta = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        except ValueError as e:
            raise PtychoInputError(f"not valid JSON ({e})", path=path, key=_META_KEY) from None
        if not isinstance(meta, dict):
            raise PtychoInputError("expected a JSON object", path=path, key=_META_KEY)
    return CxiScan(path=path, data_key=data_key, shape=(n, h, w), dtype=ds.dtype,
                   translations_m=t, wavelength_m=float(wavelength), distance_m=float(distance),
                   pixel_size_m=(float(py), float(px)), axes=axes, bad_pixels=bad, probe=probe,
                   obj=obj, metadata=meta)


class _CxiStack(H5PatternStack):
    """Lazy (n, N, N) float32 amplitudes ``sqrt(intensity)`` of a CXI file, bad pixels 0.

    Float64 intensities are square-rooted before the float32 cast, so amplitudes we wrote as
    their exact float64 squares come back bit for bit.
    """

    def __init__(self, scan: CxiScan):
        super().__init__(scan.path, scan.data_key, scan.shape, sqrt=True)
        self._bad = scan.bad_pixels
        self._f64 = scan.dtype == np.float64

    def _intensities(self, idx: Any) -> np.ndarray:
        a = np.array(self.raw(idx), dtype=np.float64)
        if self._bad is not None:
            a[..., self._bad] = 0.0
        return a

    def __getitem__(self, idx: Any) -> np.ndarray:
        a = np.array(self.raw(idx), dtype=np.float64 if self._f64 else np.float32)
        if self._bad is not None:
            a[..., self._bad] = 0
        return np.sqrt(a).astype(np.float32, copy=False)


def _scan_values(scan: CxiScan, *, max_bytes: int = 16 << 20) -> np.ndarray:
    """Total counts per pattern; refuses NaN/Inf or negative intensities (outside the mask)."""
    stack = _CxiStack(scan)
    n, h, w = scan.shape
    batch = max(1, max_bytes // (8 * h * w))
    totals = np.empty(n)
    for s in range(0, n, batch):
        a = stack._intensities(slice(s, s + batch))
        if not np.all(np.isfinite(a)):
            raise PtychoInputError("NaN/Inf intensities (not covered by the mask)",
                                   path=scan.path, key=scan.data_key)
        if a.size and float(a.min()) < 0:
            raise PtychoInputError(f"negative intensities (min {float(a.min()):.3g}) outside the "
                                   "mask; expected photon counts >= 0", path=scan.path,
                                   key=scan.data_key)
        totals[s : s + batch] = a.sum(axis=(1, 2))
    return totals


# ------------------------------------------------------------------------------ near field
def detect_near_field(scan: CxiScan, *, max_pairs: int = 64) -> NearField:
    """Tell near-field holograms from far-field patterns by whether features follow the scan.

    For up to ``max_pairs`` patterns (evenly spread) and their nearest scan neighbour, the
    patterns are divided by the mean pattern (flat field), windowed, and their relative shift
    found by phase correlation (whole pixels). The shifts ``s`` (pixels, (row, col)) are fitted
    by ``s = M * d / p`` where ``d`` is the neighbours' sample displacement along the detector
    axes and ``p`` the detector pixel: near-field when the fit explains the shifts
    (R² >= 0.7) and they are at least a pixel (rms), else far-field (a far-field pattern does
    not move with the sample).
    """
    from scipy.spatial import cKDTree

    n, h, w = scan.shape
    if n < 3:
        return NearField(False, "too few patterns to test")
    t = scan.translations_m @ scan.axes.T  # (n, 2) sample displacement along (row, col), m
    seeds = np.unique(np.linspace(0, n - 1, min(max_pairs, n)).round().astype(int))
    _, nn = cKDTree(t).query(t[seeds], k=2)
    partners = nn[:, 1]
    need = np.unique(np.concatenate([seeds, partners]))
    pats = scan.patterns(need)
    where = {int(k): i for i, k in enumerate(need)}
    mean = pats.mean(axis=0)
    lit = mean > 0.05 * float(mean.max()) if mean.max() > 0 else np.zeros_like(mean, bool)
    if scan.bad_pixels is not None:
        lit &= ~scan.bad_pixels
    if lit.sum() < 16:
        return NearField(False, "too few lit pixels to test")
    flat = np.where(lit, pats / np.where(lit, mean, 1.0) - 1.0, 0.0)
    window = np.outer(np.hanning(h), np.hanning(w))
    spectra = np.fft.rfft2(flat * window)
    shifts, disp = [], []
    for a, b in zip(seeds, partners, strict=True):
        cross = spectra[where[int(b)]] * np.conj(spectra[where[int(a)]])
        corr = np.fft.irfft2(cross / (np.abs(cross) + 1e-12), s=(h, w))
        r, c = np.unravel_index(int(np.argmax(corr)), corr.shape)
        shifts.append(((r + h // 2) % h - h // 2, (c + w // 2) % w - w // 2))
        disp.append(t[b] - t[a])
    s = np.asarray(shifts, dtype=np.float64)
    d = np.asarray(disp) / np.asarray(scan.pixel_size_m)  # displacement in detector pixels
    denom = float(np.sum(d * d))
    total = float(np.sum(s * s))
    if denom == 0 or total == 0:
        return NearField(False, "the patterns do not move with the scan (far-field)",
                         n_pairs=len(s), shift_rms_px=0.0)
    gain = float(np.sum(s * d)) / denom
    r2 = 1.0 - float(np.sum((s - gain * d) ** 2)) / total
    rms = float(np.sqrt(np.mean(np.sum(s * s, axis=1))))
    if r2 < 0.7 or rms < 1.0:
        return NearField(False, f"the patterns do not follow the scan (R² {r2:.2f}, shift rms "
                                f"{rms:.2f} px)", r2=r2, n_pairs=len(s),
                         shift_rms_px=rms)
    m = abs(gain)
    eff_px = (scan.pixel_size_m[0] / m, scan.pixel_size_m[1] / m)
    eff_z = scan.distance_m / m
    fresnel = (h * eff_px[0]) * (w * eff_px[1]) / (scan.wavelength_m * eff_z)
    return NearField(True, "the patterns follow the scan (in-line holograms)",
                     magnification=m, r2=r2, n_pairs=len(s), shift_rms_px=rms,
                     effective_pixel_m=eff_px, effective_distance_m=eff_z,
                     fresnel_number=fresnel,
                     focus_sample_m=scan.distance_m / (m - 1) if m > 1 else None)


def _refuse_near_field(scan: CxiScan, nf: NearField) -> PtychoInputError:
    return PtychoInputError(
        f"near-field data ({nf.reason}: magnification ~{nf.magnification:.0f}, Fresnel number "
        f"~{nf.fresnel_number:.3g}); near-field propagation is not in the forward model "
        "(ptychopinn inspect reports the geometry)", path=scan.path, key=scan.data_key)


# ---------------------------------------------------------------------------------- loading
def _geometry_metadata(scan: CxiScan) -> dict[str, Any]:
    return {"photon_energy_eV": _HC_JM / scan.wavelength_m / _EV_J,
            "wavelength_m": scan.wavelength_m,
            "detector_object_distance_m": scan.distance_m,
            "detector_pixel_size_m": list(scan.pixel_size_m),
            "object_pixel_size_m": list(scan.object_pixel_m)}


def _bad_pixel_metadata(bad: np.ndarray | None) -> dict[str, Any]:
    if bad is None:
        return {"n_bad_pixels": 0}
    rc = np.argwhere(bad)
    out: dict[str, Any] = {"n_bad_pixels": int(len(rc))}
    if len(rc) <= _MAX_LISTED_BAD:
        out["bad_pixels_rc"] = rc.tolist()
    return out


def load_cxi(path: str | os.PathLike, *, allow_near_field: bool = False) -> PtychoData:
    """A far-field CXI file as a :class:`~ptychopinn.data.container.PtychoData` (lazy).

    Amplitudes are ``sqrt(intensity)`` with bad pixels 0; positions are the beam positions in
    far-field object pixels (module docstring); the metadata hold the geometry
    (``photon_energy_eV``, ``wavelength_m``, ``detector_object_distance_m``,
    ``detector_pixel_size_m``, ``object_pixel_size_m``) and ``cxi`` (bad pixels, the data key).

    Parameters
    ----------
    path : path-like
        The ``.cxi`` file.
    allow_near_field : bool
        Load near-field data too (positions then in far-field pixels all the same); default:
        refused, near-field propagation is not in the forward model.

    Raises
    ------
    PtychoInputError
        Malformed file (see :func:`read_cxi`), no probe, near-field data, bad values.
    """
    scan = read_cxi(path)
    if scan.shape[1] != scan.shape[2]:
        raise PtychoInputError(f"patterns must be square, got {scan.shape[1]}x{scan.shape[2]}",
                               path=scan.path, key=scan.data_key)
    if not allow_near_field:
        nf = detect_near_field(scan)
        if nf.near_field:
            raise _refuse_near_field(scan, nf)
    if scan.probe is None:
        raise PtychoInputError("has no probe (looked for " + ", ".join(_PROBE_KEYS) + "); "
                               "a dataset needs an initial probe on the object pixel grid",
                               path=scan.path, key=_PROBE_KEYS[0])
    totals = _scan_values(scan)
    meta = {k: v for k, v in scan.metadata.items() if k != "cxi"}
    meta.update(_geometry_metadata(scan))
    meta.setdefault("units", {"diffraction": "sqrt(photon counts)",
                              "positions": "object pixels"})
    meta.setdefault("photons_per_pattern", float(totals.mean()))
    meta["cxi"] = {"data_key": scan.data_key, **_bad_pixel_metadata(scan.bad_pixels)}
    return PtychoData(diffraction=_CxiStack(scan), positions=scan.positions_px(),
                      probe=scan.probe, obj=scan.obj, metadata=meta, source=str(scan.path))


# ----------------------------------------------------------------------------------- report
def cxi_report(path: str | os.PathLike) -> dict[str, Any]:
    """``ptychopinn inspect`` for a CXI file, near-field ones included (JSON-able dict)."""
    from scipy.spatial import cKDTree

    from ptychopinn.data.inspect import _stats, sha256_file
    from ptychopinn.data.simulate import probe_diameter

    scan = read_cxi(path)
    totals = _scan_values(scan)
    nf = detect_near_field(scan)
    n, h, w = scan.shape
    pixel = nf.effective_pixel_m if nf.near_field else scan.object_pixel_m
    pos = scan.positions_px(pixel)
    nn = cKDTree(pos).query(pos, k=2)[0][:, 1] if n > 1 else np.zeros(1)
    bad = _bad_pixel_metadata(scan.bad_pixels)
    report: dict[str, Any] = {
        "source": str(scan.path),
        "format": "cxi",
        "n_patterns": n,
        "pattern_shape": [h, w],
        "data_key": scan.data_key,
        "data_dtype": str(scan.dtype),
        "counts_per_pattern": _stats(totals),
        "bad_pixels": bad,
        "geometry": {
            "kind": "near-field" if nf.near_field else "far-field",
            **_geometry_metadata(scan),
            "detector_axes_lab": scan.axes.tolist(),
            "test": nf.as_dict(),
        },
        "positions_px": {
            "pixel_size_m": list(pixel),
            "pixel": "near-field effective pixel" if nf.near_field else "far-field object pixel",
            "row_range": [float(pos[:, 0].min()), float(pos[:, 0].max())],
            "col_range": [float(pos[:, 1].min()), float(pos[:, 1].max())],
            "nearest_neighbour_px": _stats(nn),
        },
        "probe": None,
        "loadable": not nf.near_field and scan.probe is not None and h == w,
    }
    if scan.probe is not None:
        i = np.abs(scan.probe.astype(np.complex128)) ** 2
        report["probe"] = {"shape": list(scan.probe.shape), "power": float(i.sum()),
                           "effective_diameter_px": float(probe_diameter(scan.probe))}
    report["sha256"] = sha256_file(scan.path)
    return report


def report_markdown(report: dict[str, Any]) -> str:
    """Render :func:`cxi_report`'s dict as Markdown."""
    g, p, c, b = (report["geometry"], report["positions_px"], report["counts_per_pattern"],
                  report["bad_pixels"])
    test = g["test"]
    h, w = report["pattern_shape"]
    lines = [
        f"# CXI report: {report['source']}",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| patterns | {report['n_patterns']} of {h}×{w} ({report['data_dtype']}, "
        f"`{report['data_key']}`) |",
        f"| total counts / pattern (min / median / max) | {c['min']:.4g} / {c['median']:.4g} / "
        f"{c['max']:.4g} |",
        f"| masked (bad) pixels | {b['n_bad_pixels']}"
        + (f": (r, c) {', '.join(f'({r}, {cc})' for r, cc in b['bad_pixels_rc'][:10])}"
           f"{' …' if b['n_bad_pixels'] > 10 else ''}" if b.get("bad_pixels_rc") else "")
        + " |",
        f"| photon energy / wavelength | {g['photon_energy_eV'] / 1e3:.4g} keV / "
        f"{g['wavelength_m'] * 1e9:.4g} nm |",
        f"| sample–detector distance | {g['detector_object_distance_m']:.4g} m |",
        f"| detector pixel (rows, cols) | {g['detector_pixel_size_m'][0] * 1e6:.4g} × "
        f"{g['detector_pixel_size_m'][1] * 1e6:.4g} µm |",
        f"| far-field object pixel (rows, cols) | {g['object_pixel_size_m'][0] * 1e9:.4g} × "
        f"{g['object_pixel_size_m'][1] * 1e9:.4g} nm |",
        f"| geometry | **{g['kind']}**: {test['reason']} |",
    ]
    if g["kind"] == "near-field":
        lines += [
            f"| magnification (fit of {test['n_pairs']} neighbour pairs, R² {test['r2']:.2f}) | "
            f"{test['magnification']:.4g} |",
            f"| effective pixel / distance | {test['effective_pixel_m'][0] * 1e9:.4g} nm / "
            f"{test['effective_distance_m'] * 1e3:.4g} mm |",
            f"| Fresnel number (N p_eff)² / (λ z_eff) | {test['fresnel_number']:.4g} |",
        ]
        if test.get("focus_sample_m"):
            lines.append(f"| focus–sample distance (cone beam) | "
                         f"{test['focus_sample_m'] * 1e3:.4g} mm |")
    lines += [
        f"| positions ({p['pixel']}, {p['pixel_size_m'][0] * 1e9:.4g} nm): rows / cols (px) | "
        f"{p['row_range'][0]:.1f}…{p['row_range'][1]:.1f} / "
        f"{p['col_range'][0]:.1f}…{p['col_range'][1]:.1f} |",
        f"| nearest-neighbour spacing (median, px) | {p['nearest_neighbour_px']['median']:.2f} |",
        "| probe | " + ("none in the file" if report["probe"] is None else
                        f"{tuple(report['probe']['shape'])}, effective diameter "
                        f"{report['probe']['effective_diameter_px']:.1f} px") + " |",
        "| loadable for reconstruction | " + ("yes" if report["loadable"] else
                                             "no (" + _why_not(report) + ")") + " |",
        f"| SHA-256 | `{report['sha256']}` |",
    ]
    return "\n".join(lines) + "\n"


def _why_not(report: dict[str, Any]) -> str:
    why = []
    if report["geometry"]["kind"] == "near-field":
        why.append("near-field propagation is not in the forward model")
    if report["probe"] is None:
        why.append("no probe")
    h, w = report["pattern_shape"]
    if h != w:
        why.append("patterns not square")
    return "; ".join(why)


# ---------------------------------------------------------------------------------- writing
def _counts_dtype(data: PtychoData, batch: int) -> np.dtype:
    """uint32 when every amplitude is sqrt of an integer count (exactly, in float32), else
    float64 (whose squares of float32 amplitudes are exact)."""
    for s in range(0, data.n_patterns, batch):
        a = np.asarray(data.diffraction[s : s + batch], dtype=np.float32)
        k = np.rint(a.astype(np.float64) ** 2)
        if k.max(initial=0) >= 2**32 or not np.array_equal(np.sqrt(k.astype(np.float32)), a):
            return np.dtype(np.float64)
    return np.dtype(np.uint32)


def save_cxi(data: PtychoData, path: str | os.PathLike, *,
             photon_energy_eV: float | None = None,  # noqa: N803
             distance_m: float | None = None, detector_pixel_m: float | None = None,
             chunk: int = 64) -> Path:
    """Write ``data`` as a far-field CXI file, atomically (patterns streamed ``chunk`` at a time).

    Intensities ``amplitude²`` go to ``/entry_1/instrument_1/detector_1/data`` (linked from
    ``/entry_1/data_1/data``) as uint32 counts when the amplitudes are square roots of integers,
    else float64 (exact); translations ``(col Δ_col, row Δ_row, 0)`` metres (the sample's, so
    the beam is at ``-translation``, with the detector axes written along lab -y and -x);
    the probe at ``/entry_1/instrument_1/source_1/illumination``; an ``objectGuess`` at
    ``/entry_1/image_1/data``; bad pixels listed in ``metadata["cxi"]`` as the mask; our
    metadata as JSON at ``/entry_1/ptychopinn_metadata_json``.

    The geometry (photon energy, distance, detector pixel) comes from the arguments, else the
    dataset's metadata (``photon_energy_eV`` or ``wavelength_m``, ``detector_object_distance_m``,
    ``detector_pixel_size_m``, or one derived from ``object_pixel_size_m``), else
    :data:`DEFAULT_PHOTON_ENERGY_EV` (8 keV), :data:`DEFAULT_DISTANCE_M` (2 m) and
    :data:`DEFAULT_DETECTOR_PIXEL_M` (75 µm). The object pixel is then ``λ z / (N p)``.
    """
    import h5py

    path = Path(path)
    meta = dict(data.metadata)
    n = data.patch_size
    m = data.n_patterns
    if photon_energy_eV is None:
        if meta.get("photon_energy_eV"):
            photon_energy_eV = float(meta["photon_energy_eV"])
        elif meta.get("wavelength_m"):
            photon_energy_eV = _HC_JM / float(meta["wavelength_m"]) / _EV_J
        else:
            photon_energy_eV = DEFAULT_PHOTON_ENERGY_EV
    wavelength = _HC_JM / (photon_energy_eV * _EV_J)
    distance = float(distance_m or meta.get("detector_object_distance_m") or DEFAULT_DISTANCE_M)
    if detector_pixel_m is not None:
        pix = (float(detector_pixel_m), float(detector_pixel_m))
    elif meta.get("detector_pixel_size_m"):
        pix = tuple(float(v) for v in np.broadcast_to(meta["detector_pixel_size_m"], (2,)))
    elif meta.get("object_pixel_size_m"):
        obj_px = np.broadcast_to(np.asarray(meta["object_pixel_size_m"], np.float64), (2,))
        pix = tuple(float(wavelength * distance / (n * v)) for v in obj_px)
    else:
        pix = (DEFAULT_DETECTOR_PIXEL_M, DEFAULT_DETECTOR_PIXEL_M)
    for name, v in (("photon energy", photon_energy_eV), ("distance", distance),
                    ("detector pixel", min(pix))):
        if not (np.isfinite(v) and v > 0):
            raise PtychoInputError(f"{name} must be a positive number, got {v}")
    dx = (wavelength * distance / (n * pix[0]), wavelength * distance / (n * pix[1]))
    pos = data.positions
    translation = np.zeros((m, 3))
    translation[:, 0] = pos[:, 1] * dx[1]  # axes along lab -x (cols), -y (rows): beam at -t
    translation[:, 1] = pos[:, 0] * dx[0]
    batch = max(1, (16 << 20) // (4 * n * n))
    dtype = _counts_dtype(data, batch)
    cxi_meta = meta.pop("cxi", {}) or {}
    bad = np.zeros((n, n), np.uint32)
    for r, c in cxi_meta.get("bad_pixels_rc", []):
        bad[int(r), int(c)] = 1
    for k in ("photon_energy_eV", "wavelength_m", "detector_object_distance_m",
              "detector_pixel_size_m", "object_pixel_size_m"):
        meta.pop(k, None)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("cxi_version", data=np.int64(160))
        f.create_dataset("number_of_entries", data=np.int64(1))
        det = f.create_group(_DET)
        ds = det.create_dataset("data", shape=(m, n, n), dtype=dtype,
                                chunks=(min(chunk, m), n, n))
        for s in range(0, m, chunk):
            a = np.asarray(data.diffraction[s : s + chunk], dtype=np.float32).astype(np.float64)
            ds[s : s + chunk] = np.rint(a * a) if dtype == np.uint32 else a * a
        det.create_dataset("distance", data=np.float64(distance))
        det.create_dataset("x_pixel_size", data=np.float64(pix[1]))
        det.create_dataset("y_pixel_size", data=np.float64(pix[0]))
        det.create_dataset("basis_vectors",
                           data=np.array([[0.0, -pix[1]], [-pix[0], 0.0], [0.0, 0.0]]))
        det.create_dataset("mask", data=bad)
        src = f.create_group(_SRC)
        src.create_dataset("energy", data=np.float64(photon_energy_eV * _EV_J))
        src.create_dataset("wavelength", data=np.float64(wavelength))
        src.create_dataset("illumination", data=data.probe.astype(np.complex64))
        geo = f.create_group("entry_1/sample_1/geometry_1")
        geo.create_dataset("translation", data=translation)
        d1 = f.create_group("entry_1/data_1")
        d1["data"] = h5py.SoftLink(f"/{_DET}/data")
        d1["translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")
        if data.obj is not None:
            img = f.create_dataset(_OBJECT_KEY, data=data.obj.astype(np.complex64))
            img.attrs["ptychopinn_key"] = "objectGuess"
        f.create_dataset(_META_KEY, data=json.dumps(meta, sort_keys=True, default=str),
                         dtype=h5py.string_dtype())
    return path
