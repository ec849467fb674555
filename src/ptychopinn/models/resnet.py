"""Residual generator (``model.kind: resnet``): the faithful network's job with a ResNet body.

PtychoPINN's hybrid-ResNet generator reports high phase SSIM at gridsize 1; this is our own
version of that architecture class (no code taken from it): a 3×3 stem at full resolution, two
stride-2 downsamplings to N/4, ``n_res_blocks`` residual blocks there (skip connections keep
gradients alive through the depth), two upsamplings, and amplitude/phase heads. Input and output
are those of the faithful CNN (amplitudes ``(B, C, N, N)`` in normalised units → complex patches
``(B, C, N, N)``), so :class:`~ptychopinn.models.pinn.PINN` merges the group and applies the
physics exactly as for ``pinn``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ResBlock(nn.Module):
    """x + conv(relu(conv(x))), width preserved."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class ResNetGenerator(nn.Module):
    """Amplitudes (B, C, N, N) -> complex patches (B, C, N, N); N a power of two ≥ 16 (check_shape).

    Widths: base w = 16·``n_filters_scale`` at full resolution, 2w at N/2, 4w at N/4.
    """

    def __init__(self, cfg, *, channels: int):
        super().__init__()
        self.cfg = cfg
        w = max(4, int(round(16 * cfg.n_filters_scale)))
        c = channels
        self.down = nn.Sequential(
            nn.Conv2d(c, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.body = nn.Sequential(*(ResBlock(4 * w) for _ in range(cfg.n_res_blocks)))
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(4 * w, 2 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * w, w, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.amp_head = nn.Conv2d(w, c, 3, padding=1)
        self.phase_head = nn.Conv2d(w, c, 3, padding=1)
        for head in (self.amp_head, self.phase_head):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)
        self.amp_head.bias.data.fill_(math.log(4.0))  # sigmoid starts near amplitude 0.8

    def forward(self, x: Tensor) -> Tensor:
        z = self.up(self.body(self.down(x.contiguous(memory_format=torch.channels_last))))
        amp = torch.sigmoid(self.amp_head(z))
        phase = math.pi * torch.tanh(self.phase_head(z))
        return torch.polar(amp, phase)
