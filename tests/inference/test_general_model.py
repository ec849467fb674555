"""The general model shipped with the package, and scan-conditioned inference (issue #21).

Small scans (64-px patterns, the shipped model's size, ~100 patterns): plain inference only.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ptychopinn.data.corpus import make_probe
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.errors import PtychoInputError
from ptychopinn.evaluation import evaluate
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.io.dataset import save_dataset
from ptychopinn.training import bundle as bundle_mod
from ptychopinn.training.bundle import load_bundle

QUIET = InferConfig(show_progress=False)


def _scan(*, probe=None, photons: float = 1e6, seed: int = 11, patch: int = 64):
    """A small dense scan (lines object, random positions); ``probe``: an NPZ path."""
    cfg = SimulationConfig(object="lines", object_size=128 if patch == 64 else 64,
                           patch_size=patch, n_positions=120 if patch == 64 else 40,
                           overlap=0.75, photons=photons, seed=seed,
                           probe=str(probe) if probe is not None else "disk")
    return simulate(cfg)


def _probe_file(tmp_path, family: str, seed: int) -> object:
    p, _ = make_probe(family, 64, np.random.default_rng(seed), diameter=(0.45, 0.5))
    path = tmp_path / f"probe_{family}.npz"
    np.savez(path, probeGuess=p)
    return path


def _phase_ssim(data, rec) -> float:
    return evaluate(data.obj, rec.object, coverage=rec.coverage)["phase"]["ssim"]


def test_shipped_model_loads_offline_and_reconstructs_a_small_scan():
    b = load_bundle("general")
    assert b.model.cfg.kind == "unrolled" and b.model.n == 64
    assert b.manifest["trained_on"]["dose_range"] == [1e3, 1e9]
    data = _scan()
    rec = reconstruct("general", data, QUIET)
    assert rec.info["probe_source"] == "scan"
    assert _phase_ssim(data, rec) >= 0.75


def test_the_scans_own_probe_beats_the_bundles(tmp_path):
    """A scan measured with probe B: the network given B reconstructs it better than given the
    probe A it would otherwise assume."""
    probe_b = _probe_file(tmp_path, "square", 2)
    data = _scan(probe=probe_b)
    own = _phase_ssim(data, reconstruct("general", data, QUIET))
    probe_a = tmp_path / "a.npz"
    np.savez(probe_a, probeGuess=simulate(SimulationConfig(object_size=80, n_positions=4)).probe)
    other = _phase_ssim(data, reconstruct("general", data,
                                          InferConfig(show_progress=False, probe=probe_a)))
    assert own > other + 0.1, (own, other)


def test_a_scan_at_100x_the_dose_reconstructs_alike(tmp_path):
    """The count scale comes from the scan: 1e7 and 1e9 photons (both nearly noise-free) give
    the same quality."""
    lo, hi = _scan(photons=1e7), _scan(photons=1e9)
    r_lo, r_hi = reconstruct("general", lo, QUIET), reconstruct("general", hi, QUIET)
    assert r_hi.info["count_scale"] == pytest.approx(10 * r_lo.info["count_scale"], rel=1e-3)
    assert abs(_phase_ssim(lo, r_lo) - _phase_ssim(hi, r_hi)) < 0.02


def test_conditioning_twice_on_the_same_scan_changes_nothing(tmp_path):
    from ptychopinn.inference.condition import condition_on_scan

    data = _scan()
    once, info = condition_on_scan(load_bundle("general"), data)
    twice, info2 = condition_on_scan(once, data)
    assert info2["count_scale"] == pytest.approx(1.0, rel=1e-6)
    assert float(twice.model.physics.log_scale.detach()) == pytest.approx(
        float(once.model.physics.log_scale.detach()))
    assert np.array_equal(twice.model.physics.probe.numpy(), once.model.physics.probe.numpy())


def test_infer_without_model_refuses_a_size_with_no_shipped_model(tmp_path):
    data = _scan(patch=32)
    path = tmp_path / "s32.npz"
    save_dataset(data, path)
    p = subprocess.run([sys.executable, "-m", "ptychopinn.cli", "infer", "--data", str(path),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == (
        "ptychopinn infer: error: no general model ships for 32x32 patterns (sizes: 64x64, "
        "128x128); train one (ptychopinn train --data ...) and pass --model RUN_DIR")
    assert not (tmp_path / "out").exists()


def test_corrupted_shipped_weights_are_refused(tmp_path, monkeypatch):
    import zipfile

    src = bundle_mod.general_path(64)
    bad = tmp_path / "general_n64.zip"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(bad, "w") as out:
        for name in z.namelist():
            blob = bytearray(z.read(name))
            if name.endswith(".safetensors"):
                blob[-1] ^= 0xFF
            out.writestr(name, bytes(blob))
    monkeypatch.setattr(bundle_mod, "general_path", lambda n=64: bad)
    with pytest.raises(PtychoInputError) as e:
        load_bundle("general")
    assert str(e.value) == (f"{bad}: key 'weights.safetensors': weights checksum mismatch "
                            "(tampered or corrupt bundle)")


def test_the_faithful_cnn_warns_when_the_scans_probe_differs(tmp_path, caplog, tiny_data):
    """``pinn`` embeds its training probe in its weights: another probe is reported with its
    distance; the model's probe is unchanged for the same scan."""
    import logging

    from ptychopinn.config import RunConfig
    from ptychopinn.training.api import train

    cfg = RunConfig().with_overrides(train={"epochs": 1, "show_progress": False})
    train(tiny_data, tmp_path / "run", cfg)
    with caplog.at_level(logging.WARNING, logger="ptychopinn"):
        reconstruct(tmp_path / "run", tiny_data, QUIET)
    assert "probe_error" not in caplog.text
    other = simulate(SimulationConfig(object_size=64, patch_size=16, n_positions=64,
                                      photons=1e5, seed=3, probe_defocus=3.0))
    with caplog.at_level(logging.WARNING, logger="ptychopinn"):
        reconstruct(tmp_path / "run", other, QUIET)
    lines = [r.getMessage() for r in caplog.records if "probe_error" in r.getMessage()]
    assert len(lines) == 1 and "model.kind 'pinn'" in lines[0]


