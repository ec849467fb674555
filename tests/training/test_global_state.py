"""train() leaves process-wide state alone and keeps Lightning's noise out of the output."""

from __future__ import annotations

import json
import logging
import random
import warnings

import numpy as np
import pytest
import torch

from ptychopinn.config import RunConfig
from ptychopinn.training.api import train
from ptychopinn.training.isolation import LIGHTNING_TIP_LOGGERS


def _cfg(seed: int = 3) -> RunConfig:
    return RunConfig().with_overrides(train={"epochs": 1, "seed": seed, "show_progress": False})


def _snapshot() -> dict:
    return {"random": random.getstate(), "numpy": np.random.get_state(),  # noqa: NPY002
            "torch": torch.get_rng_state().clone(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn": (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark),
            "warnings": list(warnings.filters),
            "log_filters": [list(logging.getLogger(n).filters) for n in LIGHTNING_TIP_LOGGERS]}


@pytest.mark.parametrize(("det", "warn_only"), [(False, False), (True, True)])
def test_train_restores_rngs_and_deterministic_mode(tmp_path, tiny_data, det, warn_only):
    random.seed(11)
    np.random.seed(11)  # noqa: NPY002  (the global RNG under test)
    torch.manual_seed(11)
    torch.use_deterministic_algorithms(det, warn_only=warn_only)
    try:
        before = _snapshot()
        train(tiny_data, tmp_path / "run", _cfg())
        after = _snapshot()
    finally:
        torch.use_deterministic_algorithms(False)
    assert after["random"] == before["random"]
    np_b, np_a = before["numpy"], after["numpy"]
    assert np_a[0] == np_b[0] and np.array_equal(np_a[1], np_b[1]) and np_a[2:] == np_b[2:]
    assert torch.equal(after["torch"], before["torch"])
    assert (after["deterministic"], after["warn_only"]) == (det, warn_only)
    for k in ("cudnn", "warnings", "log_filters"):
        assert after[k] == before[k], k


def test_runs_stay_deterministic_whatever_the_global_seed(tmp_path, tiny_data):
    losses = []
    for i, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)
        np.random.seed(global_seed)  # noqa: NPY002
        random.seed(global_seed)
        res = train(tiny_data, tmp_path / f"run{i}", _cfg(seed=5))
        losses.append(res.final_loss)
    assert losses[0] is not None and losses[0] == losses[1]
    other = train(tiny_data, tmp_path / "other", _cfg(seed=6)).final_loss
    assert other != losses[0]  # the seed is what decides


def test_cli_train_stderr_has_no_litlogger_tip_or_leafspec_warning(cli_train_run):
    run, stderr = cli_train_run
    assert json.loads((run / "summary.json").read_text())["epochs_completed"] == 1
    assert "trained 1 epochs" in stderr  # the run's own log lines still come through
    for noise in ("litlogger", "Tip:", "LeafSpec", "FutureWarning"):
        assert noise not in stderr, noise
