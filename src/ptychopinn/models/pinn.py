"""The PtychoPINN model: a network of any kind wrapped with the per-group merge and the physics.

Plain ``nn.Module``s (no Lightning, no I/O). Shapes: B groups, C = gridsize² members, N pixels.
The patch size N comes from the data (the probe's shape) and the group side from
``grouping.gridsize``; neither is part of :class:`~ptychopinn.models.config.ModelConfig`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ptychopinn.models.config import ModelConfig
from ptychopinn.models.registry import build_net, kind_spec
from ptychopinn.physics.forward import PtychoForward
from ptychopinn.physics.merge import merge_and_recut


class PINN(nn.Module):
    """Network + per-group merge + physics.

    Parameters
    ----------
    cfg : ModelConfig
    probe : Tensor (N, N) complex
        Normalised probe (total power (N/2)²); its size is the patch size N (:attr:`n`).
    gridsize : int
        Group side g (C = g² members per group), ``grouping.gridsize`` of the run.
    input_scale : float
        Multiplies measured amplitudes so the mean total energy per pattern is (N/2)².
    intensity_scale : float
        Initial s (model amplitude -> sqrt(counts)).
    """

    def __init__(self, cfg: ModelConfig, probe: Tensor, *, gridsize: int, input_scale: float,
                 intensity_scale: float):
        super().__init__()
        self.cfg = cfg
        self.gridsize = int(gridsize)
        self.net = build_net(cfg, n=int(probe.shape[-1]), gridsize=self.gridsize)
        self.canvas = kind_spec(cfg.kind).canvas  # the probe is an input of the network
        self.physics = PtychoForward(probe, intensity_scale, learn_scale=cfg.learn_scale)
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))

    @property
    def n(self) -> int:
        """Patch size N (pixels), the probe's."""
        return int(self.physics.probe.shape[-1])

    def predict_patches(self, amplitude: Tensor, offsets: Tensor, *,
                        probe: Tensor | None = None, count_scale: Tensor | None = None,
                        extra_steps: int = 0) -> tuple[Tensor, Tensor]:
        """Raw and (for object_big) merged patches, both (B, C, N, N) complex.

        ``amplitude`` is in sqrt(counts) (un-normalised); ``offsets`` (B, C, 2). Optional
        per-group conditioning (a training corpus mixes scans): ``probe`` (B, N, N) complex
        normalised probes and ``count_scale`` (B,) = sqrt(mean counts of the group's scan /
        the reference mean counts ``((N/2) / input_scale)²``); without them the model's own
        probe and scales serve every group. ``extra_steps``: plain data-consistency steps after
        a canvas network's learned ones (inference only; a CNN has none and refuses).
        """
        if self.canvas:
            # measured modulus in model units; patches come from one canvas per group
            s = self.physics.scale
            cs = amplitude.new_ones(amplitude.shape[0]) if count_scale is None else count_scale
            s = s * cs[:, None, None, None]
            # mean counts of each group's scan: reference counts × count scale²
            counts = (self.n / 2 / self.input_scale) ** 2 * cs**2
            raw = self.net(amplitude / s, offsets,
                           self.physics.probe if probe is None else probe, counts,
                           extra_steps=extra_steps)
            return raw, raw
        if extra_steps:
            raise ValueError(f"model.kind {self.cfg.kind!r} has no data-consistency steps")
        x = amplitude * self.input_scale
        if count_scale is not None:
            x = x / count_scale[:, None, None, None]
        raw = self.net(x)
        merged = merge_and_recut(raw, offsets) if self.cfg.options.object_big else raw
        return raw, merged

    def forward(self, amplitude: Tensor, offsets: Tensor, *, probe: Tensor | None = None,
                count_scale: Tensor | None = None) -> dict[str, Tensor]:
        """Patches and predicted amplitudes sqrt(counts), all (B, C, N, N); conditioning as
        in :meth:`predict_patches`."""
        raw, merged = self.predict_patches(amplitude, offsets, probe=probe,
                                           count_scale=count_scale)
        pred = self.physics.amplitude(merged, probe=probe, count_scale=count_scale)
        return {"raw": raw, "patches": merged, "pred_amplitude": pred}
