"""The Ptychodus ``TrainableReconstructor`` against ptychodus's own classes (needs ptychodus)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ptychodus")

from ptychodus.api.assemble import AssembledDiffractionData  # noqa: E402
from ptychodus.api.geometry import PixelGeometry  # noqa: E402
from ptychodus.api.object import Object, ObjectCenter  # noqa: E402
from ptychodus.api.probe import ProbeSequence  # noqa: E402
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence  # noqa: E402
from ptychodus.api.product import Product, ProductMetadata  # noqa: E402
from ptychodus.api.reconstruct import (  # noqa: E402
    ReconstructInput,
    ReconstructOutput,
    TrainableReconstructor,
    prepare_reconstruct_input,
)

from ptychopinn.config import RunConfig  # noqa: E402
from ptychopinn.data.simulate import SimulationConfig, simulate  # noqa: E402
from ptychopinn.inference.predict import InferConfig  # noqa: E402
from ptychopinn.inference.predict import reconstruct as predict_reconstruct  # noqa: E402
from ptychopinn.interop.ptychodus_reconstructor import (  # noqa: E402
    LIBRARY_NAME,
    PtychopinnReconstructor,
    PtychopinnReconstructorLibrary,
    install_in_ptychodus,
    ptychodata_from_input,
)
from ptychopinn.io.dataset import load_dataset  # noqa: E402
from ptychopinn.io.ptychodus import far_field_pixel_size_m  # noqa: E402
from ptychopinn.training.bundle import load_bundle  # noqa: E402

N = 32
ENERGY_EV = 8000.0
DISTANCE_M = 2.0
DETECTOR_PX_M = 75e-6
CENTER_XY_M = (3.0e-6, -2.0e-6)
BAD = ((3, 5), (20, 11), (N // 2 + 1, N // 2))  # (row, col) of bad detector pixels
SATURATED = np.iinfo(np.uint32).max


@pytest.fixture(scope="module")
def sim():
    return simulate(SimulationConfig(object_size=96, patch_size=N, n_positions=120, seed=0))


@pytest.fixture(scope="module")
def detector(sim):
    """(counts (M, N, N) uint32 with saturated bad pixels, bad_pixels (N, N) bool)."""
    counts = np.rint(np.asarray(sim.diffraction, np.float64) ** 2).astype(np.uint32)
    bad = np.zeros((N, N), bool)
    for r, c in BAD:
        bad[r, c] = True
    counts[:, bad] = SATURATED
    return counts, bad


@pytest.fixture(scope="module")
def reference_data(sim, detector):
    """``sim`` with the amplitudes ptychodus's counts imply (bad pixels zeroed)."""
    counts, bad = detector
    amp = np.sqrt(np.where(bad, 0, counts).astype(np.float32))
    return replace(sim, diffraction=amp)


@pytest.fixture(scope="module")
def reconstruct_input(sim, detector) -> ReconstructInput:
    """A ReconstructInput assembled by ptychodus itself (``prepare_reconstruct_input``)."""
    counts, bad = detector
    m = sim.n_patterns
    px = far_field_pixel_size_m(ENERGY_EV, DISTANCE_M, DETECTOR_PX_M, N)
    obj_shape = (96, 96)
    cx, cy = CENTER_XY_M
    # ptychodus convention: a position is where the probe array's centre ((N-1)/2) sits;
    # ptychopinn's is probe index N//2, half a pixel further along each axis.
    rows, cols = sim.positions[:, 0] - 0.5, sim.positions[:, 1] - 0.5
    xs = cx + (cols - (obj_shape[1] - 1) / 2) * px
    ys = cy + (rows - (obj_shape[0] - 1) / 2) * px
    indexes = 10 + 2 * np.arange(m)
    positions = ProbePositionSequence(
        [ProbePosition(index=int(i), x_m=float(x), y_m=float(y)) for i, x, y in
         zip(indexes, xs, ys, strict=True)]
    )
    junk_mode = np.random.default_rng(0).standard_normal((N, N)).astype(np.complex64)
    product = Product(
        metadata=ProductMetadata(
            name="sim",
            comments="",
            detector_distance_m=DISTANCE_M,
            photon_energy_eV=ENERGY_EV,
            probe_photon_count=0.0,
            exposure_time_s=0.0,
            mass_attenuation_m2_per_kg=0.0,
            tomography_angle_deg=0.0,
        ),
        probe_positions=positions,
        probes=ProbeSequence(
            array=np.stack([sim.probe, junk_mode])[None],  # (1 OPR, 2 modes, N, N)
            opr_weights=None,
            pixel_geometry=PixelGeometry(width_m=px, height_m=px),
        ),
        object_=Object(
            array=np.ones((1, *obj_shape), np.complex64),
            pixel_geometry=PixelGeometry(width_m=px, height_m=px),
            center=ObjectCenter(x_m=cx, y_m=cy),
        ),
        losses=[],
    )
    # ptychodus's own mapping puts the probe centre half a pixel before our patch centre
    geometry = product.object_.get_geometry()
    np.testing.assert_allclose(
        geometry.map_probe_positions_to_object_x_px(positions) + 0.5, sim.positions[:, 1],
        atol=1e-9,
    )
    assembled = AssembledDiffractionData(
        indexes=indexes[::-1].copy(),  # pairing is by scan index, not order
        patterns=counts[::-1].copy(),
        pixel_geometry=PixelGeometry(width_m=DETECTOR_PX_M, height_m=DETECTOR_PX_M),
        bad_pixels=bad,
    )
    return prepare_reconstruct_input(assembled, product)


