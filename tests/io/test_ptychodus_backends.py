"""Ptychodus product and diffraction files: Ptychodus's own API and the h5py fallback agree."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ptychopinn.io.ptychodus import (
    PtychodusProduct,
    read_diffraction_file,
    read_product,
    write_diffraction_file,
    write_product,
)

pytest.importorskip("ptychodus")

BACKENDS = ("h5py", "ptychodus")


def _product(rng: np.random.Generator, *, opr: int = 2, modes: int = 3, layers: int = 2,
             polarization: str | None = "left_circular") -> PtychodusProduct:
    p = 10

    def cplx(shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)

    return PtychodusProduct(
        name="scan 7", comments="backend test", detector_object_distance_m=1.5,
        photon_energy_eV=9000.0, probe_photon_count=2e6, exposure_time_s=0.05,
        mass_attenuation_m2_per_kg=1.0, tomography_angle_deg=30.0,
        probe_position_indexes=np.arange(p) * 3 + 1,
        probe_position_x_m=rng.uniform(-1e-6, 1e-6, p),
        probe_position_y_m=rng.uniform(-1e-6, 1e-6, p),
        probe=cplx((opr, modes, 8, 8)), probe_pixel_width_m=1e-8, probe_pixel_height_m=2e-8,
        object=cplx((layers, 24, 30)), object_center_x_m=1e-7, object_center_y_m=-3e-7,
        object_pixel_width_m=1e-8, object_pixel_height_m=2e-8,
        object_layer_spacing_m=np.full(layers - 1, 4e-6),
        loss_epochs=np.arange(4), loss_values=np.array([4.0, 3.0, 2.5, 2.25]),
        focus_object_distance_m=0.2, tilt_angle_deg=1.5, far_field=False,
        polarization=polarization, opr_weights=rng.standard_normal((p, opr)),
        probe_photon_counts=rng.uniform(0, 100, p), extra_attrs={"beamline": "2-ID-D"},
    )


def _assert_same(a: PtychodusProduct, b: PtychodusProduct) -> None:
    for name in PtychodusProduct.__dataclass_fields__:
        va, vb = getattr(a, name), getattr(b, name)
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            assert va is not None and vb is not None, name
            assert va.dtype == vb.dtype, name
            np.testing.assert_array_equal(va, vb, err_msg=name)
        else:
            assert va == vb, name


@pytest.mark.parametrize("writer", BACKENDS)
def test_product_readers_give_identical_records(tmp_path: Path, writer: str) -> None:
    rng = np.random.default_rng(5)
    original = _product(rng)
    path = write_product(original, tmp_path / f"{writer}.h5", backend=writer)
    ours = read_product(path, backend="h5py")
    theirs = read_product(path, backend="ptychodus")
    _assert_same(ours, theirs)
    _assert_same(ours, original)
    assert "ptychodus.api.io" in sys.modules


def test_product_writers_give_identical_files(tmp_path: Path) -> None:
    product = _product(np.random.default_rng(6), opr=1, modes=1, layers=1, polarization=None)
    files = {b: write_product(product, tmp_path / f"{b}.h5", backend=b) for b in BACKENDS}
    with h5py.File(files["h5py"], "r") as a, h5py.File(files["ptychodus"], "r") as b:
        assert sorted(a) == sorted(b)
        assert sorted(a.attrs) == sorted(b.attrs)
        for key in a:
            if a[key].size:  # Ptychodus writes empty lists as float64
                assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key][()], b[key][()], err_msg=key)
            assert dict(a[key].attrs) == dict(b[key].attrs), key


@pytest.mark.parametrize("writer", BACKENDS)
def test_diffraction_readers_give_identical_arrays(tmp_path: Path, writer: str) -> None:
    rng = np.random.default_rng(7)
    counts = rng.poisson(20.0, (6, 8, 8)).astype(np.uint16)
    bad = np.zeros((8, 8), bool)
    bad[2, 5] = True
    path = write_diffraction_file(
        tmp_path / "diffraction.h5", counts, detector_pixel_width_m=75e-6,
        detector_pixel_height_m=55e-6, indexes=np.arange(6) + 10, bad_pixels=bad,
        probe_photon_counts=rng.uniform(0, 1e4, 6), backend=writer)
    ours = read_diffraction_file(path, backend="h5py")
    theirs = read_diffraction_file(path, backend="ptychodus")
    for a, b in zip(ours[:3], theirs[:3], strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours[0], counts)
    assert ours[3].keys() == theirs[3].keys()
    for key in ours[3]:
        np.testing.assert_array_equal(ours[3][key], theirs[3][key], err_msg=key)
    assert theirs[3]["detector_pixel_height_m"] == 55e-6


def test_file_ptychodus_refuses_falls_back_to_h5py(tmp_path: Path) -> None:
    """A pre-1.7 diffraction file (no detector pixel size): Ptychodus's loader refuses it,
    ``auto`` reads it with h5py, ``backend="ptychodus"`` says so in one line."""
    path = write_diffraction_file(tmp_path / "old.h5", np.ones((3, 4, 4), np.float32),
                                  detector_pixel_width_m=1e-4, detector_pixel_height_m=1e-4,
                                  backend="h5py")
    with h5py.File(path, "r+") as h5:
        del h5["patterns"].attrs["detector_pixel_width_m"]
    patterns, _, _, attrs = read_diffraction_file(path)
    assert patterns.shape == (3, 4, 4) and attrs["detector_pixel_width_m"] is None
    with pytest.raises(ValueError, match=r"old\.h5: Ptychodus cannot read this diffraction "
                                         r"file \(.*detector_pixel_width_m") as info:
        read_diffraction_file(path, backend="ptychodus")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="backend must be 'auto', 'ptychodus' or 'h5py'"):
        read_product(path, backend="tiff")  # type: ignore[arg-type]
