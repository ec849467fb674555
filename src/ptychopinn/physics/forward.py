"""Forward model: object patches -> far-field amplitudes -> photon counts (SPEC §3)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ptychopinn.physics.propagate import far_field


def forward_amplitude(patches: Tensor, probe: Tensor) -> Tensor:
    """Far-field amplitude ``|fftshift(fft2(P * O, norm="ortho"))|``.

    Parameters
    ----------
    patches : Tensor (…, N, N) complex
        Object patches O.
    probe : Tensor (N, N) complex
        Probe P on the object pixel grid.

    Returns
    -------
    Tensor (…, N, N) float, the amplitude A (DC at (N/2, N/2)).
    """
    return far_field(patches * probe).abs()


class PtychoForward(nn.Module):
    """Physics layer: ``counts = s**2 * |F(P * O)|**2`` with a log-parametrised scale ``s``.

    Parameters
    ----------
    probe : Tensor (N, N) complex
        Normalised probe (a buffer; ``train.refine_probe`` learns it through
        :class:`~ptychopinn.physics.probe.ProbeParameter`).
    intensity_scale : float
        Initial ``s`` (model units -> sqrt(photon counts)).
    learn_scale : bool
        Whether ``log s`` is trained.
    """

    def __init__(self, probe: Tensor, intensity_scale: float, *, learn_scale: bool = True):
        super().__init__()
        self.register_buffer("probe", torch.as_tensor(probe).to(torch.complex64))
        log_s = torch.tensor(math.log(intensity_scale), dtype=torch.float32)
        if learn_scale:
            self.log_scale = nn.Parameter(log_s)
        else:
            self.register_buffer("log_scale", log_s)

    @property
    def scale(self) -> Tensor:
        """The intensity scale ``s`` (scalar tensor)."""
        return self.log_scale.exp()

    def amplitude(self, patches: Tensor, *, probe: Tensor | None = None,
                  count_scale: Tensor | None = None) -> Tensor:
        """Model amplitude ``s * |F(P O)|`` in sqrt(counts), shape of ``patches`` (B, C, N, N).

        ``probe`` (B, N, N) complex, optional: each group's own (normalised) probe instead of
        the buffer; ``count_scale`` (B,) float, optional: each group's factor on ``s`` (its
        scan's sqrt(mean counts) relative to the reference the scale was learned at)."""
        p = self.probe if probe is None else probe[:, None]
        s = self.scale if count_scale is None else self.scale * count_scale[:, None, None, None]
        return forward_amplitude(patches, p) * s

    def forward(self, patches: Tensor) -> Tensor:
        """Predicted counts (…, N, N) float."""
        return self.amplitude(patches) ** 2
