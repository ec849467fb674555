"""Overlap views (thinning, achieved overlap) and model deltas on known inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from ptychopinn.studies.report import compute_deltas
from ptychopinn.studies.views import overlap_stats, spacing_for_overlap, thin_positions


@pytest.fixture
def scan():
    return np.random.default_rng(5).uniform(0, 100, size=(400, 2))


@pytest.mark.parametrize("d", [3.0, 7.5, 15.0])
def test_thinning_respects_spacing_and_is_maximal(scan, d):
    idx = thin_positions(scan, d, rng=0)
    kept = scan[idx]
    dist = cdist(kept, kept)
    np.fill_diagonal(dist, np.inf)
    assert dist.min() >= d
    dropped = np.setdiff1d(np.arange(len(scan)), idx)
    # greedy = maximal: every dropped position has a kept one closer than d
    assert np.all(cdist(scan[dropped], kept).min(axis=1) < d)
    assert np.array_equal(idx, thin_positions(scan, d, rng=0))  # deterministic
    assert np.all(np.diff(idx) > 0)


def test_thinning_zero_spacing_keeps_all(scan):
    assert np.array_equal(thin_positions(scan, 0.0, rng=1), np.arange(400))


def test_overlap_stats_on_a_raster():
    g = np.arange(10) * 4.0
    pos = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    s = overlap_stats(pos, probe_diameter=10.0)
    assert s["n_positions"] == 100
    assert s["mean_nn_px"] == pytest.approx(4.0)
    assert s["median_nn_px"] == pytest.approx(4.0)
    assert s["overlap_fraction"] == pytest.approx(0.6)


def test_spacing_for_target_overlap(scan):
    diam = 20.0
    full = overlap_stats(scan, diam)["overlap_fraction"]
    target = 0.5
    assert full > target
    d = spacing_for_overlap(scan, diam, target, rng_seed=3)
    got = overlap_stats(scan[thin_positions(scan, d, 3)], diam)["overlap_fraction"]
    assert got == pytest.approx(target, abs=0.03)
    assert spacing_for_overlap(scan, diam, 0.99, rng_seed=3) == 0.0  # already sparser


def test_deltas_reference_minus_other():
    rows = []
    for model, v in (("PtychoPINN", 0.9), ("Baseline", 0.7), ("PtyChi-LSQML", 0.95)):
        for metric, scale in (("ssim", 1.0), ("mae", 0.1)):
            rows.append({"dose": 1e3, "view": "dense", "model": model, "split": "test",
                         "metric": metric, "part": "phase", "value": v * scale})
    d = compute_deltas(pd.DataFrame(rows), "PtychoPINN")
    assert len(d) == 4
    got = {(r.comparison, r.metric): r.delta for r in d.itertuples()}
    assert got[("PtychoPINN - Baseline", "ssim")] == pytest.approx(0.2)
    assert got[("PtychoPINN - PtyChi-LSQML", "ssim")] == pytest.approx(-0.05)
    assert got[("PtychoPINN - Baseline", "mae")] == pytest.approx(0.02)
    assert dict(zip(d["metric"], d["higher_is_better"], strict=True)) == {"ssim": True,
                                                                          "mae": False}


def _imported_modules(module) -> set[str]:
    """Every module named in an import statement of ``module``'s source (also inside functions)."""
    import ast
    import inspect

    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_report_and_verify_do_not_import_each_other():
    """Both take artifact names and columns from ``studies.artifacts`` (no import cycle)."""
    from ptychopinn.studies import report, verify

    assert "ptychopinn.studies.verify" not in _imported_modules(report)
    assert "ptychopinn.studies.report" not in _imported_modules(verify)
    assert "ptychopinn.studies.artifacts" in _imported_modules(report) & _imported_modules(verify)
