from __future__ import annotations

import subprocess
import sys

import numpy as np

from ptychopinn.config import RunConfig
from ptychopinn.data.io import save_dataset
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.inference.stitch import ObjectFrame, stitch
from ptychopinn.training.api import train

PROBE = """
import re, sys
from ptychopinn.inference.predict import InferConfig, reconstruct
r = reconstruct(sys.argv[1], sys.argv[2], InferConfig(batch_size=32, show_progress=False))
# VmHWM is this process's own peak (ru_maxrss can carry the parent's RSS across the fork)
print(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
"""


def _peak_kib(bundle, data) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, str(bundle), str(data)],
                         capture_output=True, text=True, timeout=300, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_patterns(tmp_path):
    """4x the patterns (streamed from chunked HDF5) -> less than 20% more peak RSS."""
    small = simulate(SimulationConfig(object_size=200, patch_size=32, n_positions=500, seed=1,
                                      scan="raster", step=5.0))
    big = simulate(SimulationConfig(object_size=200, patch_size=32, n_positions=2000, seed=1,
                                    scan="raster", step=2.5))
    ps, pb = tmp_path / "s.h5", tmp_path / "b.h5"
    save_dataset(small, ps)
    save_dataset(big, pb)
    cfg = RunConfig().with_overrides(model={"n": 32}, train={"epochs": 1, "show_progress": False})
    train(small, tmp_path / "run", cfg)
    m_small = _peak_kib(tmp_path / "run", ps)
    m_big = _peak_kib(tmp_path / "run", pb)
    assert m_big < 1.2 * m_small, (m_small, m_big)


def test_vectorised_stitch_matches_reference_loop(np_rng):
    patches = (np_rng.standard_normal((50, 8, 8)) + 1j * np_rng.standard_normal((50, 8, 8)))
    pos = np_rng.uniform(6, 26, (50, 2))
    frame = ObjectFrame((32, 32), (0.0, 0.0))
    w = np_rng.uniform(0.1, 1, (8, 8))
    obj, cov = stitch(patches.astype(np.complex64), pos, frame, w)
    # reference: explicit per-patch bilinear loop in numpy
    num = np.zeros((32, 32), complex)
    den = np.zeros((32, 32))
    for p, (y, x) in zip(patches, pos, strict=True):
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        fy, fx = y - y0, x - x0
        for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                           (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            r, c = y0 - 4 + dy, x0 - 4 + dx
            num[r : r + 8, c : c + 8] += wt * p * w
            den[r : r + 8, c : c + 8] += wt * w
    ok = cov > 0
    np.testing.assert_allclose(cov, np.where(ok, den, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(obj[ok], (num / np.where(den > 0, den, 1))[ok], rtol=1e-4,
                               atol=1e-5)
