"""Exact symmetries of the far-field measurement, used to augment training (issue #22).

Mirroring or transposing the whole experiment (object, probe and scan positions together)
mirrors or transposes every diffraction pattern: on the N×N grid, a probe and object mirrored
pixel for pixel (i -> N − 1 − i, offsets negated) give exit waves ψ(−r − 1), whose far-field
modulus is |F[ψ]|(−k) — the centred pattern mirrored about its zero frequency at index N/2
(k index j -> (N − j) mod N); the one-pixel shift is a phase ramp the modulus does not see.
A transpose of ψ transposes F[ψ]. A canvas network, which takes the probe as an input, so
sees eight exactly consistent variants of each training group.
"""

from __future__ import annotations

from torch import Tensor


def centred_flip(x: Tensor, dim: int) -> Tensor:
    """A centred far-field pattern mirrored about zero frequency (index N/2) along ``dim``:
    j -> (N − j) mod N."""
    return x.flip(dim).roll(1, dim)


def dihedral(amplitude: Tensor, offsets: Tensor, probe: Tensor, k: int
             ) -> tuple[Tensor, Tensor, Tensor]:
    """Element ``k`` (0–7; 0 = identity) of the square's symmetry group applied to one batch.

    ``amplitude`` (B, C, N, N) measured moduli, ``offsets`` (B, C, 2) member offsets (row,
    col) in pixels, ``probe`` (..., N, N) complex; bit 0 mirrors the rows, bit 1 the columns,
    bit 2 transposes. Returns the transformed (amplitude, offsets, probe).
    """
    if not 0 <= k < 8:
        raise ValueError(f"dihedral element must be 0..7, got {k}")
    offsets = offsets.clone()
    for bit, axis in ((1, 0), (2, 1)):
        if k & bit:
            amplitude = centred_flip(amplitude, -2 + axis)
            probe = probe.flip(-2 + axis)
            offsets[..., axis] = -offsets[..., axis]
    if k & 4:
        amplitude = amplitude.transpose(-2, -1)
        probe = probe.transpose(-2, -1)
        offsets = offsets.flip(-1)
    return amplitude.contiguous(), offsets, probe.contiguous()
