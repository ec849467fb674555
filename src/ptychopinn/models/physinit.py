"""Physics-initialised network (``model.kind: physinit``): analytic inverse, learned refinement.

The faithful CNN must learn an inverse Fourier transform. Here each measured pattern is first
inverted analytically: the measured far-field amplitude takes the phase of the probe's own far
field, is back-propagated (inverse FFT) and divided by the probe (regularised where the probe is
dark). That single-pattern estimate already carries the object's low-resolution structure; a
small U-Net with skip connections (weights shared by every member, so independent of C) refines
it to amplitude and phase, and the group's patches are merged and re-cut so the members agree on
their overlaps before the physics loss, as in ``pinn``.

Shapes: B groups, C members, N pixels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ptychopinn.physics.merge import merge_and_recut
from ptychopinn.physics.propagate import far_field, far_field_adjoint


def backprojection(target: Tensor, probe: Tensor, eps: float = 0.05) -> Tensor:
    """One-pattern object estimate (…, N, N) complex from far-field amplitudes (…, N, N).

    ψ₀ = F⁻¹(|measured| · sgn(F P)); O₀ = ψ₀ P* / (|P|² + eps · max|P|²).
    """
    phase = torch.sgn(far_field(probe))
    psi0 = far_field_adjoint(target.to(phase.dtype) * phase)
    pint = probe.abs() ** 2
    return psi0 * probe.conj() / (pint + eps * pint.max())


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class PhysInitNet(nn.Module):
    """``forward(target, offsets, probe)`` -> merged patches (B, C, N, N) complex.

    ``target`` measured amplitudes in model units (sqrt(counts) / s), ``offsets`` (B, C, 2)
    pixels, ``probe`` (N, N) complex. A 3-level U-Net (widths w, 2w, 4w; w = 16 ·
    ``n_filters_scale``) on the features [Re O₀, Im O₀, |P|/max|P|] of each member.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        w = max(4, int(round(16 * cfg.n_filters_scale)))
        self.enc = nn.ModuleList([_block(3, w), _block(w, 2 * w), _block(2 * w, 4 * w)])
        self.dec = nn.ModuleList([_block(4 * w + 2 * w, 2 * w), _block(2 * w + w, w)])
        self.head = nn.Conv2d(w, 2, 1)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)
        self.head.bias.data[0] = math.log(4.0)  # sigmoid starts near amplitude 0.8

    def forward(self, target: Tensor, offsets: Tensor, probe: Tensor,
                mean_counts: Tensor | None = None) -> Tensor:
        b, c, n, _ = target.shape
        probe = probe.to(torch.complex64)
        o0 = backprojection(target, probe)  # (B, C, N, N)
        pa = (probe.abs() / probe.abs().max()).expand(b, c, n, n)
        x = torch.stack([o0.real, o0.imag, pa], 2).reshape(b * c, 3, n, n)
        x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on CPU
        skips = []
        for k, enc in enumerate(self.enc):
            x = enc(x if k == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for dec, skip in zip(self.dec, skips[-2::-1], strict=True):
            x = dec(torch.cat([nn.functional.interpolate(x, scale_factor=2.0), skip], 1))
        a, p = self.head(x).reshape(b, c, 2, n, n).unbind(2)
        raw = torch.polar(torch.sigmoid(a), math.pi * torch.tanh(p))
        return merge_and_recut(raw, offsets) if c > 1 else raw
