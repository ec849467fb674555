"""``reconstruct``: stream patterns through a trained model and stitch the object."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ptychopinn.data.container import PtychoData
from ptychopinn.data.grouping import (
    covering_groups,
    nearest_groups,
    partition_groups,
    relative_offsets,
)
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.stitch import Stitcher, object_frame
from ptychopinn.io.dataset import load_dataset
from ptychopinn.io.reconstruction import Reconstruction, load_reconstruction, save_reconstruction
from ptychopinn.models.registry import CANVAS_KINDS, kind_spec
from ptychopinn.training.bundle import Bundle, bundle_for

logger = logging.getLogger(__name__)

# Reconstruction and its reader/writer live in ptychopinn.io.reconstruction (re-exported here)
__all__ = ["InferConfig", "Reconstruction", "load_reconstruction", "reconstruct",
           "save_reconstruction", "stitch_weight"]


#: How inference groups the scan (:class:`InferConfig` ``groups``).
GROUPINGS = ("cover", "every", "partition")
#: Most pattern pixels per group (C·N²) when the group side comes from the bundle's
#: ``inference_gridsize``: a larger member stack (over 8 MiB complex64) is mapped and
#: faulted in afresh by the allocator at every operation (real star, 128 px: the network
#: 5.7 s with groups of 256, 2.7–3.1 s with 121 or 64, same SSIM; BENCHMARKS "Object steps").
GROUP_PIXELS = 2**20


@dataclass(frozen=True, kw_only=True)
class InferConfig:
    """Streaming inference options. ``batch_size`` groups per forward pass (None: 64 for the
    CNNs; for canvas networks about 200 members per pass (8 groups of 25), whose per-member
    temporaries then stay in cache — 1.45× faster on the 2-core CPU than 64 groups).

    ``groups`` (None: ``"partition"`` for networks whose weights do not depend on C, else
    ``"cover"``): ``"cover"`` predicts a small set of neighbour groups that holds
    every pattern and stitches all C members of each (≈ C× fewer forward passes for
    gridsize > 1); ``"every"`` makes every pattern the seed of its own group and stitches only
    the seed's patch; ``"partition"`` splits the scan into disjoint compact groups of C (each
    pattern predicted once: ≈2× fewer member predictions than ``"cover"`` at gridsize ≥ 3).

    ``gridsize`` (None = the bundle's ``grouping.inference_gridsize``, at most
    √:data:`GROUP_PIXELS` / N, else its gridsize)
    groups more members per forward pass; only networks whose weights act on the group canvas
    (``unrolled``) accept another value than the trained one.

    ``probe`` (:func:`~ptychopinn.inference.condition.condition_on_scan`): ``"scan"`` (the
    scan's own probe), ``"bundle"`` (the training probe) or a path to an NPZ with
    ``probeGuess``; None: the scan's, unless the bundle's probe was refined on a scan. The
    count scale always comes from the scan's mean counts.

    ``align_phase``: each group, reconstructed on its own and so only defined up to a global
    phase, is rotated to the phase that best matches the groups already stitched where it
    overlaps them (:meth:`~ptychopinn.inference.stitch.Stitcher.add_groups`); False stitches
    groups as predicted. None (default): on for the canvas networks (``unrolled``: +0.05 to
    +0.63 phase SSIM measured), off for the CNNs, whose phase is absolute through their
    decoders and whose weak groups then chain their errors (demo scan, 1.5-min models: pinn
    0.354 -> 0.323, baseline 0.335 -> 0.324 with it on).

    ``extra_steps``: plain data-consistency steps a canvas network runs after its learned ones
    (more FFTs, a little more quality: BENCHMARKS "Quality per FFT"); None: the model's own
    ``inference_steps`` (:class:`~ptychopinn.models.options.UnrolledOptions`; 0 unless the
    bundle says otherwise); a CNN refuses any but 0.

    ``object_steps``: data-consistency steps on the whole stitched object, with every pattern of
    the scan at once (the groups' seams, phase offsets and weakly covered pixels fixed by the
    overlaps between groups; 2 FFTs per pattern each; heavy-ball momentum ``object_momentum``);
    None: the model's own ``object_steps`` (0 unless the bundle says otherwise, 20 for the
    shipped general model). Any physics-trained model may run them; a supervised one, whose
    output has no physics scale, refuses.
    """

    batch_size: int | None = None
    device: str = "auto"
    show_progress: bool = True
    weight_floor: float = 1e-3
    groups: str | None = None
    gridsize: int | None = None
    probe: str | Path | None = None
    align_phase: bool | None = None
    extra_steps: int | None = None
    object_steps: int | None = None
    object_momentum: float = 0.7

    def __post_init__(self) -> None:
        if self.object_steps is not None and self.object_steps < 0:
            raise PtychoInputError(f"object_steps must be >= 0, got {self.object_steps}")
        if not 0.0 <= self.object_momentum < 1.0:
            raise PtychoInputError("object_momentum must be in [0, 1), got "
                                   f"{self.object_momentum}")
        if self.extra_steps is not None and self.extra_steps < 0:
            raise PtychoInputError(f"extra_steps must be >= 0, got {self.extra_steps}")
        if self.batch_size is not None and self.batch_size < 1:
            raise PtychoInputError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.groups is not None and self.groups not in GROUPINGS:
            raise PtychoInputError(f"groups must be one of {', '.join(GROUPINGS)}; "
                                   f"got {self.groups!r}")
        if self.gridsize is not None and self.gridsize < 1:
            raise PtychoInputError(f"gridsize must be >= 1, got {self.gridsize}")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def stitch_weight(bundle: Bundle) -> torch.Tensor:
    """Per-patch stitching weight: normalised probe intensity |P|²/max|P|² (N, N) float32."""
    i = bundle.model.physics.probe.detach().abs().float().cpu() ** 2
    return i / i.max()


def reconstruct(bundle: Bundle | str | Path, data: PtychoData | str | Path,
                cfg: InferConfig | None = None) -> Reconstruction:
    """Reconstruct a whole scan: one forward pass per group of nearest neighbours.

    ``bundle`` is a :class:`~ptychopinn.training.bundle.Bundle`, a run directory or zip, or
    ``"general"`` (the general model shipped with the package, for the scan's patch size).
    ``data`` is a :class:`~ptychopinn.data.container.PtychoData`, or a path handed to
    :func:`~ptychopinn.io.dataset.load_dataset` (an NPZ/HDF5 file, read lazily where the format
    allows, or a Ptychodus batch input directory).

    Groups are a seed and its C−1 nearest neighbours (``cfg.groups`` says which seeds); the
    merged patches are stitched with the probe-intensity weight. Patterns are read batch by
    batch, so peak memory is bounded by the batch and the canvas, not by the number of
    patterns.

    The network as it is: adaptation to the scan, scan refinement and pty-chi refinement are
    :func:`~ptychopinn.inference.workflow.run_inference`'s stages around this one.
    """
    cfg = cfg or InferConfig()
    if not isinstance(data, PtychoData):
        data = load_dataset(data)
    bundle = bundle_for(bundle, data.patch_size)
    n = bundle.model.n
    if data.patch_size != n:
        raise PtychoInputError(f"patterns are {data.patch_size}x{data.patch_size} but the model "
                               f"expects {n}x{n}", path=data.source)
    from ptychopinn.inference.condition import condition_on_scan

    # the scan's probe and count scale
    bundle, cond_info = condition_on_scan(bundle, data, cfg.probe)
    model = bundle.model
    dev = _device(cfg.device)
    model.to(dev).eval()
    frame = object_frame(data)
    stitcher = Stitcher(frame, stitch_weight(bundle), device=dev)
    m = data.n_patterns
    gcfg = bundle.manifest.get("grouping_config") or {}
    spec = kind_spec(model.cfg.kind)
    canvas_net = spec.canvas
    align = canvas_net if cfg.align_phase is None else cfg.align_phase
    extra = (cfg.extra_steps if cfg.extra_steps is not None
             else getattr(model.cfg.options, "inference_steps", 0))
    if extra and not canvas_net:
        raise PtychoInputError(f"model.kind {model.cfg.kind!r} has no data-consistency steps; "
                               "extra_steps needs a canvas network "
                               f"({', '.join(sorted(CANVAS_KINDS))})", path=data.source)
    n_obj = (cfg.object_steps if cfg.object_steps is not None
             else getattr(model.cfg.options, "object_steps", 0))
    if n_obj and spec.supervised:
        raise PtychoInputError(f"model.kind {model.cfg.kind!r} is supervised: its object has "
                               "no physics scale for object_steps", path=data.source)
    asked = cfg.gridsize
    if asked is None and canvas_net and gcfg.get("inference_gridsize"):
        # the bundle's group side, capped so one group's member stack stays within
        # GROUP_PIXELS (a 64-px bundle's 16 becomes 8 for 128-px patterns)
        asked = min(int(gcfg["inference_gridsize"]), max(1, math.isqrt(GROUP_PIXELS) // n))
    g = _inference_gridsize(model.cfg.kind, model.gridsize, asked, m, canvas_net, data.source)
    t_net = t_stitch = t_read = 0.0
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    # disjoint groups for C-independent networks: each pattern once, and no worse (BENCHMARKS)
    mode = cfg.groups or ("partition" if canvas_net else "cover")
    # all groups at once, (G, C) int64 (a KD-tree per batch made time O(M²))
    every = mode == "every"
    pool = (int(gcfg.get("neighbor_count", 6)) if gcfg.get("inference_members") == "pool"
            else None)
    all_groups = (nearest_groups(data.positions, g, pool=pool) if every
                  else partition_groups(data.positions, g) if mode == "partition"
                  else covering_groups(data.positions, g, pool=pool))
    t_group = time.perf_counter() - t0
    n_groups = all_groups.shape[0]
    bar = tqdm(total=n_groups, desc="infer", unit="group", disable=not cfg.show_progress,
               leave=False)
    with torch.inference_mode():
        # canvas networks: about 200 members per pass (8 groups of 25), whatever the group size
        bs = cfg.batch_size or (max(1, 200 // all_groups.shape[1]) if canvas_net else 64)
        for s in range(0, n_groups, bs):
            t = time.perf_counter()
            groups = all_groups[s : s + bs]  # (B, C)
            offsets = relative_offsets(data.positions, groups).astype(np.float32)
            uniq, inv = np.unique(groups, return_inverse=True)
            amp = np.asarray(data.diffraction[uniq], np.float32)[inv.reshape(groups.shape)]
            t_read += time.perf_counter() - t
            t = time.perf_counter()
            _, merged = model.predict_patches(torch.from_numpy(amp).to(dev),
                                              torch.from_numpy(offsets).to(dev),
                                              extra_steps=extra)
            if every:
                seeds = np.arange(s, s + len(groups))
                seed_col = np.argmax(groups == seeds[:, None], axis=1)
                patches = merged[torch.arange(len(groups)), torch.from_numpy(seed_col)]
                placed = seeds
            else:
                patches = merged.reshape(-1, n, n)
                placed = groups.reshape(-1)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t_net += time.perf_counter() - t
            t = time.perf_counter()
            pos_t = torch.from_numpy(data.positions[placed]).to(dev)
            if not align:
                stitcher.add(patches, pos_t)
            elif every:  # one seed patch per group
                stitcher.add_groups(patches[:, None], pos_t[:, None])
            else:
                stitcher.add_groups(merged, pos_t.reshape(*groups.shape, 2))
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t_stitch += time.perf_counter() - t
            bar.update(len(groups))
    bar.close()
    t = time.perf_counter()
    obj, cov = stitcher.result(floor=cfg.weight_floor)
    t_stitch += time.perf_counter() - t
    t = time.perf_counter()
    if n_obj:
        obj = _object_steps(model, data, frame, obj, cov, n_obj, cfg.object_momentum, dev)
    t_obj = time.perf_counter() - t
    total = time.perf_counter() - t0
    info = {
        "n_patterns": m,
        "n_groups": n_groups,
        "groups": mode,
        "seconds": total,
        "patterns_per_second": m / total if total > 0 else 0.0,
        "network_seconds": t_net,
        "stitch_seconds": t_stitch,
        "read_seconds": t_read,
        "grouping_seconds": t_group,
        "stitch_fraction": t_stitch / total if total > 0 else 0.0,
        "device": str(dev),
        "gridsize": g,
        "model_kind": model.cfg.kind,
        "extra_steps": extra,
        "object_steps": n_obj,
        "object_momentum": cfg.object_momentum,
        "object_steps_seconds": t_obj,
        # the work, counted as LSQML's is: 2-D FFTs per pattern (every member predicted)
        "ffts_per_pattern": spec.ffts_per_member(model.cfg, extra) * all_groups.size / m
        + 2 * n_obj,
        **cond_info,
    }
    logger.info("reconstructed %d patterns in %.2f s (%.0f patterns/s, stitching %.0f%%, "
                "%.1f FFTs per pattern)", m, total, info["patterns_per_second"],
                100 * info["stitch_fraction"], info["ffts_per_pattern"])
    return Reconstruction(obj, cov, frame.origin, info)


def _object_steps(model, data: PtychoData, frame, obj: np.ndarray, cov: np.ndarray,
                  steps: int, momentum: float, dev: torch.device) -> np.ndarray:
    """The stitched object (H, W) after ``steps`` scan-wide data-consistency steps with the
    (conditioned) model's probe and count scale; patterns streamed from ``data`` in chunks;
    0 where the stitched coverage is. The steps run on the object padded by N/2 + 1 pixels
    of the stitched object's edge values, so a patch that crosses the frame's edge is
    predicted from pixels that can change, not from fixed zeros."""
    from ptychopinn.physics.consistency import scan_consistency_steps

    s = float(model.physics.scale.detach())
    pad = model.n // 2 + 1

    def target(i: int, j: int) -> torch.Tensor:
        a = torch.from_numpy(np.asarray(data.diffraction[i:j], np.float32)).to(dev)
        return torch.fft.ifftshift(a / s, dim=(-2, -1))

    pos = torch.from_numpy(np.asarray(data.positions, np.float64)).to(dev) - torch.tensor(
        frame.origin, dtype=torch.float64, device=dev) + pad
    start = torch.from_numpy(np.pad(obj, pad, mode="edge")).to(dev)
    with torch.inference_mode():
        out = scan_consistency_steps(start, pos, target, model.physics.probe.detach().to(dev),
                                     steps, momentum=momentum)
    out = out[pad:-pad, pad:-pad].cpu().numpy()
    return np.where(cov > 0, out, 0).astype(np.complex64)


def _inference_gridsize(kind: str, trained: int, asked: int | None, m: int, canvas_net: bool,
                        source) -> int:
    """Group side at inference: ``asked`` (else ``trained``); only canvas networks may change it,
    and they shrink groups to a scan of fewer than g² patterns; a CNN refuses both in one line."""
    g = trained
    if asked is not None and asked != trained:
        if not canvas_net:
            raise PtychoInputError(f"model.kind {kind!r} was trained for gridsize {trained} "
                                   "and cannot infer with another; only networks whose "
                                   "weights do not depend on C "
                                   f"({', '.join(sorted(CANVAS_KINDS))}) can", path=source)
        g = int(asked)
    if g * g > m:
        if not canvas_net:
            raise PtychoInputError(f"only {m} patterns but the model groups {g * g} "
                                   f"(gridsize {g})", path=source)
        g = max(1, int(np.sqrt(m)))  # a sparse scan: groups no larger than the scan itself
        logger.info("only %d patterns: inferring with gridsize %d", m, g)
    return g
