"""ptychopinn.io: format detection in load_dataset, and the import arrows it removes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ptychopinn.errors import PtychoInputError
from ptychopinn.io import load_dataset, load_reconstruction, save_dataset
from ptychopinn.io.ptychodus import (
    convert_ptychodus,
    far_field_pixel_size_m,
    product_from_reconstruction,
    write_batch_directory,
)


def test_load_dataset_detects_npz_hdf5_and_batch_directory(tmp_path, tiny_data) -> None:
    pytest.importorskip("ptychodus")
    n = tiny_data.patch_size
    px = far_field_pixel_size_m(8000.0, 2.0, 75e-6, n)
    prod = product_from_reconstruction(tiny_data.obj, tiny_data.probe, tiny_data.positions,
                                       pixel_size_m=px, photon_energy_eV=8000.0,
                                       detector_object_distance_m=2.0)
    write_batch_directory(tmp_path / "batch", tiny_data.diffraction.astype(np.float32) ** 2,
                          prod, detector_pixel_width_m=75e-6, detector_pixel_height_m=75e-6)
    from_dir = load_dataset(tmp_path / "batch")
    converted = convert_ptychodus(tmp_path / "batch")
    for name in ("diffraction", "positions", "probe", "obj", "scan_index"):
        np.testing.assert_array_equal(getattr(from_dir, name), getattr(converted, name))
    np.testing.assert_allclose(from_dir.positions, tiny_data.positions, atol=1e-6)
    np.testing.assert_allclose(from_dir.diffraction, tiny_data.diffraction, rtol=1e-5,
                               atol=1e-4)

    save_dataset(tiny_data, tmp_path / "d.h5")
    save_dataset(tiny_data, tmp_path / "d.npz")
    lazy, eager = load_dataset(tmp_path / "d.h5"), load_dataset(tmp_path / "d.npz")
    assert lazy.is_lazy and not eager.is_lazy
    np.testing.assert_array_equal(np.asarray(lazy.diffraction), eager.diffraction)
    (tmp_path / "d.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PtychoInputError, match=r"empty: is a directory without diffraction\.h5; "
                                               "expected an NPZ or HDF5 file or a Ptychodus"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(PtychoInputError, match=r"d\.txt: not an NPZ or HDF5 file"):
        load_dataset(tmp_path / "d.txt")
    with pytest.raises(PtychoInputError, match="missing required array"):
        load_reconstruction(tmp_path / "d.npz")


@pytest.mark.parametrize(("module", "forbidden"), [
    ("ptychopinn.inference.predict", ("ptychopinn.interop", "ptychopinn.io.ptychodus",
                                      "ptychodus")),
    ("ptychopinn.iterative.run", ("ptychopinn.inference",)),
    ("ptychopinn.io", ("ptychopinn.io.ptychodus", "ptychopinn.inference", "torch")),
])
def test_import_arrows(module: str, forbidden: tuple[str, ...]) -> None:
    code = (f"import sys, {module}; print(sorted(m for m in sys.modules "
            f"if m.split('.')[0] == 'ptychodus' or m.startswith({forbidden!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout


def test_convert_formats_are_one_registry(tmp_path):
    """``convert --format`` offers exactly the registered converters; an unknown one is
    refused in one line."""
    import argparse

    from ptychopinn.cli import build_parser
    from ptychopinn.io.dataset import CONVERTERS, convert_from

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    fmt = next(a for a in sub.choices["convert"]._actions if a.dest == "format")
    assert list(fmt.choices) == list(CONVERTERS)
    with pytest.raises(PtychoInputError, match="unknown format 'mat'; formats: tike, "
                                               "ptychodus, npz, cxi"):
        convert_from(tmp_path / "x.mat", "mat")
