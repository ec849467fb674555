"""Shared fixtures: seeded RNGs and tiny datasets written in the real on-disk layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.io.dataset import save_dataset


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def np_rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def tiny_config(**kw) -> SimulationConfig:
    base = dict(object_size=64, patch_size=16, n_positions=64, photons=1e5, seed=3,
                probe_defocus=1.0)
    base.update(kw)
    return SimulationConfig(**base)


@pytest.fixture
def make_tiny():
    """Factory for tiny simulation configs (keyword overrides)."""
    return tiny_config


@pytest.fixture(scope="session")
def tiny_data():
    """A 64-pattern, 16×16 simulated dataset (in memory)."""
    return simulate(tiny_config())


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory, tiny_data):
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    save_dataset(tiny_data, path)
    return path


@pytest.fixture(scope="session")
def ptychi_worker():
    """One pty-chi worker process shared by the tests (its start-up costs ~10 s on a CPU)."""
    from ptychopinn.iterative import PtychiWorker

    with PtychiWorker(num_threads=1) as worker:
        yield worker


@pytest.fixture(scope="session")
def cli_train_run(tmp_path_factory, tiny_npz):
    """``ptychopinn train --epochs 1`` on the tiny scan in a fresh process, as a user runs it
    (default log level): (run directory, stderr)."""
    import subprocess
    import sys

    run = tmp_path_factory.mktemp("cli_train") / "run"
    p = subprocess.run([sys.executable, "-m", "ptychopinn.cli", "train", "--data", str(tiny_npz),
                        "--out", str(run), "--epochs", "1", "--accelerator", "cpu"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return run, p.stderr
