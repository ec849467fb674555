"""Noise-free single-object overfit: the PINN's physics, merge, loss and stitching agree.

The network is replaced by the most flexible "network" possible, a free complex object canvas:
each group's C patches are cut from it, merged with ``merge_and_recut``, propagated by the
model's own ``PtychoForward`` (its normalised probe and intensity scale), scored with the
training loss (Poisson NLL), and the merged patches are finally stitched by the inference
``Stitcher``. If any of these disagreed on geometry, scale or sign conventions, gradient
descent could not drive the reconstruction to the ground truth.
"""

from __future__ import annotations

import numpy as np
import torch

from ptychopinn.config import RunConfig
from ptychopinn.data.grouping import GroupingConfig, make_groups, relative_offsets
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.evaluation import evaluate
from ptychopinn.inference.stitch import Stitcher, object_frame
from ptychopinn.physics.merge import merge_and_recut
from ptychopinn.physics.noise import poisson_nll
from ptychopinn.physics.patches import extract_patches
from ptychopinn.training.api import build_model


def test_noise_free_overfit_reaches_ground_truth():
    torch.manual_seed(0)
    data = simulate(SimulationConfig(object="lines", object_size=48, patch_size=16, scan="raster",
                                     step=3.0, n_positions=81, noise=False, photons=1e6, seed=5))
    cfg = RunConfig().with_overrides(model={"learn_scale": False})
    model, consts = build_model(cfg, data)
    groups = make_groups(data.positions, GroupingConfig(gridsize=2), rng=0)  # (G, 4)
    pos = torch.from_numpy(data.positions[groups].reshape(-1, 2))
    offsets = torch.from_numpy(relative_offsets(data.positions, groups)).float()
    counts = torch.from_numpy(data.diffraction[groups]).float() ** 2  # (G, 4, N, N)
    # the stored probe carries the absolute scale (counts = |F(probeGuess O)|²) and the model
    # holds probeGuess·f, so the exact intensity scale is 1/f: no learned scale needed
    model.physics.log_scale.fill_(-float(np.log(consts["probe_norm_factor"])))
    canvas = torch.nn.Parameter(torch.ones(data.obj.shape, dtype=torch.complex64))
    opt = torch.optim.Adam([canvas], lr=0.05)
    first = None
    for _ in range(150):
        raw = extract_patches(canvas, pos, 16).reshape(counts.shape)
        merged = merge_and_recut(raw, offsets)
        loss = poisson_nll(model.physics.amplitude(merged) ** 2, counts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first
    stitcher = Stitcher(object_frame(data), torch.ones(16, 16))
    with torch.no_grad():
        stitcher.add(merge_and_recut(extract_patches(canvas, pos, 16).reshape(counts.shape),
                                     offsets).reshape(-1, 16, 16), pos)
    obj, cov = stitcher.result()
    m = evaluate(data.obj, obj, coverage=cov)
    assert m["phase"]["ssim"] > 0.95 and m["amplitude"]["ssim"] > 0.95, m
    # absolute amplitude too (the metrics forgive a global scale): the physics' scale is right
    inner = cov > 0.5 * cov.max()
    ratio = np.abs(obj[inner]).mean() / np.abs(data.obj[inner]).mean()
    assert abs(ratio - 1) < 0.03, ratio
