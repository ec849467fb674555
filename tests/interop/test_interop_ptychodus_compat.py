"""Cross-checks against the real ptychodus package (skipped when it is not installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptychopinn.io import ptychodus as pio

pytest.importorskip("ptychodus")

from ptychodus.api.assemble import AssembledDiffractionData  # noqa: E402
from ptychodus.api.diffraction import Polarization  # noqa: E402
from ptychodus.api.geometry import PixelGeometry  # noqa: E402
from ptychodus.api.io import (  # noqa: E402
    load_diffraction_data,
    load_product,
    save_diffraction_data,
    save_product,
    save_ptychopinn_training_data,
)
from ptychodus.api.object import Object, ObjectCenter  # noqa: E402
from ptychodus.api.probe import ProbeSequence  # noqa: E402
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence  # noqa: E402
from ptychodus.api.product import LossValue, Product, ProductMetadata  # noqa: E402
from ptychodus.api.reconstruct import ReconstructInput, prepare_reconstruct_input  # noqa: E402


def _complex(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def _ptychodus_product(seed: int = 0, *, n: int = 9, size: int = 16, layers: int = 2) -> Product:
    """A product built from ptychodus's own classes."""
    rng = np.random.default_rng(seed)
    points = [
        ProbePosition(
            index=int(i) * 3,
            x_m=float(x),
            y_m=float(y),
            probe_photon_count=float(c),
        )
        for i, x, y, c in zip(
            range(n),
            rng.uniform(-2e-7, 2e-7, n),
            rng.uniform(-2e-7, 2e-7, n),
            rng.uniform(0, 100, n),
            strict=True,
        )
    ]
    return Product(
        metadata=ProductMetadata(
            name="from ptychodus",
            comments="built with ptychodus.api classes",
            detector_distance_m=1.75,
            photon_energy_eV=7100.0,
            probe_photon_count=2.0e7,
            exposure_time_s=0.05,
            mass_attenuation_m2_per_kg=1.5,
            tomography_angle_deg=-30.0,
            focus_object_distance_m=1e-3,
            tilt_angle_deg=2.0,
            polarization=next(iter(Polarization)),
            far_field=False,
        ),
        probe_positions=ProbePositionSequence(points),
        probes=ProbeSequence(
            array=_complex(rng, (2, 3, size, size)),
            opr_weights=rng.standard_normal((n, 2)),
            pixel_geometry=PixelGeometry(width_m=1.2e-8, height_m=1.1e-8),
        ),
        object_=Object(
            array=_complex(rng, (layers, 72, 80)),
            pixel_geometry=PixelGeometry(width_m=1.2e-8, height_m=1.1e-8),
            center=ObjectCenter(x_m=4e-8, y_m=-3e-8),
            layer_spacing_m=[2.5e-6] * (layers - 1),
        ),
        losses=[LossValue(epoch=e, value=1.0 / (e + 1)) for e in range(4)],
    )


