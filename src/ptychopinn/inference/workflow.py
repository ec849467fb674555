"""``infer`` end to end: optional adaptation, network reconstruction, optional refinement.

What ``ptychopinn infer`` runs (the CLI only parses). Output folder ``out_dir``:

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
import time
from dataclasses import replace
from pathlib import Path

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.files import atomic_path
from ptychopinn.inference.adapt import AdaptConfig, adapt, check_adaptable
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

__all__ = ["ADAPTED_DIR", "NETWORK_DIR", "infer_to_dir"]

ADAPTED_DIR = "adapted"
NETWORK_DIR = "network"


def infer_to_dir(model: Bundle | str | Path, data: PtychoData | str | Path,
                 out_dir: str | Path, cfg: InferConfig | None = None, *,
                 adapt_cfg: AdaptConfig | None = None,
                 refine: IterativeConfig | None = None,
                 scan: ScanRefinement | None = None) -> Reconstruction:
    """Reconstruct ``data`` with ``model`` into ``out_dir`` (see the module docstring).

    With ``scan`` the scan positions and/or probe are refined first
    (:func:`~ptychopinn.inference.positions.refine_scan`, with the model as given) and
    everything after uses them. Everything that can be refused is checked before anything is
    written: a supervised model with ``adapt_cfg`` or ``scan``, a pattern size other than
    the model's, an existing
    ``out_dir/adapted``, pty-chi missing with ``refine``. Reconstructions are written only
    once every stage has finished. Returns the final reconstruction.
    """
    from ptychopinn.inference.refine import refine_reconstruction, require_ptychi

    cfg = cfg or InferConfig()
    out_dir = Path(out_dir)
    data_file = Path(data) if not isinstance(data, PtychoData) and Path(data).is_file() else None
    if not isinstance(data, PtychoData):
        data = load_dataset(data)
    bundle = bundle_for(model, data.patch_size)
    if refine is not None:
        require_ptychi()
    if adapt_cfg is not None:
        check_adaptable(bundle, data)
        if (out_dir / ADAPTED_DIR).exists():
            raise PtychoInputError("already holds an adapted model; choose another --out or "
                                   "remove it", path=out_dir / ADAPTED_DIR)
    if data.patch_size != bundle.model.n:
        n = bundle.model.n
        raise PtychoInputError(f"patterns are {data.patch_size}x{data.patch_size} but the model "
                               f"expects {n}x{n}", path=data.source)
    if scan is not None:
        check_refinable(bundle)
    scan_info: dict = {}
    if scan is not None:
        data, _, scan_info = refine_scan(bundle, data, scan, cfg)
        if scan.probe:  # the refined probe is the scan's from now on
            cfg = replace(cfg, probe="scan")
    adapt_info: dict = {}
    if adapt_cfg is not None:
        res = adapt(bundle, data, out_dir / ADAPTED_DIR, adapt_cfg, data_path=data_file,
                    probe=cfg.probe)
        bundle, adapt_info = res.bundle, res.info()
        cfg = replace(cfg, probe="bundle")  # conditioned (and perhaps refined) on this scan
        if res.probe_path is not None and refine is not None:
            # pty-chi continues from the probe refined during adaptation (photon scale)
            from ptychopinn.data.simulate import load_probe

            data = replace(data, probe=load_probe(res.probe_path, data.patch_size))
    net = reconstruct(bundle, data, cfg)
    net.info.update(adapt_info)
    summary = {k: net.info[k] for k in ("adapt_seconds", "adapt_epochs", "adapt_loss_before",
                                        "adapt_loss_after", "adapted_probe") if k in net.info}
    if scan_info:
        net.info["scan_refinement"] = scan_info
        summary["scan_seconds"] = scan_info["scan_seconds"]
        summary["scan_refinement"] = scan_info
    summary["inference_seconds"] = net.info["seconds"]
    final = net
    if refine is not None:
        t0 = time.perf_counter()
        final, it = refine_reconstruction(net, data, refine, show_progress=cfg.show_progress)
        summary.update(refine_algorithm=it.algorithm, refine_epochs=int(it.loss_history.size),
                       refine_seconds=it.wall_time_s,
                       refine_total_seconds=time.perf_counter() - t0,
                       initial_amplitude_scale=final.info["initial_amplitude_scale"])
        save_reconstruction(net, out_dir / NETWORK_DIR)
        object_pngs(net.object, net.coverage, out_dir / NETWORK_DIR)
        with atomic_path(out_dir / "loss_history.csv") as tmp:
            tmp.write_text("epoch,loss\n" + "".join(
                f"{i},{float(v)!r}\n" for i, v in enumerate(it.loss_history)))
    path = save_reconstruction(final, out_dir)
    object_pngs(final.object, final.coverage, out_dir)
    if scan is not None and scan.positions:
        save_positions(out_dir / "positions.npz", data.positions, data.positions_start)
    if scan is not None and scan.probe:
        save_probe(out_dir / "probe.npz", data.probe)
    if adapt_cfg is not None or refine is not None or scan is not None:
        with atomic_path(out_dir / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    logger.info("timings: %s", ", ".join(
        f"{name} {summary[key]:.2f} s" for name, key in (
            ("scan refinement", "scan_seconds"), ("adaptation", "adapt_seconds"),
            ("inference", "inference_seconds"),
            ("refinement", "refine_seconds")) if key in summary))
    logger.info("wrote %s", path)
    return final
