"""Test-time adaptation and PINN-initialised pty-chi refinement (``infer --adapt-* / --refine``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ptychopinn.cli import main
from ptychopinn.config import RunConfig
from ptychopinn.data.inspect import sha256_file
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.adapt import PHYSICS_KINDS, AdaptConfig, adapt, physics_loss
from ptychopinn.inference.predict import InferConfig, load_reconstruction, reconstruct
from ptychopinn.inference.refine import initial_object, refine_reconstruction
from ptychopinn.io.dataset import save_dataset
from ptychopinn.iterative import ptychi_backend
from ptychopinn.iterative.ptychi_backend import IterativeConfig, IterativeResult
from ptychopinn.physics.patches import extract_patches
from ptychopinn.training.api import train
from ptychopinn.training.bundle import load_bundle

needs_ptychi = pytest.mark.skipif(not ptychi_backend.is_available(),
                                  reason="pty-chi not installed")
QUIET = InferConfig(show_progress=False)


def tiny_config(**kw) -> SimulationConfig:
    """The tiny scan of ``conftest.tiny_data`` (64 patterns, 16 px), with overrides."""
    base = dict(object_size=64, patch_size=16, n_positions=64, photons=1e5, seed=3,
                probe_defocus=1.0)
    return SimulationConfig(**{**base, **kw})


def _cfg(kind: str = "pinn", epochs: int = 2) -> RunConfig:
    gs = 1 if kind == "baseline" else 2
    model = {"kind": kind}
    if kind == "unrolled":
        model["n_iterations"] = 2
    return RunConfig().with_overrides(model=model, grouping={"gridsize": gs},
                                      train={"epochs": epochs, "show_progress": False})


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_data):
    """One short training run per kind (pinn, unrolled, baseline) on the tiny scan."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for kind in (*PHYSICS_KINDS, "baseline"):
        train(tiny_data, root / kind, _cfg(kind, epochs=1 if kind == "baseline" else 2))
        out[kind] = root / kind
    return out


@pytest.fixture(scope="module")
def scan():
    """Another scan (other object and positions, same dose) to adapt to."""
    return simulate(tiny_config(seed=5))


@pytest.fixture(scope="module")
def scan_npz(tmp_path_factory, scan):
    path = tmp_path_factory.mktemp("scan") / "scan.npz"
    save_dataset(scan, path)
    return path


def _state(bundle) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in bundle.model.state_dict().items()}


@pytest.mark.parametrize("kind", PHYSICS_KINDS)
def test_adaptation_lowers_the_physics_loss_and_writes_a_run(kind, runs, scan, tmp_path):
    bundle = load_bundle(runs[kind])
    before = _state(bundle)
    res = adapt(bundle, scan, tmp_path / "adapted",
                AdaptConfig(epochs=2, show_progress=False))
    assert res.epochs_completed == 2
    assert res.loss_after < res.loss_before
    # the caller's bundle is untouched; the adapted one is a normal, loadable run directory
    assert all(torch.equal(before[k], v) for k, v in bundle.model.state_dict().items())
    for f in ("model.zip", "config.yaml", "metrics.csv", "summary.json"):
        assert (tmp_path / "adapted" / f).is_file(), f
    assert not list(tmp_path.glob(".adapted.tmp-*"))
    adapted = load_bundle(tmp_path / "adapted")
    assert adapted.model.cfg == bundle.model.cfg
    changed = [k for k, v in adapted.model.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, before[k])]
    assert any(k.startswith("net.") for k in changed)
    # adaptation starts from the model conditioned on the scan: its probe (normalised) and
    # its count scale (the input scale of the scan's mean counts)
    from ptychopinn.physics.probe import normalize_probe

    n = scan.patch_size
    mean_counts = scan.mean_total_counts()
    assert float(adapted.model.input_scale) == pytest.approx((n / 2) / np.sqrt(mean_counts),
                                                             rel=1e-6)
    np.testing.assert_allclose(adapted.model.physics.probe.numpy(),
                               normalize_probe(scan.probe)[0], atol=1e-6)
    man = adapted.manifest
    assert man["normalisation_constants"]["mean_total_counts"] == pytest.approx(mean_counts)
    assert man["grouping_config"]["gridsize"] == bundle.manifest["grouping_config"]["gridsize"]
    assert man["initialised_from"]["weights_sha256"] == bundle.manifest["weights_sha256"]
    assert man["train_config"]["learning_rate"] == pytest.approx(
        bundle.manifest["train_config"]["learning_rate"] / 2) == res.learning_rate
    assert physics_loss(adapted, scan) == pytest.approx(res.loss_after, rel=1e-6)
    # run_inference(adapt_cfg=) gives the same object as reconstructing with the adapted run,
    # and its temporary run directory is gone
    from ptychopinn.inference.workflow import run_inference

    res2 = run_inference(bundle, scan, QUIET, adapt_cfg=AdaptConfig(epochs=2,
                                                                    show_progress=False))
    r = res2.reconstruction
    assert r is res2.network and res2.loss_history is None
    assert not res2.adapted.run_dir.exists() and r.info["adapted_model"] is None
    np.testing.assert_allclose(r.object, reconstruct(adapted, scan, QUIET).object,
                               rtol=1e-5, atol=1e-6)
    assert r.info["adapt_epochs"] == 2 and r.info["adapt_seconds"] > 0
    assert r.info["seconds"] < r.info["adapt_seconds"]


