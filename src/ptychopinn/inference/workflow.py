"""Inference end to end: scan refinement, adaptation, the network, pty-chi refinement.

:func:`run_inference` is the one pipeline (no files written: an adaptation's run directory is
temporary unless asked for); ``ptychopinn infer`` (:func:`infer_to_dir`) and the Ptychodus
reconstructor plugin are writers on it. :func:`infer_to_dir`'s output folder ``out_dir``:

* ``reconstruction.npz`` + PNGs: the final object (the refined one with ``refine``);
* ``network/reconstruction.npz`` + PNGs: the network's own object (only with ``refine``);
* ``adapted/``: the adapted model's run directory (only with ``adapt``; ``infer --model
  OUT/adapted`` reuses it; with ``adapt.refine_probe`` it holds the refined ``probe.npz``,
  which ``refine`` then starts pty-chi from);
* ``positions.npz``: the refined scan positions and the nominal ones, ``probe.npz``: the
  refined probe (``probeGuess``, the scan probe's power) (only with ``scan`` refining them;
  the network, adaptation, refinement and ``export`` then use the refined ones);
* with ``refine``: ``loss_history.csv`` (pty-chi's loss per epoch); with ``adapt`` or
  ``refine``: ``summary.json``, the timings (``adapt_seconds``, ``inference_seconds``,
  ``refine_seconds``) measured separately.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.files import atomic_path
from ptychopinn.inference.adapt import AdaptConfig, AdaptResult, adapt, check_adaptable
from ptychopinn.inference.positions import ScanRefinement, check_refinable, refine_scan
from ptychopinn.inference.predict import (
    InferConfig,
    Reconstruction,
    reconstruct,
    save_reconstruction,
)
from ptychopinn.io.dataset import load_dataset
from ptychopinn.io.native import save_positions, save_probe
from ptychopinn.iterative.ptychi_backend import IterativeConfig
from ptychopinn.training.bundle import Bundle, bundle_for
from ptychopinn.viz import object_pngs

logger = logging.getLogger(__name__)

__all__ = ["ADAPTED_DIR", "NETWORK_DIR", "InferenceResult", "infer_to_dir", "run_inference"]

ADAPTED_DIR = "adapted"
NETWORK_DIR = "network"


@dataclass(frozen=True)
class InferenceResult:
    """What :func:`run_inference` produced.

    ``reconstruction``: the final object (pty-chi's with ``refine``, else the network's);
    ``network``: the network's own; ``data``: the scan as reconstructed (refined positions and
    probe with ``scan``; with ``adapt.refine_probe`` and ``refine``, the adapted probe);
    ``summary``: JSON-able timings (``scan_seconds``, ``adapt_seconds``, ``inference_seconds``,
    ``refine_seconds``, ...); ``loss_history``: pty-chi's loss per epoch (``refine`` only);
    ``adapted``: the adaptation (its run directory is gone unless ``adapt_dir`` was given).
    """

    reconstruction: Reconstruction
    network: Reconstruction
    data: PtychoData
    summary: dict = field(default_factory=dict)
    loss_history: np.ndarray | None = None
    adapted: AdaptResult | None = None


def run_inference(model: Bundle | str | Path, data: PtychoData | str | Path,
                  cfg: InferConfig | None = None, *, adapt_cfg: AdaptConfig | None = None,
                  adapt_dir: str | Path | None = None, refine: IterativeConfig | None = None,
                  scan: ScanRefinement | None = None, worker=None) -> InferenceResult:
    """Reconstruct ``data`` with ``model``: [scan refinement] → [adaptation] → the network →
    [pty-chi refinement]. Writes no files (an adaptation trains in a temporary run directory,
    or in ``adapt_dir``, kept, when given).

    With ``scan`` the scan positions and/or probe are refined first
    (:func:`~ptychopinn.inference.positions.refine_scan`, with the model as given) and
    everything after uses them. With ``adapt_cfg`` a copy of the model is fine-tuned on the
    scan (:func:`~ptychopinn.inference.adapt.adapt`) and reconstructs it. With ``refine``
    pty-chi continues from the network's object (:func:`~ptychopinn.inference.refine.
    refine_reconstruction`; ``worker``: a pty-chi worker kept open across calls). Everything
    that can be refused is checked before any work: a supervised model with ``adapt_cfg`` or
    ``scan``, a pattern size other than the model's, pty-chi missing with ``refine``.
    """
    from ptychopinn.inference.refine import refine_reconstruction, require_ptychi

    cfg = cfg or InferConfig()
    data_file = Path(data) if not isinstance(data, PtychoData) and Path(data).is_file() else None
    if not isinstance(data, PtychoData):
        data = load_dataset(data)
    bundle = bundle_for(model, data.patch_size)
    if refine is not None:
        require_ptychi()
    if adapt_cfg is not None:
        check_adaptable(bundle, data)
    if data.patch_size != bundle.model.n:
        n = bundle.model.n
        raise PtychoInputError(f"patterns are {data.patch_size}x{data.patch_size} but the model "
                               f"expects {n}x{n}", path=data.source)
    if scan is not None:
        check_refinable(bundle)
    summary: dict = {}
    scan_info: dict = {}
    if scan is not None:
        data, _, scan_info = refine_scan(bundle, data, scan, cfg)
        summary.update(scan_seconds=scan_info["scan_seconds"], scan_refinement=scan_info)
        if scan.probe:  # the refined probe is the scan's from now on
            cfg = replace(cfg, probe="scan")
    adapted = None
    if adapt_cfg is not None:
        adapted, adapted_probe = _adapt(bundle, data, adapt_cfg, adapt_dir, data_file,
                                        cfg.probe)
        bundle = adapted.bundle
        cfg = replace(cfg, probe="bundle")  # conditioned (and perhaps refined) on this scan
        if adapted_probe is not None and refine is not None:
            data = replace(data, probe=adapted_probe)  # pty-chi continues from it
    net = reconstruct(bundle, data, cfg)
    if adapted is not None:
        info = adapted.info()
        if adapt_dir is None:  # the run directory was temporary
            info.update(adapted_model=None, **({"adapted_probe": None}
                                               if "adapted_probe" in info else {}))
        net.info.update(info)
        summary.update({k: info[k] for k in ("adapt_seconds", "adapt_epochs",
                                             "adapt_loss_before", "adapt_loss_after",
                                             "adapted_probe") if k in info})
    if scan_info:
        net.info["scan_refinement"] = scan_info
    summary["inference_seconds"] = net.info["seconds"]
    final, losses = net, None
    if refine is not None:
        t0 = time.perf_counter()
        final, it = refine_reconstruction(net, data, refine, show_progress=cfg.show_progress,
                                          worker=worker)
        losses = np.asarray(it.loss_history)
        summary.update(refine_algorithm=it.algorithm, refine_epochs=int(losses.size),
                       refine_seconds=it.wall_time_s,
                       refine_total_seconds=time.perf_counter() - t0,
                       initial_amplitude_scale=final.info["initial_amplitude_scale"])
    logger.info("timings: %s", ", ".join(
        f"{name} {summary[key]:.2f} s" for name, key in (
            ("scan refinement", "scan_seconds"), ("adaptation", "adapt_seconds"),
            ("inference", "inference_seconds"),
            ("refinement", "refine_seconds")) if key in summary))
    return InferenceResult(final, net, data, summary, losses, adapted)


def _adapt(bundle: Bundle, data: PtychoData, cfg: AdaptConfig, adapt_dir: str | Path | None,
           data_file: Path | None, probe) -> tuple[AdaptResult, np.ndarray | None]:
    """The adaptation in ``adapt_dir`` (kept) or a temporary run directory (deleted), and its
    refined probe at photon scale (None without ``cfg.refine_probe``)."""
    from ptychopinn.data.simulate import load_probe

    def run(run_dir: Path) -> tuple[AdaptResult, np.ndarray | None]:
        res = adapt(bundle, data, run_dir, cfg, data_path=data_file, probe=probe)
        return res, (None if res.probe_path is None
                     else load_probe(res.probe_path, data.patch_size))

    if adapt_dir is not None:
        return run(Path(adapt_dir))
    with tempfile.TemporaryDirectory(prefix="ptychopinn_adapt_") as tmp:
        return run(Path(tmp) / ADAPTED_DIR)


def infer_to_dir(model: Bundle | str | Path, data: PtychoData | str | Path,
                 out_dir: str | Path, cfg: InferConfig | None = None, *,
                 adapt_cfg: AdaptConfig | None = None,
                 refine: IterativeConfig | None = None,
                 scan: ScanRefinement | None = None) -> Reconstruction:
    """:func:`run_inference` written into ``out_dir`` (see the module docstring); the
    adaptation's run directory is kept as ``out_dir/adapted``, which must not exist yet.
    Everything that can be refused is checked before anything is written, and the
    reconstructions are written only once every stage has finished. Returns the final
    reconstruction.
    """
    out_dir = Path(out_dir)
    if adapt_cfg is not None and (out_dir / ADAPTED_DIR).exists():
        raise PtychoInputError("already holds an adapted model; choose another --out or "
                               "remove it", path=out_dir / ADAPTED_DIR)
    res = run_inference(model, data, cfg, adapt_cfg=adapt_cfg,
                        adapt_dir=None if adapt_cfg is None else out_dir / ADAPTED_DIR,
                        refine=refine, scan=scan)
    if res.loss_history is not None:
        save_reconstruction(res.network, out_dir / NETWORK_DIR)
        object_pngs(res.network.object, res.network.coverage, out_dir / NETWORK_DIR)
        with atomic_path(out_dir / "loss_history.csv") as tmp:
            tmp.write_text("epoch,loss\n" + "".join(
                f"{i},{float(v)!r}\n" for i, v in enumerate(res.loss_history)))
    final = res.reconstruction
    path = save_reconstruction(final, out_dir)
    object_pngs(final.object, final.coverage, out_dir)
    if scan is not None and scan.positions:
        save_positions(out_dir / "positions.npz", res.data.positions, res.data.positions_start)
    if scan is not None and scan.probe:
        save_probe(out_dir / "probe.npz", res.data.probe)
    if adapt_cfg is not None or refine is not None or scan is not None:
        with atomic_path(out_dir / "summary.json") as tmp:
            tmp.write_text(json.dumps(res.summary, indent=2))
    logger.info("wrote %s", path)
    return final
