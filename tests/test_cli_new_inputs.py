"""Bad input on the options added for the general model (#21): one clear line, exit 2, nothing
written."""

from __future__ import annotations

import pytest

from ptychopinn.cli import main
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.adapt import AdaptConfig


def _refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) >= 1
    return lines[-1]


@pytest.mark.parametrize("extra", [[], ["--data", "x.npz", "--corpus", "c.yaml"]])
def test_train_needs_exactly_one_of_data_and_corpus(tmp_path, capsys, extra):
    out = tmp_path / "run"
    line = _refused(capsys, ["train", "--out", str(out), *extra])
    assert line == ("ptychopinn train: error: train needs --data DATA.npz or --corpus "
                    "CORPUS.yaml (one)")
    assert not out.exists()


def test_train_refuses_a_probe_file_with_a_corpus(tmp_path, capsys):
    out = tmp_path / "run"
    line = _refused(capsys, ["train", "--out", str(out), "--corpus", "c.yaml", "--probe",
                             "p.npz"])
    assert line == ("ptychopinn train: error: --probe replaces a dataset's probe; a corpus "
                    "draws its own")
    assert not out.exists()


def test_infer_refuses_a_missing_probe_file_before_writing(tmp_path, capsys):
    from ptychopinn.data.simulate import SimulationConfig, simulate
    from ptychopinn.io import save_dataset

    scan = tmp_path / "scan64.npz"  # the shipped model's size
    save_dataset(simulate(SimulationConfig(object_size=96, patch_size=64, n_positions=12,
                                           seed=1)), scan)
    out = tmp_path / "out"
    missing = tmp_path / "nope.npz"
    line = _refused(capsys, ["infer", "--data", str(scan), "--out", str(out), "--probe",
                             str(missing)])
    assert line == f"ptychopinn infer: error: {missing}: probe file not found"
    assert not out.exists()


def test_adaptation_passes_must_be_positive():
    with pytest.raises(PtychoInputError, match=r"^adaptation passes must be > 0; got 0$"):
        AdaptConfig(passes=0)


def test_infer_refuses_a_negative_object_step_count_before_writing(tmp_path, capsys):
    scan, out = tmp_path / "scan.npz", tmp_path / "out"  # the scan is never read
    line = _refused(capsys, ["infer", "--data", str(scan), "--out", str(out),
                             "--object-steps", "-1"])
    assert line == "ptychopinn infer: error: object_steps must be >= 0, got -1"
    assert not out.exists()
