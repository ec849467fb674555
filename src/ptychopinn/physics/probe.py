"""Probe normalisation, probe comparison and the learnable (refined) probe."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


def probe_norm_factor(probe: np.ndarray) -> float:
    """Factor ``f`` such that ``f * probe`` has total power ``(N/2)**2``.

    With that normalisation an object of unit amplitude gives a far field of total energy
    ``(N/2)**2`` (Parseval), the same as the network's normalised input, so object amplitudes
    are O(1). Keep ``f`` to recover absolute values.
    """
    n = probe.shape[-1]
    power = float(np.sum(np.abs(probe) ** 2))
    if not np.isfinite(power) or power <= 0:
        raise ValueError("probe has zero or non-finite power")
    return float(np.sqrt((n / 2) ** 2 / power))


def normalize_probe(probe: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ``(probe * f, f)`` with ``f`` from :func:`probe_norm_factor`; complex64 out."""
    f = probe_norm_factor(probe)
    return (probe * f).astype(np.complex64), f


def probe_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Normalised distance of a probe estimate to the truth, global complex factor removed.

    ``min_c ‖c·estimate − truth‖ / ‖truth‖`` over complex ``c`` (so a global phase and scale,
    which ptychography cannot determine, do not count): 0 for a perfect estimate, 1 for one
    orthogonal to the truth. Both (N, N) complex.
    """
    e = np.asarray(estimate, np.complex128).ravel()
    t = np.asarray(truth, np.complex128).ravel()
    if e.shape != t.shape:
        raise ValueError(f"probe shapes differ: {np.shape(estimate)} vs {np.shape(truth)}")
    tt = float(np.vdot(t, t).real)
    ee = float(np.vdot(e, e).real)
    if not tt > 0:
        raise ValueError("reference probe has zero power")
    if not ee > 0:
        return 1.0
    c = np.vdot(e, t) / ee
    return float(np.linalg.norm(c * e - t) / np.sqrt(tt))


def circular_support(n: int, radius: float) -> np.ndarray:
    """(N, N) float32 mask: 1 within ``radius`` pixels of the probe centre (N/2, N/2), else 0."""
    if not radius > 0:
        raise ValueError(f"probe support radius must be > 0 pixels, got {radius}")
    k = np.arange(n) - n // 2
    return (np.hypot(k[:, None], k[None, :]) <= radius).astype(np.float32)


def auto_support_radius(probe: np.ndarray, *, fraction: float = 0.999,
                        margin: float = 1.25) -> float:
    """Default probe support radius (pixels): ``margin`` × the radius about the centre that
    holds ``fraction`` of the probe's power. Unconstrained probe pixels far outside the beam
    get only noise gradients, which a per-pixel optimiser (Adam) would amplify."""
    p = np.asarray(probe)
    n = p.shape[-1]
    k = np.arange(n) - n // 2
    r = np.hypot(k[:, None], k[None, :]).ravel()
    w = (np.abs(p) ** 2).ravel()
    order = np.argsort(r, kind="stable")
    cum = np.cumsum(w[order])
    if not cum[-1] > 0:
        raise ValueError("probe has zero power")
    r_frac = float(r[order][np.searchsorted(cum, fraction * cum[-1])])
    return float(min(margin * max(r_frac, 1.0), n / np.sqrt(2)))


class ProbeParameter(nn.Module):
    """A learnable probe with a physical constraint.

    The probe is held as its real and imaginary parts (an (N, N, 2) float parameter
    ``re_im``, so any optimiser applies). Calling the module returns the constrained probe
    (N, N) complex64: zero outside a circular support (``support_radius`` pixels about the
    centre; default :func:`auto_support_radius` of the initial probe) and rescaled to the
    total power of the initial probe — the normalised ``(N/2)²`` of every model, so the
    measured mean intensity stays in the model's intensity scale and the probe/object scale
    ambiguity cannot drift.

    Parameters
    ----------
    probe : Tensor (N, N) complex
        Initial (normalised) probe.
    support_radius : float, optional
        Radius of the support in pixels (default: :func:`auto_support_radius`; a radius of
        at least N/√2 leaves every pixel free).
    """

    def __init__(self, probe: Tensor, *, support_radius: float | None = None):
        super().__init__()
        p = torch.as_tensor(probe).detach().to(torch.complex64).cpu()
        n = p.shape[-1]
        if support_radius is None:
            support_radius = auto_support_radius(p.numpy())
        self.support_radius = float(support_radius)
        mask = torch.from_numpy(circular_support(n, support_radius))
        if not float((p.abs() ** 2 * mask).sum()) > 0:
            raise ValueError("the initial probe has no power inside the probe support")
        self.re_im = nn.Parameter(torch.view_as_real(p * mask).clone())
        self.register_buffer("mask", mask)
        self.register_buffer("power", (p.abs() ** 2).sum().to(torch.float32))

    def forward(self) -> Tensor:
        """The constrained probe (N, N) complex64."""
        p = torch.view_as_complex(self.re_im.contiguous()) * self.mask
        energy = (p.abs() ** 2).sum().clamp_min(1e-20)
        return p * torch.sqrt(self.power / energy)
