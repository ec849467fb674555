"""A synthetic training corpus, generated on the fly: many objects, probes, doses and scans.

A corpus is a seeded distribution of small simulated scans ("scenes"); nothing is written to
disk. Scene ``(epoch, k)`` of a corpus with seed ``s`` is always the same, so a training run
that resumes sees the same data. A scene draws

* an object from one of ``objects`` (lines, Gaussian random fields, dead leaves, textures and
  natural images from scikit-image's bundled data), amplitude and phase fields independent or
  shared, amplitude range within ``amplitude_min``…1, phase span log-uniform in
  ``phase_span`` (weak- to strong-phase objects);
* a probe from one of ``probes``: ``disk`` (soft disk, random radius, defocus, astigmatism and
  coma), ``gaussian`` (Gaussian beam with curvature), ``square`` (a defocused square
  aperture), or a real probe read from a file (``probe_files``: NPZ ``probeGuess`` / MAT
  ``probe``), resampled, rotated and defocused by Fresnel propagation — every probe
  normalised to total power (N/2)²;
* a dose log-uniform in ``dose`` (mean photons per pattern), Poisson noise;
* a scan (``scans``: random, raster with jitter, spiral) of ``patterns_per_scene`` positions
  at an overlap uniform in ``overlap`` (step = (1 − overlap) × probe diameter).

Shapes: N patch size, M patterns per scene.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from ptychopinn.errors import PtychoInputError
from ptychopinn.physics.forward import forward_amplitude
from ptychopinn.physics.noise import sample_poisson
from ptychopinn.physics.patches import extract_patches
from ptychopinn.physics.probe import normalize_probe

__all__ = ["OBJECT_FAMILIES", "PROBE_FAMILIES", "SCAN_KINDS", "NATURAL_IMAGES", "TEXTURES",
           "CorpusSpec", "Scene", "load_corpus", "make_object_field", "make_probe",
           "make_scene"]

OBJECT_FAMILIES = ("lines", "grf", "dead_leaves", "texture", "natural")
PROBE_FAMILIES = ("disk", "gaussian", "square", "file")
SCAN_KINDS = ("random", "raster", "spiral")
#: scikit-image's bundled grey-scale-able photographs (``camera`` is kept out of the shipped
#: corpus as a held-out object).
NATURAL_IMAGES = ("astronaut", "coffee", "coins", "moon", "page", "text", "chelsea", "rocket",
                  "hubble_deep_field", "camera")
TEXTURES = ("brick", "grass", "gravel")


@dataclass(frozen=True, kw_only=True)
class CorpusSpec:
    """The distribution a corpus draws scenes from (see the module docstring).

    ``natural_images`` names the scikit-image photographs the ``natural`` family uses;
    ``probe_files`` paths (relative to the YAML file) of real probes for the ``file`` family.
    ``scenes_per_epoch`` × ``groups_per_scene`` groups make one training epoch.
    """

    patch_size: int = 64
    objects: tuple[str, ...] = ("lines", "grf", "dead_leaves", "texture", "natural")
    natural_images: tuple[str, ...] = NATURAL_IMAGES[:-1]
    amplitude_min: tuple[float, float] = (0.2, 0.95)
    phase_span: tuple[float, float] = (0.1, 3.0)
    probes: tuple[str, ...] = ("disk", "gaussian", "file")
    probe_files: tuple[str, ...] = ()
    probe_diameter: tuple[float, float] = (0.2, 0.55)  # fraction of N
    dose: tuple[float, float] = (1e3, 1e9)
    scans: tuple[str, ...] = SCAN_KINDS
    overlap: tuple[float, float] = (0.2, 0.9)
    patterns_per_scene: int = 64
    groups_per_scene: int = 4
    scenes_per_epoch: int = 200
    seed: int = 0
    source: str = field(default="<spec>", compare=False)

    def __post_init__(self) -> None:
        n = self.patch_size
        if n < 16 or n & (n - 1):
            raise PtychoInputError(f"patch_size must be a power of two >= 16, got {n}")
        for name, allowed in (("objects", OBJECT_FAMILIES), ("probes", PROBE_FAMILIES),
                              ("scans", SCAN_KINDS), ("natural_images", NATURAL_IMAGES)):
            vals = getattr(self, name)
            bad = [v for v in vals if v not in allowed]
            if bad or (not vals and name != "natural_images"):
                raise PtychoInputError(f"{name} must be a non-empty list of {', '.join(allowed)}; "
                                 f"got {list(vals)}")
        if "natural" in self.objects and not self.natural_images:
            raise PtychoInputError("objects include 'natural' but natural_images is empty")
        if "file" in self.probes and not self.probe_files:
            raise PtychoInputError("probes include 'file' but probe_files is empty")
        for name, lo_min in (("amplitude_min", 0.0), ("phase_span", 0.0), ("dose", 0.0),
                             ("overlap", 0.0), ("probe_diameter", 0.0)):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo_min <= lo <= hi):
                raise PtychoInputError(f"{name} must be [low, high] with {lo_min} <= low <= high; "
                                 f"got {[lo, hi]}")
        if self.dose[0] <= 0:
            raise PtychoInputError(f"dose must be > 0 photons per pattern, got {list(self.dose)}")
        if self.overlap[1] >= 1 or self.amplitude_min[1] > 1 or self.probe_diameter[1] > 0.9:
            raise PtychoInputError("overlap must be < 1, amplitude_min <= 1, probe_diameter <= 0.9")
        if self.patterns_per_scene < 9 or self.groups_per_scene < 1 or self.scenes_per_epoch < 1:
            raise PtychoInputError("patterns_per_scene must be >= 9, groups_per_scene and "
                             "scenes_per_epoch >= 1")

    def describe(self) -> dict:
        """What a model trained on this corpus saw (for its manifest)."""
        return {"patch_size": self.patch_size, "objects": list(self.objects),
                "natural_images": list(self.natural_images), "probes": list(self.probes),
                "probe_files": [Path(p).name for p in self.probe_files],
                "dose_range": list(self.dose), "overlap_range": list(self.overlap),
                "scans": list(self.scans), "seed": self.seed}


def load_corpus(path: str | os.PathLike) -> CorpusSpec:
    """Read a corpus YAML (keys of :class:`CorpusSpec`; lists for ranges); unknown keys and bad
    values refused in one line naming the file. ``probe_files`` are resolved against the
    YAML's folder and must exist."""
    from ptychopinn.schema import build_section, read_yaml

    path = Path(path)
    raw = read_yaml(path, what="corpus file") or {}
    if isinstance(raw, dict) and "probe_files" in raw:
        files = []
        for p in raw["probe_files"] or []:
            q = Path(p) if Path(p).is_absolute() else path.parent / p
            if not q.is_file():
                raise PtychoInputError(f"probe file not found: {p}", path=path,
                                       key="probe_files")
            files.append(str(q.resolve()))
        raw = {**raw, "probe_files": files}
    return build_section(CorpusSpec, raw, section="corpus", source=path,
                         fixed={"source": str(path)})


