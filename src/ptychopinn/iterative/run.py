"""Run pty-chi on a dataset file and write ``reconstruction.npz`` like ``infer`` does."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ptychopinn.data.container import PtychoData, object_frame
from ptychopinn.files import atomic_path
from ptychopinn.io.dataset import load_dataset
from ptychopinn.io.native import save_positions, save_probe
from ptychopinn.io.reconstruction import Reconstruction, save_reconstruction
from ptychopinn.iterative.ptychi_backend import (
    IterativeConfig,
    IterativeResult,
    PtychiWorker,
    run_iterative,
)
from ptychopinn.viz import object_pngs

logger = logging.getLogger(__name__)

__all__ = ["SNAPSHOTS_FILE", "IterativeConfig", "run_iterative_on_dataset", "save_snapshots"]

SNAPSHOTS_FILE = "snapshots.npz"


def save_snapshots(path: str | Path, res: IterativeResult, origin: tuple[float, float],
                   info: dict) -> Path:
    """Write the snapshots of ``res`` to ``path`` atomically.

    Keys: ``epochs`` (S,) int64 (1-based, the last = the final epoch), ``seconds`` (S,)
    float64 cumulative reconstruction time (snapshot copies excluded), ``objects`` (S, H, W)
    complex64 on the frame of ``reconstruction.npz`` (the last = its object), ``coverage``
    (H, W) float32 of the final reconstruction, ``origin`` (2,) float64 and ``metadata_json``.
    """
    if res.snapshot_objects is None:
        raise ValueError("the result holds no snapshots (snapshot_every was not set)")
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, epochs=res.snapshot_epochs.astype(np.int64),
                 seconds=res.snapshot_seconds.astype(np.float64),
                 objects=res.snapshot_objects.astype(np.complex64),
                 coverage=res.coverage.astype(np.float32),
                 origin=np.asarray(origin, np.float64),
                 metadata_json=np.asarray(json.dumps(info, default=str)))
    return path


def run_iterative_on_dataset(data: PtychoData | str | Path, out_dir: str | Path,
                             cfg: IterativeConfig, *, show_progress: bool = True,
                             worker: PtychiWorker | None = None) -> Reconstruction:
    """Reconstruct with pty-chi in the dataset's object frame; writes the same outputs as infer.

    The one way a dataset is run through pty-chi (``ptychopinn iterative`` and the study's
    iterative jobs). ``info`` (also ``summary.json``): algorithm, epochs, ``wall_time_s``
    (iterations), ``total_time_s`` (with the worker's start-up), device, pty-chi version,
    ``n_patterns``, ``final_loss`` and, with snapshots, their count and overhead.

    Also writes ``loss_history.csv``; when the positions were refined, ``positions.npz``
    (:func:`~ptychopinn.io.native.save_positions`: refined and nominal); when the probe was
    refined, ``probe.npz``
    (``probeGuess``), usable as ``--probe`` or to replace a dataset's probe. With
    ``cfg.snapshot_every`` = K it writes ``snapshots.npz`` (:func:`save_snapshots`). Every file
    is written only after pty-chi has finished, each atomically: an interrupted or failed run
    leaves nothing in ``out_dir``. ``worker``: a :class:`PtychiWorker` kept open across runs.
    """
    if not isinstance(data, PtychoData):
        data = load_dataset(data)
    frame = object_frame(data)
    pos = data.positions - np.asarray(frame.origin)
    res = run_iterative(np.asarray(data.diffraction, np.float32), pos, data.probe,
                        frame.shape, cfg, show_progress=show_progress, worker=worker)
    info = {"algorithm": res.algorithm, "epochs": len(res.loss_history),
            "wall_time_s": res.wall_time_s, "total_time_s": res.total_time_s,
            "device": res.device, "ptychi_version": res.ptychi_version,
            "n_patterns": data.n_patterns,
            "final_loss": float(res.loss_history[-1]) if len(res.loss_history) else None}
    if res.snapshot_objects is not None:
        info.update(snapshot_every=cfg.snapshot_every,
                    n_snapshots=int(res.snapshot_objects.shape[0]),
                    snapshot_overhead_s=res.snapshot_overhead_s)
    recon = Reconstruction(res.object, res.coverage, frame.origin, info)
    out_dir = Path(out_dir)
    if res.snapshot_objects is not None:
        save_snapshots(out_dir / SNAPSHOTS_FILE, res, frame.origin, info)
    save_reconstruction(recon, out_dir)
    object_pngs(recon.object, recon.coverage, out_dir)
    with atomic_path(out_dir / "loss_history.csv") as tmp:
        tmp.write_text("epoch,loss\n" + "".join(
            f"{i},{float(v)!r}\n" for i, v in enumerate(res.loss_history)))
    if cfg.refine_probe:
        save_probe(out_dir / "probe.npz", res.probe,
                   positions_rc=res.positions_rc + np.asarray(frame.origin))
    if cfg.refine_positions:
        save_positions(out_dir / "positions.npz", res.positions_rc + np.asarray(frame.origin),
                       data.positions)
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    logger.info("%s: %d epochs in %.1f s", res.algorithm, len(res.loss_history),
                res.wall_time_s)
    return recon