@pytest.mark.parametrize("kind", ["pinn", "unrolled"])
def test_adaptation_can_refine_the_probe(kind, runs, scan, tmp_path):
    """``refine_probe``: the adapted bundle holds a new probe of the same total power (the
    network with physics inside uses it too: its reconstruction follows it) and the run
    directory its probe.npz on the scan's photon scale."""
    from ptychopinn.data.simulate import load_probe
    from ptychopinn.physics.probe import normalize_probe, probe_error

    bundle = load_bundle(runs[kind])
    res = adapt(bundle, scan, tmp_path / "a",
                AdaptConfig(epochs=1, refine_probe=True, probe_lr=1e-2, show_progress=False))
    p0 = bundle.model.physics.probe.numpy()
    p1 = res.bundle.model.physics.probe.numpy()
    assert probe_error(p1, p0) > 1e-3
    assert np.sum(np.abs(p1) ** 2) == pytest.approx(np.sum(np.abs(p0) ** 2), rel=1e-4)
    assert res.probe_path == tmp_path / "a" / "probe.npz"
    saved = load_probe(res.probe_path, 16)
    np.testing.assert_allclose(normalize_probe(saved)[0], p1, atol=1e-5)
    assert np.sum(np.abs(saved) ** 2) == pytest.approx(np.sum(np.abs(scan.probe) ** 2),
                                                       rel=1e-4)
    assert res.info()["adapted_probe"] == str(res.probe_path)
    # the refined probe reaches the reconstruction: the same weights with the old probe differ
    swapped = load_bundle(tmp_path / "a")
    swapped.model.physics.probe = torch.from_numpy(p0)
    assert not np.allclose(reconstruct(res.bundle, scan, QUIET).object,
                           reconstruct(swapped, scan, QUIET).object, atol=1e-4)


def test_refinement_after_probe_adaptation_starts_from_the_refined_probe(runs, scan_npz,
                                                                         tmp_path, monkeypatch):
    """``infer --adapt-epochs 1 --refine-probe --refine epie``: pty-chi gets the probe of
    ``OUT/adapted/probe.npz`` (photon scale), not the dataset's."""
    from ptychopinn.data.simulate import load_probe
    from ptychopinn.inference.workflow import infer_to_dir

    captured: dict = {}
    monkeypatch.setattr(ptychi_backend, "is_available", lambda: True)
    monkeypatch.setattr(ptychi_backend, "run_iterative", _fake_iterative(captured))
    infer_to_dir(runs["pinn"], scan_npz, tmp_path / "out", QUIET,
                 adapt_cfg=AdaptConfig(epochs=1, refine_probe=True, show_progress=False),
                 refine=IterativeConfig(algorithm="epie", epochs=2))
    refined = load_probe(tmp_path / "out" / "adapted" / "probe.npz", 16)
    np.testing.assert_array_equal(captured["probe"], refined)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["adapted_probe"] == str(tmp_path / "out" / "adapted" / "probe.npz")