@dataclass(frozen=True)
class Scene:
    """One simulated scan: ``amplitude`` (M, N, N) float32 sqrt(counts), ``positions`` (M, 2)
    float64 (row, col) pixels, ``probe`` (N, N) complex64 normalised to power (N/2)²,
    ``obj`` (S, S) complex64, ``mean_counts`` the measured mean total counts per pattern,
    ``params`` what was drawn."""

    amplitude: np.ndarray
    positions: np.ndarray
    probe: np.ndarray
    obj: np.ndarray
    mean_counts: float
    params: dict


# -------------------------------------------------------------------------------- objects
def _unit(f: np.ndarray) -> np.ndarray:
    f = f - f.min()
    m = f.max()
    return f / m if m > 0 else f


def _dead_leaves(size: int, rng: np.random.Generator) -> np.ndarray:
    """Occluding disks of power-law radii and random grey levels, (size, size) in [0, 1]."""
    img = np.full((size, size), rng.uniform())
    yy, xx = np.mgrid[0:size, 0:size]
    rmin, rmax = 2.0, size / 5
    for _ in range(int(3 * size)):
        r = rmin * (rmax / rmin) ** rng.uniform()  # log-uniform ~ 1/r density
        cy, cx = rng.uniform(-rmax, size + rmax, 2)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, size)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, size)
        if y0 >= y1 or x0 >= x1:
            continue
        m = (yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2 <= r * r
        img[y0:y1, x0:x1][m] = rng.uniform()
    return ndimage.gaussian_filter(img, 0.7)


def _skimage_gray(name: str) -> np.ndarray:
    from skimage import color, data

    img = np.asarray(getattr(data, name)(), dtype=np.float64)
    if img.ndim == 3:
        img = color.rgb2gray(img[..., :3] / (255.0 if img.max() > 1 else 1.0))
    return _unit(img)


def _crop_resized(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of ``img`` at a random scale, resized to (size, size)."""
    side = min(img.shape)
    crop = int(rng.uniform(0.35, 1.0) * side)
    y = rng.integers(0, img.shape[0] - crop + 1)
    x = rng.integers(0, img.shape[1] - crop + 1)
    out = ndimage.zoom(img[y : y + crop, x : x + crop], size / crop, order=1)
    out = out[:size, :size]
    if out.shape != (size, size):
        out = np.pad(out, ((0, size - out.shape[0]), (0, size - out.shape[1])), mode="reflect")
    if rng.uniform() < 0.5:
        out = out[::-1]
    return np.rot90(out, rng.integers(4)).copy()


def make_object_field(family: str, size: int, rng: np.random.Generator, *,
                      natural_images: tuple[str, ...] = NATURAL_IMAGES) -> np.ndarray:
    """A real (size, size) field in [0, 1] of ``family`` (:data:`OBJECT_FAMILIES`)."""
    from ptychopinn.data.simulate import grf_field, lines_field

    if family == "lines":
        return lines_field(size, rng)
    if family == "grf":
        return grf_field(size, rng, correlation=float(rng.uniform(1.5, 8.0)))
    if family == "dead_leaves":
        return _dead_leaves(size, rng)
    if family == "texture":
        return _unit(_crop_resized(_skimage_gray(str(rng.choice(TEXTURES))), size, rng))
    if family == "natural":
        return _unit(_crop_resized(_skimage_gray(str(rng.choice(natural_images))), size, rng))
    raise ValueError(f"unknown object family {family!r}; families: {', '.join(OBJECT_FAMILIES)}")


def _complex_object(spec: CorpusSpec, size: int, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                     dict]:
    fam = str(rng.choice(spec.objects))
    a = make_object_field(fam, size, rng, natural_images=spec.natural_images)
    p = a if rng.uniform() < 0.4 else make_object_field(fam, size, rng,
                                                        natural_images=spec.natural_images)
    lo = rng.uniform(*spec.amplitude_min)
    span = math.exp(rng.uniform(math.log(max(spec.phase_span[0], 1e-3)),
                                math.log(max(spec.phase_span[1], 1e-3))))
    amp = lo + (1 - lo) * a
    ph = span * (p - 0.5) * (1 if rng.uniform() < 0.5 else -1)
    obj = (amp * np.exp(1j * ph)).astype(np.complex64)
    return obj, {"object": fam, "amplitude_min": lo, "phase_span": span}


# --------------------------------------------------------------------------------- probes
def _fresnel(probe: np.ndarray, phase_at_edge: float) -> np.ndarray:
    """Propagate by a quadratic phase in the angular spectrum (``phase_at_edge`` radians at
    the Nyquist frequency): defocus without units."""
    n = probe.shape[-1]
    k = np.fft.fftfreq(n) * 2  # -1 … 1 at Nyquist
    h = np.exp(1j * phase_at_edge * (k[:, None] ** 2 + k[None, :] ** 2))
    return np.fft.ifft2(np.fft.fft2(probe) * h)


def _read_probe_file(path: str) -> np.ndarray:
    p = Path(path)
    if p.suffix.lower() == ".mat":
        from scipy.io import loadmat

        arr = np.asarray(loadmat(p)["probe"])
    else:
        from ptychopinn.files import read_npz

        arrays = read_npz(p)
        arr = np.asarray(arrays["probeGuess"] if "probeGuess" in arrays else arrays["probe"])
    while arr.ndim > 2:
        arr = arr[0]
    return arr.astype(np.complex128)


def _fit(probe: np.ndarray, n: int) -> np.ndarray:
    """Centre-crop or zero-pad (H, W) to (n, n)."""
    out = np.zeros((n, n), complex)
    h, w = probe.shape
    sy, sx = max((h - n) // 2, 0), max((w - n) // 2, 0)
    dy, dx = max((n - h) // 2, 0), max((n - w) // 2, 0)
    hh, ww = min(h, n), min(w, n)
    out[dy : dy + hh, dx : dx + ww] = probe[sy : sy + hh, sx : sx + ww]
    return out


def _centre(probe: np.ndarray) -> np.ndarray:
    """Shift the probe's intensity centroid to (N/2, N/2) (integer pixels)."""
    i = np.abs(probe) ** 2
    n = probe.shape[-1]
    k = np.arange(n)
    cy = float((i.sum(1) * k).sum() / i.sum())
    cx = float((i.sum(0) * k).sum() / i.sum())
    return np.roll(probe, (int(round(n / 2 - cy)), int(round(n / 2 - cx))), (0, 1))


def make_probe(family: str, n: int, rng: np.random.Generator, *,
               diameter: tuple[float, float] = (0.2, 0.55),
               files: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
    """A random probe of ``family`` (:data:`PROBE_FAMILIES`), (N, N) complex64 normalised to
    total power (N/2)², and what was drawn. ``diameter`` is the beam diameter range as a
    fraction of N."""
    k = np.arange(n) - n // 2
    yy, xx = np.meshgrid(k, k, indexing="ij")
    r = np.hypot(yy, xx)
    th = np.arctan2(yy, xx)
    d = rng.uniform(*diameter) * n
    info: dict = {"probe": family, "diameter_px": d}
    if family == "disk":
        rad = d / 2
        edge = rng.uniform(0.7, 3.0)
        amp = 0.5 * (1 - np.tanh((r - rad) / edge))
        rho = r / rad
        c = rng.uniform(-1.5, 1.5, 3)
        ph = rng.uniform(0, 6) * rho**2 + c[0] * rho**2 * np.cos(2 * th) + c[1] * rho**3 * np.cos(
            th + c[2])
        p = amp * np.exp(1j * ph)
    elif family == "gaussian":
        sigma = d / 4
        p = np.exp(-(r**2) / (2 * sigma**2) + 1j * rng.uniform(-3, 3) * (r / sigma) ** 2 / 4)
    elif family == "square":
        half = d / 2
        amp = (0.5 * (1 - np.tanh((np.abs(yy) - half) / 1.0))
               * 0.5 * (1 - np.tanh((np.abs(xx) - half) / 1.0)))
        p = _fresnel(amp, rng.uniform(-6, 6))
    elif family == "file":
        if not files:
            raise ValueError("probe family 'file' needs probe files")
        path = files[int(rng.integers(len(files)))]
        src = _read_probe_file(path)
        zoom = rng.uniform(0.6, 1.25)
        re = ndimage.zoom(src.real, zoom, order=1)
        im = ndimage.zoom(src.imag, zoom, order=1)
        angle = rng.uniform(0, 360)
        re = ndimage.rotate(re, angle, reshape=False, order=1)
        im = ndimage.rotate(im, angle, reshape=False, order=1)
        p = _fresnel(_centre(_fit(re + 1j * im, n)), rng.uniform(-4, 4))
        info.update(probe_file=Path(path).name, zoom=zoom, rotation_deg=angle)
    else:
        raise ValueError(f"unknown probe family {family!r}; families: "
                         f"{', '.join(PROBE_FAMILIES)}")
    return normalize_probe(_centre(np.asarray(p, complex)))[0], info


# --------------------------------------------------------------------------------- scenes
def make_scene(spec: CorpusSpec, rng: np.random.Generator) -> Scene:
    """Draw one scene (object, probe, dose, scan) and simulate its noisy diffraction."""
    from ptychopinn.data.simulate import SimulationConfig, make_scan, probe_diameter

    n = spec.patch_size
    m = spec.patterns_per_scene
    probe, pinfo = make_probe(str(rng.choice(spec.probes)), n, rng,
                              diameter=spec.probe_diameter, files=spec.probe_files)
    overlap = rng.uniform(*spec.overlap)
    step = max((1 - overlap) * probe_diameter(probe), 0.5)
    kind = str(rng.choice(spec.scans))
    jitter = rng.uniform(0, 0.3) * step if kind == "raster" else 0.0
    size = int(n + 8 + math.ceil(step * (math.sqrt(m) + 2.5) + 2 * jitter))
    obj, oinfo = _complex_object(spec, size, rng)
    scfg = SimulationConfig(scan=kind, n_positions=m, object_size=size, patch_size=n,
                            jitter=jitter, seed=0)
    pos = make_scan(scfg, rng, step=step, object_shape=obj.shape)
    with torch.no_grad():
        patches = extract_patches(torch.from_numpy(obj), torch.from_numpy(pos), n)
        amp = forward_amplitude(patches, torch.from_numpy(probe)).numpy().astype(np.float64)
    dose = math.exp(rng.uniform(math.log(spec.dose[0]), math.log(spec.dose[1])))
    energy = float(np.mean(np.sum(amp**2, axis=(1, 2))))
    counts = sample_poisson(amp**2 * (dose / energy), rng)
    mean_counts = float(np.mean(counts.sum(axis=(1, 2))))
    if not mean_counts > 0:  # an empty scene cannot be normalised; vanishingly rare
        counts[:, n // 2, n // 2] += 1
        mean_counts = float(np.mean(counts.sum(axis=(1, 2))))
    params = {**pinfo, **oinfo, "dose": dose, "overlap": overlap, "scan": kind,
              "step_px": step}
    return Scene(np.sqrt(counts).astype(np.float32), pos, probe, obj, mean_counts, params)
