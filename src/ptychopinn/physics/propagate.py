"""Far-field propagation: ``F = fftshift(fft2(psi, norm="ortho"))`` (unitary)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def far_field(psi: Tensor) -> Tensor:
    """Far-field wave of exit waves ``psi`` (…, N, N) complex; DC lands at pixel (N/2, N/2)."""
    return torch.fft.fftshift(torch.fft.fft2(psi, norm="ortho"), dim=(-2, -1))


def far_field_adjoint(phi: Tensor) -> Tensor:
    """Adjoint (= inverse) of :func:`far_field` for (…, N, N) complex tensors."""
    return torch.fft.ifft2(torch.fft.ifftshift(phi, dim=(-2, -1)), norm="ortho")


class FarField(nn.Module):
    """Far-field propagation ``psi -> F psi`` (unitary), tensors (…, N, N) complex."""

    def forward(self, psi: Tensor) -> Tensor:
        return far_field(psi)

    def adjoint(self, phi: Tensor) -> Tensor:
        return far_field_adjoint(phi)
