"""Unrolled physics network (``model.kind: unrolled``): the forward model inside the network.

The faithful PtychoPINN CNN must learn an inverse Fourier transform through an 8×8 bottleneck.
Here the network starts from a flat group canvas and alternates K exact data-consistency steps
with small learned real-space corrections:

1. cut the C members' patches out of the group canvas, illuminate with the probe, propagate;
2. replace the far-field modulus with the measured one (the amplitude-loss gradient step);
3. back-propagate, and average the exit-wave corrections onto the canvas weighted by the probe
   intensity (the parallel, least-squares PIE update — exact adjoints of the patch operators);
4. a small CNN on the canvas (its real/imaginary parts, the update, the coverage) adds a
   correction, so the prior learned from training scans fills what C patterns cannot fix.

All weights act on the canvas, not on per-member channels, so the network does not depend on the
member count C. It is trained end to end with the same unsupervised Poisson loss as ``pinn``.
Shapes: B groups, C members, N pixels, S canvas side.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ptychopinn.physics.consistency import exit_wave_correction
from ptychopinn.physics.merge import group_canvas_size
from ptychopinn.physics.patches import PatchGeometry


class CanvasRefiner(nn.Module):
    """Small residual CNN: canvas features (B, 5 + H, S, S) -> complex correction (B, S, S),
    the next memory (B, H, S, S) (H = ``memory`` channels carried between steps, as in
    learned primal-dual schemes; 0 = none) and, with ``step_map``, a per-pixel step factor
    (B, S, S) in (0, 2) (1 untrained).

    A 3×3 stem, two dilated 3×3 layers (receptive field 15 px) and a 1×1 head whose weights
    start at zero, so an untrained refiner leaves the physics step unchanged; ``scales`` = 2
    adds the same two dilated layers on the 2× average-pooled stem features, upsampled and
    added before the head. Runs in channels-last memory format (about 3× faster convolutions
    on CPU).
    """

    def __init__(self, width: int, memory: int = 0, extra: int = 0, step_map: bool = False,
                 scales: int = 1):
        super().__init__()
        self.memory = memory
        self.step_map = step_map
        self.net = nn.Sequential(
            nn.Conv2d(5 + extra + memory, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 + memory + int(step_map), 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.coarse = None
        if scales == 2:
            self.coarse = nn.Sequential(
                nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ReLU(inplace=True))

    def forward(self, feats: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        x = feats.contiguous(memory_format=torch.channels_last)
        if self.coarse is None:
            d = self.net(x)
        else:
            h = self.net[:2](x)  # stem
            y = self.net[2:6](h)
            c = self.coarse(nn.functional.avg_pool2d(h, 2, ceil_mode=True))
            y = y + nn.functional.interpolate(c, size=y.shape[-2:], mode="bilinear",
                                              align_corners=False)
            d = self.net[6](y)
        step = 2 * torch.sigmoid(d[:, -1]) if self.step_map else None
        return (torch.complex(d[:, 0], d[:, 1]), torch.tanh(d[:, 2 : 2 + self.memory]),
                step)


class UnrolledNet(nn.Module):
    """K physics steps + learned corrections on each group's canvas.

    ``forward(target, offsets, probe)``: ``target`` (B, C, N, N) measured far-field amplitude in
    model units (sqrt(counts) / s), ``offsets`` (B, C, 2) member offsets from the group centre
    (pixels), ``probe`` (N, N) complex normalised probe, or (B, N, N) one per group (the
    probe is an input, not a weight: each scan brings its own). Returns the members' patches
    (B, C, N, N) complex, all cut from one canvas per group (so they already agree on overlaps).
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        opt = cfg.options  # UnrolledOptions
        k = opt.n_iterations
        self.step = nn.Parameter(torch.ones(k))  # learned step sizes α_k
        extra = 1 if opt.dose_input else 0
        self.refiners = nn.ModuleList(CanvasRefiner(opt.refiner_width, opt.memory_channels,
                                                    extra, opt.step_map, opt.refiner_scales)
                                      for _ in range(k))

    def forward(self, target: Tensor, offsets: Tensor, probe: Tensor,
                mean_counts: Tensor | None = None, *, extra_steps: int = 0) -> Tensor:
        """``mean_counts`` (B,) the mean total counts per pattern of each group's scan: with
        ``dose_input`` the refiners see log10 of it as a constant channel (the noise level of
        the measured moduli, which sets how much a correction should smooth).
        ``extra_steps``: plain data-consistency steps (unit step, no learned correction) after
        the K learned ones, at inference (2 FFTs per member each)."""
        b, c, n, _ = target.shape
        s = group_canvas_size(n, offsets)
        geo = PatchGeometry(offsets + s / 2, n, (s, s))  # computed once, used 2K + 2 times
        probe = probe.to(torch.complex64)
        if probe.dim() == 3:  # one probe per group: broadcast over the members
            probe = probe[:, None]
        pint = probe.abs() ** 2
        # probe-intensity coverage of the canvas, (B, S, S); normalised for the refiner input
        cov = geo.place(pint.expand(b, c, n, n))
        cov_n = cov / cov.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        denom = cov + 1e-2 * cov.amax(dim=(-2, -1), keepdim=True)
        canvas = torch.ones(b, s, s, dtype=torch.complex64, device=target.device)
        mem = target.new_zeros(b, self.cfg.options.memory_channels, s, s)
        dose = []
        if self.cfg.options.dose_input:
            if mean_counts is None:
                raise ValueError("this network needs the scan's mean counts (dose_input)")
            lvl = (torch.log10(mean_counts.to(target.dtype).clamp_min(1.0)) - 6.0) / 3.0
            dose = [lvl.reshape(b, 1, 1, 1).expand(b, 1, s, s)]
        # the modulus replacement commutes with the far field's centring shift: work in the
        # unshifted FFT layout (far_field = fftshift ∘ fft2, so one ifftshift of the target)
        target = torch.fft.ifftshift(target, dim=(-2, -1))
        poisson = self.cfg.options.consistency == "poisson"
        if poisson:
            if mean_counts is None:
                raise ValueError("Poisson data consistency needs the scan's mean counts")
            # one photon in model units (mean energy per pattern (N/2)²), the damping floor
            photon = ((n / 2) ** 2 / mean_counts.to(target.dtype)).reshape(b, 1, 1, 1)
        else:
            photon = None

        def update(canvas: Tensor) -> Tensor:
            """The least-squares PIE direction (B, S, S): modulus replacement (or the Poisson
            step) of every member, exit-wave corrections averaged onto the canvas with the
            probe-intensity weight."""
            dpsi = exit_wave_correction(geo.extract(canvas) * probe, target, photon=photon)
            return geo.place(dpsi * probe.conj()) / denom

        step_map = self.cfg.options.step_map
        for alpha, refine in zip(self.step, self.refiners, strict=True):
            upd = update(canvas)
            if not step_map:  # the refiner sees the canvas after the step
                canvas = canvas + alpha * upd
            feats = torch.cat([torch.stack([canvas.real, canvas.imag, upd.real, upd.imag, cov_n],
                                           1), *dose, mem], 1)
            delta, mem, factor = refine(feats)
            if step_map:  # ... or before it, and sets the step pixel by pixel
                canvas = canvas + alpha * factor * upd
            canvas = canvas + delta
        for _ in range(extra_steps):
            canvas = canvas + update(canvas)
        return geo.extract(canvas)
