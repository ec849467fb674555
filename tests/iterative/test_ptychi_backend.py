"""Tests of the pty-chi iterative baseline wrapper (ptychopinn.iterative)."""

from __future__ import annotations

import logging
import os
import re
import sys

import numpy as np
import pytest

pytest.importorskip("ptychi")

from ptychopinn.iterative import ptychi_backend  # noqa: E402
from ptychopinn.iterative.ptychi_backend import (  # noqa: E402
    IterativeConfig,
    IterativeResult,
    coverage_map,
    ptychi_forward_amplitudes,
    run_iterative,
)

N = 16
H = W = 64


# ---------------------------------------------------------------------------------------
# reference physics in plain numpy, per SPEC §2/§3


def _patch(obj: np.ndarray, center: tuple[int, int], n: int = N) -> np.ndarray:
    y, x = center
    return obj[y - n // 2 : y + n // 2, x - n // 2 : x + n // 2]


def _amplitudes(obj: np.ndarray, probe: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """A = |fftshift(fft2(P * O_patch, norm='ortho'))| at integer patch centres."""
    out = []
    for y, x in np.asarray(positions).astype(int):
        psi = probe * _patch(obj, (y, x), probe.shape[0])
        out.append(np.abs(np.fft.fftshift(np.fft.fft2(psi, norm="ortho"))))
    return np.asarray(out, dtype=np.float32)


def _fourier_shift(img: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Move image content by +t (rows, cols), sub-pixel, periodic."""
    ky = np.fft.fftfreq(img.shape[0])[:, None]
    kx = np.fft.fftfreq(img.shape[1])[None, :]
    ramp = np.exp(-2j * np.pi * (ky * t[0] + kx * t[1]))
    return np.fft.ifft2(np.fft.fft2(img) * ramp)


def _amplitudes_subpixel(obj: np.ndarray, probe: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Sub-pixel reference: patch centred at p samples the object at p - N/2 + k."""
    out = []
    for p in np.asarray(positions, dtype=np.float64):
        base = np.floor(p)
        shifted = _fourier_shift(obj, -(p - base))  # shifted[i] = obj[i + frac]
        psi = probe * _patch(shifted, tuple(base.astype(int)), probe.shape[0])
        out.append(np.abs(np.fft.fftshift(np.fft.fft2(psi, norm="ortho"))))
    return np.asarray(out, dtype=np.float32)


def _smooth(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise (FFT based), scaled to max |value| = 1."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    filt = np.exp(-2 * (np.pi * sigma) ** 2 * (ky**2 + kx**2))
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=shape)) * filt))
    return field / np.abs(field).max()


def _probe(n: int = N, scale: float = 30.0) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n] - n / 2
    envelope = np.exp(-(yy**2 + xx**2) / (2 * 3.5**2))
    return (scale * envelope * np.exp(0.03j * (xx**2 + yy**2))).astype(np.complex64)