@pytest.fixture(scope="module")
def trained(reconstruct_input, tmp_path_factory):
    """Export the input, then ``train`` on it (one Lightning run shared by the module).

    Returns (reconstructor, training outputs, training directory, run directory).
    """
    root = tmp_path_factory.mktemp("ptychodus_recon")
    cfg = RunConfig().with_overrides(  # a tiny PINN; n=64 is replaced by the pattern size
        model={"n": 64, "gridsize": 2, "n_filters_scale": 0.25},
        train={"epochs": 1, "show_progress": False},
    )
    reconstructor = PtychopinnReconstructor(run_config=cfg)
    reconstructor.export_training_data(root / "data" / "train_data.npz", reconstruct_input)
    (root / "out" / "ptychopinn_run").mkdir(parents=True)  # taken: the run goes to _2
    outputs = list(reconstructor.train(root / "data", root / "out"))
    return reconstructor, outputs, root / "data", root / "out" / "ptychopinn_run_2"


@pytest.fixture(scope="module")
def model_zip(trained) -> Path:
    return trained[3] / "model.zip"


def _object(outputs: list[ReconstructOutput]) -> np.ndarray:
    assert len(outputs) == 1
    return outputs[0].product.object_.get_array()


@pytest.fixture(scope="module")
def outputs(model_zip, reconstruct_input) -> list[ReconstructOutput]:
    """What our reconstructor yields for ``reconstruct_input`` with the trained model."""
    reconstructor = PtychopinnReconstructor(model_path=model_zip)
    assert isinstance(reconstructor, TrainableReconstructor) and reconstructor.is_model_loaded()
    assert reconstructor.get_progress_goal() == 1
    return list(reconstructor.reconstruct(reconstruct_input))


def test_reconstruct_matches_predict(outputs, model_zip, reconstruct_input, reference_data) -> None:
    out = outputs[0].product
    assert outputs[0].progress == 1 and outputs[0].status == 0
    obj = _object(outputs)
    assert obj.shape == (1, 96, 96) and obj.dtype == np.complex64

    # ptychodus hands the patterns over in reverse order (as assembled); the result must not care
    ref = predict_reconstruct(
        load_bundle(model_zip), reference_data, InferConfig(show_progress=False)
    )
    covered = ref.coverage > 0
    assert 0.3 < covered.mean() < 1.0 and np.abs(ref.object[covered]).min() > 0
    np.testing.assert_allclose(obj[0][covered], ref.object[covered], rtol=1e-5, atol=1e-6)
    assert not np.any(obj[0][~covered])

    # the object stays on the input grid; everything else is passed through
    inp = reconstruct_input.product
    geometry = out.object_.get_geometry()
    assert geometry == inp.object_.get_geometry()
    assert out.probe_positions is inp.probe_positions and out.probes is inp.probes
    assert out.metadata == inp.metadata


def test_reconstruct_without_model_refuses(reconstruct_input) -> None:
    reconstructor = PtychopinnReconstructor()
    assert not reconstructor.is_model_loaded()
    with pytest.raises(RuntimeError, match="no model loaded") as info:
        next(iter(reconstructor.reconstruct(reconstruct_input)))
    assert "\n" not in str(info.value)
    with pytest.raises(RuntimeError, match="no model loaded"):
        reconstructor.save_model(Path("unused.zip"))


def test_save_load_round_trip(outputs, model_zip, reconstruct_input, tmp_path) -> None:
    first = PtychopinnReconstructor(model_path=model_zip)
    copy = tmp_path / "saved" / "model.zip"
    first.save_model(copy)
    second = PtychopinnReconstructor()
    second.load_model_from_file(copy)
    assert second.bundle.manifest["training_data"] == first.bundle.manifest["training_data"]
    np.testing.assert_array_equal(
        _object(list(second.reconstruct(reconstruct_input))), _object(outputs)
    )
    assert [p.name for p in copy.parent.iterdir()] == ["model.zip"]  # no temp file left behind
    assert first.get_model_file_extension() == ".zip"
    assert "*.zip" in first.get_model_file_filter()


