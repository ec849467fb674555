"""The compare writer: files, exact CSV layout, JSON content, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ptychopinn.evaluation.compare import (
    FRC_CSV_HEADER,
    METRICS_CSV_HEADER,
    canonical_model_name,
    compare_reconstructions,
)
from ptychopinn.evaluation.metrics import METRIC_NAMES, PARTS
from ptychopinn.evaluation.registration import shift_image

from .conftest import smooth_object

MODELS = ("PtychoPINN", "Baseline", "PtyChi-LSQML")


@pytest.fixture
def reference(rng):
    return smooth_object(rng, (72, 80), sigma=2.0).astype(np.complex64)


@pytest.fixture
def recons(rng, reference):
    coverage = np.zeros(reference.shape, dtype=np.float32)
    coverage[6:66, 8:74] = 2.0
    noise = rng.standard_normal(reference.shape) + 1j * rng.standard_normal(reference.shape)
    pinn = 0.5 * shift_image(reference, (0.6, -1.4)) * np.exp(0.4j)
    baseline = reference + 0.05 * noise
    lsqml = 3.0 * reference * np.exp(-2.0j) + 0.01 * noise
    return {
        "PtychoPINN": (pinn.astype(np.complex64), coverage),
        "Baseline": (baseline.astype(np.complex64), None),
        "PtyChi-LSQML": (lsqml.astype(np.complex64), coverage * 3.0),
    }


def test_compare_writes_the_four_files(tmp_path, reference, recons):
    out = tmp_path / "cmp"
    rows = compare_reconstructions(reference, recons, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.png",
        "frc.csv",
        "metrics.csv",
        "metrics.json",
    ]  # no temporary files left behind

    # metrics.csv: exact header, one row per (model, metric, part)
    text = (out / "metrics.csv").read_text()
    assert text.splitlines()[0] == "model,metric,part,value"
    with open(out / "metrics.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == METRICS_CSV_HEADER
    keys = [(r["model"], r["metric"], r["part"]) for r in table]
    assert len(keys) == len(set(keys)) == len(MODELS) * len(METRIC_NAMES) * len(PARTS)
    assert set(keys) == {(m, k, p) for m in MODELS for k in METRIC_NAMES for p in PARTS}
    assert {r["part"] for r in table} == {"amplitude", "phase"}
    assert [r["model"] for r in table][:: len(METRIC_NAMES) * 2] == list(MODELS)  # order kept
    for row, returned in zip(table, rows, strict=True):
        assert float(row["value"]) == pytest.approx(returned["value"], nan_ok=True)
        assert row["model"] == returned["model"]

    # metrics.json: same numbers, registration info
    payload = json.loads((out / "metrics.json").read_text())
    assert set(payload["metrics"]) == set(MODELS)
    for r in rows:
        assert payload["metrics"][r["model"]][r["part"]][r["metric"]] == pytest.approx(r["value"])
    shift = payload["registration"]["PtychoPINN"]["shift_rc"]
    assert shift == pytest.approx([-0.6, 1.4], abs=0.05)
    assert payload["settings"]["phase"] == "mean"

    # frc.csv: header and one curve per (model, part)
    with open(out / "frc.csv", newline="") as fh:
        frc_rows = list(csv.DictReader(fh))
    assert tuple(frc_rows[0]) == FRC_CSV_HEADER
    assert {(r["model"], r["part"]) for r in frc_rows} == {(m, p) for m in MODELS for p in PARTS}
    freqs = [
        float(r["freq"]) for r in frc_rows if r["model"] == "Baseline" and r["part"] == "phase"
    ]
    assert freqs[0] == 0.0
    assert freqs[-1] <= 0.5
    assert np.all(np.diff(freqs) > 0)

    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_scores_are_sensible(tmp_path, reference, recons):
    rows = compare_reconstructions(reference, recons, tmp_path, figure=False)
    value = {(r["model"], r["metric"], r["part"]): r["value"] for r in rows}
    for part in PARTS:
        # shift + scale + global phase only: near-perfect
        assert value[("PtychoPINN", "ssim", part)] > 0.99
        # noisier baseline scores lower than the nearly clean LSQML
        assert value[("Baseline", "ssim", part)] < value[("PtyChi-LSQML", "ssim", part)]
    assert not (tmp_path / "comparison.png").exists()


def test_compare_overwrites_previous_outputs(tmp_path, reference, recons):
    compare_reconstructions(reference, recons, tmp_path, figure=False)
    first = (tmp_path / "metrics.csv").read_text()
    (tmp_path / "metrics.csv").write_text("stale")
    compare_reconstructions(reference, recons, tmp_path, figure=False, phase="plane")
    assert (tmp_path / "metrics.csv").read_text().startswith("model,metric,part,value\n")
    assert (tmp_path / "metrics.csv").read_text() != first  # plane mode changes phase scores


def test_compare_non_finite_values(tmp_path, reference, monkeypatch):
    # Non-finite scores (e.g. PSNR of a perfect match): "inf"/"nan" in CSV, null in JSON.
    import ptychopinn.evaluation.compare as compare_module

    def fake_scores(pair, *, ring_width):
        values = dict.fromkeys(METRIC_NAMES, 1.0) | {"psnr": float("inf"), "frc17": float("nan")}
        return {part: dict(values) for part in PARTS}

    monkeypatch.setattr(compare_module, "evaluate_aligned", fake_scores)
    rows = compare_reconstructions(
        reference, {"PtychoPINN": (reference, None)}, tmp_path, figure=False
    )
    assert any(r["metric"] == "psnr" and r["value"] == float("inf") for r in rows)
    text = (tmp_path / "metrics.csv").read_text()
    assert "PtychoPINN,psnr,amplitude,inf\n" in text
    assert "PtychoPINN,frc17,phase,nan\n" in text
    payload = json.loads((tmp_path / "metrics.json").read_text())  # strict JSON
    assert payload["metrics"]["PtychoPINN"]["amplitude"]["psnr"] is None
    assert payload["metrics"]["PtychoPINN"]["phase"]["frc17"] is None


def test_compare_errors_name_the_model(tmp_path, reference):
    with pytest.raises(ValueError, match="no reconstructions"):
        compare_reconstructions(reference, {}, tmp_path)
    with pytest.raises(ValueError, match="Baseline: object shape"):
        compare_reconstructions(reference, {"Baseline": (reference[:, :-1], None)}, tmp_path)
    bad_cov = np.zeros(reference.shape)
    with pytest.raises(ValueError, match="PtychoPINN: coverage has no positive value"):
        compare_reconstructions(reference, {"PtychoPINN": (reference, bad_cov)}, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written on failure


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("pinn", "PtychoPINN"),
        ("PtychoPINN", "PtychoPINN"),
        ("baseline", "Baseline"),
        ("lsqml", "PtyChi-LSQML"),
        ("ptychi-lsqml", "PtyChi-LSQML"),
        ("PtyChi_ePIE", "PtyChi-ePIE"),
        ("my-model", "my-model"),
    ],
)
def test_canonical_model_name(alias, canonical):
    assert canonical_model_name(alias) == canonical