def test_general_model_serves_128px_patterns(tmp_path):
    """The canvas network's weights do not depend on N: the shipped model is rebuilt for
    128-px patterns and takes the scan's probe."""
    b = load_bundle("general", patch_size=128)
    assert b.model.n == 128 and b.manifest["resized_from"] == 64
    scan = simulate(SimulationConfig(object_size=200, patch_size=128, n_positions=100, seed=1))
    with pytest.raises(PtychoInputError, match="holds no probe for 128x128"):
        reconstruct(b, scan, InferConfig(show_progress=False, probe="bundle"))
    # its groups of 16² members at 64 px hold 8² at 128 px (the same pattern pixels)
    r = reconstruct(b, scan, InferConfig(show_progress=False, object_steps=0))
    assert r.info["gridsize"] == 8
    assert reconstruct(b, scan, InferConfig(show_progress=False, object_steps=0,
                                            gridsize=10)).info["gridsize"] == 10


def test_shipped_bundle_is_small_and_recorded():
    path = bundle_mod.general_path(64)
    assert path.parent.name == "general" and path.stat().st_size < 5e6
    assert load_bundle(path).manifest["training_data"]["corpus"].endswith("general_corpus.yaml")


def test_infer_without_model_ignores_a_folder_named_general(tmp_path, monkeypatch):
    """No --model means the shipped model, even where the working directory holds a folder
    called ``general`` (e.g. an earlier ``infer --out general``)."""
    from ptychopinn.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "general").mkdir()
    scan = save_dataset(simulate(SimulationConfig(object_size=96, n_positions=20, seed=2)),
                        tmp_path / "scan.npz")
    assert main(["infer", "--data", str(scan), "--out", "out"]) == 0
    assert (tmp_path / "out" / "reconstruction.npz").is_file()
