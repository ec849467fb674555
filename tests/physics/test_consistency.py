"""Data-consistency steps (physics/consistency.py): the exit-wave correction is the gradient it
claims to be, and steps on a whole object recover a planted phase error from noise-free data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptychopinn.physics.consistency import exit_wave_correction, scan_consistency_steps
from ptychopinn.physics.patches import PatchGeometry


def test_poisson_correction_is_a_quarter_of_the_negative_likelihood_gradient():
    """dψ = ½ (y/(|Fψ|²+γ) − 1) Fψ back-propagated = −¼ ∇ψ Σ(|Fψ|² − y log(|Fψ|² + γ))
    (PyTorch's gradient of a real loss in a complex variable is 2 ∂L/∂ψ*)."""
    g = torch.Generator().manual_seed(0)
    psi = torch.randn(3, 8, 8, dtype=torch.complex128, generator=g).requires_grad_()
    y = torch.rand(3, 8, 8, dtype=torch.float64, generator=g) * 4
    photon = 0.3
    f = torch.fft.fft2(psi, norm="ortho")
    i = f.real**2 + f.imag**2
    (i - y * torch.log(i + photon)).sum().backward()
    d = exit_wave_correction(psi.detach(), y.sqrt(), photon=torch.tensor(photon))
    torch.testing.assert_close(d, -psi.grad / 4)


def test_modulus_correction_vanishes_on_consistent_waves_and_fixes_the_modulus():
    g = torch.Generator().manual_seed(1)
    psi = torch.randn(2, 8, 8, dtype=torch.complex128, generator=g)
    amp = torch.fft.fft2(psi, norm="ortho").abs()
    assert exit_wave_correction(psi, amp).abs().max() < 1e-12
    fixed = psi + exit_wave_correction(psi, 2 * amp)
    torch.testing.assert_close(torch.fft.fft2(fixed, norm="ortho").abs(), 2 * amp)


def _scan(seed: int = 0):
    """A 64² phase object, a soft 16-px probe, 15×15 raster (step 3 px, jittered): the
    object, positions (K, 2) and noise-free moduli in the unshifted layout."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    phase = 0.8 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.5 * (rng.random((64, 64)) > 0.97)
    obj = torch.from_numpy(np.exp(1j * phase).astype(np.complex64))
    r = np.hypot(*np.mgrid[-8:8, -8:8] + 0.5)
    probe = torch.from_numpy((np.exp(-((r / 5.0) ** 2)) * np.exp(1j * r / 3)).astype(np.complex64))
    grid = np.arange(11, 54, 3.0)
    pos = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    pos = torch.from_numpy(pos + rng.uniform(-0.4, 0.4, pos.shape))
    psi = PatchGeometry(pos, 16, (64, 64)).extract(obj) * probe
    target = torch.fft.fft2(psi, norm="ortho").abs()
    return obj, probe, pos, target


def _misfit(obj, probe, pos, target) -> float:
    psi = PatchGeometry(pos, 16, tuple(obj.shape)).extract(obj) * probe
    return float((torch.fft.fft2(psi, norm="ortho").abs() - target).norm() / target.norm())


@pytest.mark.parametrize("chunk", [1000, 37])
def test_steps_recover_a_planted_phase_error(chunk):
    obj, probe, pos, target = _scan()
    yy, xx = np.mgrid[:64, :64]
    err = torch.from_numpy(0.6 * np.exp(-((yy - 30.0) ** 2 + (xx - 36.0) ** 2) / 60.0))
    start = obj * torch.exp(1j * err.to(torch.float32))
    inner = (slice(14, 50), slice(14, 50))  # covered by many patterns

    def phase_error(o):
        d = torch.angle(o[inner] * obj[inner].conj())
        return float((d - d.mean()).abs().mean())

    def run(steps, momentum=0.7):
        return scan_consistency_steps(start, pos, lambda i, j: target[i:j], probe, steps,
                                      momentum=momentum, chunk=chunk)

    e0, m0 = phase_error(start), _misfit(start, probe, pos, target)
    after = run(40)
    assert phase_error(after) < 0.1 * e0
    assert _misfit(after, probe, pos, target) < 0.1 * m0
    # momentum speeds up the parallel update: at 10 steps it is further along
    assert _misfit(run(10), probe, pos, target) < _misfit(run(10, 0.0), probe, pos, target)
    # the truth is a fixed point; the input object is not modified
    same = scan_consistency_steps(obj, pos, lambda i, j: target[i:j], probe, 5, chunk=chunk)
    assert float((same - obj)[inner].abs().max()) < 1e-4
    assert math.isclose(phase_error(start), e0)


def test_chunks_and_kept_geometries_give_the_same_object():
    """Small scans keep each chunk's moduli after the first read; large ones (``keep_bytes``)
    read them again every step; both give the same object."""
    obj, probe, pos, target = _scan(1)
    start = obj * 0 + 1
    reads = []

    def run(**kw):
        def read(i, j):
            reads.append((i, j))
            return target[i:j]

        reads.clear()
        return scan_consistency_steps(start, pos, read, probe, 3, **kw)

    kept = run(chunk=1000)
    assert len(reads) == 1
    streamed = run(chunk=50, keep_bytes=0)
    assert len(reads) == 3 * math.ceil(len(pos) / 50)
    torch.testing.assert_close(kept, streamed, atol=2e-5, rtol=0)
