"""Probe refinement during training (``train.refine_probe`` / ``train --refine-probe``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from ptychopinn.cli import main
from ptychopinn.config import RunConfig
from ptychopinn.data.simulate import SimulationConfig, load_probe, simulate
from ptychopinn.errors import PtychoInputError
from ptychopinn.evaluation import evaluate
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.io.dataset import save_dataset
from ptychopinn.physics.probe import ProbeParameter, normalize_probe, probe_error
from ptychopinn.training.api import train
from ptychopinn.training.bundle import load_bundle

QUIET = InferConfig(show_progress=False)


def _blurred(probe: np.ndarray, sigma: float) -> np.ndarray:
    return (gaussian_filter(probe.real, sigma) + 1j * gaussian_filter(probe.imag, sigma)
            ).astype(np.complex64)


def _cfg(kind: str, n: int, epochs: int, **train_kw) -> RunConfig:
    model = {"n": n, "kind": kind, "gridsize": 2}
    if kind == "unrolled":
        model["n_iterations"] = 3
    return RunConfig().with_overrides(model=model, grouping={"gridsize": 2},
                                      train={"epochs": epochs, "show_progress": False,
                                             **train_kw})


def test_planted_probe_is_recovered_and_the_object_improves(tmp_path):
    """Data from a known probe, training from a blurred copy: the refined probe is closer to
    the truth and the reconstruction better than with the blurred probe held fixed."""
    data = simulate(SimulationConfig(object_size=72, patch_size=32, n_positions=80,
                                     photons=1e6, seed=3, probe_defocus=3.0, overlap=0.8))
    start = _blurred(data.probe, 1.5)
    err0 = probe_error(start, data.probe)
    assert err0 > 0.25
    wrong = dataclasses.replace(data, probe=start)
    results = {}
    for refine in (False, True):
        run = tmp_path / f"refine_{refine}"
        train(wrong, run, _cfg("unrolled", 32, 3, refine_probe=refine, probe_lr=2e-2,
                                probe_warmup_epochs=0, batch_size=4))
        bundle = load_bundle(run)
        probe = bundle.model.physics.probe.numpy()
        # the model's own probe (blurred, or refined from it), not the scan's true one
        rec = reconstruct(bundle, data, InferConfig(show_progress=False, probe="bundle"))
        m = evaluate(data.obj, rec.object, coverage=rec.coverage)
        results[refine] = (probe_error(probe, data.probe), m["phase"]["ssim"],
                           m["amplitude"]["ssim"])
    fixed, refined = results[False], results[True]
    assert fixed[0] == pytest.approx(err0, abs=1e-4)  # held fixed: still the blurred probe
    assert refined[0] < err0 - 0.02, results  # measured: 0.284 -> 0.246
    assert refined[1] > fixed[1] + 0.03 and refined[2] > fixed[2] + 0.03, results
    # the refined probe is in RUN_DIR/probe.npz on the data's photon scale
    saved = load_probe(tmp_path / "refine_True" / "probe.npz", 32)
    assert np.sum(np.abs(saved) ** 2) == pytest.approx(np.sum(np.abs(start) ** 2), rel=1e-4)
    bundle_probe = load_bundle(tmp_path / "refine_True").model.physics.probe.numpy()
    np.testing.assert_allclose(normalize_probe(saved)[0], bundle_probe, atol=1e-5)
    assert not (tmp_path / "refine_False" / "probe.npz").exists()


def test_pinn_kind_refines_a_constrained_probe_and_warmup_holds_it(tmp_path, tiny_data):
    """The faithful CNN learns the probe too; total power (N/2)² and the support hold;
    during the warm-up epochs the probe does not move."""
    n = tiny_data.patch_size
    train(tiny_data, tmp_path / "r", _cfg("pinn", n, 1, refine_probe=True, probe_lr=1e-2,
                                          probe_warmup_epochs=0, probe_support_radius=6.0))
    b = load_bundle(tmp_path / "r")
    p = b.model.physics.probe.numpy()
    init = normalize_probe(tiny_data.probe)[0]
    assert np.sum(np.abs(p) ** 2) == pytest.approx((n / 2) ** 2, rel=1e-4)
    k = np.arange(n) - n // 2
    outside = np.hypot(k[:, None], k[None, :]) > 6.0
    assert np.all(p[outside] == 0)
    assert probe_error(p, init) > 1e-3
    man = b.manifest["probe_refinement"]
    assert man["support_radius"] == 6.0 and man["change_from_initial"] > 1e-3
    # warm-up covering every epoch: the probe is the initial one, masked and renormalised
    train(tiny_data, tmp_path / "w", _cfg("pinn", n, 1, refine_probe=True,
                                          probe_warmup_epochs=1, probe_support_radius=6.0))
    held = load_bundle(tmp_path / "w").model.physics.probe.numpy()
    expect = ProbeParameter(torch.from_numpy(init), support_radius=6.0)().detach().numpy()
    np.testing.assert_allclose(held, expect, atol=1e-6)


@pytest.mark.parametrize(("train_kw", "message"), [
    ({"probe_lr": -0.1}, "key 'train': probe_lr must be > 0, got -0.1"),
    ({"probe_lr": float("nan")}, "key 'train.probe_lr': expected a finite number, got nan"),
    ({"probe_warmup_epochs": -1}, "key 'train': probe_warmup_epochs must be >= 0, got -1"),
    ({"probe_support_radius": 0.0},
     "key 'train': probe_support_radius must be > 0 pixels, got 0.0"),
])
def test_bad_probe_values_are_refused_in_one_line(train_kw, message):
    with pytest.raises(PtychoInputError) as e:
        RunConfig.from_dict({"train": {"refine_probe": True, **train_kw}}, source="run.yaml")
    assert str(e.value) == f"run.yaml: {message}"


def test_baseline_refusing_probe_refinement():
    with pytest.raises(PtychoInputError, match="^x.yaml: train.refine_probe needs a "
                                               "physics-loss model"):
        RunConfig.from_dict({"model": {"kind": "baseline", "gridsize": 1},
                             "grouping": {"gridsize": 1}, "train": {"refine_probe": True}},
                            source="x.yaml")


def test_cli_refuses_a_negative_probe_lr_writing_nothing(tmp_path, tiny_data, capsys):
    save_dataset(tiny_data, tmp_path / "d.npz")
    rc = main(["train", "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "run"),
               "--refine-probe", "--probe-lr", "-1", "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "probe_lr must be > 0, got -1" in err
    assert not (tmp_path / "run").exists()
