from __future__ import annotations

import json
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
import torch

from ptychopinn.cli import main
from ptychopinn.config import ModelConfig, RunConfig, load_config
from ptychopinn.inference.predict import InferConfig, load_reconstruction, reconstruct
from ptychopinn.io.dataset import load_dataset, save_dataset
from ptychopinn.training.api import build_model, train
from ptychopinn.training.bundle import load_bundle


def _cfg(**train):
    return RunConfig().with_overrides(train={"epochs": 1, "show_progress": False, **train})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data):
    run = tmp_path_factory.mktemp("run") / "pinn"
    train(tiny_data, run, _cfg(epochs=2))
    return run


def test_end_to_end_cli(tmp_path, capsys):
    data = tmp_path / "d.npz"
    assert main(["simulate", "--out", str(data), "--n-positions", "64", "--patch-size", "16",
                 "--object-size", "64", "--photons", "1e5"]) == 0
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "2",
                 "--gridsize", "2"]) == 0
    for f in ("model.zip", "config.yaml", "metrics.csv", "summary.json", "checkpoints/last.ckpt"):
        assert (tmp_path / "run" / f).exists(), f
    assert main(["infer", "--model", str(tmp_path / "run"), "--data", str(data), "--out",
                 str(tmp_path / "inf")]) == 0
    r = load_reconstruction(tmp_path / "inf")
    d = load_dataset(data)
    assert r.object.shape == d.obj.shape and r.object.dtype == np.complex64
    assert r.coverage.shape == d.obj.shape and (r.coverage > 0).mean() > 0.3
    assert (r.object[r.coverage == 0] == 0).all()
    assert (tmp_path / "inf" / "amplitude.png").exists()
    assert (tmp_path / "inf" / "phase.png").exists()
    assert main(["compare", "--ref", str(data), "--recon", f"pinn={tmp_path / 'inf'}", "--out",
                 str(tmp_path / "cmp")]) == 0
    header = (tmp_path / "cmp" / "metrics.csv").read_text().splitlines()[0]
    assert header == "model,metric,part,value"
    assert "PtychoPINN" in (tmp_path / "cmp" / "metrics.csv").read_text()


def test_gradient_reaches_every_parameter(tiny_data):
    model, _ = build_model(_cfg(), tiny_data)
    amp = torch.from_numpy(tiny_data.diffraction[:8].reshape(2, 4, 16, 16))
    offsets = torch.randn(2, 4, 2)
    out = model(amp, offsets)
    (out["pred_amplitude"] ** 2 - amp**2).abs().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.any(p.grad != 0), name


def test_bundle_round_trip_identical_predictions(trained, tiny_data):
    b1 = load_bundle(trained)
    b2 = load_bundle(trained / "model.zip")
    r1 = reconstruct(b1, tiny_data, InferConfig(show_progress=False))
    r2 = reconstruct(b2, tiny_data, InferConfig(show_progress=False))
    np.testing.assert_array_equal(r1.object, r2.object)
    man = b1.manifest
    assert man["format_version"] == 1 and man["training_data"]["n_patterns"] == 64
    assert man["normalisation"]["intensity_scale"] > 0


def test_inference_independent_of_batch_size(trained, tiny_data):
    a = reconstruct(trained, tiny_data, InferConfig(batch_size=64, show_progress=False))
    b = reconstruct(trained, tiny_data, InferConfig(batch_size=5, show_progress=False))
    np.testing.assert_allclose(a.object, b.object, rtol=1e-4, atol=1e-5)


