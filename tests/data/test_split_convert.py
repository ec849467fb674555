from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ptychopinn.cli import main
from ptychopinn.data.split import split_dataset
from ptychopinn.io.dataset import load_dataset

STAR = Path(os.environ.get(
    "PTYCHOPINN_STAR", "/work/shared/data/real/tike-siemens-star/siemens-star-small.npz.bz2"))
if not STAR.exists():  # fall back to the checkout's sibling shared/ folder
    STAR = Path(__file__).resolve().parents[3] / "shared/data/real/tike-siemens-star" / STAR.name


def test_spatial_split_separates_regions(tiny_data):
    tr, te = split_dataset(tiny_data, axis="y", fraction=0.5)
    assert tr.n_patterns + te.n_patterns == tiny_data.n_patterns
    assert tr.positions[:, 0].max() < te.positions[:, 0].min()
    np.testing.assert_array_equal(tr.obj, tiny_data.obj)


def test_split_cli(tmp_path, tiny_npz):
    a, b = tmp_path / "tr.npz", tmp_path / "te.npz"
    assert main(["split", str(tiny_npz), "--axis", "x", "--fraction", "0.3", "--out-train",
                 str(a), "--out-test", str(b)]) == 0
    tr, te = load_dataset(a), load_dataset(b)
    assert tr.positions[:, 1].max() < te.positions[:, 1].min()
    assert tr.n_patterns < te.n_patterns


def test_split_bad_fraction(tmp_path, tiny_npz, capsys):
    code = main(["split", str(tiny_npz), "--fraction", "1.5", "--out-train",
                 str(tmp_path / "a.npz"), "--out-test", str(tmp_path / "b.npz")])
    assert code == 2
    assert "fraction must be in (0, 1), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "a.npz").exists()


@pytest.mark.skipif(not STAR.exists(), reason="shared real data not present")
def test_convert_tike_siemens_star(tmp_path, capsys):
    out = tmp_path / "star.npz"
    assert main(["convert", str(STAR), "--format", "tike", "--out", str(out)]) == 0
    d = load_dataset(out)
    assert d.diffraction.shape == (516, 128, 128)
    mean = np.mean(d.diffraction.astype(np.float64) ** 2, axis=0)
    # DC centred: tike's DC sits at [0, 0]; after fftshift the centre is bright, corners dark
    assert mean[60:68, 60:68].mean() > 100 * mean[:8, :8].mean()
    assert mean[64, 64] > 1000 * mean[0, 0]
    counts = d.diffraction.astype(np.float64) ** 2
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-2)  # sqrt of integer counts
    assert d.positions.min() >= 64  # patch fully inside a positive frame
    assert np.sum(np.abs(d.probe) ** 2) == pytest.approx(d.mean_total_counts(), rel=1e-4)
    assert main(["inspect", str(out)]) == 0
    assert "| patterns M | 516 |" in capsys.readouterr().out