def test_our_product_loads_in_ptychodus(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    obj = _complex(rng, (60, 70))
    probe = _complex(rng, (16, 16))
    positions = rng.uniform(10, 50, (20, 2))
    ours = pio.product_from_reconstruction(
        obj,
        probe,
        positions,
        pixel_size_m=(1.0e-8, 1.3e-8),
        photon_energy_eV=8000.0,
        detector_object_distance_m=2.0,
        name="ptychopinn",
        center_x_m=1e-7,
        center_y_m=-2e-7,
        indexes=np.arange(20) * 2,
        loss_epochs=np.arange(3),
        loss_values=np.array([0.3, 0.2, 0.1]),
    )
    path = pio.write_product(ours, tmp_path / "product.h5")
    theirs = load_product(path)

    np.testing.assert_array_equal(theirs.object_.get_array(), ours.object)
    np.testing.assert_array_equal(theirs.probes.get_array(), ours.probe)
    np.testing.assert_array_equal(theirs.probe_positions.get_indexes(), np.arange(20) * 2)
    np.testing.assert_array_equal(
        theirs.probe_positions.get_coordinates_x_m(), ours.probe_position_x_m
    )
    np.testing.assert_array_equal(
        theirs.probe_positions.get_coordinates_y_m(), ours.probe_position_y_m
    )
    meta = theirs.metadata
    assert meta.name == "ptychopinn"
    assert meta.photon_energy_eV == 8000.0 and meta.detector_distance_m == 2.0
    assert meta.far_field is True and meta.polarization is None
    geometry = theirs.object_.get_geometry()
    assert (geometry.pixel_width_m, geometry.pixel_height_m) == (1.3e-8, 1.0e-8)
    assert (geometry.center_x_m, geometry.center_y_m) == (1e-7, -2e-7)
    assert list(theirs.object_.layer_spacing_m) == []
    assert [(loss.epoch, loss.value) for loss in theirs.losses] == [(0, 0.3), (1, 0.2), (2, 0.1)]

    # ptychodus's own object-pixel mapping is the SPEC formula; ours adds the even-probe offset
    px_x = geometry.map_probe_positions_to_object_x_px(theirs.probe_positions)
    px_y = geometry.map_probe_positions_to_object_y_px(theirs.probe_positions)
    np.testing.assert_allclose(np.stack([px_y, px_x], 1) + 0.5, positions, atol=1e-9)


def test_ptychodus_product_loads_in_ours(tmp_path: Path) -> None:
    theirs = _ptychodus_product()
    path = tmp_path / "from_ptychodus.h5"
    save_product(path, theirs)
    ours = pio.read_product(path)

    np.testing.assert_array_equal(ours.object, theirs.object_.get_array())
    np.testing.assert_array_equal(ours.probe, theirs.probes.get_array())
    np.testing.assert_array_equal(ours.opr_weights, theirs.probes.get_opr_weights())
    np.testing.assert_array_equal(ours.probe_position_indexes, theirs.probe_positions.get_indexes())
    np.testing.assert_array_equal(
        ours.probe_position_x_m, theirs.probe_positions.get_coordinates_x_m()
    )
    np.testing.assert_array_equal(
        ours.probe_position_y_m, theirs.probe_positions.get_coordinates_y_m()
    )
    np.testing.assert_array_equal(
        ours.probe_photon_counts, theirs.probe_positions.get_probe_photon_counts()
    )
    np.testing.assert_array_equal(ours.object_layer_spacing_m, [2.5e-6])
    np.testing.assert_array_equal(ours.loss_epochs, [0, 1, 2, 3])
    np.testing.assert_array_equal(ours.loss_values, [1.0, 0.5, 1 / 3, 0.25])
    meta = theirs.metadata
    assert ours.name == meta.name and ours.comments == meta.comments
    assert ours.detector_object_distance_m == meta.detector_distance_m
    assert ours.photon_energy_eV == meta.photon_energy_eV
    assert ours.probe_photon_count == meta.probe_photon_count
    assert ours.exposure_time_s == meta.exposure_time_s
    assert ours.mass_attenuation_m2_per_kg == meta.mass_attenuation_m2_per_kg
    assert ours.tomography_angle_deg == meta.tomography_angle_deg
    assert ours.focus_object_distance_m == meta.focus_object_distance_m
    assert ours.tilt_angle_deg == meta.tilt_angle_deg
    assert ours.far_field is False
    assert ours.polarization == meta.polarization.value
    assert ours.extra_attrs == {}
    geometry = theirs.object_.get_geometry()
    assert ours.object_pixel_width_m == geometry.pixel_width_m
    assert ours.object_center_y_m == geometry.center_y_m

    # and back again: our writer reproduces what ptychodus loads from its own file
    again = load_product(pio.write_product(ours, tmp_path / "again.h5"))
    np.testing.assert_array_equal(again.probes.get_array(), theirs.probes.get_array())
    np.testing.assert_array_equal(again.object_.get_array(), theirs.object_.get_array())
    np.testing.assert_array_equal(
        again.probe_positions.get_probe_photon_counts(),
        theirs.probe_positions.get_probe_photon_counts(),
    )
    assert again.metadata == theirs.metadata


def test_patch_placement_matches_ptychodus() -> None:
    """Our (row, col) with the half-pixel offset selects the same pixels ptychodus does."""
    theirs = _ptychodus_product(layers=1)
    ours = pio.PtychodusProduct(
        name="x",
        comments="",
        detector_object_distance_m=1.0,
        photon_energy_eV=1.0,
        probe_photon_count=0.0,
        exposure_time_s=0.0,
        mass_attenuation_m2_per_kg=0.0,
        tomography_angle_deg=0.0,
        probe_position_indexes=theirs.probe_positions.get_indexes(),
        probe_position_x_m=theirs.probe_positions.get_coordinates_x_m(),
        probe_position_y_m=theirs.probe_positions.get_coordinates_y_m(),
        probe=theirs.probes.get_array(),
        probe_pixel_width_m=1.2e-8,
        probe_pixel_height_m=1.1e-8,
        object=theirs.object_.get_array(),
        object_center_x_m=4e-8,
        object_center_y_m=-3e-8,
        object_pixel_width_m=1.2e-8,
        object_pixel_height_m=1.1e-8,
    )
    _, probe, rc = pio.reconstruction_from_product(ours)
    n = probe.shape[0]
    geometry = theirs.object_.get_geometry()
    probe_geometry = theirs.probes.get_geometry()
    for position, (row, col) in zip(theirs.probe_positions, rc, strict=True):
        px = geometry.map_coordinates_probe_to_object(position)
        bounds = probe_geometry.resolve_patch_bounds(px.x_px, px.y_px)
        # ptychodus's patch origin (integer corner + sub-pixel shift) == ours: position - N//2
        assert bounds.x_slice.start + bounds.dx == pytest.approx(col - n // 2, abs=1e-9)
        assert bounds.y_slice.start + bounds.dy == pytest.approx(row - n // 2, abs=1e-9)


def test_diffraction_files_interoperate(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    patterns = rng.poisson(7.0, (5, 12, 12)).astype(np.uint16)
    bad = np.zeros((12, 12), dtype=bool)
    bad[3, 4] = True
    data = AssembledDiffractionData(
        np.arange(5) * 3,
        patterns,
        PixelGeometry(width_m=55e-6, height_m=56e-6),
        bad,
        probe_photon_counts=np.linspace(1, 2, 5),
    )
    save_diffraction_data(tmp_path / "theirs.h5", data)
    got, idx, bad2, attrs = pio.read_diffraction_file(tmp_path / "theirs.h5")
    np.testing.assert_array_equal(got, patterns)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(idx, np.arange(5) * 3)
    np.testing.assert_array_equal(bad2, bad)
    assert (attrs["detector_pixel_width_m"], attrs["detector_pixel_height_m"]) == (55e-6, 56e-6)
    np.testing.assert_array_equal(attrs["probe_photon_counts"], np.linspace(1, 2, 5))

    pio.write_diffraction_file(
        tmp_path / "ours.h5",
        patterns,
        indexes=np.arange(5) * 3,
        bad_pixels=bad,
        detector_pixel_width_m=55e-6,
        detector_pixel_height_m=56e-6,
        probe_photon_counts=np.linspace(1, 2, 5),
    )
    loaded = load_diffraction_data(tmp_path / "ours.h5")
    np.testing.assert_array_equal(loaded.get_patterns(), patterns)
    np.testing.assert_array_equal(loaded.get_indexes(), np.arange(5) * 3)
    np.testing.assert_array_equal(loaded.get_bad_pixels(), bad)
    assert loaded.get_pixel_geometry() == PixelGeometry(width_m=55e-6, height_m=56e-6)


def test_batch_directory_pairs_like_ptychodus(tmp_path: Path) -> None:
    """Duplicate, missing and out-of-range indexes are handled as prepare_reconstruct_input."""
    rng = np.random.default_rng(3)
    size = 16
    product = _ptychodus_product(layers=1, size=size)
    product = Product(  # one OPR / incoherent mode, probe on the object grid
        metadata=product.metadata,
        probe_positions=product.probe_positions,
        probes=ProbeSequence(
            array=_complex(rng, (1, 1, size, size)),
            opr_weights=None,
            pixel_geometry=PixelGeometry(width_m=1.2e-8, height_m=1.1e-8),
        ),
        object_=product.object_,
        losses=[],
    )
    # position indexes are 0, 3, ..., 24; add a duplicate of index 6
    points = list(product.probe_positions) + [ProbePosition(6, 1e-8, 2e-8, 50.0)]
    product = Product(
        metadata=product.metadata,
        probe_positions=ProbePositionSequence(points),
        probes=product.probes,
        object_=product.object_,
        losses=[],
    )
    pattern_indexes = np.array([0, 1, 3, 6, 7, 24, 25, 40])  # 1, 7 interpolated; 25, 40 dropped
    patterns = rng.poisson(2.0, (pattern_indexes.size, size, size)).astype(np.float32)
    assembled = AssembledDiffractionData(
        pattern_indexes,
        patterns,
        PixelGeometry(width_m=75e-6, height_m=75e-6),
        np.zeros((size, size), dtype=bool),
    )
    directory = tmp_path / "batch"
    directory.mkdir()
    save_diffraction_data(directory / "diffraction.h5", assembled)
    save_product(directory / "product.h5", product)

    expected = prepare_reconstruct_input(assembled, product)
    intensities, bad, paired, meta = pio.read_batch_directory(directory)

    np.testing.assert_array_equal(intensities, expected.diffraction_patterns)
    np.testing.assert_array_equal(bad, expected.bad_pixels)
    positions = expected.product.probe_positions
    np.testing.assert_array_equal(meta["indexes"], positions.get_indexes())
    np.testing.assert_array_equal(paired.probe_position_indexes, positions.get_indexes())
    np.testing.assert_allclose(paired.probe_position_x_m, positions.get_coordinates_x_m(),
                               rtol=1e-15, atol=0)
    np.testing.assert_allclose(paired.probe_position_y_m, positions.get_coordinates_y_m(),
                               rtol=1e-15, atol=0)
    assert (meta["n_dropped"], meta["n_interpolated"], meta["n_averaged"]) == (2, 2, 1)

    # the batch reader and the reconstructor plugin's input give the same dataset
    data = pio.dataset_from_batch_directory(directory)
    geometry = product.object_.get_geometry()
    px_x = geometry.map_probe_positions_to_object_x_px(positions)
    px_y = geometry.map_probe_positions_to_object_y_px(positions)
    np.testing.assert_allclose(data.positions, np.stack([px_y, px_x], 1) + 0.5, rtol=0,
                               atol=1e-9)
    np.testing.assert_array_equal(data.probe, product.probes.get_array()[0, 0])
    assert data.obj.shape == (72, 80)
    theirs = pio.dataset_from_product(expected.product, expected.diffraction_patterns,
                                      expected.bad_pixels)
    for name in ("diffraction", "positions", "probe", "obj"):
        np.testing.assert_allclose(getattr(data, name), getattr(theirs, name), rtol=1e-12,
                                   atol=1e-12, err_msg=name)


def test_ptychodus_pinn_npz_export_reads_as_amplitudes(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    size = 16
    product = _ptychodus_product(layers=1, size=size)
    n = len(product.probe_positions)
    patterns = rng.poisson(9.0, (n, size, size)).astype(np.uint32)
    bad = np.zeros((size, size), dtype=bool)
    bad[0, 0] = True
    path = tmp_path / "train.npz"
    save_ptychopinn_training_data(
        path, ReconstructInput(patterns, bad, product), inpaint_bad_pixels=False
    )
    with pytest.raises(ValueError, match="does not say whether it holds intensities"):
        pio.read_ptychodus_npz(path)
    out = pio.read_ptychodus_npz(path, values="intensity")
    expected = np.sqrt(np.where(bad, 0, patterns).astype(np.float32))
    np.testing.assert_array_equal(out["diffraction"], expected)
    np.testing.assert_array_equal(out["probeGuess"], product.probes.get_array()[0, 0])
    np.testing.assert_array_equal(out["bad_pixels"], bad)
    geometry = product.object_.get_geometry()
    px_x = geometry.map_probe_positions_to_object_x_px(product.probe_positions)
    np.testing.assert_allclose(out["xcoords"], px_x + 0.5, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("energy", "distance", "pixel", "n"), [(8000.0, 2.0, 75e-6, 64), (12345.6, 1.7, 55e-6, 128)]
)
def test_far_field_pixel_size_matches_ptychodus(
    energy: float, distance: float, pixel: float, n: int
) -> None:
    from ptychodus.api.geometry import ImageExtent
    from ptychodus.api.propagate import compute_product_geometry

    geometry = compute_product_geometry(
        photon_energy_eV=energy,
        probe_photon_count=0.0,
        exposure_time_s=0.0,
        detector_distance_m=distance,
        detector_extent=ImageExtent(width_px=n, height_px=n),
        detector_pixel_geometry=PixelGeometry(width_m=pixel, height_m=pixel),
    )
    expected = geometry.object_plane_pixel_geometry.width_m
    assert pio.far_field_pixel_size_m(energy, distance, pixel, n) == expected
