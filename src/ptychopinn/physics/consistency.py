"""Data-consistency steps: the least-squares PIE update of an object from measured moduli.

One implementation serves the unrolled network's steps on each group's canvas and the scan
steps on a whole stitched object (:func:`scan_consistency_steps`). Shapes: K patterns, N
pixels, (H, W) the object. Moduli are in model units (sqrt(counts) / s) and in the
*unshifted* FFT layout (``ifftshift`` of the measured, DC-centred patterns): the modulus
replacement commutes with the far field's centring shift, so the shift is paid once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from ptychopinn.physics.patches import PatchGeometry

__all__ = ["exit_wave_correction", "scan_consistency_steps"]


def exit_wave_correction(psi: Tensor, target: Tensor, *, photon: Tensor | None = None
                         ) -> Tensor:
    """Correction dψ (…, N, N) complex of exit waves ``psi`` towards measured moduli ``target``
    (…, N, N) float, unshifted layout.

    ``photon`` None: modulus replacement, dψ = F⁻¹(target · sgn Fψ) − ψ (the amplitude-loss
    step). ``photon`` (broadcastable to ``target``; one photon in model units): the Poisson
    step −½ ∂NLL/∂(Fψ)* = ½ (y / (|Fψ|² + photon) − 1) Fψ with y = target², damped by one
    photon where the prediction is dark.
    """
    f = torch.fft.fft2(psi, norm="ortho")
    if photon is None:
        return torch.fft.ifft2(target * torch.sgn(f), norm="ortho") - psi
    gain = 0.5 * (target**2 / (f.real**2 + f.imag**2 + photon) - 1.0)
    return torch.fft.ifft2(gain * f, norm="ortho")


def scan_consistency_steps(obj: Tensor, positions: Tensor, target: Callable[[int, int], Tensor],
                           probe: Tensor, steps: int, *, momentum: float = 0.7,
                           chunk: int | None = None, keep_bytes: int = 256 * 2**20) -> Tensor:
    """``steps`` parallel least-squares PIE steps on a whole object, with every pattern.

    Each step cuts all K patches out of ``obj`` (H, W) complex at ``positions`` (K, 2) (patch
    centres in object pixels, float64), replaces the moduli of the exit waves with the
    measured ``target(i, j)`` ((j − i, N, N) float, model units, unshifted layout) and adds
    Σ P* dψ / (Σ |P|² + δ) to the object (δ = 1 % of the peak coverage): the same update as
    one unrolled step on a group canvas (modulus replacement), with every overlap of the scan
    at once. ``momentum`` β (heavy ball: v ← β v + update, O ← O + v) speeds up the slow,
    smooth modes of the parallel update. Moduli are read chunk by chunk: kept after the first
    step, with the chunks' patch indices, while the indices take at most ``keep_bytes``
    (indices and moduli together about 1.6 × ``keep_bytes``), else read again every step, so
    memory is bounded by ``chunk`` and the object.
    ``probe`` (N, N) complex, normalised. ``chunk`` patterns per pass; None: as many as keep
    one (K, N+1, N+1) complex temporary under 8 MiB (248 at N = 64, 63 at N = 128): larger
    temporaries are mapped and faulted in afresh by the allocator at every operation, 3× slower
    per step at N = 128 with 256 per pass. Cost: 2 FFTs per pattern per step. Returns a new
    object (H, W).
    """
    k, n = positions.shape[0], probe.shape[-1]
    chunk = chunk or max(1, (8 << 20) // (8 * (n + 1) ** 2))
    shape = tuple(obj.shape)
    spans = [(i, min(i + chunk, k)) for i in range(0, k, chunk)]

    # a chunk's geometry holds (K, N+1, N+1) int64 indices: geometries and moduli are kept
    # for all chunks while the indices take at most ``keep_bytes``, else rebuilt / read per
    # chunk and step (memory bounded by the chunk)
    cache = functools.lru_cache(maxsize=None if k * (n + 1) ** 2 * 8 <= keep_bytes else 0)
    geometry = cache(lambda i, j: PatchGeometry(positions[i:j], n, shape))
    moduli = cache(target)

    pint = probe.abs() ** 2
    cov = obj.new_zeros(shape, dtype=pint.dtype)
    for i, j in spans:
        geometry(i, j).place(pint.expand(j - i, n, n), out=cov)
    denom = cov + 1e-2 * cov.max()
    obj = obj.clone()
    velocity = torch.zeros_like(obj)
    for _ in range(steps):
        num = torch.zeros_like(obj)
        for i, j in spans:
            geo = geometry(i, j)
            dpsi = exit_wave_correction(geo.extract(obj) * probe, moduli(i, j))
            geo.place(dpsi * probe.conj(), out=num)
        velocity = momentum * velocity + num / denom
        obj = obj + velocity
    return obj
