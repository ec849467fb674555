"""Scan refinement (#23): planted position errors and a wrong probe recovered, files round
trip, bad input."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from ptychopinn.cli import main
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.positions import ScanRefinement, refine_scan
from ptychopinn.inference.predict import InferConfig
from ptychopinn.io import load_dataset, save_dataset
from ptychopinn.training.positions import affine_fit, position_rms

# a small scan of the shipped model's size: 100 random positions in a 136-px object
SCAN = {"object": "lines", "scan": "random", "n_positions": 100, "object_size": 136,
        "patch_size": 64, "photons": 1e6, "seed": 1}
QUIET = InferConfig(show_progress=False)


def test_simulated_position_errors_keep_the_truth(tmp_path):
    cfg = SimulationConfig(**SCAN, position_error=1.0, position_drift=3.0,
                           position_scale=0.02)
    data = simulate(cfg)
    exact = simulate(SimulationConfig(**SCAN))
    # the stored (nominal) positions are the error-free scan; the patterns were taken elsewhere
    np.testing.assert_array_equal(data.positions, exact.positions)
    assert not np.allclose(data.diffraction, exact.diffraction)
    fit = affine_fit(data.positions, data.positions_true)
    assert fit["scale_row"] == pytest.approx(1.02, abs=0.01)
    assert fit["scale_col"] == pytest.approx(1.02, abs=0.01)
    path = save_dataset(data, tmp_path / "scan.npz")
    back = load_dataset(path)
    np.testing.assert_array_equal(back.positions_true, data.positions_true)
    np.testing.assert_array_equal(back.positions, data.positions)
    only_scale = simulate(SimulationConfig(**SCAN, position_scale=0.02))
    c = only_scale.positions.mean(axis=0)
    np.testing.assert_allclose(only_scale.positions_true - c,
                               1.02 * (only_scale.positions - c), atol=1e-9)


def test_planted_shift_of_a_subset_is_recovered():
    data = simulate(SimulationConfig(**SCAN))
    true = data.positions.copy()
    moved = np.arange(0, data.n_patterns, 7)
    nominal = true.copy()
    nominal[moved] += np.array([1.2, -0.9])  # 1.5 px
    scan = replace(data, positions=nominal, positions_true=true)
    out, recon, info = refine_scan("general", scan, ScanRefinement(steps=200), QUIET)
    err = out.positions - true
    err -= err.mean(axis=0)  # a global shift is not observable
    dist = np.linalg.norm(err, axis=1)
    assert dist[moved].max() < 0.3
    assert info["error_rms_px_after"] < 0.2 < 0.5 < info["error_rms_px_before"]
    np.testing.assert_array_equal(out.positions_start, nominal)  # the nominal ones are kept
    assert recon.info["scan_refinement"]["steps"] == 200


def test_planted_scale_is_recovered():
    data = simulate(SimulationConfig(**SCAN, position_scale=0.03))
    out, _, info = refine_scan("general", data, ScanRefinement(steps=150), QUIET)
    fit = info["affine"]
    assert fit["scale_row"] == pytest.approx(1.03, abs=0.006)
    assert fit["scale_col"] == pytest.approx(1.03, abs=0.006)
    assert position_rms(out.positions, data.positions_true) < 0.3 * position_rms(
        data.positions, data.positions_true)


def test_refined_positions_survive_export_and_reimport(tmp_path):
    pytest.importorskip("ptychodus")
    from ptychopinn.io.native import with_positions
    from ptychopinn.io.ptychodus import read_product, reconstruction_from_product
    from ptychopinn.io.reconstruction import load_reconstruction

    scan = save_dataset(simulate(SimulationConfig(**SCAN, position_error=1.0)),
                        tmp_path / "scan.npz")
    out = tmp_path / "out"
    assert main(["infer", "--data", str(scan), "--out", str(out), "--refine-positions",
                 "--scan-steps", "60"]) == 0
    refined = with_positions(load_dataset(scan), out / "positions.npz")
    nominal = load_dataset(scan).positions
    np.testing.assert_array_equal(refined.positions_start, nominal)
    assert position_rms(refined.positions, nominal) > 0.3  # they moved
    product = tmp_path / "product.h5"
    assert main(["export", str(out), "--data", str(scan), "--out", str(product),
                 "--pixel-size-m", "1e-8", "--photon-energy-ev", "8000",
                 "--distance-m", "2.0"]) == 0
    _, _, pos = reconstruction_from_product(read_product(product))
    origin = np.asarray(load_reconstruction(out).origin)
    np.testing.assert_allclose(pos + origin, refined.positions, atol=1e-6)


def test_train_refine_positions_writes_the_positions(tmp_path):
    from ptychopinn.config import RunConfig
    from ptychopinn.training.api import train

    data = simulate(SimulationConfig(**{**SCAN, "n_positions": 40, "patch_size": 32,
                                        "object_size": 72}, position_error=1.0))
    cfg = RunConfig().with_overrides(
        model={"kind": "unrolled"},
        train={"epochs": 2, "refine_positions": True, "position_warmup_epochs": 0,
               "position_affine_epochs": 0, "show_progress": False, "accelerator": "cpu"})
    train(data, tmp_path / "run", cfg)
    from ptychopinn.files import read_npz

    z = read_npz(tmp_path / "run" / "positions.npz")
    np.testing.assert_array_equal(z["xcoords_start"], data.positions[:, 1])
    moved = np.hypot(z["xcoords"] - z["xcoords_start"], z["ycoords"] - z["ycoords_start"])
    assert moved.max() > 0.01  # the positions were learned
    info = json.loads((tmp_path / "run" / "summary.json").read_text())["position_refinement"]
    assert info["error_rms_px_before"] == pytest.approx(
        position_rms(data.positions, data.positions_true))


def _refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(("extra", "message"), [
    (["--refine-positions", "--position-lr", "-0.1"],
     "scan refinement lr must be > 0 pixels per step; got -0.1"),
    (["--refine-positions", "--position-bound", "0"],
     "scan refinement bound must be > 0 pixels; got 0.0"),
    (["--position-lr", "0.1"], "--position-lr needs --refine-positions"),
    (["--scan-steps", "10"], "--scan-steps needs --refine-positions or --refine-probe"),
])
def test_infer_refuses_bad_position_options(tmp_path, capsys, extra, message):
    scan = save_dataset(simulate(SimulationConfig(**{**SCAN, "n_positions": 12})),
                        tmp_path / "scan.npz")
    out = tmp_path / "out"
    line = _refused(capsys, ["infer", "--data", str(scan), "--out", str(out), *extra])
    assert line == f"ptychopinn infer: error: {message}"
    assert not out.exists()


def test_train_refuses_bad_position_options(tmp_path, capsys):
    scan = save_dataset(simulate(SimulationConfig(**{**SCAN, "n_positions": 12})),
                        tmp_path / "scan.npz")
    out = tmp_path / "run"
    line = _refused(capsys, ["train", "--data", str(scan), "--out", str(out),
                             "--refine-positions", "--position-lr", "-1"])
    assert line == ("ptychopinn train: error: <dict>: key 'train': position_lr must be > 0 "
                    "pixels per step, got -1.0")
    line = _refused(capsys, ["train", "--data", str(scan), "--out", str(out), "--model",
                             "baseline", "--refine-positions"])
    assert line == ("ptychopinn train: error: <dict>: train.refine_positions needs a "
                    "physics-loss "
                    "model; the supervised baseline does not use the positions")
    assert not out.exists()


def test_position_refinement_refuses_the_supervised_baseline(tmp_path):
    from ptychopinn.config import RunConfig
    from ptychopinn.training.api import train

    data = simulate(SimulationConfig(**{**SCAN, "n_positions": 30, "patch_size": 32,
                                        "object_size": 64}))
    cfg = RunConfig().with_overrides(model={"kind": "baseline"}, grouping={"gridsize": 1},
                                     train={"epochs": 1, "show_progress": False})
    train(data, tmp_path / "base", cfg)
    with pytest.raises(PtychoInputError, match=r"^scan refinement needs a physics-loss "
                                               r"model; the supervised baseline does not "
                                               r"model the measurement$"):
        refine_scan(tmp_path / "base", data, ScanRefinement(steps=1), QUIET)
    with pytest.raises(PtychoInputError, match="position_bound must be > 0 pixels"):
        RunConfig().with_overrides(train={"refine_positions": True, "position_bound": 0})


def test_a_wrong_probe_is_refined_towards_the_scan_s_own():
    """A scan reconstructed from a too-wide probe guess: the refined probe is closer to the one
    the patterns were measured with, and the reconstruction better."""
    from ptychopinn.data.simulate import disk_probe
    from ptychopinn.evaluation import evaluate
    from ptychopinn.inference.predict import reconstruct
    from ptychopinn.physics.probe import normalize_probe, probe_error

    data = simulate(SimulationConfig(**SCAN))
    truth = normalize_probe(data.probe)[0]
    guess = disk_probe(64, radius=14.0, defocus=0.0)  # measured with radius 16, defocus 1
    scan = replace(data, probe=guess * np.sqrt(np.sum(np.abs(data.probe) ** 2)
                                               / np.sum(np.abs(guess) ** 2)))
    out, recon, info = refine_scan("general", scan, ScanRefinement(
        positions=False, probe=True, rounds=2, steps=100), QUIET)
    before = probe_error(normalize_probe(scan.probe)[0], truth)
    after = probe_error(normalize_probe(out.probe)[0], truth)
    assert after < 0.7 * before
    plain = reconstruct("general", scan, QUIET)
    ssim = [evaluate(data.obj, r.object)["phase"]["ssim"] for r in (plain, recon)]
    assert ssim[1] > ssim[0] + 0.05
    np.testing.assert_array_equal(out.positions, data.positions)  # positions left alone
    assert info["probe_change"] > 0 and len(info["rounds"]) == 2
