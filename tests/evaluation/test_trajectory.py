"""Quality-vs-time of snapshots (ptychopinn.evaluation.snapshots), on synthetic objects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ptychopinn.evaluation import evaluate, load_snapshots, time_to_reach, trajectory


def _reference(rng: np.random.Generator, n: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    phase = 0.8 * np.sin(xx / 4.0) * np.cos(yy / 6.0)
    amp = 0.75 + 0.2 * np.cos(xx / 5.0 + yy / 7.0)
    return (amp * np.exp(1j * phase)).astype(np.complex64)


@pytest.fixture
def snaps(np_rng):
    ref = _reference(np_rng)
    noise = np_rng.normal(size=ref.shape) + 1j * np_rng.normal(size=ref.shape)
    weights = np.array([0.6, 0.3, 0.1, 0.0])  # converging to the reference
    objects = np.stack([ref + w * noise for w in weights]).astype(np.complex64)
    return ref, {"epochs": np.array([2, 4, 6, 7]), "seconds": np.array([0.5, 1.0, 1.5, 1.75]),
                 "objects": objects}


def test_trajectory_scores_each_snapshot_with_evaluate(snaps):
    ref, s = snaps
    traj = trajectory(ref, s)
    assert traj.epochs.tolist() == [2, 4, 6, 7]
    np.testing.assert_array_equal(traj.seconds, s["seconds"])
    for i, obj in enumerate(s["objects"]):
        m = evaluate(ref, obj)
        for part in ("amplitude", "phase"):
            assert traj.values(part, "ssim")[i] == pytest.approx(m[part]["ssim"], abs=1e-12)
            assert traj.values(part, "psnr")[i] == pytest.approx(m[part]["psnr"], abs=1e-9)
    ssim = traj.values("phase", "ssim")
    assert np.all(np.diff(ssim) > 0) and ssim[-1] == pytest.approx(1.0)
    d = traj.to_dict()
    assert d["epochs"] == [2, 4, 6, 7] and len(d["phase"]["ssim"]) == 4
    assert json.loads(json.dumps(d, allow_nan=False)) == d  # strict JSON


def test_trajectory_reads_a_snapshots_file_and_its_coverage(snaps, tmp_path):
    ref, s = snaps
    cov = np.zeros(ref.shape, np.float32)
    cov[8:40, 8:40] = 1.0
    path = tmp_path / "snapshots.npz"
    np.savez(path, coverage=cov, **s)
    from_file = trajectory(ref, tmp_path)  # the directory works too
    explicit = trajectory(ref, s, coverage=cov)
    np.testing.assert_allclose(from_file.values("phase", "ssim"),
                               explicit.values("phase", "ssim"), rtol=0, atol=1e-12)
    whole = trajectory(ref, s)
    assert not np.allclose(whole.values("phase", "ssim")[:-1],
                           explicit.values("phase", "ssim")[:-1])


def test_time_to_reach_interpolates_and_reports_never():
    t = np.array([1.0, 2.0, 4.0])
    v = np.array([0.2, 0.6, 0.8])
    assert time_to_reach(t, v, 0.7) == pytest.approx(3.0)
    assert time_to_reach(t, v, 0.6) == pytest.approx(2.0)
    assert time_to_reach(t, v, 0.1) == 1.0  # already reached at the first snapshot
    assert time_to_reach(t, v, 0.81) is None
    # first crossing counts, even if quality later drops
    assert time_to_reach(t, np.array([0.2, 0.9, 0.5]), 0.55) == pytest.approx(1.5)


def test_load_snapshots_refuses_bad_files(tmp_path, snaps):
    _, s = snaps
    with pytest.raises(ValueError, match="snapshots file not found"):
        load_snapshots(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, epochs=s["epochs"], objects=s["objects"])
    with pytest.raises(ValueError, match=r"bad\.npz: key 'seconds': missing"):
        load_snapshots(bad)
    np.savez(bad, epochs=s["epochs"][:2], seconds=s["seconds"], objects=s["objects"])
    with pytest.raises(ValueError, match=r"must both have shape \(4,\)"):
        load_snapshots(bad)
