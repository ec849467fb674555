from __future__ import annotations

import json

import numpy as np
import pytest

from ptychopinn.cli import main
from ptychopinn.io.dataset import load_dataset, save_dataset


def _arrays(m=6, n=8, seed=0):
    r = np.random.default_rng(seed)
    return {
        "diffraction": r.random((m, n, n)).astype(np.float32),
        "xcoords": r.uniform(10, 20, m),
        "ycoords": r.uniform(10, 20, m),
        "probeGuess": (r.random((n, n)) + 1j * r.random((n, n))).astype(np.complex64),
    }


def _write(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def test_npz_round_trip(tmp_path, tiny_data):
    p = save_dataset(tiny_data, tmp_path / "a.npz")
    d = load_dataset(p)
    np.testing.assert_array_equal(d.diffraction, tiny_data.diffraction)
    np.testing.assert_array_equal(d.positions, tiny_data.positions)
    np.testing.assert_array_equal(d.probe, tiny_data.probe)
    np.testing.assert_array_equal(d.obj, tiny_data.obj)
    np.testing.assert_array_equal(d.ground_truth_patches, tiny_data.ground_truth_patches)
    assert d.metadata["photons_per_pattern"] == tiny_data.metadata["photons_per_pattern"]


def test_hdf5_round_trip_is_lazy(tmp_path, tiny_data):
    p = save_dataset(tiny_data, tmp_path / "a.h5", chunk=16)
    d = load_dataset(p)
    assert d.is_lazy
    idx = np.array([5, 1, 5, 63])
    np.testing.assert_array_equal(d.diffraction[idx], tiny_data.diffraction[idx])
    np.testing.assert_array_equal(d.diffraction[3:9], tiny_data.diffraction[3:9])
    np.testing.assert_array_equal(d.positions, tiny_data.positions)
    assert d.mean_total_counts() == pytest.approx(tiny_data.mean_total_counts(), rel=1e-6)


def test_legacy_layouts_accepted(tmp_path):
    a = _arrays()
    d0 = load_dataset(_write(tmp_path / "ref.npz", **a))
    diff = a.pop("diffraction")
    legacy = load_dataset(_write(tmp_path / "diff3d.npz", diff3d=diff, **a))
    nnm = load_dataset(_write(tmp_path / "nnm.npz", diff3d=np.moveaxis(diff, 0, -1), **a))
    chan = load_dataset(_write(tmp_path / "chan.npz", diffraction=diff[..., None], **a))
    for d in (legacy, nnm, chan):
        np.testing.assert_array_equal(d.diffraction, d0.diffraction)


def test_uint16_intensities_declared_become_sqrt(tmp_path):
    a = _arrays()
    counts = (a.pop("diffraction") * 1000).astype(np.uint16)
    meta = json.dumps({"diffraction_values": "intensity"})
    d = load_dataset(_write(tmp_path / "u16.npz", diffraction=counts, metadata_json=meta, **a))
    np.testing.assert_allclose(d.diffraction, np.sqrt(counts.astype(np.float32)))
    d2 = load_dataset(_write(tmp_path / "u16b.npz", diffraction=counts, **a), values="intensity")
    np.testing.assert_array_equal(d2.diffraction, d.diffraction)


def _bad_cases(tmp_path):
    a = _arrays()
    cases = {}
    cases["missing_file"] = (tmp_path / "nope.npz", "file not found")
    (tmp_path / "text.npz").write_text("hello, not an archive")
    cases["not_npz"] = (tmp_path / "text.npz", "not an NPZ or HDF5 file")
    good = _write(tmp_path / "good.npz", **a)
    raw = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = (tmp_path / "trunc.npz", "corrupt or truncated NPZ archive")
    for key in ("diffraction", "xcoords", "probeGuess"):
        b = dict(a)
        b.pop(key)
        cases[f"missing_{key}"] = (_write(tmp_path / f"no_{key}.npz", **b),
                                   f"key '{key}': missing required array")
    b = dict(a, ycoords=a["ycoords"][:4])
    cases["m_mismatch"] = (_write(tmp_path / "mm.npz", **b), "key 'ycoords': has 4 entries")
    b = dict(a, diffraction=a["diffraction"][:5])
    cases["m_mismatch_diff"] = (_write(tmp_path / "mm2.npz", **b),
                                "has 5 patterns but xcoords/ycoords have 6")
    b = dict(a, diffraction=np.zeros((6, 8, 10), np.float32))
    cases["non_square"] = (_write(tmp_path / "ns.npz", **b), "patterns must be square, got 8x10")
    b = dict(a, probeGuess=np.ones((10, 10), np.complex64))
    cases["probe_size"] = (_write(tmp_path / "ps.npz", **b),
                           "probe shape (10, 10) must equal the pattern size (8, 8)")
    d = a["diffraction"].copy()
    d[2, 3, 3] = np.nan
    cases["nan"] = (_write(tmp_path / "nan.npz", **dict(a, diffraction=d)),
                    "key 'diffraction': 1 NaN/Inf values")
    d = a["diffraction"].copy()
    d[0, 0, 0] = -1
    cases["negative"] = (_write(tmp_path / "neg.npz", **dict(a, diffraction=d)),
                         "key 'diffraction': negative values")
    cases["complex"] = (_write(tmp_path / "cx.npz", **dict(
        a, diffraction=a["diffraction"].astype(np.complex64))),
        "key 'diffraction': complex values refused")
    with open(tmp_path / "obj.npz", "wb") as fh:
        np.savez(fh, **dict(a, diffraction=np.array([object()] * 6, dtype=object)))
    cases["object_dtype"] = (tmp_path / "obj.npz", "key 'diffraction': object (pickled) array")
    cases["empty"] = (_write(tmp_path / "empty.npz", **dict(
        a, diffraction=np.zeros((0, 8, 8), np.float32), xcoords=np.zeros(0),
        ycoords=np.zeros(0))), "empty dataset")
    cases["uint16_undeclared"] = (_write(tmp_path / "u16.npz", **dict(
        a, diffraction=(a["diffraction"] * 100).astype(np.uint16))),
        "integer (uint16) diffraction is ambiguous")
    return cases


@pytest.mark.parametrize("case", [
    "missing_file", "not_npz", "truncated", "missing_diffraction", "missing_xcoords",
    "missing_probeGuess", "m_mismatch", "m_mismatch_diff", "non_square", "probe_size", "nan",
    "negative", "complex", "object_dtype", "empty", "uint16_undeclared",
])
def test_bad_input_one_line_error_nothing_written(case, tmp_path, capsys):
    path, expected = _bad_cases(tmp_path)[case]
    out = tmp_path / "out" / "x.npz"
    code = main(["convert", str(path), "--format", "npz", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert str(path.name) in err
    assert expected in err, err
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_corrupt_hdf5_refused(tmp_path, tiny_data, capsys):
    p = save_dataset(tiny_data, tmp_path / "a.h5")
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 3])
    code = main(["inspect", str(p)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "a.h5" in err


def test_atomic_write_leaves_no_partial_file(tmp_path, tiny_data, monkeypatch):
    target = tmp_path / "d.npz"
    save_dataset(tiny_data, target)
    before = target.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        save_dataset(tiny_data, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]


def test_atomic_write_gets_normal_file_permissions(tmp_path, tiny_data):
    """The temp file is 0600 (mkstemp); the renamed result honours the umask like open()."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        save_dataset(tiny_data, tmp_path / "d.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "d.npz").stat().st_mode) == 0o644
