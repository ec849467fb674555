"""Multi-process (DDP, gloo) training on the CPU through the CLI, as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from ptychopinn.config import load_config
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.training.bundle import load_bundle
from ptychopinn.training.checkpoint_io import load_state


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp"])
def test_two_process_cpu_training(strategy, tmp_path, tiny_npz, tiny_data):
    """2 gloo processes train; rank 0 writes one bundle holding the trained weights."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ptychopinn.cli", "-v", "train", "--data", str(tiny_npz), "--out",
           str(run), "--epochs", "2", "--devices", "2", "--strategy", strategy,
           "--accelerator", "cpu"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Starting with 2 processes" in p.stdout + p.stderr  # Lightning INFO, shown with -v
    for f in ("model.zip", "config.yaml", "metrics.csv", "summary.json", "checkpoints/last.ckpt"):
        assert (run / f).exists(), f
    ran = load_config(run / "config.yaml")
    assert ran.train.devices == 2 and ran.train.strategy == strategy
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_completed"] == 2
    epochs = pd.read_csv(run / "metrics.csv")["epoch"].dropna().astype(int).unique()
    assert sorted(epochs) == [0, 1]
    # the bundle holds the weights rank 0 ended with (ddp_spawn copies them back to the parent)
    bundle = load_bundle(run)
    ckpt = load_state(run / "checkpoints" / "last.ckpt")["state_dict"]
    for k, v in bundle.model.state_dict().items():
        torch.testing.assert_close(v, ckpt[f"model.{k}"], rtol=0, atol=0, msg=k)
    rec = reconstruct(bundle, tiny_data, InferConfig(show_progress=False))
    assert rec.object.shape == tiny_data.obj.shape
    assert np.isfinite(rec.object).all() and (rec.coverage > 0).mean() > 0.3
