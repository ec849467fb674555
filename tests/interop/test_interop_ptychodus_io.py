"""Ptychodus I/O: round trips, conventions, refusals (file I/O through the ptychodus package)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from ptychopinn.errors import PtychoInputError
from ptychopinn.io import ptychodus as pio

needs_ptychodus = pytest.mark.skipif(importlib.util.find_spec("ptychodus") is None,
                                     reason="ptychodus not installed")


def _complex(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def make_product(seed: int = 0, *, layers: int = 1, opr: int = 1, modes: int = 1):
    rng = np.random.default_rng(seed)
    p = 12
    return pio.PtychodusProduct(
        name="scan 42 ünïcode",
        comments="made by a test",
        detector_object_distance_m=2.5,
        photon_energy_eV=8800.0,
        probe_photon_count=1.0e6,
        exposure_time_s=0.1,
        mass_attenuation_m2_per_kg=3.0,
        tomography_angle_deg=12.5,
        probe_position_indexes=np.arange(p) * 2 + 5,
        probe_position_x_m=rng.uniform(-1e-6, 1e-6, p),
        probe_position_y_m=rng.uniform(-1e-6, 1e-6, p),
        probe=_complex(rng, (opr, modes, 8, 8)),
        probe_pixel_width_m=1.0e-8,
        probe_pixel_height_m=1.0e-8,
        object=_complex(rng, (layers, 40, 48)),
        object_center_x_m=3.0e-7,
        object_center_y_m=-2.0e-7,
        object_pixel_width_m=1.0e-8,
        object_pixel_height_m=1.0e-8,
        object_layer_spacing_m=np.full(layers - 1, 5e-6),
        loss_epochs=np.arange(3),
        loss_values=np.array([3.0, 2.0, 1.5]),
        opr_weights=rng.standard_normal((p, opr)) if opr > 1 else None,
        probe_photon_counts=rng.uniform(0, 10, p),
        polarization="left_circular",
        extra_attrs={"beamline": "2-ID-D"},
    )


def assert_products_equal(a: pio.PtychodusProduct, b: pio.PtychodusProduct) -> None:
    for name in pio.PtychodusProduct.__dataclass_fields__:
        va, vb = getattr(a, name), getattr(b, name)
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            assert va is not None and vb is not None, name
            assert va.dtype == vb.dtype, name
            np.testing.assert_array_equal(va, vb, err_msg=name)
        else:
            assert va == vb, name


@needs_ptychodus
@pytest.mark.parametrize(("layers", "opr", "modes"), [(1, 1, 1), (2, 3, 2)])
def test_write_read_round_trip_is_exact(tmp_path: Path, layers: int, opr: int, modes: int) -> None:
    product = make_product(layers=layers, opr=opr, modes=modes)
    path = pio.write_product(product, tmp_path / "product.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["product.h5"]  # no temp file left
    back = pio.read_product(path)
    assert_products_equal(product, back)
    assert back.probe.shape == (opr, modes, 8, 8)
    assert back.object.shape == (layers, 40, 48)


@needs_ptychodus
def test_written_layout_matches_ptychodus_names(tmp_path: Path) -> None:
    path = pio.write_product(make_product(), tmp_path / "p.h5")
    with h5py.File(path, "r") as h5:
        assert {
            "name",
            "comments",
            "detector_object_distance_m",
            "photon_energy_eV",
            "probe_photon_count",
            "exposure_time_s",
            "mass_attenuation_m2_per_kg",
            "tomography_angle_deg",
            "focus_object_distance_m",
            "tilt_angle_deg",
            "far_field",
            "polarization",
        } <= set(h5.attrs)
        assert set(h5) == {
            "probe_position_indexes",
            "probe_position_x_m",
            "probe_position_y_m",
            "probe_photon_counts",
            "probe",
            "object",
            "object_layer_spacing_m",
            "loss_epochs",
            "loss_values",
        }
        assert h5["probe_position_indexes"].dtype == np.int64
        assert h5["probe_position_x_m"].dtype == np.float64
        assert h5["probe"].dtype == np.complex64 and h5["probe"].ndim == 4
        assert h5["object"].dtype == np.complex64 and h5["object"].ndim == 3
        assert h5["object_layer_spacing_m"].shape == (0,)  # written even for one layer
        assert set(h5["object"].attrs) == {
            "center_x_m",
            "center_y_m",
            "pixel_width_m",
            "pixel_height_m",
        }
        assert set(h5["probe"].attrs) == {"pixel_width_m", "pixel_height_m"}


@needs_ptychodus
def test_legacy_energy_and_defaults(tmp_path: Path) -> None:
    path = pio.write_product(make_product(), tmp_path / "p.h5")
    with h5py.File(path, "r+") as h5:
        energy = h5.attrs["photon_energy_eV"]
        del h5.attrs["photon_energy_eV"]
        h5.attrs["probe_energy_eV"] = energy
        for key in ("name", "probe_photon_count", "far_field"):
            del h5.attrs[key]
        for key in ("loss_epochs", "loss_values", "object_layer_spacing_m"):
            del h5[key]
        del h5["probe"].attrs["pixel_width_m"]
    back = pio.read_product(path)
    assert back.photon_energy_eV == 8800.0
    assert "probe_energy_eV" not in back.extra_attrs
    assert back.name == "Unnamed" and back.probe_photon_count == 0.0 and back.far_field
    assert back.loss_epochs.shape == (0,) and back.object_layer_spacing_m.shape == (0,)
    assert back.probe_pixel_width_m == back.object_pixel_width_m


def _refused_by_ptychodus(path: Path, loader: str) -> None:
    """Ptychodus's own loader refuses ``path`` (so we must too)."""
    import ptychodus.api.io as ptychodus_io

    with pytest.raises((KeyError, ValueError, TypeError, OSError)):
        getattr(ptychodus_io, loader)(path)


