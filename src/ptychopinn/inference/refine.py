"""PINN-initialised iterative refinement: the stitched network object as pty-chi's start.

The network gives a good object in one pass; a few LSQML/ePIE/rPIE/DM epochs from it fit the
data further. :func:`initial_object` turns a :class:`Reconstruction` into pty-chi's initial
guess (free space where nothing was reconstructed, amplitude scaled to the data), and
:func:`refine_reconstruction` runs pty-chi from it (in its worker process).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import torch

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.predict import Reconstruction
from ptychopinn.inference.stitch import object_frame
from ptychopinn.iterative import ptychi_backend
from ptychopinn.iterative.ptychi_backend import IterativeConfig, IterativeResult
from ptychopinn.physics.patches import extract_patches

logger = logging.getLogger(__name__)

__all__ = ["initial_object", "refine_reconstruction", "require_ptychi"]


def require_ptychi(what: str = "refinement") -> None:
    """Refuse in one line when pty-chi cannot be imported (checked without importing it)."""
    if not ptychi_backend.is_available():
        raise PtychoInputError(f"{what} needs pty-chi, which is not installed: "
                               "pip install 'ptychopinn[ptychi]'")


def _check_frame(recon: Reconstruction, data: PtychoData) -> tuple[np.ndarray, tuple]:
    """Positions (M, 2) on the reconstruction's canvas; refuse another frame."""
    frame = object_frame(data)
    if tuple(recon.object.shape) != tuple(frame.shape) or not np.allclose(
            recon.origin, frame.origin):
        raise PtychoInputError(f"reconstruction canvas {recon.object.shape} at origin "
                               f"{tuple(recon.origin)} is not the dataset's object frame "
                               f"{frame.shape} at {frame.origin}", path=data.source)
    return data.positions - np.asarray(frame.origin), frame.origin


def initial_object(recon: Reconstruction, data: PtychoData, *, scale_amplitude: bool = True,
                   batch_size: int = 256) -> tuple[np.ndarray, float]:
    """pty-chi's start from a network reconstruction: (H, W) complex64 and the scale ``a``.

    Where ``recon.coverage`` is 0 the start is free space (amplitude 1, phase 0, the iterative
    default); elsewhere it is ``a · recon.object``. The network's amplitudes are in model units
    (its normalised probe and learned intensity scale), the dataset probe is on the photon
    scale (counts ≈ |F(probeGuess · O)|²), so ``a`` is chosen so that the predicted total
    counts over the scan equal the measured ones (Parseval; the covered and free parts have
    disjoint supports): a² = (Σ counts − Σ‖P·F_i‖²) / Σ‖P·O_i‖², O_i and F_i the covered and
    free-space parts of patch i. ``scale_amplitude=False`` (or a non-positive numerator) gives
    a = 1. Patterns are read ``batch_size`` at a time.
    """
    pos, _ = _check_frame(recon, data)
    covered = recon.coverage > 0
    obj = np.where(covered, recon.object, 0).astype(np.complex64)
    free = (~covered).astype(np.complex64)
    a = 1.0
    if scale_amplitude:
        n = data.patch_size
        probe = torch.from_numpy(np.asarray(data.probe, np.complex64))
        o_t, f_t = torch.from_numpy(obj), torch.from_numpy(free)
        counts = e_obj = e_free = 0.0
        with torch.no_grad():
            for s in range(0, data.n_patterns, batch_size):
                p = torch.from_numpy(pos[s : s + batch_size])
                amp = np.asarray(data.diffraction[s : s + batch_size], np.float64)
                counts += float(np.sum(amp**2))
                e_obj += float((probe * extract_patches(o_t, p, n)).abs().square().sum())
                e_free += float((probe * extract_patches(f_t, p, n)).abs().square().sum())
        num = counts - e_free
        if e_obj > 0 and num > 0:
            a = math.sqrt(num / e_obj)
        else:
            logger.warning("cannot scale the network object to the data (measured counts "
                           "%.4g, free-space part %.4g); using it unscaled", counts, e_free)
    start = np.where(covered, a * obj, 1.0 + 0j).astype(np.complex64)
    return start, a


def refine_reconstruction(recon: Reconstruction, data: PtychoData, cfg: IterativeConfig, *,
                          scale_amplitude: bool = True, show_progress: bool = True,
                          worker: ptychi_backend.PtychiWorker | None = None
                          ) -> tuple[Reconstruction, IterativeResult]:
    """Refine a network reconstruction with ``cfg.epochs`` of pty-chi ``cfg.algorithm``.

    The start is :func:`initial_object`; probe and positions are the dataset's (as in
    ``ptychopinn iterative``). Returns the refined reconstruction (same frame; coverage =
    pty-chi's probe-intensity coverage, as ``iterative`` writes it; ``info`` holds the
    refinement's timing beside the network's under ``network``) and pty-chi's result.
    ``worker``: a :class:`~ptychopinn.iterative.PtychiWorker` kept open across runs.
    """
    require_ptychi()
    start, a = initial_object(recon, data, scale_amplitude=scale_amplitude)
    pos, origin = _check_frame(recon, data)
    res = ptychi_backend.run_iterative(np.asarray(data.diffraction, np.float32), pos,
                                       data.probe, start.shape, cfg, initial_object=start,
                                       show_progress=show_progress, worker=worker)
    net = dict(recon.info)
    info = {
        "method": f"network+{res.algorithm}",
        "algorithm": res.algorithm,
        "epochs": int(res.loss_history.size),
        "refine_seconds": res.wall_time_s,
        "refine_total_seconds": res.total_time_s,
        "refine_device": res.device,
        "ptychi_version": res.ptychi_version,
        "initial_amplitude_scale": a,
        "inference_seconds": net.get("seconds"),
        "n_patterns": data.n_patterns,
        "network": net,
    }
    for key in ("adapt_seconds", "adapt_epochs", "adapted_model"):
        if key in net:
            info[key] = net[key]
    logger.info("refined with %s: %d epochs in %.1f s (start amplitude x %.4g)",
                res.algorithm, info["epochs"], res.wall_time_s, a)
    return replace(recon, object=res.object, coverage=res.coverage, origin=origin,
                   info=info), res