def test_adapt_config_refuses_a_bad_probe_lr():
    with pytest.raises(PtychoInputError) as e:
        AdaptConfig(epochs=1, refine_probe=True, probe_lr=-1.0)
    assert str(e.value) == "adaptation probe_lr must be > 0; got -1.0"


def test_adaptation_is_time_boxed(runs, scan, tmp_path):
    res = adapt(runs["pinn"], scan, tmp_path / "a", AdaptConfig(minutes=0.01, show_progress=False))
    assert 1 <= res.epochs_completed < 1000
    assert res.train_seconds < 30
    assert (tmp_path / "a" / "model.zip").is_file()


def test_existing_adapted_folder_is_refused(runs, scan, tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(PtychoInputError, match="already exists"):
        adapt(runs["pinn"], scan, tmp_path / "a", AdaptConfig(epochs=1, show_progress=False))
    assert list(tmp_path.iterdir()) == [tmp_path / "a"]


@pytest.mark.parametrize("kw, msg", [
    ({}, "adaptation needs a budget: minutes and/or epochs"),
    ({"minutes": 0}, "adaptation minutes must be > 0; got 0"),
    ({"minutes": float("nan")}, "adaptation minutes must be > 0; got nan"),
    ({"epochs": 0}, "adaptation epochs must be an integer >= 1; got 0"),
    ({"epochs": 1.5}, "adaptation epochs must be an integer >= 1; got 1.5"),
])
def test_adapt_config_refuses_bad_budgets(kw, msg):
    with pytest.raises(PtychoInputError) as e:
        AdaptConfig(**kw)
    assert str(e.value) == msg


def _fake_iterative(captured: dict):
    """Stands in for ``run_iterative``: records its inputs, returns the start unchanged."""

    def run(diffraction, positions_rc, probe, object_shape, config=None, *, initial_object=None,
            show_progress=False, worker=None):
        captured.update(start=initial_object, positions=positions_rc, probe=probe,
                        shape=object_shape, config=config)
        ones = np.ones(object_shape, np.float32)
        return IterativeResult(object=initial_object, coverage=ones, probe=probe,
                               positions_rc=positions_rc, loss_history=np.array([2.0, 1.0]),
                               wall_time_s=0.5, total_time_s=1.0, device="cpu",
                               algorithm=config.algorithm, ptychi_version="fake")

    return run


def test_refinement_starts_from_the_stitched_object(runs, tiny_data, monkeypatch):
    net = reconstruct(runs["pinn"], tiny_data, QUIET)
    covered = net.coverage > 0
    assert 0.2 < covered.mean() < 1
    captured: dict = {}
    monkeypatch.setattr(ptychi_backend, "is_available", lambda: True)
    monkeypatch.setattr(ptychi_backend, "run_iterative", _fake_iterative(captured))
    refined, _ = refine_reconstruction(net, tiny_data, IterativeConfig(algorithm="epie",
                                                                       epochs=2))
    start = captured["start"]
    a = refined.info["initial_amplitude_scale"]
    assert a > 0 and a != 1
    # free space (1, phase 0) where nothing was reconstructed, a x the network's object elsewhere
    assert np.all(start[~covered] == 1)
    np.testing.assert_allclose(start[covered], a * net.object[covered], rtol=1e-6)
    assert captured["config"].algorithm == "epie" and captured["shape"] == net.object.shape
    np.testing.assert_array_equal(captured["probe"], tiny_data.probe)
    # a makes the predicted total counts equal the measured ones (Parseval)
    patches = extract_patches(torch.from_numpy(start), torch.from_numpy(tiny_data.positions), 16)
    predicted = float((torch.from_numpy(tiny_data.probe) * patches).abs().square().sum())
    measured = float(np.sum(np.asarray(tiny_data.diffraction, np.float64) ** 2))
    assert predicted == pytest.approx(measured, rel=1e-3)
    unscaled, a1 = initial_object(net, tiny_data, scale_amplitude=False)
    assert a1 == 1.0 and np.array_equal(unscaled[covered], net.object[covered])
    assert refined.info["network"]["seconds"] == net.info["seconds"]
    assert refined.info["refine_seconds"] == 0.5


@needs_ptychi
def test_lsqml_from_the_network_is_at_least_as_good_as_from_free_space(runs, tiny_data,
                                                                        ptychi_worker):
    from ptychopinn.evaluation.metrics import evaluate

    net = reconstruct(runs["pinn"], tiny_data, QUIET)
    cfg = IterativeConfig(algorithm="lsqml", epochs=10)
    refined, res_net = refine_reconstruction(net, tiny_data, cfg, show_progress=False,
                                             worker=ptychi_worker)
    res_flat = ptychi_backend.run_iterative(np.asarray(tiny_data.diffraction), tiny_data.positions,
                                            tiny_data.probe, tiny_data.obj.shape, cfg,
                                            worker=ptychi_worker)
    assert res_net.loss_history[-1] <= res_flat.loss_history[-1]
    cov = res_flat.coverage
    m_net = evaluate(tiny_data.obj, refined.object, coverage=cov)
    m_flat = evaluate(tiny_data.obj, res_flat.object, coverage=cov)
    for part in ("amplitude", "phase"):
        assert m_net[part]["ssim"] >= m_flat[part]["ssim"], part
        assert m_net[part]["mae"] <= m_flat[part]["mae"], part


@needs_ptychi
def test_cli_adapt_then_refine_end_to_end(runs, scan_npz, scan, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["infer", "--model", str(runs["pinn"]), "--data", str(scan_npz), "--out",
                 str(out), "--adapt-epochs", "1", "--refine", "lsqml", "--refine-epochs",
                 "3"]) == 0
    final = load_reconstruction(out)
    network = load_reconstruction(out / "network")
    adapted = load_bundle(out / "adapted")
    assert (adapted.manifest["initialised_from"]["weights_sha256"]
            == load_bundle(runs["pinn"]).manifest["weights_sha256"])
    assert adapted.manifest["training_data"]["sha256"] == sha256_file(scan_npz)
    # the network's own object is the adapted model's reconstruction
    np.testing.assert_allclose(network.object, reconstruct(adapted, scan, QUIET).object,
                               rtol=1e-5, atol=1e-6)
    assert final.object.shape == network.object.shape == scan.obj.shape
    assert not np.allclose(final.object, network.object)
    info = final.info
    assert info["algorithm"] == "lsqml" and info["epochs"] == 3
    for key in ("adapt_seconds", "inference_seconds", "refine_seconds"):
        assert info[key] > 0, key
    assert network.info["adapt_epochs"] == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["refine_epochs"] == 3 and summary["adapt_epochs"] == 1
    assert summary["inference_seconds"] == network.info["seconds"]
    assert len((out / "loss_history.csv").read_text().splitlines()) == 4
    assert "timings: adaptation" in capsys.readouterr().err
    # the adapted run is reusable as a model
    assert main(["infer", "--model", str(out / "adapted"), "--data", str(scan_npz), "--out",
                 str(tmp_path / "again")]) == 0
    np.testing.assert_allclose(load_reconstruction(tmp_path / "again").object, network.object,
                               rtol=1e-5, atol=1e-6)


def _refused(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    return err


@pytest.mark.parametrize("extra, msg", [
    (["--adapt-minutes", "0"], "--adapt-minutes must be > 0; got 0"),
    (["--adapt-minutes", "-1.5"], "--adapt-minutes must be > 0; got -1.5"),
    (["--adapt-minutes", "nan"], "--adapt-minutes must be > 0; got nan"),
    (["--adapt-epochs", "0"], "--adapt-epochs must be an integer >= 1; got 0"),
    (["--adapt-epochs", "-3"], "--adapt-epochs must be an integer >= 1; got -3"),
    (["--refine", "lsqml", "--refine-epochs", "0"],
     "--refine-epochs must be an integer >= 1; got 0"),
    (["--refine-epochs", "5"], "--refine-epochs needs --refine ALGORITHM"),
    (["--scan-rounds", "2"], "--scan-rounds needs --refine-positions or --refine-probe"),
    (["--refine-probe", "--scan-rounds", "0"],
     "scan refinement rounds must be an integer >= 1; got 0"),
    (["--adapt-epochs", "1", "--probe-lr", "0.1"], "--probe-lr needs --refine-probe"),
    (["--adapt-epochs", "1", "--refine-probe", "--probe-lr", "-0.5"],
     "--probe-lr must be > 0; got -0.5"),
])
def test_cli_refuses_bad_budgets(extra, msg, runs, tiny_npz, tmp_path, capsys):
    out = tmp_path / "out"
    err = _refused(["infer", "--model", str(runs["pinn"]), "--data", str(tiny_npz), "--out",
                    str(out), *extra], capsys)
    assert err == f"ptychopinn infer: error: {msg}"
    assert not out.exists()


def test_cli_refuses_an_unknown_refine_algorithm(runs, tiny_npz, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["infer", "--model", str(runs["pinn"]), "--data", str(tiny_npz), "--out",
              str(tmp_path / "out"), "--refine", "sirt"])
    assert e.value.code == 2
    assert "argument --refine: invalid choice: 'sirt'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_refine_without_ptychi(runs, tiny_npz, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ptychi_backend, "is_available", lambda: False)
    out = tmp_path / "out"
    err = _refused(["infer", "--model", str(runs["pinn"]), "--data", str(tiny_npz), "--out",
                    str(out), "--adapt-epochs", "1", "--refine", "dm"], capsys)
    assert err == ("ptychopinn infer: error: refinement needs pty-chi, which is not installed: "
                   "pip install 'ptychopinn[ptychi]'")
    assert not out.exists()


def test_cli_refuses_adapting_the_supervised_baseline(runs, tiny_npz, tmp_path, capsys):
    out = tmp_path / "out"
    err = _refused(["infer", "--model", str(runs["baseline"]), "--data", str(tiny_npz),
                    "--out", str(out), "--adapt-minutes", "1"], capsys)
    assert err == ("ptychopinn infer: error: model.kind 'baseline' is supervised (trained "
                   "against labels) and cannot adapt to a scan; adaptation needs a "
                   f"physics-loss model ({', '.join(PHYSICS_KINDS)})")
    assert {"pinn", "unrolled"} <= set(PHYSICS_KINDS) and "baseline" not in PHYSICS_KINDS
    assert not out.exists()


def test_cli_refuses_adapting_to_another_pattern_size(runs, tmp_path, capsys):
    big = tmp_path / "big.npz"
    save_dataset(simulate(tiny_config(patch_size=32, n_positions=16)), big)
    out = tmp_path / "out"
    err = _refused(["infer", "--model", str(runs["pinn"]), "--data", str(big), "--out",
                    str(out), "--adapt-epochs", "1"], capsys)
    assert err == (f"ptychopinn infer: error: {big}: patterns are 32x32 but the model expects "
                   "16x16; adaptation cannot change the pattern size")
    assert not out.exists()


def test_cli_refuses_an_existing_adapted_model(runs, tiny_npz, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "adapted").mkdir(parents=True)
    err = _refused(["infer", "--model", str(runs["pinn"]), "--data", str(tiny_npz), "--out",
                    str(out), "--adapt-epochs", "1"], capsys)
    assert err == (f"ptychopinn infer: error: {out / 'adapted'}: already holds an adapted "
                   "model; choose another --out or remove it")
    assert [p.name for p in out.iterdir()] == ["adapted"]
    assert not any((out / "adapted").iterdir())
