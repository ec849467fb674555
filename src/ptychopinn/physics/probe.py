"""Probe normalisation and synthetic probes."""

from __future__ import annotations

import numpy as np


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