def _smooth_object(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    phase = 0.8 * _smooth(rng, (H, W), 2.5)
    amp = 0.85 + 0.1 * _smooth(rng, (H, W), 2.5)
    return (amp * np.exp(1j * phase)).astype(np.complex64)


def _raster_positions(seed: int) -> np.ndarray:
    """10 x 10 jittered raster (step 4.5 px, N = 16: ~72 % linear overlap), integer."""
    rng = np.random.default_rng(seed)
    grid = np.arange(10, 54.1, 4.5)
    pos = np.array([(y, x) for y in grid for x in grid], dtype=np.float64)
    pos += rng.uniform(-1.0, 1.0, pos.shape)
    return np.round(pos)


def _phase_error(obj: np.ndarray, truth: np.ndarray) -> float:
    """Normalised phase error in the well-scanned centre after global phase removal."""
    sl = (slice(16, 48), slice(16, 48))
    o, t = obj[sl], truth[sl]
    o = o * np.exp(1j * np.angle(np.vdot(o, t)))
    return float(np.linalg.norm(np.angle(o * np.conj(t))) / np.linalg.norm(np.angle(t)))


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    obj = _smooth_object(1)
    probe = _probe()
    positions = _raster_positions(2)
    return {
        "object": obj,
        "probe": probe,
        "positions": positions,
        "diffraction": _amplitudes(obj, probe, positions),
    }


@pytest.fixture(scope="module")
def lsqml_run(scene, ptychi_worker):
    import torch

    before = (torch.get_default_dtype(), torch.get_default_device())
    cfg = IterativeConfig(epochs=15, batch_size=16, num_threads=1, seed=0)
    result = run_iterative(scene["diffraction"], scene["positions"], scene["probe"], (H, W), cfg,
                           worker=ptychi_worker)
    after = (torch.get_default_dtype(), torch.get_default_device())
    return {"result": result, "before": before, "after": after}


# ---------------------------------------------------------------------------------------
# 1. position / FFT / scale convention: pty-chi's forward model == ours


@pytest.fixture(scope="module")
def forward_case(ptychi_worker) -> dict[str, np.ndarray]:
    """One pty-chi forward call on a 64 x 128 canvas.

    Left half: white-noise complex object, integer positions (exact-match test).
    Right half: smooth object, sub-pixel positions (interpolation-limited test).
    """
    rng = np.random.default_rng(0)
    noise = rng.uniform(0.5, 1.0, (H, W)) * np.exp(1j * rng.uniform(-np.pi, np.pi, (H, W)))
    obj = np.concatenate([noise, _smooth_object(3)], axis=1).astype(np.complex64)
    probe = _probe()
    integer = np.array(
        [[8, 8], [20, 20], [30, 25], [40, 41], [33, 17], [21, 44], [55, 9], [56, 52]],
        dtype=np.float64,
    )
    subpixel = np.array([[25.3, 30.7], [30.5, 22.25], [40.8, 36.1], [22.0, 41.6]]) + [0, W]
    positions = np.concatenate([integer, subpixel])
    theirs = ptychi_forward_amplitudes(obj, probe, positions, worker=ptychi_worker)
    return {
        "object": obj,
        "probe": probe,
        "integer": integer,
        "subpixel": subpixel,
        "theirs_integer": theirs[: len(integer)],
        "theirs_subpixel": theirs[len(integer) :],
    }


def test_ptychi_forward_model_matches_our_convention_integer_positions(forward_case):
    obj, probe = forward_case["object"], forward_case["probe"]
    theirs = forward_case["theirs_integer"]
    ours = _amplitudes(obj, probe, forward_case["integer"])
    assert theirs.shape == ours.shape and theirs.dtype == np.float32
    rel = np.abs(theirs - ours).max(axis=(1, 2)) / ours.max(axis=(1, 2))
    assert rel.max() < 1e-4, rel
    # Sensitivity: the same patches displaced by one pixel are far outside the tolerance.
    moved = _amplitudes(np.roll(obj, 1, axis=1), probe, forward_case["integer"])
    rel_moved = np.abs(theirs - moved).max(axis=(1, 2)) / moved.max(axis=(1, 2))
    assert rel_moved.min() > 1e-2, rel_moved


def test_ptychi_forward_model_subpixel_positions_shift_the_right_way(forward_case):
    # reference on the (periodic, smooth) right half alone: no ringing from the seam
    obj, probe = forward_case["object"][:, W:], forward_case["probe"]
    positions = forward_case["subpixel"] - [0, W]
    theirs = forward_case["theirs_subpixel"]
    ref = _amplitudes_subpixel(obj, probe, positions)
    rounded = _amplitudes_subpixel(obj, probe, np.round(positions + 0.01))
    err = np.abs(theirs - ref).max(axis=(1, 2)) / ref.max(axis=(1, 2))
    err_rounded = np.abs(theirs - rounded).max(axis=(1, 2)) / rounded.max(axis=(1, 2))
    # pty-chi shifts the probe, we shift the object: equal up to interpolation error.
    assert err.max() < 0.015, err
    assert np.all(err < 0.5 * err_rounded), (err, err_rounded)


# ---------------------------------------------------------------------------------------
# 2. LSQML reconstruction improves on the initial guess


def test_lsqml_reduces_phase_error(scene, lsqml_run):
    res: IterativeResult = lsqml_run["result"]
    initial = _phase_error(np.ones((H, W), np.complex64), scene["object"])
    final = _phase_error(res.object, scene["object"])
    assert final < 0.5 * initial, (initial, final)
    assert res.loss_history.shape == (15,) and res.loss_history.dtype == np.float64
    assert res.loss_history[-1] < 0.1 * res.loss_history[0]


def test_result_fields(scene, lsqml_run):
    res: IterativeResult = lsqml_run["result"]
    m = scene["positions"].shape[0]
    assert res.object.shape == (H, W) and res.object.dtype == np.complex64
    assert res.coverage.shape == (H, W) and res.coverage.dtype == np.float32
    assert res.coverage.max() == pytest.approx(1.0)
    assert res.coverage[0, 0] == 0.0 and res.coverage.min() >= 0.0
    # fixed probe / positions come back unchanged (probe survives the FFT-scale round trip)
    assert res.probe.shape == (N, N) and res.probe.dtype == np.complex64
    np.testing.assert_allclose(res.probe, scene["probe"], rtol=1e-5, atol=1e-5)
    assert res.positions_rc.shape == (m, 2) and res.positions_rc.dtype == np.float64
    np.testing.assert_array_equal(res.positions_rc, scene["positions"])
    assert res.device == "cpu"
    assert res.algorithm == "lsqml"
    assert res.ptychi_version.startswith("2.")
    assert res.probe_scale == 1.0
    assert 0 < res.wall_time_s <= res.total_time_s


@pytest.mark.parametrize("algorithm", ["epie", "rpie", "dm"])
def test_other_algorithms_reduce_phase_error(scene, algorithm, ptychi_worker):
    cfg = IterativeConfig(algorithm=algorithm, epochs=15, batch_size=16, num_threads=1)
    res = run_iterative(scene["diffraction"], scene["positions"], scene["probe"], (H, W), cfg,
                        worker=ptychi_worker)
    initial = _phase_error(np.ones((H, W), np.complex64), scene["object"])
    final = _phase_error(res.object, scene["object"])
    assert res.algorithm == algorithm and res.loss_history.shape == (15,)
    assert final < 0.75 * initial, (algorithm, initial, final)


def test_probe_refinement_from_normalised_probe(scene, caplog, ptychi_worker):
    true_probe = scene["probe"]
    # a normalised (unit-energy), slightly too wide probe: needs rescale_probe
    yy, xx = np.mgrid[:N, :N] - N / 2
    guess = np.exp(-(yy**2 + xx**2) / (2 * 4.0**2)).astype(np.complex64)
    guess /= np.linalg.norm(guess)
    cfg = IterativeConfig(
        epochs=20, batch_size=16, refine_probe=True, rescale_probe=True, num_threads=1
    )
    with caplog.at_level(logging.INFO, logger="ptychopinn.iterative"):
        res = run_iterative(
            scene["diffraction"], scene["positions"], guess, (H, W), cfg, show_progress=True,
            worker=ptychi_worker)
    assert any("epoch 20/20" in r.getMessage() for r in caplog.records)
    counts = scene["diffraction"].astype(np.float64) ** 2
    expected_scale = np.sqrt(counts.sum(axis=(1, 2)).mean())
    assert res.probe_scale == pytest.approx(expected_scale, rel=1e-5)
    corr = abs(np.vdot(res.probe, true_probe)) / (
        np.linalg.norm(res.probe) * np.linalg.norm(true_probe)
    )
    assert corr > 0.99
    assert res.loss_history[-1] < 0.05 * res.loss_history[0]


def test_position_refinement_moves_towards_truth(scene, ptychi_worker):
    rng = np.random.default_rng(5)
    true_pos = scene["positions"]
    start = true_pos + rng.uniform(-1.0, 1.0, true_pos.shape)
    cfg = IterativeConfig(epochs=15, batch_size=16, refine_positions=True, num_threads=1)
    res = run_iterative(scene["diffraction"], start, scene["probe"], (H, W), cfg,
                        worker=ptychi_worker)
    before = np.linalg.norm(start - true_pos, axis=1).mean()
    after = np.linalg.norm(res.positions_rc - true_pos, axis=1).mean()
    assert after < 0.9 * before, (before, after)
    # refined positions stay in our frame: no global offset (e.g. the 0.5 px origin)
    assert np.all(np.abs((res.positions_rc - true_pos).mean(axis=0)) < 0.2)


# ---------------------------------------------------------------------------------------
# 3. isolation: pty-chi never touches torch's global state in our process


def test_torch_global_state_unchanged(lsqml_run):
    import torch

    assert lsqml_run["before"] == lsqml_run["after"]
    assert torch.get_default_dtype() == torch.float32
    assert torch.get_default_device() == torch.device("cpu")
    assert "ptychi.api" not in sys.modules


# ---------------------------------------------------------------------------------------
# 4. bad input is refused with one clear line


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithm": "sgd"}, "algorithm must be one of lsqml, epie, rpie, dm; got 'sgd'"),
        ({"epochs": 0}, "epochs must be an integer >= 1; got 0"),
        ({"epochs": 2.5}, "epochs must be an integer >= 1; got 2.5"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1; got 0"),
        ({"refine_probe": "yes"}, "refine_probe must be a bool; got 'yes'"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda; got 'tpu'"),
        ({"seed": -1}, "seed must be an integer >= 0; got -1"),
        ({"num_threads": 0}, "num_threads must be None or an integer >= 1; got 0"),
    ],
)
def test_bad_config_refused(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$") as info:
        IterativeConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_config_is_frozen_and_keyword_only():
    cfg = IterativeConfig()
    assert cfg.algorithm == "lsqml" and cfg.refine_probe is False and cfg.device == "auto"
    with pytest.raises(AttributeError):
        cfg.epochs = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        IterativeConfig("lsqml")  # type: ignore[misc]


def test_bad_inputs_refused(scene):
    d, p, pr = scene["diffraction"], scene["positions"], scene["probe"]
    cfg = IterativeConfig(epochs=1)
    cases = [
        ((d[:, :15, :15], p, pr[:15, :15], (H, W)), "pattern size N must be even; got N=15"),
        ((d, p[:-1], pr, (H, W)), "positions_rc must have shape (M, 2)=(100, 2); got (99, 2)"),
        ((d, p, pr[:8, :8], (H, W)), "probe must have the pattern shape (16, 16); got (8, 8)"),
        ((-d, p, pr, (H, W)), "diffraction contains negative amplitudes (expected sqrt(counts))"),
        ((d, p + [60, 0], pr, (H, W)), "lie outside the object canvas (64, 64)"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            run_iterative(*args, cfg)
    with pytest.raises(ValueError, match=re.escape("initial_object must have shape")):
        run_iterative(d, p, pr, (H, W), cfg, initial_object=np.ones((8, 8), np.complex64))


def test_missing_ptychi_message(monkeypatch, scene):
    monkeypatch.setattr(ptychi_backend, "is_available", lambda: False)
    message = "pty-chi is not installed: pip install 'ptychopinn[ptychi]'"
    with pytest.raises(RuntimeError, match=f"^{re.escape(message)}$"):
        run_iterative(scene["diffraction"], scene["positions"], scene["probe"], (H, W))


def test_worker_failure_is_one_line_and_ends_the_process(scene):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    cfg = IterativeConfig(device="cuda", epochs=1)
    with ptychi_backend.PtychiWorker() as worker:
        for _ in range(2):  # the second run starts a fresh process and fails the same way
            with pytest.raises(RuntimeError, match="^pty-chi worker failed: .*cuda") as info:
                run_iterative(scene["diffraction"], scene["positions"], scene["probe"], (H, W),
                              cfg, worker=worker)
            assert "\n" not in str(info.value)
            assert not worker.running


def test_a_served_run_does_not_depend_on_the_runs_before_it(scene, lsqml_run, ptychi_worker):
    """Whatever ran last in the shared worker, the same run gives the same bits (the fresh
    process against the served one: ``test_snapshots.py::test_served_run_equals_the_cli_run``)."""
    for algorithm in ("epie", "lsqml"):
        cfg = IterativeConfig(algorithm=algorithm, epochs=2, batch_size=16, num_threads=1)
        run_iterative(scene["diffraction"], scene["positions"], scene["probe"], (H, W), cfg,
                      worker=ptychi_worker)
        cfg = IterativeConfig(epochs=15, batch_size=16, num_threads=1, seed=0)
        again = run_iterative(scene["diffraction"], scene["positions"], scene["probe"], (H, W),
                              cfg, worker=ptychi_worker)
        np.testing.assert_array_equal(again.object, lsqml_run["result"].object)
        np.testing.assert_array_equal(again.loss_history, lsqml_run["result"].loss_history)
    assert ptychi_worker.running


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_use_its_parents_worker(scene, ptychi_worker):
    run_iterative(scene["diffraction"], scene["positions"], scene["probe"], (H, W),
                  IterativeConfig(epochs=1, num_threads=1), worker=ptychi_worker)
    assert ptychi_worker.running
    pid = os.fork()
    if pid == 0:  # child: the handle neither claims nor closes the parent's process
        code = 1 if ptychi_worker.running else 0
        ptychi_worker.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert ptychi_worker.running  # the parent's is untouched and still serves
    res = run_iterative(scene["diffraction"], scene["positions"], scene["probe"], (H, W),
                        IterativeConfig(epochs=1, num_threads=1), worker=ptychi_worker)
    assert res.loss_history.shape == (1,)


def test_worker_num_threads_is_checked():
    with pytest.raises(ValueError, match=r"^num_threads must be None or an integer >= 1; got 0$"):
        ptychi_backend.PtychiWorker(num_threads=0)


# ---------------------------------------------------------------------------------------
# coverage (numpy only)


def test_coverage_map_integer_and_subpixel():
    probe = np.zeros((4, 4), np.complex64)
    probe[1:3, 1:3] = 1.0
    cov = coverage_map(np.array([[5.0, 6.0]]), probe, (10, 10))
    expected = np.zeros((10, 10), np.float32)
    expected[4:6, 5:7] = 1.0  # patch rows 3..6, cols 4..7; probe support at offsets 1..2
    np.testing.assert_array_equal(cov, expected)
    half = coverage_map(np.array([[5.5, 6.0]]), probe, (10, 10))
    np.testing.assert_allclose(half[4:7, 5:7], [[0.5, 0.5], [1.0, 1.0], [0.5, 0.5]])
    assert half.sum() == pytest.approx(4.0)
    off = coverage_map(np.array([[0.0, 0.0]]), probe, (10, 10))
    assert off[0, 0] == 1.0 and off.sum() == pytest.approx(1.0)
