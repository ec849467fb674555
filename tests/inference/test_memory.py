from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np
import torch

from ptychopinn.config import RunConfig
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.inference.stitch import ObjectFrame, stitch
from ptychopinn.training.api import build_model
from ptychopinn.training.bundle import save_bundle

N = 128
MiB = 2**20

PROBE = """
import re, sys, torch
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.training.bundle import load_bundle
bundle = load_bundle(sys.argv[1])
# the network's memory is per batch; a cheap stand-in keeps this test about the data path
# (lazy reads, batching, stitching) at 400+ MiB of patterns
bundle.model.predict_patches = lambda amp, offsets, **kw: (None, amp.to(torch.complex64))
r = reconstruct(bundle, sys.argv[2], InferConfig(batch_size=256, show_progress=False))
assert r.info["n_patterns"] == int(sys.argv[3]) and float(r.coverage.max()) > 0
# VmHWM is this process's own peak (ru_maxrss can carry the parent's RSS across the fork)
print(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
"""


def _peak_kib(bundle, data, m: int) -> int:
    # a fixed mmap threshold: freed batch buffers go back to the OS instead of glibc growing
    # its heap by a few batches' worth at random, so the peak is the live peak (+-2 MiB)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(16 * MiB)}
    out = subprocess.run([sys.executable, "-c", PROBE, str(bundle), str(data), str(m)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.strip().splitlines()[-1])


def _write_stack(path, m: int, block: np.ndarray, probe: np.ndarray) -> int:
    """HDF5 dataset of ``m`` patterns (``block`` repeated), written chunk by chunk: low-dose
    patterns are mostly zeros, so lzf keeps hundreds of MiB of patterns small on disk."""
    side = int(np.ceil(np.sqrt(m)))
    yy, xx = np.meshgrid(np.arange(side) * 2.0, np.arange(side) * 2.0, indexing="ij")
    pos = np.stack([yy.ravel(), xx.ravel()], 1)[:m] + N
    with h5py.File(path, "w") as f:
        f["xcoords"], f["ycoords"] = pos[:, 1], pos[:, 0]
        f["probeGuess"] = probe
        ds = f.create_dataset("diffraction", shape=(m, N, N), dtype=np.float32,
                              chunks=(len(block), N, N), compression="lzf")
        for s in range(0, m, len(block)):
            ds[s : s + len(block)] = block[: m - s]
    return m * N * N * 4


def test_peak_memory_is_bounded_by_the_batch_not_the_scan(tmp_path):
    """406 MiB of patterns (25x the small scan) stream through reconstruct(): the peak RSS is
    the small scan's within 64 MiB, where reading the stack whole would add all 406 MiB."""
    seed = simulate(SimulationConfig(object_size=N + 40, patch_size=N, n_positions=64, seed=1,
                                     photons=1e3, scan="raster", step=4.0))
    cfg = RunConfig().with_overrides(model={"n_filters_scale": 0.25}, grouping={"gridsize": 1})
    torch.manual_seed(0)
    model, _ = build_model(cfg, seed)
    bundle = save_bundle(model, tmp_path / "model.zip")
    block = np.asarray(seed.diffraction, np.float32)
    small, big = tmp_path / "small.h5", tmp_path / "big.h5"
    _write_stack(small, 256, block, seed.probe)
    raw = _write_stack(big, 6500, block, seed.probe)
    assert raw > 400 * MiB and big.stat().st_size < raw / 10
    m_small = _peak_kib(bundle, small, 256) * 1024
    m_big = _peak_kib(bundle, big, 6500) * 1024
    assert m_big - m_small < 64 * MiB, (m_small / MiB, m_big / MiB, raw / MiB)


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
