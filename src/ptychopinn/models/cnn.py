"""The faithful PtychoPINN CNN (``model.kind: pinn``, and the supervised ``baseline``): an encoder
and amplitude/phase decoders mapping a group's C diffraction amplitudes to C object patches.

Shapes: B groups, C = gridsize² members, N pixels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # annotations only: the registry builds this network from a config
    from ptychopinn.models.config import ModelConfig


def _block(cin: int, cout: int, norm: bool = False) -> nn.Sequential:
    if not norm:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
        )
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Encoder(nn.Module):
    """conv-conv-pool stages: (B, C, N, N) -> (B, F, N/2^s, N/2^s)."""

    def __init__(self, cin: int, widths: list[int], norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        for w in widths:
            layers += [_block(cin, w, norm), nn.MaxPool2d(2)]
            cin = w
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Upsampling decoder to (B, C, N/2, N/2) (centre) plus a border branch to (B, C, N, N)."""

    def __init__(self, widths: list[int], cout: int, *, pad_object: bool, norm: bool = False):
        super().__init__()
        self.pad_object = pad_object
        rev = widths[::-1]
        n_up = len(widths) - (1 if pad_object else 0)  # to N/2 or to N
        layers: list[nn.Module] = []
        cin = rev[0]
        for k in range(n_up):
            w = rev[min(k + 1, len(rev) - 1)]
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _block(cin, w, norm)]
            cin = w
        self.main = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, cout, 3, padding=1)
        if pad_object:
            bw = max(4, widths[0] // 2)
            self.border = nn.Sequential(
                nn.Conv2d(rev[0], bw, 1), nn.ReLU(inplace=True),
                nn.Upsample(scale_factor=2 ** len(widths), mode="bilinear", align_corners=False),
                nn.Conv2d(bw, bw, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(bw, cout, 3, padding=1),
            )
        for m in (self.head, *(self.border[-1:] if pad_object else [])):
            nn.init.normal_(m.weight, std=1e-3)
            nn.init.zeros_(m.bias)

    def forward(self, z: Tensor) -> Tensor:
        centre = self.head(self.main(z))  # (B, C, N/2, N/2) or (B, C, N, N)
        if not self.pad_object:
            return centre
        full = self.border(z)  # (B, C, N, N)
        n = full.shape[-1]
        q = n // 4
        return torch.cat([
            full[..., :q, :],
            torch.cat([full[..., q : n - q, :q], centre, full[..., q : n - q, n - q :]], -1),
            full[..., n - q :, :],
        ], -2)


class ObjectNet(nn.Module):
    """Encoder + amplitude and phase decoders: amplitudes (B, C, N, N) -> patches complex.

    ``n`` patch size N; ``channels`` C = gridsize² (both from the data and the grouping).
    """

    def __init__(self, cfg: ModelConfig, *, n: int, channels: int):
        super().__init__()
        self.cfg = cfg
        opt = cfg.options  # CNNOptions
        w = opt.widths(n)
        c = channels
        self.encoder = Encoder(c, w, opt.batch_norm)
        self.amp = Decoder(w, c, pad_object=opt.pad_object, norm=opt.batch_norm)
        self.phase = Decoder(w, c, pad_object=opt.pad_object, norm=opt.batch_norm)
        if opt.amp_activation == "sigmoid":  # start near amplitude 0.8
            self.amp.head.bias.data.fill_(math.log(4.0))

    def amplitude_phase(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, N, N) normalised amplitudes -> amplitude, phase (B, C, N, N) float.

        The convolutions run in channels-last memory format (CPU: 1.7× faster inference, 1.25×
        faster training steps; ``benchmarks/cpu_efficiency.py``)."""
        z = self.encoder(x.contiguous(memory_format=torch.channels_last))
        a = self.amp(z)
        act = self.cfg.options.amp_activation
        amp = torch.sigmoid(a) if act == "sigmoid" else (
            nn.functional.softplus(a) if act == "softplus" else torch.exp(a))
        phase = math.pi * torch.tanh(self.phase(z))
        return amp, phase

    def forward(self, x: Tensor) -> Tensor:
        amp, phase = self.amplitude_phase(x)
        return torch.polar(amp, phase)
