"""``ptychopinn train --probe PROBE.npz``: train with a refined probe instead of the dataset's."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn.cli import main
from ptychopinn.physics.probe import normalize_probe
from ptychopinn.training.bundle import load_bundle


def _other_probe(n: int) -> np.ndarray:
    """An asymmetric probe clearly different from the simulated disk probe."""
    yy, xx = np.mgrid[:n, :n] - n / 2
    amp = np.exp(-((yy - 1) ** 2 / 10.0 + (xx + 2) ** 2 / 14.0))
    return (3.0 * amp * np.exp(0.4j * xx)).astype(np.complex64)


def _write_probe(path, **arrays) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_train_probe_override_goes_into_bundle(tmp_path, tiny_npz, tiny_data):
    probe = _other_probe(tiny_data.patch_size)
    assert not np.allclose(normalize_probe(probe)[0], normalize_probe(tiny_data.probe)[0])
    probe_file = tmp_path / "probe.npz"  # the layout `ptychopinn iterative` writes
    _write_probe(probe_file, probeGuess=probe, positions_rc=tiny_data.positions)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_npz), "--out", str(run), "--epochs", "1",
                 "--gridsize", "2", "--probe", str(probe_file)]) == 0
    bundle = load_bundle(run)
    got = bundle.model.physics.probe.detach().numpy()
    np.testing.assert_allclose(got, normalize_probe(probe)[0], rtol=1e-5, atol=1e-6)
    factor = bundle.manifest["normalisation_constants"]["probe_norm_factor"]
    np.testing.assert_allclose(got / factor, probe, rtol=1e-5, atol=1e-5)
    # infer needs no --probe: the bundle carries it
    assert main(["infer", "--model", str(run), "--data", str(tiny_npz), "--out",
                 str(tmp_path / "inf")]) == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "probe file not found"),
        ({"something": np.zeros(3)}, "probeGuess"),
        ({"probeGuess": np.ones((8, 8), np.complex64)}, "8x8 but patch size is 16"),
        ({"probeGuess": np.zeros((16, 16), np.complex64)}, "zero power"),
        ({"probeGuess": np.full((16, 16), np.nan, np.complex64)}, "finite"),
        (b"not a zip", "corrupt or truncated NPZ"),
    ],
)
def test_train_bad_probe_file_is_one_line_exit_2(tmp_path, tiny_npz, capsys, content, expected):
    probe_file = tmp_path / "probe.npz"
    if isinstance(content, dict):
        _write_probe(probe_file, **content)
    elif isinstance(content, bytes):
        probe_file.write_bytes(content)
    code = main(["train", "--data", str(tiny_npz), "--out", str(tmp_path / "run"), "--epochs",
                 "1", "--probe", str(probe_file)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("ptychopinn train: error:")
    assert expected in err and "probe.npz" in err
    assert not (tmp_path / "run" / "model.zip").exists()