def _bundle_cases(src, tmp_path):
    raw = src.read_bytes()
    cases = {}
    (tmp_path / "trunc.zip").write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = (tmp_path / "trunc.zip", "corrupt or truncated bundle")
    (tmp_path / "foreign.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    cases["foreign_empty"] = (tmp_path / "foreign.zip", "not a ptychopinn bundle")
    with zipfile.ZipFile(src) as z:
        man = json.loads(z.read("manifest.json"))
        w = bytearray(z.read("weights.safetensors"))
    w[-5] ^= 0xFF
    with zipfile.ZipFile(tmp_path / "tampered.zip", "w") as z:
        z.writestr("manifest.json", json.dumps(man))
        z.writestr("weights.safetensors", bytes(w))
    cases["tampered"] = (tmp_path / "tampered.zip", "weights checksum mismatch")
    with zipfile.ZipFile(tmp_path / "trav.zip", "w") as z:
        z.writestr("../evil.txt", "x")
        z.writestr("manifest.json", json.dumps(man))
    cases["traversal"] = (tmp_path / "trav.zip", "not a ptychopinn bundle")
    with zipfile.ZipFile(tmp_path / "version.zip", "w") as z:
        z.writestr("manifest.json", json.dumps({**man, "format_version": 99}))
        z.writestr("weights.safetensors", bytes(w))
    cases["version"] = (tmp_path / "version.zip", "unsupported bundle format_version 99")
    return cases


@pytest.mark.parametrize("case", ["truncated", "foreign_empty", "tampered", "traversal",
                                  "version"])
def test_bad_bundles_refused_with_one_line(case, trained, tiny_npz, tmp_path, capsys):
    path, expected = _bundle_cases(trained / "model.zip", tmp_path)[case]
    code = main(["infer", "--model", str(path), "--data", str(tiny_npz), "--out",
                 str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "o").exists()
    assert not (tmp_path.parent / "evil.txt").exists()


def test_resume_continues_from_checkpoint_epoch(tmp_path, tiny_data):
    run = tmp_path / "run"
    train(tiny_data, run, _cfg(epochs=1))
    with pytest.raises(ValueError, match="pass --resume"):
        train(tiny_data, run, _cfg(epochs=3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = train(tiny_data, run, _cfg(epochs=3), resume=True)
    # the run keeps its logs and checkpoints: Lightning's "not empty ... will be deleted" is hidden
    assert not [w for w in caught if "exists and is not empty" in str(w.message)], caught
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == 1 and res.epochs_completed == 3
    # the epoch count travels in our own checkpoint entry, not in Lightning's loop state
    from ptychopinn.training.checkpoint_io import load_state
    from ptychopinn.training.module import CHECKPOINT_KEY, checkpoint_epochs

    state = load_state(run / "checkpoints" / "last.ckpt")
    assert state[CHECKPOINT_KEY]["epochs_completed"] == 3
    # the best-validation state (train.keep_best) travels with it across the resume
    best = state[CHECKPOINT_KEY]["best"]
    assert 1 <= best["epoch"] <= 3 and best["epoch"] == summary["kept_epoch"]
    del state[CHECKPOINT_KEY]  # a checkpoint from before the entry: Lightning's epoch field
    assert checkpoint_epochs(state) == 3
    import pandas as pd

    epochs = pd.read_csv(run / "metrics.csv")["epoch"].dropna().unique()
    assert sorted(epochs.astype(int)) == [0, 1, 2]


def test_resume_after_kill(tmp_path, tiny_npz):
    """A training process killed mid-run is continued by --resume from its last epoch."""
    run = tmp_path / "run"
    code = (
        "import sys, os\n"
        "from lightning.pytorch.callbacks import Callback\n"
        "import ptychopinn.training.api as api\n"
        "class Kill(Callback):\n"
        "    def on_train_epoch_end(self, trainer, module):\n"
        "        if trainer.current_epoch == 1: os._exit(17)\n"
        "orig = api._callbacks\n"
        "api._callbacks = lambda *a: orig(*a) + [Kill()]\n"
        "from ptychopinn.cli import main\n"
        f"main(['train', '--data', r'{tiny_npz}', '--out', r'{run}', '--epochs', '5'])\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 17, p.stderr[-2000:]
    assert (run / "checkpoints" / "last.ckpt").exists() and not (run / "model.zip").exists()
    assert main(["train", "--data", str(tiny_npz), "--out", str(run), "--epochs", "5",
                 "--resume"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from_epoch"] >= 1 and summary["epochs_completed"] == 5


def test_baseline_refuses_unlabelled_data(tmp_path, tiny_data, capsys):
    from dataclasses import replace

    p = save_dataset(replace(tiny_data, obj=None, ground_truth_patches=None), tmp_path / "u.npz")
    code = main(["train", "--data", str(p), "--out", str(tmp_path / "r"), "--model", "baseline"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "no labels (ground_truth_patches or objectGuess)" in err and "u.npz" in err


def test_baseline_trains_and_infers(tmp_path, tiny_npz):
    assert main(["train", "--data", str(tiny_npz), "--out", str(tmp_path / "b"), "--model",
                 "baseline", "--epochs", "1"]) == 0
    assert load_bundle(tmp_path / "b").model.cfg.kind == "baseline"
    assert main(["infer", "--model", str(tmp_path / "b"), "--data", str(tiny_npz), "--out",
                 str(tmp_path / "bi")]) == 0


def test_yaml_config_unknown_key_and_cli_override(tmp_path, tiny_npz, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  gridsize: 2\n  widht: 3\n")
    code = main(["train", "--data", str(tiny_npz), "--out", str(tmp_path / "r"), "--config",
                 str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "unknown key(s) ['widht'] in section 'model'" in err
    good = tmp_path / "good.yaml"
    good.write_text("grouping:\n  gridsize: 2\ntrain:\n  epochs: 5\n")
    assert main(["train", "--data", str(tiny_npz), "--out", str(tmp_path / "r2"), "--config",
                 str(good), "--epochs", "1", "--gridsize", "1"]) == 0
    ran = load_config(tmp_path / "r2" / "config.yaml")
    assert ran.train.epochs == 1 and ran.grouping.gridsize == 1
    assert "gridsize" not in ran.to_dict()["model"] and "n" not in ran.to_dict()["model"]


def test_model_sizes_32_64_128():
    for n in (32, 64, 128):
        cfg = ModelConfig()
        from ptychopinn.models.pinn import PINN

        m = PINN(cfg, torch.ones(n, n, dtype=torch.complex64), gridsize=2, input_scale=1.0,
                 intensity_scale=1.0)
        assert (m.n, m.gridsize, m.net.encoder.net[0][0].in_channels) == (n, 2, 4)
        out = m(torch.rand(2, 4, n, n), torch.randn(2, 4, 2))
        assert out["patches"].shape == (2, 4, n, n)
        assert float(torch.angle(out["raw"].detach()).abs().max()) < 0.3  # phase starts near 0


def test_infer_groups_cover_matches_every_and_bad_value_refused(trained, tiny_data, tmp_path,
                                                                capsys):
    """Both inference modes reconstruct the same scan; an unknown mode is refused, no output."""
    cover = reconstruct(trained, tiny_data, InferConfig(show_progress=False))
    every = reconstruct(trained, tiny_data, InferConfig(show_progress=False, groups="every"))
    assert cover.info["n_groups"] < every.info["n_groups"] == tiny_data.n_patterns
    # same footprint up to the relative weight floor at the scan's faint edges
    assert np.mean((cover.coverage > 0) == (every.coverage > 0)) > 0.97
    part = reconstruct(trained, tiny_data, InferConfig(show_progress=False, groups="partition"))
    assert part.info["n_groups"] == -(-tiny_data.n_patterns // 4)  # gridsize 2: C = 4
    assert np.mean((part.coverage > 0) == (every.coverage > 0)) > 0.97
    with pytest.raises(ValueError,
                       match="groups must be one of cover, every, partition; got 'all'"):
        InferConfig(groups="all")
    with pytest.raises(SystemExit) as info:
        main(["infer", "--model", str(trained), "--data", "x.npz", "--out",
              str(tmp_path / "out"), "--groups", "all"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("ptychopinn infer: error: argument --groups: invalid choice: 'all' "
                       "(choose from 'cover', 'every', 'partition')")
    assert not (tmp_path / "out").exists()
