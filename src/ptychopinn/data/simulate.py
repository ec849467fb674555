"""Simulate ptychography datasets with ground truth (uses the same physics as training)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from scipy import ndimage

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.physics.forward import forward_amplitude
from ptychopinn.physics.noise import sample_poisson
from ptychopinn.physics.patches import extract_patches
from ptychopinn.physics.probe import normalize_probe

logger = logging.getLogger(__name__)

#: Positions of a random or spiral scan when ``n_positions`` is not given.
DEFAULT_N_POSITIONS = 1000


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """Everything that defines a simulated dataset (seeded, reproducible).

    Lengths are in object pixels; ``photons`` is the mean total counts per pattern.
    ``step`` (pixels) wins over ``overlap`` (linear overlap fraction of the probe diameter).
    ``n_positions`` None: a raster fills the object at ``step``; random and spiral scans
    take :data:`DEFAULT_N_POSITIONS`.
    """

    object: str = "lines"  # lines | grf | PATH.npz | PATH.png
    probe: str = "disk"  # disk | PATH.npz
    scan: Literal["random", "raster", "spiral"] = "random"
    n_positions: int | None = None
    object_size: int = 256
    patch_size: int = 64
    step: float | None = None
    overlap: float = 0.7
    jitter: float = 0.0
    photons: float = 1e6
    noise: bool = True
    amplitude_range: tuple[float, float] = (0.5, 1.0)
    phase_range: tuple[float, float] = (-1.0, 1.0)
    probe_defocus: float = 1.0
    #: stage errors (issue #23): the patterns are taken at true positions but the file stores
    #: the nominal ones, true = c + (1 + scale)(nominal - c) + drift·(t - ½)·u + e, with c
    #: the scan centre, t the scan order from 0 to 1, u a seeded direction and e random with
    #: RMS ``position_error`` pixels (2-D); the true ones are kept as ``positions_true``
    position_error: float = 0.0
    position_drift: float = 0.0
    position_scale: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.patch_size < 8 or self.patch_size % 2:
            raise PtychoInputError(f"patch_size must be even and >= 8, got {self.patch_size}")
        if self.n_positions is not None and self.n_positions < 1:
            raise PtychoInputError(f"n_positions must be >= 1, got {self.n_positions}")
        if self.object_size < self.patch_size + 2:
            raise PtychoInputError(f"object_size ({self.object_size}) must exceed patch_size + 2")
        if self.step is not None and self.step <= 0:
            raise PtychoInputError(f"step must be > 0, got {self.step}")
        if not 0 <= self.overlap < 1:
            raise PtychoInputError(f"overlap must be in [0, 1), got {self.overlap}")
        if not self.photons > 0:
            raise PtychoInputError(f"photons must be > 0, got {self.photons}")
        if self.scan not in ("random", "raster", "spiral"):
            raise PtychoInputError(f"scan must be random, raster or spiral, got {self.scan!r}")
        for name in ("position_error", "position_drift"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise PtychoInputError(f"{name} must be >= 0 pixels, got {v}")
        if not (np.isfinite(self.position_scale) and abs(self.position_scale) < 0.5):
            raise PtychoInputError(f"position_scale must be a relative error in (-0.5, 0.5), "
                                   f"got {self.position_scale}")
        lo, hi = self.amplitude_range
        if not 0 <= lo <= hi:
            raise PtychoInputError(f"amplitude_range must satisfy 0 <= lo <= hi, got {lo, hi}")


# -------------------------------------------------------------------------------- objects
def _rescale(field: np.ndarray, lo: float, hi: float) -> np.ndarray:
    f = field - field.min()
    span = f.max()
    return lo + (hi - lo) * (f / span if span > 0 else f)


def lines_field(size: int, rng: np.random.Generator, *, n_lines: int | None = None,
                blur: float = 1.0) -> np.ndarray:
    """Random straight lines of random width/brightness, lightly blurred; (size, size) in [0, 1]."""
    n_lines = n_lines or max(20, size // 4)
    img = np.zeros((size, size))
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(n_lines):
        theta = rng.uniform(0, np.pi)
        c = rng.uniform(0, size, 2)
        d = np.abs((yy - c[0]) * np.cos(theta) - (xx - c[1]) * np.sin(theta))
        length = rng.uniform(size / 8, size / 2)
        along = np.abs((yy - c[0]) * np.sin(theta) + (xx - c[1]) * np.cos(theta))
        width = rng.uniform(0.7, 2.5)
        img += rng.uniform(0.3, 1.0) * ((d < width) & (along < length))
    img = ndimage.gaussian_filter(np.minimum(img, 1.5), blur)
    return _rescale(img, 0, 1)


def grf_field(size: int, rng: np.random.Generator, *, correlation: float = 6.0) -> np.ndarray:
    """Gaussian random field with Gaussian correlation length ``correlation`` px, in [0, 1]."""
    noise = rng.standard_normal((size, size))
    return _rescale(ndimage.gaussian_filter(noise, correlation, mode="wrap"), 0, 1)


def make_object(cfg: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """(S, S) complex64 object with amplitude in ``amplitude_range``, phase in ``phase_range``."""
    s = cfg.object_size
    if cfg.object in ("lines", "grf"):
        gen = lines_field if cfg.object == "lines" else grf_field
        amp_f, ph_f = gen(s, rng), gen(s, rng)
    else:
        return _object_from_file(Path(cfg.object), cfg)
    amp = _rescale(amp_f, *cfg.amplitude_range)
    ph = _rescale(ph_f, *cfg.phase_range)
    return (amp * np.exp(1j * ph)).astype(np.complex64)


def _object_from_file(path: Path, cfg: SimulationConfig) -> np.ndarray:
    if not path.exists():
        raise PtychoInputError("object file not found", path=path)
    if path.suffix.lower() == ".npz":
        from ptychopinn.files import read_npz

        arrays = read_npz(path)
        if "objectGuess" not in arrays:
            raise PtychoInputError("missing required array", path=path, key="objectGuess")
        obj = np.asarray(arrays["objectGuess"])
        if obj.ndim != 2 or not np.all(np.isfinite(obj)):
            raise PtychoInputError("expected a finite (H, W) array", path=path,
                                   key="objectGuess")
        return obj.astype(np.complex64)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            img = np.asarray(im.convert("L").resize((cfg.object_size, cfg.object_size)),
                             dtype=np.float64) / 255.0
    except (UnidentifiedImageError, OSError) as e:
        raise PtychoInputError(f"not a readable image ({e})", path=path) from None
    amp = _rescale(img, *cfg.amplitude_range)
    ph = _rescale(img, *cfg.phase_range)
    return (amp * np.exp(1j * ph)).astype(np.complex64)


# --------------------------------------------------------------------------------- probes
def disk_probe(n: int, *, radius: float | None = None, defocus: float = 1.0,
               edge: float = 1.5) -> np.ndarray:
    """Soft-edged disk of radius ``radius`` (default N/4) with quadratic (defocus) phase.

    Returns (N, N) complex64 centred at (N/2, N/2), normalised to total power (N/2)**2.
    ``defocus`` is the phase in radians at the disk edge.
    """
    radius = n / 4 if radius is None else radius
    k = np.arange(n) - n // 2
    r = np.hypot(k[:, None], k[None, :])
    amp = 0.5 * (1 - np.tanh((r - radius) / edge))
    return normalize_probe(amp * np.exp(1j * defocus * (r / radius) ** 2))[0]


def load_probe(path: Path, n: int | None = None) -> np.ndarray:
    """Read ``probeGuess`` from an NPZ (e.g. a reconstruction); optionally centre-crop/pad to N."""
    from ptychopinn.files import read_npz

    if not path.exists():
        raise PtychoInputError("probe file not found", path=path)
    arrays = read_npz(path)
    key = "probeGuess" if "probeGuess" in arrays else "probe" if "probe" in arrays else None
    if key is None:
        raise PtychoInputError("missing required array", path=path, key="probeGuess")
    p = np.asarray(arrays[key])
    while p.ndim > 2:
        p = p[0]
    if p.ndim != 2 or p.shape[0] != p.shape[1] or not np.all(np.isfinite(p)):
        raise PtychoInputError(f"expected a finite square (N, N) probe, got {p.shape}",
                               path=path, key=key)
    if n is not None and p.shape[0] != n:
        raise PtychoInputError(f"probe is {p.shape[0]}x{p.shape[0]} but patch size is {n}",
                               path=path, key=key)
    return p.astype(np.complex64)


def probe_diameter(probe: np.ndarray) -> float:
    """Effective probe diameter in pixels: ``2 sqrt(A / pi)``, A = (Σ|P|²)² / Σ|P|⁴."""
    i = np.abs(probe) ** 2
    area = float(i.sum() ** 2 / np.sum(i * i))
    return 2 * np.sqrt(area / np.pi)


# ---------------------------------------------------------------------------------- scans
def make_scan(cfg: SimulationConfig, rng: np.random.Generator, *, step: float,
              object_shape: tuple[int, int]) -> np.ndarray:
    """Patch-centre positions (M, 2) (row, col) inside the object, M = ``cfg.n_positions``.

    Without ``n_positions`` a raster fills the object (as many rows and columns at ``step``
    as fit, centred) and random/spiral scans take :data:`DEFAULT_N_POSITIONS`.
    """
    h, w = object_shape
    half = cfg.patch_size / 2
    lo = np.array([half + 1, half + 1])
    hi = np.array([h - half - 2, w - half - 2], dtype=float)
    if np.any(hi < lo):
        raise ValueError("object too small for the patch size")
    centre = (lo + hi) / 2
    if cfg.scan == "raster" and cfg.n_positions is None:  # fill, jitter kept inside
        axes = [np.arange(int(np.floor(max(span, 0.0) / step + 1e-9)) + 1) * step
                for span in hi - lo - 2 * cfg.jitter]
        yy, xx = np.meshgrid(*(a - a[-1] / 2 for a in axes), indexing="ij")
        pos = np.stack([yy.ravel(), xx.ravel()], 1) + centre
        if cfg.jitter:
            pos = pos + rng.uniform(-cfg.jitter, cfg.jitter, pos.shape)
        m = len(pos)
    elif cfg.scan == "raster":
        m = _n_positions(cfg)
        side = int(np.ceil(np.sqrt(m)))
        span = step * (side - 1)
        g = np.arange(side) * step - span / 2
        yy, xx = np.meshgrid(g, g, indexing="ij")
        pos = np.stack([yy.ravel(), xx.ravel()], 1)[:m] + centre
        if cfg.jitter:
            pos = pos + rng.uniform(-cfg.jitter, cfg.jitter, pos.shape)
    elif cfg.scan == "random":
        m = _n_positions(cfg)
        pos = rng.uniform(lo, hi, size=(m, 2))
    else:  # Fermat spiral: spacing ~ step
        m = _n_positions(cfg)
        k = np.arange(m)
        r = step / np.sqrt(np.pi) * np.sqrt(k + 0.5)
        theta = k * np.pi * (3 - np.sqrt(5))
        pos = np.stack([r * np.sin(theta), r * np.cos(theta)], 1) + centre
    if np.any(pos < lo - 1e-9) or np.any(pos > hi + 1e-9):
        raise PtychoInputError(
            f"the {cfg.scan} scan with step {step:.2f} px and {m} positions does not fit in a "
            f"{h}x{w} object; use a larger --object-size, a smaller --step or fewer positions")
    return pos.astype(np.float64)


def position_errors(cfg: SimulationConfig, nominal: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """The true positions (M, 2) of a scan whose stage reports ``nominal``
    (:class:`SimulationConfig` ``position_*``: scale about the scan centre, linear drift in
    scan order along a random direction, random error of the given 2-D RMS)."""
    m = nominal.shape[0]
    c = nominal.mean(axis=0)
    true = c + (1.0 + cfg.position_scale) * (nominal - c)
    if cfg.position_drift:
        ang = rng.uniform(0, 2 * np.pi)
        t = np.linspace(0.0, 1.0, m) - 0.5 if m > 1 else np.zeros(1)
        true = true + cfg.position_drift * t[:, None] * np.array([np.sin(ang), np.cos(ang)])
    if cfg.position_error:
        true = true + rng.normal(0.0, cfg.position_error / np.sqrt(2), size=(m, 2))
    return true


def _n_positions(cfg: SimulationConfig) -> int:
    return DEFAULT_N_POSITIONS if cfg.n_positions is None else cfg.n_positions


# ----------------------------------------------------------------------------- simulation
def simulate(cfg: SimulationConfig, *, batch: int = 256) -> PtychoData:
    """Simulate a dataset: object, probe, scan, far-field amplitudes with Poisson noise.

    The stored probe carries the absolute scale, i.e. counts ≈ |F(probeGuess · O)|², and the
    diffraction holds sqrt(counts). Seeded by ``cfg.seed``.
    """
    ss = np.random.SeedSequence(cfg.seed)
    rng_obj, rng_scan, rng_noise, rng_err = (np.random.default_rng(s) for s in ss.spawn(4))
    n = cfg.patch_size
    obj = make_object(cfg, rng_obj)
    if cfg.probe == "disk":
        probe_n = disk_probe(n, defocus=cfg.probe_defocus)
    else:
        probe_n = normalize_probe(load_probe(Path(cfg.probe), n))[0]
    step = cfg.step if cfg.step is not None else (1 - cfg.overlap) * probe_diameter(probe_n)
    step = max(step, 1e-3)
    nominal = make_scan(cfg, rng_scan, step=step, object_shape=obj.shape)
    moved = cfg.position_error or cfg.position_drift or cfg.position_scale
    pos = position_errors(cfg, nominal, rng_err) if moved else nominal
    obj_t = torch.from_numpy(obj)
    probe_t = torch.from_numpy(probe_n)
    m = pos.shape[0]
    amp = np.empty((m, n, n), np.float32)
    gt = np.empty((m, n, n), np.complex64)
    with torch.no_grad():
        for s in range(0, m, batch):
            p = extract_patches(obj_t, torch.from_numpy(pos[s : s + batch]), n)
            gt[s : s + batch] = p.numpy()
            amp[s : s + batch] = forward_amplitude(p, probe_t).numpy()
    energy = float(np.mean(np.sum(amp.astype(np.float64) ** 2, axis=(1, 2))))
    scale = np.sqrt(cfg.photons / energy)
    counts = (amp.astype(np.float64) * scale) ** 2
    if cfg.noise:
        for s in range(0, m, batch):
            counts[s : s + batch] = sample_poisson(counts[s : s + batch], rng_noise)
    diffraction = np.sqrt(counts).astype(np.float32)
    meta = {
        "units": {"diffraction": "sqrt(photon counts)", "positions": "object pixels"},
        "photons_per_pattern": float(cfg.photons),
        "intensity_scale": float(scale),
        "step_px": float(step),
        "provenance": "ptychopinn.simulate",
        "simulation": json.loads(json.dumps(asdict(cfg))),
    }
    return PtychoData(
        diffraction=diffraction,
        positions=nominal,
        positions_true=pos if moved else None,
        probe=(probe_n * scale).astype(np.complex64),
        obj=obj,
        scan_index=np.zeros(m, np.int64),
        ground_truth_patches=gt,
        metadata=meta,
    )
