from __future__ import annotations

import numpy as np
import pytest

from ptychopinn.cli import main
from ptychopinn.inference.predict import Reconstruction, save_reconstruction
from ptychopinn.io.dataset import save_dataset
from ptychopinn.io.ptychodus import (
    convert_ptychodus,
    far_field_pixel_size_m,
    product_from_reconstruction,
    read_product,
    reconstruction_from_product,
    write_batch_directory,
)

pytest.importorskip("ptychodus")


def test_export_reconstruction_to_product_and_back(tmp_path, tiny_data, capsys):
    data = save_dataset(tiny_data, tmp_path / "d.npz")
    obj = tiny_data.obj
    save_reconstruction(Reconstruction(obj, np.ones(obj.shape, np.float32)), tmp_path / "r")
    out = tmp_path / "product.h5"
    code = main(["export", str(tmp_path / "r"), "--data", str(data), "--out", str(out)])
    assert code == 2 and "--photon-energy-ev" in capsys.readouterr().err
    assert not out.exists()
    assert main(["export", str(tmp_path / "r"), "--data", str(data), "--out", str(out),
                 "--pixel-size-m", "1e-8", "--photon-energy-ev", "8000", "--distance-m",
                 "2.0"]) == 0
    prod = read_product(out)
    obj2, probe2, pos2 = reconstruction_from_product(prod)
    np.testing.assert_array_equal(obj2, obj)
    np.testing.assert_array_equal(probe2, tiny_data.probe)
    np.testing.assert_allclose(pos2, tiny_data.positions, atol=1e-6)
    assert prod.photon_energy_eV == 8000


def test_convert_ptychodus_batch_directory(tmp_path, tiny_data):
    n = tiny_data.patch_size
    kw = {"photon_energy_eV": 8000.0, "detector_object_distance_m": 2.0}
    px = far_field_pixel_size_m(8000.0, 2.0, 75e-6, n)
    prod = product_from_reconstruction(tiny_data.obj, tiny_data.probe, tiny_data.positions,
                                       pixel_size_m=px, **kw)
    counts = tiny_data.diffraction.astype(np.float32) ** 2
    write_batch_directory(tmp_path / "batch", counts, prod, detector_pixel_width_m=75e-6,
                          detector_pixel_height_m=75e-6)
    d = convert_ptychodus(tmp_path / "batch")
    np.testing.assert_allclose(d.diffraction, tiny_data.diffraction, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(d.positions, tiny_data.positions, atol=1e-6)
    np.testing.assert_array_equal(d.probe, tiny_data.probe)
    assert main(["convert", str(tmp_path / "batch"), "--format", "ptychodus", "--out",
                 str(tmp_path / "c.npz")]) == 0
    from ptychopinn.config import RunConfig
    from ptychopinn.training.api import train

    cfg = RunConfig().with_overrides(model={"n": n}, train={"epochs": 1, "show_progress": False})
    train(tiny_data, tmp_path / "run", cfg)
    assert main(["infer", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "batch"),
                 "--out", str(tmp_path / "inf")]) == 0
    assert (tmp_path / "inf" / "reconstruction.npz").exists()
