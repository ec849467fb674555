"""Multi-process (DDP, gloo) training on the CPU through the CLI, as a user would run it."""

from __future__ import annotations

import json
import os
import socket
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
def test_two_process_cpu_training(tmp_path, tiny_npz, tiny_data):
    """2 gloo processes train (ddp_spawn and ddp, both runs at once: their start-up is mostly
    single-threaded imports); rank 0 writes one bundle holding the trained weights."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as a, socket.socket() as b:  # two distinct free rendezvous ports
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        ports = {"ddp_spawn": a.getsockname()[1], "ddp": b.getsockname()[1]}
    procs = {}
    for strategy in ("ddp_spawn", "ddp"):
        cmd = [sys.executable, "-m", "ptychopinn.cli", "-v", "train", "--data", str(tiny_npz),
               "--out", str(tmp_path / strategy / "run"), "--epochs", "2", "--devices", "2",
               "--strategy", strategy, "--accelerator", "cpu"]
        (tmp_path / strategy).mkdir()
        procs[strategy] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True, cwd=tmp_path / strategy,
                                           env={**env, "MASTER_PORT": str(ports[strategy])})
    outputs = {s: p.communicate(timeout=300) for s, p in procs.items()}
    for strategy, (stdout, stderr) in outputs.items():
        assert procs[strategy].returncode == 0, (strategy, stderr[-3000:])
        assert "Starting with 2 processes" in stdout + stderr, strategy  # Lightning INFO (-v)
        _check_run(tmp_path / strategy / "run", strategy, tiny_data)


def _check_run(run, strategy: str, tiny_data) -> None:
    for f in ("model.zip", "config.yaml", "metrics.csv", "summary.json", "checkpoints/last.ckpt"):
        assert (run / f).exists(), (strategy, f)
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