def test_reconstruct_with_adaptation(outputs, model_zip, reconstruct_input, reference_data,
                                    tmp_path) -> None:
    """``adapt=`` fine-tunes a copy on the scan first: the object is the adapted model's, kept
    under ``adapt_dir``; the loaded model is unchanged (default: no adaptation)."""
    from ptychopinn.inference.adapt import AdaptConfig

    cfg = AdaptConfig(epochs=1, show_progress=False)
    reconstructor = PtychopinnReconstructor(model_path=model_zip, adapt=cfg,
                                            adapt_dir=tmp_path / "keep")
    weights = {k: v.clone() for k, v in reconstructor.bundle.model.state_dict().items()}
    obj = _object(list(reconstructor.reconstruct(reconstruct_input)))[0]
    adapted = load_bundle(tmp_path / "keep" / "adapted")
    ref = predict_reconstruct(adapted, reference_data, InferConfig(show_progress=False))
    covered = ref.coverage > 0
    np.testing.assert_allclose(obj[covered], ref.object[covered], rtol=1e-5, atol=1e-6)
    assert not np.allclose(obj, _object(outputs)[0], atol=1e-4)
    state = reconstructor.bundle.model.state_dict()
    assert all(np.array_equal(weights[k].numpy(), v.numpy()) for k, v in state.items())
    list(reconstructor.reconstruct(reconstruct_input))  # a second call keeps its own run
    assert (tmp_path / "keep" / "adapted_2" / "model.zip").is_file()


@pytest.mark.skipif(not importlib.util.find_spec("ptychi"), reason="pty-chi not installed")
def test_reconstruct_with_refinement(outputs, model_zip, reconstruct_input) -> None:
    """``refine=`` polishes the network object with pty-chi from it: the output is what
    ``refine_reconstruction`` gives on the same scan; the losses are pty-chi's."""
    from ptychopinn.inference.refine import refine_reconstruction
    from ptychopinn.iterative.ptychi_backend import IterativeConfig

    cfg = IterativeConfig(algorithm="lsqml", epochs=2, seed=0)
    reconstructor = PtychopinnReconstructor(model_path=model_zip, refine=cfg)
    out = list(reconstructor.reconstruct(reconstruct_input))
    assert reconstructor._ptychi_worker.running  # kept open for the next call
    data = ptychodata_from_input(reconstruct_input)
    net = predict_reconstruct(load_bundle(model_zip), data, InferConfig(show_progress=False))
    ref, it = refine_reconstruction(net, data, cfg, show_progress=False,
                                    worker=reconstructor._ptychi_worker)
    np.testing.assert_allclose(_object(out)[0], ref.object, rtol=1e-4, atol=1e-5)
    assert not np.allclose(_object(out), _object(outputs), atol=1e-3)
    losses = out[0].product.losses
    assert [v.epoch for v in losses] == [0, 1]
    assert [v.value for v in losses] == pytest.approx(list(it.loss_history), rel=1e-5)
    reconstructor.close()
    assert not reconstructor._ptychi_worker.running


def test_refinement_without_ptychi_is_refused(model_zip, monkeypatch) -> None:
    from ptychopinn.errors import PtychoInputError
    from ptychopinn.iterative import ptychi_backend
    from ptychopinn.iterative.ptychi_backend import IterativeConfig

    monkeypatch.setattr(ptychi_backend, "is_available", lambda: False)
    with pytest.raises(PtychoInputError) as e:
        PtychopinnReconstructor(model_path=model_zip, refine=IterativeConfig(epochs=2))
    assert str(e.value) == ("refine= needs pty-chi, which is not installed: "
                            "pip install 'ptychopinn[ptychi]'")


def test_export_training_data(trained, reconstruct_input, reference_data, sim, tmp_path) -> None:
    data = load_dataset(trained[2] / "train_data.npz")
    # ptychodus keeps the assembled (reversed) pattern order and pairs positions by scan index
    np.testing.assert_array_equal(data.diffraction, reference_data.diffraction[::-1])
    np.testing.assert_allclose(data.positions, sim.positions[::-1], atol=1e-9)
    np.testing.assert_array_equal(data.probe, sim.probe)  # first incoherent mode only
    assert data.obj.shape == (96, 96) and data.metadata["n_bad_pixels"] == len(BAD)
    reconstructor = PtychopinnReconstructor()
    assert "*.npz" in reconstructor.get_training_data_file_filter()
    reconstructor.export_training_data(tmp_path / "train.h5", reconstruct_input)  # chunked HDF5
    h5 = load_dataset(tmp_path / "train.h5")
    np.testing.assert_array_equal(np.asarray(h5.diffraction[:]), data.diffraction)