@needs_ptychodus
@pytest.mark.parametrize(("dataset", "attr"), [
    ("probe_position_x_m", None),  # a required dataset
    (None, "detector_object_distance_m"),  # a required root attribute
    ("object", "center_y_m"),  # a required attribute of the object
])
def test_product_ptychodus_refuses_is_refused_in_one_line(tmp_path: Path, dataset: str | None,
                                                          attr: str | None) -> None:
    path = pio.write_product(make_product(), tmp_path / "p.h5")
    with h5py.File(path, "r+") as h5:
        if attr is None:
            del h5[dataset]
        else:
            del (h5 if dataset is None else h5[dataset]).attrs[attr]
    _refused_by_ptychodus(path, "load_product")
    with pytest.raises(PtychoInputError) as info:
        pio.read_product(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ptychodus cannot read this product file (")
    assert "\n" not in message and (attr or dataset) in message


@needs_ptychodus
def test_missing_energy_is_refused(tmp_path: Path) -> None:
    path = pio.write_product(make_product(), tmp_path / "p.h5")
    with h5py.File(path, "r+") as h5:
        del h5.attrs["photon_energy_eV"]
    _refused_by_ptychodus(path, "load_product")
    with pytest.raises(PtychoInputError, match="photon_energy_eV") as info:
        pio.read_product(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@needs_ptychodus
def test_bad_content_is_refused_with_file_and_key(tmp_path: Path) -> None:
    # ptychodus's loader zips the position datasets (keeping 3 of 12 here); we refuse
    path = pio.write_product(make_product(), tmp_path / "p.h5")
    with h5py.File(path, "r+") as h5:
        del h5["probe_position_y_m"]
        h5["probe_position_y_m"] = np.zeros(3)
    with pytest.raises(PtychoInputError, match=r"p\.h5: .*lengths differ \(12, 12, 3\)") as info:
        pio.read_product(path)
    assert "probe_position_y_m" in str(info.value)

    path = pio.write_product(make_product(), tmp_path / "r.h5")
    with h5py.File(path, "r+") as h5:
        attrs = dict(h5["object"].attrs)
        del h5["object"]
        h5["object"] = np.ones((4, 4))
        h5["object"].attrs.update(attrs)
    _refused_by_ptychodus(path, "load_product")
    with pytest.raises(PtychoInputError, match=r"r\.h5: ptychodus cannot read .*complex"):
        pio.read_product(path)

    not_h5 = tmp_path / "x.h5"
    not_h5.write_text("hello")
    with pytest.raises(PtychoInputError, match=r"x\.h5: ptychodus cannot read this product file"):
        pio.read_product(not_h5)
    with pytest.raises(FileNotFoundError):
        pio.read_product(tmp_path / "absent.h5")


@needs_ptychodus
def test_product_ptychodus_cannot_hold_is_refused(tmp_path: Path) -> None:
    product = make_product()
    bad = pio.PtychodusProduct(
        **{**{k: getattr(product, k) for k in pio.PtychodusProduct.__dataclass_fields__},
           "polarization": "linear_horizontal"})
    with pytest.raises(PtychoInputError) as info:
        pio.write_product(bad, tmp_path / "p.h5")
    assert str(info.value) == (
        f"{tmp_path / 'p.h5'}: key 'polarization': 'linear_horizontal' is not a Ptychodus "
        "polarization; expected one of 'left_circular', 'right_circular' or None")
    assert not list(tmp_path.iterdir())  # nothing written, no temp file left


def test_ptychodus_io_without_ptychodus_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    """Without the package, every Ptychodus file read/write is refused in one line."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "ptychodus" else find_spec(name, *args))
    (tmp_path / "product.h5").write_bytes(b"")
    (tmp_path / "diffraction.h5").write_bytes(b"")
    product = make_product()
    calls = {
        "reading a Ptychodus product": lambda: pio.read_product(tmp_path / "product.h5"),
        "writing a Ptychodus product": lambda: pio.write_product(product, tmp_path / "p.h5"),
        "reading a Ptychodus diffraction file":
            lambda: pio.read_diffraction_file(tmp_path / "diffraction.h5"),
        "writing a Ptychodus diffraction file": lambda: pio.write_diffraction_file(
            tmp_path / "d.h5", np.ones((2, 8, 8)), detector_pixel_width_m=1e-4,
            detector_pixel_height_m=1e-4),
    }
    for what, call in calls.items():
        with pytest.raises(PtychoInputError) as info:
            call()
        message = str(info.value)
        assert message.endswith(f"{what} needs the ptychodus package (>= 1.7), which is not "
                                "installed: pip install 'ptychopinn[ptychodus]'")
        assert str(tmp_path) in message and "\n" not in message
    with pytest.raises(PtychoInputError, match=r"pip install 'ptychopinn\[ptychodus\]'"):
        pio.dataset_from_batch_directory(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diffraction.h5", "product.h5"]


def test_product_is_immutable() -> None:
    product = make_product()
    with pytest.raises(ValueError, match="read-only"):
        product.object[0, 0, 0] = 0
    with pytest.raises(AttributeError):
        product.name = "other"  # type: ignore[misc]


def test_position_formula_hand_made_case() -> None:
    # 5 x 4 object (H x W), centre at (x, y) = (1 um, 2 um), 0.5 um pixels.
    rc = pio.positions_m_to_px(
        np.array([1.0e-6, 1.5e-6, 0.25e-6]),
        np.array([2.0e-6, 2.0e-6, 3.0e-6]),
        center_x_m=1.0e-6,
        center_y_m=2.0e-6,
        pixel_width_m=0.5e-6,
        pixel_height_m=0.5e-6,
        object_shape=(5, 4),
    )
    # the object centre maps to ((H-1)/2, (W-1)/2) = (2, 1.5)
    np.testing.assert_allclose(rc, [[2.0, 1.5], [2.0, 2.5], [4.0, 0.0]], atol=1e-12)
    # with an even probe, ptychopinn's patch centre is half a pixel further along each axis
    rc_ours = pio.positions_m_to_px(
        np.array([1.0e-6]),
        np.array([2.0e-6]),
        center_x_m=1.0e-6,
        center_y_m=2.0e-6,
        pixel_width_m=0.5e-6,
        pixel_height_m=0.5e-6,
        object_shape=(5, 4),
        probe_shape=(4, 3),
    )
    np.testing.assert_allclose(rc_ours, [[2.5, 1.5]], atol=1e-12)
    assert pio.probe_centre_offset((64, 64)) == (0.5, 0.5)
    assert pio.probe_centre_offset((7, 8)) == (0.0, 0.5)


@pytest.mark.parametrize("probe_shape", [None, (64, 64), (9, 9)])
def test_position_conversion_round_trip(probe_shape: tuple[int, int] | None) -> None:
    rng = np.random.default_rng(1)
    x_m = rng.uniform(-5e-6, 5e-6, 100)
    y_m = rng.uniform(-5e-6, 5e-6, 100)
    geometry = {
        "center_x_m": 1.2e-6,
        "center_y_m": -0.7e-6,
        "pixel_width_m": 7.3e-9,
        "pixel_height_m": 6.1e-9,
        "object_shape": (1001, 1500),
        "probe_shape": probe_shape,
    }
    rc = pio.positions_m_to_px(x_m, y_m, **geometry)
    x2, y2 = pio.positions_px_to_m(rc, **geometry)
    np.testing.assert_allclose(x2, x_m, rtol=0, atol=1e-18)
    np.testing.assert_allclose(y2, y_m, rtol=0, atol=1e-18)
    rc2 = pio.positions_m_to_px(x2, y2, **geometry)
    np.testing.assert_allclose(rc2, rc, rtol=0, atol=1e-9)


@needs_ptychodus
def test_reconstruction_product_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    obj = _complex(rng, (70, 90))
    probe = _complex(rng, (16, 16))
    positions = rng.uniform(10, 60, (25, 2))
    product = pio.product_from_reconstruction(
        obj,
        probe,
        positions,
        pixel_size_m=(9e-9, 1.1e-8),
        photon_energy_eV=10000.0,
        detector_object_distance_m=1.5,
        name="ptychopinn test",
        loss_epochs=np.arange(2),
        loss_values=np.array([1.0, 0.5]),
    )
    assert product.probe.shape == (1, 1, 16, 16) and product.object.shape == (1, 70, 90)
    back = pio.read_product(pio.write_product(product, tmp_path / "product.h5"))
    obj2, probe2, positions2 = pio.reconstruction_from_product(back)
    np.testing.assert_array_equal(obj2, obj)
    np.testing.assert_array_equal(probe2, probe)
    np.testing.assert_allclose(positions2, positions, rtol=0, atol=1e-9)
    obj2[0, 0] = 0  # returned arrays are writable copies
    # an object-centred position (ptychodus px (H-1)/2) is half a pixel off for an even probe
    np.testing.assert_allclose(
        pio.positions_m_to_px(
            back.probe_position_x_m,
            back.probe_position_y_m,
            center_x_m=back.object_center_x_m,
            center_y_m=back.object_center_y_m,
            pixel_width_m=back.object_pixel_width_m,
            pixel_height_m=back.object_pixel_height_m,
            object_shape=back.object_shape,
        ),
        positions - 0.5,
        atol=1e-9,
    )


def test_reconstruction_refuses_probe_off_object_grid() -> None:
    product = make_product()
    bad = pio.PtychodusProduct(
        **{
            **{k: getattr(product, k) for k in pio.PtychodusProduct.__dataclass_fields__},
            "probe_pixel_width_m": 2e-8,
        }
    )
    with pytest.raises(ValueError, match="probe pixel width .* differs from object pixel width"):
        pio.reconstruction_from_product(bad)


@needs_ptychodus
def test_diffraction_file_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    patterns = rng.poisson(5.0, (6, 8, 8)).astype(np.uint16)
    bad = np.zeros((8, 8), dtype=bool)
    bad[1, 2] = True
    path = pio.write_diffraction_file(
        tmp_path / "diffraction.h5",
        patterns,
        indexes=np.arange(6) + 10,
        bad_pixels=bad,
        detector_pixel_width_m=75e-6,
        detector_pixel_height_m=76e-6,
    )
    got, idx, bad2, attrs = pio.read_diffraction_file(path)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, patterns)
    np.testing.assert_array_equal(idx, np.arange(6) + 10)
    np.testing.assert_array_equal(bad2, bad)
    assert attrs["detector_pixel_width_m"] == 75e-6
    assert attrs["detector_pixel_height_m"] == 76e-6
    assert attrs["probe_photon_counts"] is None
    part, idx_part, _, _ = pio.read_diffraction_file(path, frames=slice(2, 4))
    np.testing.assert_array_equal(part, patterns[2:4])
    np.testing.assert_array_equal(idx_part, [12, 13])


@needs_ptychodus
def test_diffraction_file_ptychodus_refuses_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "diffraction.h5"
    with h5py.File(path, "w") as h5:  # no indexes, no bad pixels, no detector pixel size
        h5["patterns"] = np.zeros((2, 4, 4))
    _refused_by_ptychodus(path, "load_diffraction_data")
    with pytest.raises(PtychoInputError) as info:
        pio.read_diffraction_file(path)
    assert str(info.value).startswith(f"{path}: ptychodus cannot read this diffraction file (")
    assert "indexes" in str(info.value) and "\n" not in str(info.value)

    # a file from Ptychodus < 1.7 (no detector pixel size) is refused, as Ptychodus does
    pio.write_diffraction_file(path, np.ones((3, 4, 4), np.float32),
                               detector_pixel_width_m=1e-4, detector_pixel_height_m=1e-4)
    with h5py.File(path, "r+") as h5:
        del h5["patterns"].attrs["detector_pixel_width_m"]
    _refused_by_ptychodus(path, "load_diffraction_data")
    with pytest.raises(PtychoInputError, match=r"diffraction\.h5: .*detector_pixel_width_m"):
        pio.read_diffraction_file(path)


def _batch_dir(tmp_path: Path, *, n: int = 10, size: int = 16) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(4)
    obj = _complex(rng, (64, 64))
    probe = _complex(rng, (size, size))
    positions = rng.uniform(size, 64 - size, (n, 2))
    product = pio.product_from_reconstruction(
        obj,
        probe,
        positions,
        pixel_size_m=1e-8,
        photon_energy_eV=9000.0,
        detector_object_distance_m=2.0,
        indexes=np.arange(n) + 100,
    )
    patterns = rng.poisson(3.0, (n, size, size)).astype(np.uint32)
    directory = pio.write_batch_directory(
        tmp_path / "batch",
        patterns,
        product,
        detector_pixel_width_m=75e-6,
        detector_pixel_height_m=75e-6,
    )
    return directory, positions


@needs_ptychodus
def test_batch_directory_round_trip(tmp_path: Path) -> None:
    directory, positions = _batch_dir(tmp_path)
    assert sorted(p.name for p in directory.iterdir()) == ["diffraction.h5", "product.h5"]
    intensities, bad, product, meta = pio.read_batch_directory(directory)
    assert intensities.shape == (10, 16, 16) and intensities.dtype == np.float32
    assert bad.shape == (16, 16) and not bad.any()
    assert product.object_shape == (64, 64) and product.probe_shape == (16, 16)
    np.testing.assert_array_equal(product.probe_position_indexes, np.arange(10) + 100)
    np.testing.assert_array_equal(meta["indexes"], np.arange(10) + 100)
    assert meta["values"] == "intensity" and meta["n_dropped"] == 0
    data = pio.dataset_from_batch_directory(directory)
    np.testing.assert_allclose(data.positions, positions, atol=1e-9)
    np.testing.assert_allclose(data.diffraction, np.sqrt(intensities), rtol=1e-6)
    assert data.obj.shape == (64, 64) and data.metadata["object_shape"] == [64, 64]


@needs_ptychodus
def test_batch_directory_accepts_legacy_product_name(tmp_path: Path) -> None:
    directory, positions = _batch_dir(tmp_path)
    (directory / "product.h5").rename(directory / "product-in.h5")
    *_, meta = pio.read_batch_directory(directory)
    np.testing.assert_allclose(pio.dataset_from_batch_directory(directory).positions, positions,
                               atol=1e-9)
    assert meta["product_file"].endswith("product-in.h5")
    (directory / "product-in.h5").unlink()
    with pytest.raises(FileNotFoundError, match="no product.h5"):
        pio.read_batch_directory(directory)


@needs_ptychodus
def test_batch_directory_refuses_probe_size_mismatch(tmp_path: Path) -> None:
    directory, _ = _batch_dir(tmp_path)
    pio.write_diffraction_file(
        directory / "diffraction.h5",
        np.ones((10, 8, 8)),
        indexes=np.arange(10) + 100,
        detector_pixel_width_m=1e-4,
        detector_pixel_height_m=1e-4,
    )
    with pytest.raises(PtychoInputError, match=r"batch: 'probe' is 16x16 but .* are 8x8"):
        pio.dataset_from_batch_directory(directory)


def _npz(tmp_path: Path, name: str, **extra: np.ndarray) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    arrays = {
        "xcoords": rng.uniform(10, 20, 7),
        "ycoords": rng.uniform(10, 20, 7),
        "diff3d": rng.poisson(4.0, (7, 8, 8)).astype(np.float32),
        "probeGuess": _complex(rng, (1, 8, 8)),
        "objectGuess": _complex(rng, (32, 32)),
        "scan_index": np.zeros(7, dtype=np.int64),
        **extra,
    }
    path = tmp_path / name
    np.savez(path, **arrays)
    return path, arrays


def test_npz_without_declaration_is_refused(tmp_path: Path) -> None:
    path, _ = _npz(tmp_path, "train.npz")
    with pytest.raises(ValueError) as info:
        pio.read_ptychodus_npz(path)
    assert str(info.value) == (
        f"{path}: 'diff3d' does not say whether it holds intensities or amplitudes "
        "(Ptychodus's PtychoPINN export writes intensities); pass values='intensity' or "
        "values='amplitude'"
    )


def test_npz_intensity_and_amplitude(tmp_path: Path) -> None:
    path, arrays = _npz(tmp_path, "train.npz")
    out = pio.read_ptychodus_npz(path, values="intensity")
    np.testing.assert_allclose(out["diffraction"], np.sqrt(arrays["diff3d"]))
    assert out["diffraction"].dtype == np.float32
    np.testing.assert_allclose(out["xcoords"], arrays["xcoords"] + 0.5)
    np.testing.assert_allclose(out["ycoords_start"], arrays["ycoords"] + 0.5)
    np.testing.assert_array_equal(out["probeGuess"], arrays["probeGuess"][0])
    meta = json.loads(str(out["metadata_json"][()]))
    assert meta["source_diffraction_values"] == "intensity"
    assert meta["diffraction_values"] == "amplitude"
    raw = pio.read_ptychodus_npz(path, values="amplitude", shift_to_patch_centre=False)
    np.testing.assert_array_equal(raw["diffraction"], arrays["diff3d"])
    np.testing.assert_array_equal(raw["xcoords"], arrays["xcoords"])


def test_npz_declared_in_metadata(tmp_path: Path) -> None:
    meta = np.array(json.dumps({"diffraction_values": "intensity"}))
    path, arrays = _npz(tmp_path, "declared.npz", metadata_json=meta)
    out = pio.read_ptychodus_npz(path)
    np.testing.assert_allclose(out["diffraction"], np.sqrt(arrays["diff3d"]))
    with pytest.raises(ValueError, match="declared as intensity but values='amplitude'"):
        pio.read_ptychodus_npz(path, values="amplitude")


def test_npz_refuses_pickles_and_negative_values(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, diff3d=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"pickled\.npz: refused"):
        pio.read_ptychodus_npz(path, values="intensity")
    neg, _ = _npz(tmp_path, "neg.npz", diff3d=-np.ones((7, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"neg\.npz: 'diff3d' has negative values"):
        pio.read_ptychodus_npz(neg, values="intensity")
