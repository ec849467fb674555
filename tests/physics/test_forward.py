from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptychopinn.physics import (
    PtychoForward,
    far_field,
    far_field_adjoint,
    forward_amplitude,
    normalize_probe,
    poisson_nll,
    sample_poisson,
)


def test_parseval(rng):
    psi = torch.randn(3, 32, 32, dtype=torch.complex128, generator=rng)
    f = far_field(psi)
    torch.testing.assert_close(f.abs().pow(2).sum((-2, -1)), psi.abs().pow(2).sum((-2, -1)))


def test_far_field_adjoint_is_inverse_and_adjoint(rng):
    psi = torch.randn(16, 16, dtype=torch.complex128, generator=rng)
    phi = torch.randn(16, 16, dtype=torch.complex128, generator=rng)
    torch.testing.assert_close(far_field_adjoint(far_field(psi)), psi)
    lhs = torch.vdot(far_field(psi).flatten(), phi.flatten())
    rhs = torch.vdot(psi.flatten(), far_field_adjoint(phi).flatten())
    assert abs(lhs - rhs) < 1e-12 * abs(lhs)


def test_forward_matches_numpy_reference(np_rng):
    o = np_rng.standard_normal((4, 16, 16)) + 1j * np_rng.standard_normal((4, 16, 16))
    p = np_rng.standard_normal((16, 16)) + 1j * np_rng.standard_normal((16, 16))
    ref = np.abs(np.fft.fftshift(np.fft.fft2(p * o, norm="ortho"), axes=(-2, -1)))
    got = forward_amplitude(torch.from_numpy(o), torch.from_numpy(p)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_global_phase_invariance(rng):
    o = torch.randn(2, 16, 16, dtype=torch.complex128, generator=rng)
    p = torch.randn(16, 16, dtype=torch.complex128, generator=rng)
    a = forward_amplitude(o, p)
    b = forward_amplitude(o * np.exp(1j * 0.7), p)
    torch.testing.assert_close(a, b)


def test_plane_wave_goes_to_dc():
    n, c = 16, 0.8
    amp = forward_amplitude(torch.full((n, n), c, dtype=torch.complex128),
                            torch.ones(n, n, dtype=torch.complex128))
    assert amp[n // 2, n // 2] == pytest.approx(c * n)
    amp[n // 2, n // 2] = 0
    assert float(amp.max()) < 1e-12


def test_point_object_gives_flat_amplitude():
    n = 16
    o = torch.zeros(n, n, dtype=torch.complex128)
    o[5, 9] = 2.0
    amp = forward_amplitude(o, torch.ones(n, n, dtype=torch.complex128))
    torch.testing.assert_close(amp, torch.full((n, n), 2.0 / n, dtype=torch.float64))


def test_counts_are_nonnegative_and_scaled(rng):
    p = torch.randn(16, 16, dtype=torch.complex64, generator=rng)
    fwd = PtychoForward(p, 3.0)
    o = torch.randn(5, 16, 16, dtype=torch.complex64, generator=rng)
    counts = fwd(o)
    assert counts.min() >= 0
    torch.testing.assert_close(counts, 9.0 * forward_amplitude(o, p) ** 2, rtol=1e-4,
                               atol=1e-4)


def test_sample_poisson_per_pixel_statistics_and_exact_counts(np_rng):
    """Our sampler: each pixel's mean and variance is its own rate; counts are exact integers
    even where float32 would round (3e9: float32 steps are 256); zero rate gives zero."""
    lam = np.array([[0.0, 0.3, 2.0], [7.5, 40.0, 3e9]])
    n = 40_000
    k = sample_poisson(np.broadcast_to(lam, (n, *lam.shape)), np_rng)
    assert k.shape == (n, 2, 3) and k.dtype == np.float64
    assert np.array_equal(k, np.round(k)) and (k[:, 0, 0] == 0).all()
    sd_mean = np.sqrt(lam / n)
    assert np.all(np.abs(k.mean(0) - lam) <= 5 * sd_mean + 1e-12)
    sd_var = np.sqrt((lam + 2 * lam**2) / n)  # standard error of a Poisson sample variance
    assert np.all(np.abs(k.var(0) - lam) <= 5 * sd_var + 1e-12)
    assert np.any(k[:, 1, 2] % 256 != 0)
    again = sample_poisson(lam, np.random.default_rng(7))
    assert np.array_equal(again, sample_poisson(lam, np.random.default_rng(7)))
    with pytest.raises(ValueError, match="finite and >= 0"):
        sample_poisson(np.array([1.0, -0.5]), np_rng)
    with pytest.raises(ValueError, match="finite and >= 0"):
        sample_poisson(np.array([np.nan]), np_rng)


def test_simulation_draws_its_noise_with_our_sampler(monkeypatch):
    """simulate() takes its photon noise from physics.noise.sample_poisson (the function
    tested above), seeded by the config: the stored amplitudes are sqrt of what it drew."""
    import dataclasses

    import ptychopinn.data.simulate as sim

    drawn = []

    def spy(intensity, rng):
        k = sample_poisson(intensity, rng)
        drawn.append(k)
        return k

    monkeypatch.setattr(sim, "sample_poisson", spy)
    cfg = sim.SimulationConfig(object_size=64, patch_size=16, n_positions=40, photons=1e3, seed=2)
    d = sim.simulate(cfg, batch=16)
    assert len(drawn) == 3  # one call per batch of 16 patterns
    np.testing.assert_array_equal(d.diffraction, np.sqrt(np.concatenate(drawn)).astype(np.float32))
    clean = sim.simulate(dataclasses.replace(cfg, noise=False))
    assert len(drawn) == 3 and not np.array_equal(d.diffraction, clean.diffraction)


def test_poisson_nll_stable_at_zero_counts():
    lam = torch.tensor([0.0, 1e-12, 2.0], requires_grad=True)
    k = torch.tensor([0.0, 0.0, 0.0])
    loss = poisson_nll(lam, k)
    loss.backward()
    assert torch.isfinite(loss) and torch.all(torch.isfinite(lam.grad))
    # minimum of the NLL is at lambda = k
    grid = torch.linspace(0.5, 10, 400)
    best = grid[torch.argmin(torch.stack([poisson_nll(g.expand(1), torch.tensor([4.0]))
                                          for g in grid]))]
    assert float(best) == pytest.approx(4.0, abs=0.03)


def test_poisson_nll_gradcheck():
    lam = torch.rand(2, 4, 4, dtype=torch.float64) + 0.1
    lam.requires_grad_(True)
    k = torch.poisson(torch.full((2, 4, 4), 3.0, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda x: poisson_nll(x, k), (lam,))


def test_forward_gradcheck():
    o = torch.randn(2, 8, 8, dtype=torch.complex128, requires_grad=True)
    p = torch.randn(8, 8, dtype=torch.complex128)
    assert torch.autograd.gradcheck(lambda x: forward_amplitude(x, p) ** 2, (o,))


def test_probe_normalisation_power():
    p = np.random.default_rng(0).standard_normal((32, 32)).astype(np.complex64) * 7
    pn, f = normalize_probe(p)
    assert np.sum(np.abs(pn) ** 2) == pytest.approx(16**2, rel=1e-5)
    np.testing.assert_allclose(pn / f, p, rtol=1e-5)
    assert math.isfinite(f)