def test_train_loads_the_new_model(trained) -> None:
    reconstructor, outputs, _, run = trained
    assert len(outputs) == 1 and outputs[0].progress == 1
    assert [loss.epoch for loss in outputs[0].training_loss] == [0]
    assert np.isfinite(outputs[0].training_loss[0].value)
    assert (run / "model.zip").is_file() and (run / "metrics.csv").is_file()
    assert reconstructor.is_model_loaded() and reconstructor.bundle.model.n == N
    assert reconstructor.bundle.manifest["training_data"]["n_patterns"] == 120


def test_bad_input_is_refused_with_one_line(reconstruct_input) -> None:
    counts = np.asarray(reconstruct_input.diffraction_patterns, np.float32).copy()
    counts[7, 0, 0] = np.nan  # a good pixel
    with pytest.raises(ValueError, match=r"Ptychodus input 'sim': 'patterns' has NaN/Inf") as e:
        ptychodata_from_input(replace(reconstruct_input, diffraction_patterns=counts))
    assert "\n" not in str(e.value)
    counts[7, 0, 0] = -1.0
    with pytest.raises(ValueError, match="negative values"):
        ptychodata_from_input(replace(reconstruct_input, diffraction_patterns=counts))
    with pytest.raises(ValueError, match="119 patterns but 120 probe positions"):
        ptychodata_from_input(replace(reconstruct_input, diffraction_patterns=counts[1:]))


def test_install_in_ptychodus_registers_library(model_zip, monkeypatch) -> None:
    import ptychodus.model.core as core
    from ptychodus.api.settings import SettingsRegistry
    from ptychodus.model.task_manager import TaskManager

    monkeypatch.setattr(core, "ProcessingCore", core.ProcessingCore)  # restored afterwards
    install_in_ptychodus()
    install_in_ptychodus()  # idempotent
    package_logger = logging.getLogger("ptychopinn")
    monkeypatch.setattr(package_logger, "handlers", list(package_logger.handlers))
    processing = core.ProcessingCore(TaskManager(), SettingsRegistry(), None, [])
    api = processing.processing_api
    key = "ptychopinn-lightning_pinn"
    assert list(api.available_reconstructors()) == [key]
    assert list(api.available_reconstructors_parts()) == [(LIBRARY_NAME.casefold(), "pinn")]
    api.load_model_from_file(model_zip, algorithm=key)
    reconstructor = processing.algorithm_parameter.get_current_reconstructor()
    assert isinstance(reconstructor, PtychopinnReconstructor) and reconstructor.is_model_loaded()
    assert api.get_model_file_extension() == ".zip"
    assert [r.name for r in PtychopinnReconstructorLibrary()] == ["PINN"]


def test_import_without_ptychodus_is_one_clear_line(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "ptychodus" or m.startswith("ptychodus.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "ptychopinn.interop.ptychodus_reconstructor")
    with pytest.raises(ImportError, match=r"pip install ptychopinn\[ptychodus\]") as info:
        importlib.import_module("ptychopinn.interop.ptychodus_reconstructor")
    assert "\n" not in str(info.value)


def test_package_import_does_not_import_ptychodus() -> None:
    code = (
        "import sys, ptychopinn, ptychopinn.interop, ptychopinn.io.ptychodus; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ptychodus'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("kind, model, grouping, gridsize", [
    ("unrolled", {"n_iterations": 2, "refiner_width": 4}, {"inference_gridsize": 3}, 3),
])
def test_other_kinds_reconstruct_through_ptychodus(kind, model, grouping, gridsize,
                                                   reconstruct_input, reference_data,
                                                   tmp_path) -> None:
    """Every model kind works unchanged in the reconstructor (the CNN ``pinn`` above)."""
    cfg = RunConfig().with_overrides(
        model={"n": N, "kind": kind, **model},
        grouping=grouping, train={"epochs": 1, "show_progress": False})
    from ptychopinn.training.api import train

    train(reference_data, tmp_path / "u", cfg)
    outs = list(PtychopinnReconstructor(model_path=tmp_path / "u" / "model.zip")
                .reconstruct(reconstruct_input))
    ref = predict_reconstruct(load_bundle(tmp_path / "u"), reference_data,
                              InferConfig(show_progress=False))
    assert ref.info["model_kind"] == kind and ref.info["gridsize"] == gridsize
    covered = ref.coverage > 0
    np.testing.assert_allclose(_object(outs)[0][covered], ref.object[covered], rtol=1e-4,
                               atol=1e-5)
