"""``ptychopinn iterative`` outputs, and its refined probe feeding ``train --probe`` (issue #5)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("ptychi")

from ptychopinn.cli import main  # noqa: E402
from ptychopinn.inference.predict import load_reconstruction  # noqa: E402
from ptychopinn.physics.probe import normalize_probe  # noqa: E402
from ptychopinn.training.bundle import load_bundle  # noqa: E402

from .conftest import EPOCHS  # noqa: E402


@pytest.fixture
def lsqml_out(cli_lsqml_out):
    return cli_lsqml_out


def test_iterative_writes_the_documented_files(lsqml_out, tiny_data):
    r = load_reconstruction(lsqml_out)
    assert r.object.shape == tiny_data.obj.shape and r.object.dtype == np.complex64
    assert r.coverage.shape == tiny_data.obj.shape and r.coverage.max() > 0
    for f in ("amplitude.png", "phase.png", "summary.json"):
        assert (lsqml_out / f).exists(), f
    summary = json.loads((lsqml_out / "summary.json").read_text())
    assert summary["algorithm"] == "lsqml" and summary["epochs"] == EPOCHS
    assert summary["n_patterns"] == tiny_data.n_patterns and summary["wall_time_s"] > 0
    with open(lsqml_out / "loss_history.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["epoch", "loss"] and len(rows) == EPOCHS + 1
    losses = [float(v) for _, v in rows[1:]]  # plain numbers (no "np.float64(...)")
    assert all(np.isfinite(losses))
    with np.load(lsqml_out / "probe.npz", allow_pickle=False) as z:
        assert z["probeGuess"].shape == tiny_data.probe.shape
        assert z["probeGuess"].dtype == np.complex64
        assert z["positions_rc"].shape == (tiny_data.n_patterns, 2)


def test_refined_probe_trains_the_pinn(lsqml_out, tiny_npz, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_npz), "--out", str(run), "--epochs", "1",
                 "--probe", str(lsqml_out / "probe.npz")]) == 0
    with np.load(lsqml_out / "probe.npz", allow_pickle=False) as z:
        refined = z["probeGuess"]
    got = load_bundle(run).model.physics.probe.detach().numpy()
    np.testing.assert_allclose(got, normalize_probe(refined)[0], rtol=1e-5, atol=1e-6)
