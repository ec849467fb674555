from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from ptychopinn.cli import main
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.io.dataset import load_dataset
from ptychopinn.physics import forward_amplitude


def test_seeded_and_reproducible(make_tiny):
    a, b = simulate(make_tiny()), simulate(make_tiny())
    np.testing.assert_array_equal(a.diffraction, b.diffraction)
    np.testing.assert_array_equal(a.positions, b.positions)
    c = simulate(make_tiny(seed=4))
    assert not np.array_equal(a.diffraction, c.diffraction)


@pytest.mark.parametrize("obj", ["lines", "grf"])
def test_object_has_amplitude_and_phase_in_range(obj, make_tiny):
    d = simulate(make_tiny(object=obj, amplitude_range=(0.3, 0.9), phase_range=(-0.5, 1.5)))
    amp, ph = np.abs(d.obj), np.angle(d.obj)
    assert amp.min() == pytest.approx(0.3, abs=1e-5) and amp.max() == pytest.approx(0.9, abs=1e-5)
    assert ph.min() == pytest.approx(-0.5, abs=1e-5) and ph.max() == pytest.approx(1.5, abs=1e-5)
    assert amp.std() > 0.01 and ph.std() > 0.01


def test_noise_free_patterns_equal_forward_of_ground_truth(make_tiny):
    d = simulate(make_tiny(noise=False))
    ref = forward_amplitude(torch.from_numpy(d.ground_truth_patches),
                            torch.from_numpy(d.probe)).numpy()
    np.testing.assert_allclose(d.diffraction, ref, rtol=1e-3, atol=1e-3 * ref.max())


def test_dose_and_poisson_statistics(make_tiny):
    d = simulate(make_tiny(photons=1e4, n_positions=200))
    totals = np.sum(d.diffraction.astype(np.float64) ** 2, axis=(1, 2))
    assert totals.mean() == pytest.approx(1e4, rel=0.02)
    counts = d.diffraction.astype(np.float64) ** 2
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-2)  # integer counts
    clean = simulate(make_tiny(photons=1e4, n_positions=200, noise=False))
    lam = clean.diffraction.astype(np.float64) ** 2
    resid = counts - lam
    assert abs(resid.mean()) < 0.05 * lam.mean() + 0.01
    assert resid.var() == pytest.approx(lam.mean(), rel=0.1)  # Poisson: var = mean


@pytest.mark.parametrize("scan", ["random", "raster", "spiral"])
def test_scans_fit_in_object(scan, make_tiny):
    d = simulate(make_tiny(scan=scan, n_positions=49, step=3.0, jitter=0.5))
    assert d.n_patterns == 49
    assert d.positions.min() >= 8 and d.positions.max() <= 64 - 8
    if scan != "random":
        nn = np.sort(np.linalg.norm(d.positions[:, None] - d.positions[None], axis=-1), 1)[:, 1]
        assert 1.5 < np.median(nn) < 4.5


def test_scan_too_large_is_refused(make_tiny):
    with pytest.raises(ValueError, match="does not fit"):
        simulate(make_tiny(scan="raster", n_positions=400, step=5.0))


def test_bad_config_one_line():
    with pytest.raises(ValueError, match="patch_size must be even"):
        SimulationConfig(patch_size=15)


def test_probe_from_real_reconstruction_file(tmp_path):
    xpp = "/work/shared/data/real/ptychopinn-xpp-run1084-recon/Run1084_recon3_postPC.npz"
    import os

    path = os.environ.get("PTYCHOPINN_XPP", xpp)
    if not os.path.exists(path):
        pytest.skip("shared real data not present")
    d = simulate(SimulationConfig(probe=path, object_size=128, patch_size=64, n_positions=20))
    raw = np.load(path, allow_pickle=False)["probeGuess"]
    corr = np.abs(np.vdot(d.probe, raw)) / (np.linalg.norm(d.probe) * np.linalg.norm(raw))
    assert corr > 0.9999


def test_cli_simulate_and_inspect_1000_positions_in_seconds(tmp_path, capsys):
    out = tmp_path / "sim.npz"
    t0 = time.perf_counter()
    assert main(["simulate", "--out", str(out), "--n-positions", "1000", "--patch-size", "64",
                 "--object-size", "256", "--seed", "1"]) == 0
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert main(["inspect", str(out), "--json", str(tmp_path / "r.json")]) == 0
    t_insp = time.perf_counter() - t0
    md = capsys.readouterr().out
    assert "| patterns M | 1000 |" in md and "SHA-256" in md
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts_per_pattern"]["mean"] == pytest.approx(1e6, rel=0.01)
    assert 0 < report["overlap_fraction"] < 1
    assert t_sim < 20 and t_insp < 10
    d = load_dataset(out)
    assert d.ground_truth_patches.shape == (1000, 64, 64)
    assert json.loads(d.metadata_json())["simulation"]["seed"] == 1


def test_cli_raster_without_n_positions_fills_the_object(tmp_path):
    """--scan raster --step S alone: a full grid at S (not the 1000-position default)."""
    out = tmp_path / "r.npz"
    assert main(["simulate", "--out", str(out), "--scan", "raster", "--step", "4",
                 "--object-size", "64", "--patch-size", "16", "--photons", "1e4"]) == 0
    pos = load_dataset(out).positions
    lo, hi = 16 / 2 + 1, 64 - 16 / 2 - 2  # allowed patch centres
    rows, cols = np.unique(pos[:, 0]), np.unique(pos[:, 1])
    assert len(pos) == len(rows) * len(cols) == 12 * 12  # floor(45 / 4) + 1 per axis
    np.testing.assert_allclose(np.diff(rows), 4.0)
    np.testing.assert_allclose(np.diff(cols), 4.0)
    assert pos.min() >= lo and pos.max() <= hi
    assert rows[-1] - rows[0] + 4 > hi - lo  # one more row would not fit: the object is full
    assert (rows[0] - lo) == pytest.approx(hi - rows[-1])  # centred


def test_raster_fill_keeps_jitter_inside_and_other_scans_default_to_1000(make_tiny):
    d = simulate(make_tiny(scan="raster", n_positions=None, step=5.0, jitter=1.0))  # 43 px: 9
    assert d.n_patterns == 9 * 9 and d.positions.min() >= 9 and d.positions.max() <= 54
    assert simulate(make_tiny(scan="spiral", n_positions=None, step=1.0)).n_patterns == 1000
    from ptychopinn.data.simulate import DEFAULT_N_POSITIONS, make_scan

    cfg = make_tiny(scan="random", n_positions=None)
    pos = make_scan(cfg, np.random.default_rng(0), step=3.0, object_shape=(64, 64))
    assert len(pos) == DEFAULT_N_POSITIONS == 1000
