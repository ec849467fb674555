"""PtychoData is validated at construction, whoever builds it: one line naming the field."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError


def _fields(m: int = 5, n: int = 8) -> dict:
    rng = np.random.default_rng(0)
    return dict(diffraction=rng.uniform(0, 2, (m, n, n)).astype(np.float32),
                positions=rng.uniform(10, 20, (m, 2)),
                probe=np.ones((n, n), np.complex64))


def _nan(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.result_type(a.dtype, np.float32), copy=True)
    a.flat[3] = np.nan
    return a


CASES = {
    "positions_shape": (dict(positions=np.zeros((5, 3))),
                        "PtychoData.positions: expected shape (M, 2) (row, col), got (5, 3)"),
    "positions_empty": (dict(positions=np.zeros((0, 2)), diffraction=np.zeros((0, 8, 8))),
                        "PtychoData.positions: empty dataset (0 positions)"),
    "positions_nan": (dict(positions=_nan(np.zeros((5, 2)))),
                      "PtychoData.positions: 1 NaN/Inf values; expected finite values"),
    "positions_complex": (dict(positions=np.zeros((5, 2), complex)),
                          "PtychoData.positions: expected real numbers, got dtype complex128"),
    "diffraction_ndim": (dict(diffraction=np.zeros((5, 64))),
                         "PtychoData.diffraction: expected shape (M, N, N), got (5, 64)"),
    "diffraction_m": (dict(diffraction=np.zeros((4, 8, 8))),
                      "PtychoData.diffraction: has 4 patterns but positions has 5; expected the "
                      "same M"),
    "diffraction_square": (dict(diffraction=np.zeros((5, 8, 6))),
                           "PtychoData.diffraction: patterns must be square, got 8x6"),
    "diffraction_complex": (dict(diffraction=np.zeros((5, 8, 8), np.complex64)),
                            "PtychoData.diffraction: expected real amplitudes, got dtype "
                            "complex64"),
    "diffraction_negative": (dict(diffraction=-np.ones((5, 8, 8), np.float32)),
                             "PtychoData.diffraction: negative values (min -1); expected "
                             "amplitudes >= 0"),
    "diffraction_nan": (dict(diffraction=_nan(np.ones((5, 8, 8), np.float32))),
                        "PtychoData.diffraction: 1 NaN/Inf values; expected finite values"),
    "probe_shape": (dict(probe=np.ones((6, 6), np.complex64)),
                    "PtychoData.probe: shape (6, 6) must equal the pattern size (8, 8)"),
    "obj_ndim": (dict(obj=np.ones((2, 9, 9), np.complex64)),
                 "PtychoData.obj: expected shape (H, W), got (2, 9, 9)"),
    "positions_start": (dict(positions_start=np.zeros((4, 2))),
                        "PtychoData.positions_start: expected shape (5, 2), got (4, 2)"),
    "scan_index": (dict(scan_index=np.zeros(3, np.int64)),
                   "PtychoData.scan_index: expected shape (5,), got (3,)"),
    "scan_index_dtype": (dict(scan_index=np.full(5, 0.5)),
                         "PtychoData.scan_index: expected integers, got dtype float64"),
    "gt_shape": (dict(ground_truth_patches=np.zeros((5, 4, 4), np.complex64)),
                 "PtychoData.ground_truth_patches: expected shape (5, 8, 8), got (5, 4, 4)"),
    "metadata": (dict(metadata=[1, 2]), "PtychoData.metadata: expected a dict, got list"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_field_is_one_line_naming_it(case: str) -> None:
    override, message = CASES[case]
    with pytest.raises(PtychoInputError) as info:
        PtychoData(**{**_fields(), **override})
    assert str(info.value) == message


def test_error_names_the_source_and_replace_is_validated() -> None:
    data = PtychoData(**_fields(), source="scan.h5")
    with pytest.raises(PtychoInputError, match=r"^scan\.h5: PtychoData\.probe: shape \(4, 4\)"):
        replace(data, probe=np.ones((4, 4), np.complex64))


def test_fields_are_normalised() -> None:
    f = _fields()
    data = PtychoData(**{**f, "positions": f["positions"].astype(np.float32),
                         "probe": f["probe"].astype(np.complex128),
                         "scan_index": np.zeros(5, np.int32), "obj": np.ones((20, 20))})
    assert data.positions.dtype == np.float64 and data.probe.dtype == np.complex64
    assert data.scan_index.dtype == np.int64 and data.obj.dtype == np.complex64
    sub = data.subset(np.array([4, 0]))
    np.testing.assert_array_equal(sub.positions, data.positions[[4, 0]])
    assert sub.n_patterns == 2


def test_simulated_and_converted_datasets_are_validated(tiny_data) -> None:
    """The simulator's dataset passes; the same arrays with one broken field do not."""
    assert tiny_data.n_patterns == 64 and tiny_data.probe.dtype == np.complex64
    with pytest.raises(PtychoInputError, match="^PtychoData.ground_truth_patches: expected "):
        replace(tiny_data, ground_truth_patches=tiny_data.ground_truth_patches[:, :8, :8])
