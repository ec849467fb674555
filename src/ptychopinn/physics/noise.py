"""Photon statistics: Poisson sampling and negative log-likelihood."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def poisson_nll(pred_intensity: Tensor, measured: Tensor, *, mask: Tensor | None = None,
                eps: float = 1e-8) -> Tensor:
    """Mean Poisson negative log-likelihood of counts ``measured`` given rates ``pred_intensity``.

    .. math:: \\ell = \\lambda - k \\log(\\lambda + \\epsilon)

    (the data-only term ``log k!`` is dropped). Stable at zero counts and zero rates.

    Parameters
    ----------
    pred_intensity : Tensor (…, N, N), float, >= 0
        Predicted counts λ.
    measured : Tensor (…, N, N), float, >= 0
        Measured counts k.
    mask : Tensor (…, N, N) bool or float, optional
        1 for pixels that count.
    """
    loss = pred_intensity - measured * torch.log(pred_intensity + eps)
    if mask is not None:
        m = mask.to(loss.dtype)
        return (loss * m).sum() / m.sum().clamp_min(1)
    return loss.mean()


def amplitude_mae(pred_amplitude: Tensor, measured_amplitude: Tensor, *,
                  mask: Tensor | None = None) -> Tensor:
    """Mean absolute error between predicted and measured amplitudes (…, N, N)."""
    loss = (pred_amplitude - measured_amplitude).abs()
    if mask is not None:
        m = mask.to(loss.dtype)
        return (loss * m).sum() / m.sum().clamp_min(1)
    return loss.mean()


def sample_poisson(intensity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon counts with mean ``intensity`` (any shape, finite, >= 0).

    Returns float64 counts (integers exactly, also above 2**24 where float32 would round).
    The one sampler used by simulation and the study's per-dose noise.
    """
    lam = np.asarray(intensity, dtype=np.float64)
    if lam.size and not (np.isfinite(lam).all() and lam.min() >= 0):
        raise ValueError("Poisson intensity must be finite and >= 0")
    return rng.poisson(lam).astype(np.float64)
