"""CXI files: the real near-field file's report, round trips, malformed files, refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from ptychopinn.cli import main
from ptychopinn.errors import PtychoInputError
from ptychopinn.io import load_dataset
from ptychopinn.io.cxi import (
    DEFAULT_PHOTON_ENERGY_EV,
    cxi_report,
    detect_near_field,
    read_cxi,
    save_cxi,
)

REAL = Path("/work/shared/data/real/petra3-p25-nearfield/PETRAIII_P25_Near_Field_Ptycho.cxi")
NEAR_FIELD_REFUSAL = "near-field propagation is not in the forward model"
DET = "entry_1/instrument_1/detector_1"


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ptychopinn {argv[0]}: error: "), err
    return err


# ------------------------------------------------------------------------ the real file
@pytest.mark.skipif(not REAL.is_file(), reason="the shared PETRA III P25 file is not here")
def test_real_near_field_file_inspect_report(tmp_path, capsys):
    assert main(["inspect", str(REAL), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "| patterns | 200 of 100×100 (int32" in out
    assert "| masked (bad) pixels | 5: (r, c) (17, 39), (21, 76), (62, 9), (76, 23), (85, 81) |" \
        in out
    assert "**near-field**" in out and "positions (near-field effective pixel" in out
    assert "loadable for reconstruction | no (near-field" in out
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["n_patterns"] == 200 and r["pattern_shape"] == [100, 100]
    assert r["bad_pixels"]["n_bad_pixels"] == 5
    g = r["geometry"]
    assert g["kind"] == "near-field"
    assert g["detector_object_distance_m"] == pytest.approx(1.12)
    assert g["wavelength_m"] == pytest.approx(9.7949e-11, rel=1e-4)
    # the cone-beam magnification (the published focus-sample distance is 3.65 mm: M ~ 308)
    assert 250 < g["test"]["magnification"] < 350 and g["test"]["r2"] > 0.9
    assert g["test"]["fresnel_number"] > 100
    p = r["positions_px"]
    assert p["nearest_neighbour_px"]["median"] == pytest.approx(6.3, abs=1.0)


@pytest.mark.skipif(not REAL.is_file(), reason="the shared PETRA III P25 file is not here")
def test_real_near_field_file_refused_for_reconstruction(tmp_path, capsys):
    with pytest.raises(PtychoInputError, match=NEAR_FIELD_REFUSAL):
        load_dataset(REAL)
    err = _one_line_error(capsys, ["convert", str(REAL), "--format", "npz", "--out",
                                   str(tmp_path / "x.npz")])
    assert NEAR_FIELD_REFUSAL in err and str(REAL) in err
    assert not (tmp_path / "x.npz").exists()


# ------------------------------------------------------------------------- near field
def _near_field_cxi(path: Path, *, magnification: float = 40.0) -> Path:
    """In-line holograms of a textured sample: their features move with the scan."""
    rng = np.random.default_rng(0)
    n, p, m = 64, 50e-6, 36
    step = 6 * p / magnification  # 6 detector pixels per scan step
    yy, xx = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
    t = np.stack([xx.ravel() * step, yy.ravel() * step, np.zeros(m)], axis=1)
    t[:, :2] += rng.uniform(-step / 4, step / 4, (m, 2))
    from scipy.ndimage import gaussian_filter

    texture = gaussian_filter(rng.standard_normal((200, 200)), 2.0)
    texture = 1 + 0.5 * texture / texture.std()
    beam = 1e3 * np.exp(-((np.arange(n) - n / 2) ** 2)[:, None] / 800
                        - ((np.arange(n) - n / 2) ** 2)[None, :] / 800)
    data = np.empty((m, n, n))
    for i, (x, y, _) in enumerate(t):
        # axes along lab -y (rows), -x (cols): sample +x moves features to lower columns
        r0 = 60 - int(round(magnification * y / p))
        c0 = 60 - int(round(magnification * x / p))
        data[i] = beam * np.clip(texture[r0 : r0 + n, c0 : c0 + n], 0, None)
    with h5py.File(path, "w") as f:
        f[f"{DET}/data"] = np.rint(data).astype(np.int32)
        f[f"{DET}/distance"] = 1.0
        f[f"{DET}/x_pixel_size"] = p
        f[f"{DET}/y_pixel_size"] = p
        f["entry_1/instrument_1/source_1/energy"] = 10e3 * 1.602176634e-19
        f["entry_1/sample_1/geometry_1/translation"] = t
        f["entry_1/instrument_1/source_1/illumination"] = np.ones((n, n), np.complex64)
    return path


def test_near_field_detected_and_refused(tmp_path, capsys):
    path = _near_field_cxi(tmp_path / "nf.cxi")
    nf = detect_near_field(read_cxi(path))
    assert nf.near_field and nf.magnification == pytest.approx(40, rel=0.1)
    with pytest.raises(PtychoInputError, match=NEAR_FIELD_REFUSAL):
        load_dataset(path)
    assert cxi_report(path)["geometry"]["kind"] == "near-field"  # inspect still reads it
    for argv in (["train", "--data", str(path), "--out", str(tmp_path / "run"), "--epochs", "1"],
                 ["convert", str(path), "--format", "cxi", "--out", str(tmp_path / "o.npz")]):
        assert NEAR_FIELD_REFUSAL in _one_line_error(capsys, argv)


# -------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("values", ["counts", "float"])
def test_round_trip_through_the_cli(tmp_path, tiny_data, capsys, values):
    diffraction = np.array(tiny_data.diffraction, np.float32)  # a copy: the fixture is shared
    if values == "float":  # amplitudes that are not square roots of integers: float64 on disk
        diffraction *= np.float32(1.1)
    diffraction[:, 3, 4] = 0  # a bad pixel holds no signal
    data = replace(tiny_data, diffraction=diffraction,
                   metadata={**tiny_data.metadata, "cxi": {"bad_pixels_rc": [[3, 4]]}})
    src = tmp_path / "d.npz"
    from ptychopinn.io import save_dataset

    save_dataset(data, src)
    assert main(["convert", str(src), "--format", "cxi", "--out", str(tmp_path / "d.cxi")]) == 0
    scan = read_cxi(tmp_path / "d.cxi")
    assert scan.dtype == (np.uint32 if values == "counts" else np.float64)
    assert scan.bad_pixels.sum() == 1 and scan.bad_pixels[3, 4]
    assert not detect_near_field(scan).near_field
    assert main(["convert", str(tmp_path / "d.cxi"), "--format", "npz", "--out",
                 str(tmp_path / "back.npz")]) == 0
    back = load_dataset(tmp_path / "back.npz")
    np.testing.assert_array_equal(np.asarray(back.diffraction), np.asarray(data.diffraction))
    np.testing.assert_array_equal(back.probe, data.probe)
    np.testing.assert_array_equal(back.obj, data.obj)
    np.testing.assert_allclose(back.positions, data.positions, rtol=0, atol=1e-9)
    assert back.metadata["cxi"]["bad_pixels_rc"] == [[3, 4]]
    assert back.metadata["photon_energy_eV"] == pytest.approx(DEFAULT_PHOTON_ENERGY_EV)
    assert back.metadata["detector_object_distance_m"] == 2.0
    capsys.readouterr()


def test_written_geometry_and_translations(tmp_path, tiny_data):
    path = save_cxi(tiny_data, tmp_path / "g.cxi", photon_energy_eV=10000.0, distance_m=1.5,
                    detector_pixel_m=55e-6)
    n = tiny_data.patch_size
    with h5py.File(path, "r") as f:
        assert f["entry_1/instrument_1/source_1/energy"][()] == pytest.approx(1.602176634e-15)
        assert f[f"{DET}/distance"][()] == 1.5 and f[f"{DET}/x_pixel_size"][()] == 55e-6
        t = f["entry_1/data_1/translation"][()]  # soft link to sample_1/geometry_1
        assert f["entry_1/data_1/data"].shape == (tiny_data.n_patterns, n, n)
    dx = read_cxi(path).object_pixel_m[1]
    assert dx == pytest.approx(1.2398419843320026e-10 * 1.5 / (n * 55e-6))
    np.testing.assert_allclose(t[:, 0], tiny_data.positions[:, 1] * dx)  # x: columns, metres
    reread = save_cxi(load_dataset(path), tmp_path / "g2.cxi")  # geometry kept from metadata
    assert read_cxi(reread).object_pixel_m[1] == pytest.approx(dx, rel=1e-12)


# ------------------------------------------------------------------------------ refusals
def _damage(path: Path, how: str) -> None:
    with h5py.File(path, "a") as f:
        if how == "missing data":
            del f["entry_1/data_1/data"]
            del f[f"{DET}/data"]
        elif how == "mask shape":
            del f[f"{DET}/mask"]
            f[f"{DET}/mask"] = np.zeros((5, 5), np.uint32)
        elif how == "translations length":
            del f["entry_1/sample_1/geometry_1/translation"]
            f["entry_1/sample_1/geometry_1/translation"] = np.zeros((3, 3))
        elif how == "no probe":
            del f["entry_1/instrument_1/source_1/illumination"]


@pytest.mark.parametrize(("how", "key", "message"), [
    ("missing data", "entry_1/data_1/data", "missing diffraction data"),
    ("mask shape", f"{DET}/mask", "mask shape (5, 5) differs from the pattern shape (16, 16)"),
    ("translations length", "entry_1/sample_1/geometry_1/translation",
     "has 3 translations but the data hold 64 patterns"),
    ("no probe", "entry_1/instrument_1/source_1/illumination", "has no probe"),
])
def test_malformed_cxi_refused_in_one_line(tmp_path, tiny_data, capsys, how, key, message):
    path = save_cxi(tiny_data, tmp_path / "bad.cxi")
    _damage(path, how)
    with pytest.raises(PtychoInputError) as e:
        load_dataset(path)
    assert str(e.value).startswith(f"{path}: key '{key}': ") and message in str(e.value)
    err = _one_line_error(capsys, ["convert", str(path), "--format", "npz", "--out",
                                   str(tmp_path / "o.npz")])
    assert message in err
    if how == "no probe":  # inspect reads it all the same
        assert main(["inspect", str(path)]) == 0
        assert "| probe | none in the file |" in capsys.readouterr().out
    else:
        assert message in _one_line_error(capsys, ["inspect", str(path)])
