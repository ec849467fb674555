"""GPU checks (``pytest -m gpu``; skipped without CUDA): physics, training, inference, LSQML.

Run on a GPU machine by ``bash benchmarks/gpu_check.sh``. Each test compares the CUDA result
with the CPU result of the same computation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychopinn.config import RunConfig
from ptychopinn.evaluation import evaluate
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.physics.forward import forward_amplitude
from ptychopinn.physics.patches import extract_patches
from ptychopinn.training.api import train

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_forward_model_on_cuda_matches_cpu(tiny_data):
    obj = torch.from_numpy(tiny_data.obj)
    pos = torch.from_numpy(tiny_data.positions)
    probe = torch.from_numpy(tiny_data.probe)
    n = tiny_data.patch_size
    cpu = forward_amplitude(extract_patches(obj, pos, n), probe)
    gpu = forward_amplitude(extract_patches(obj.cuda(), pos.cuda(), n), probe.cuda())
    assert gpu.is_cuda
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=1e-4,
                               atol=1e-4 * float(cpu.abs().max()))


def test_training_and_inference_on_cuda(tiny_data, tmp_path):
    cfg = RunConfig().with_overrides(
        train={"epochs": 2, "accelerator": "gpu", "devices": 1, "show_progress": False})
    res = train(tiny_data, tmp_path / "run", cfg)
    assert res.device == "gpu" and res.epochs_completed == 2 and res.patterns_per_second > 0
    on_gpu = reconstruct(tmp_path / "run", tiny_data, InferConfig(device="cuda",
                                                                  show_progress=False))
    on_cpu = reconstruct(tmp_path / "run", tiny_data, InferConfig(device="cpu",
                                                                  show_progress=False))
    assert on_gpu.info["device"].startswith("cuda") and on_cpu.info["device"] == "cpu"
    assert on_gpu.object.dtype == np.complex64
    np.testing.assert_allclose(on_gpu.coverage, on_cpu.coverage, rtol=1e-4, atol=1e-5)
    # same network on both devices: equal up to float32 / TF32 rounding
    m = evaluate(on_cpu.object, on_gpu.object, coverage=on_cpu.coverage, register=False)
    assert m["amplitude"]["ssim"] > 0.99 and m["phase"]["ssim"] > 0.99


def test_lsqml_on_cuda_with_snapshots(tiny_data):
    pytest.importorskip("ptychi")
    from ptychopinn.iterative import IterativeConfig, run_iterative

    args = (tiny_data.diffraction, tiny_data.positions, tiny_data.probe, tiny_data.obj.shape)
    gpu = run_iterative(*args, IterativeConfig(epochs=4, device="cuda", snapshot_every=2))
    cpu = run_iterative(*args, IterativeConfig(epochs=4, device="cpu", num_threads=2))
    assert gpu.device == "cuda" and gpu.snapshot_epochs.tolist() == [2, 4]
    assert np.all(np.diff(gpu.snapshot_seconds) > 0)
    np.testing.assert_array_equal(gpu.snapshot_objects[-1], gpu.object)
    m = evaluate(cpu.object, gpu.object, coverage=cpu.coverage, register=False)
    assert m["amplitude"]["ssim"] > 0.98 and m["phase"]["ssim"] > 0.98
