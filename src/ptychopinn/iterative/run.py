"""Run pty-chi on a dataset file and write ``reconstruction.npz`` like ``infer`` does."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.data.io import atomic_path, load_dataset
from ptychopinn.inference.predict import Reconstruction, save_reconstruction
from ptychopinn.inference.stitch import object_frame
from ptychopinn.iterative.ptychi_backend import IterativeConfig, run_iterative

logger = logging.getLogger(__name__)

__all__ = ["IterativeConfig", "run_iterative_on_dataset"]


def run_iterative_on_dataset(data: PtychoData | str | Path, out_dir: str | Path,
                             cfg: IterativeConfig) -> Reconstruction:
    """Reconstruct with pty-chi in the dataset's object frame; writes the same outputs as infer.

    Also writes ``loss_history.csv`` and, when the probe was refined, ``probe.npz``
    (``probeGuess``), usable as ``--probe`` or to replace a dataset's probe.
    """
    if not isinstance(data, PtychoData):
        data = load_dataset(data)
    frame = object_frame(data)
    pos = data.positions - np.asarray(frame.origin)
    res = run_iterative(np.asarray(data.diffraction, np.float32), pos, data.probe,
                        frame.shape, cfg, show_progress=True)
    info = {"algorithm": res.algorithm, "epochs": len(res.loss_history),
            "wall_time_s": res.wall_time_s, "device": res.device,
            "ptychi_version": res.ptychi_version, "n_patterns": data.n_patterns}
    recon = Reconstruction(res.object, res.coverage, frame.origin, info)
    out_dir = Path(out_dir)
    save_reconstruction(recon, out_dir)
    with atomic_path(out_dir / "loss_history.csv") as tmp:
        tmp.write_text("epoch,loss\n" + "".join(
            f"{i},{float(v)!r}\n" for i, v in enumerate(res.loss_history)))
    if cfg.refine_probe:
        with atomic_path(out_dir / "probe.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, probeGuess=res.probe.astype(np.complex64),
                     positions_rc=res.positions_rc + np.asarray(frame.origin))
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    logger.info("%s: %d epochs in %.1f s", res.algorithm, len(res.loss_history),
                res.wall_time_s)
    return recon
