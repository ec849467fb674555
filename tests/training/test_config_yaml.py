"""Typed YAML run configs: YAML's ``1e-3`` string becomes a float; bad keys/values one line."""

from __future__ import annotations

import pytest

from ptychopinn.cli import main
from ptychopinn.config import RunConfig, load_config
from ptychopinn.errors import PtychoInputError
from ptychopinn.training.bundle import load_bundle


def test_yaml_reads_1e_minus_3_as_a_string_and_the_loader_coerces_it(tmp_path):
    import yaml

    assert yaml.safe_load("x: 1e-3")["x"] == "1e-3"  # the trap: PyYAML's float needs a dot
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 1e-3\n  max_minutes: 2\n  epochs: '3'\n"
                    "model:\n  n_filters_scale: 5e-1\n")
    cfg = load_config(path)
    assert type(cfg.train.learning_rate) is float and cfg.train.learning_rate == 0.001
    assert type(cfg.train.max_minutes) is float and cfg.train.max_minutes == 2.0
    assert cfg.train.epochs == 3 and cfg.model.options.n_filters_scale == 0.5


def test_tiny_training_with_1e_minus_3_learning_rate(tmp_path, tiny_npz):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 1e-3\n  show_progress: false\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_npz), "--out", str(run), "--config", str(path),
                 "--epochs", "1"]) == 0
    ran = load_config(run / "config.yaml")
    assert ran.train.learning_rate == 0.001 and ran.train.epochs == 1
    assert load_bundle(run).manifest["train_config"]["learning_rate"] == 0.001


@pytest.mark.parametrize(("text", "key", "words"), [
    ("train:\n  learning_rate: fast\n", "train.learning_rate", "expected a finite number"),
    ("train:\n  epochs: 2.5\n", "train.epochs", "expected an integer"),
    ("train:\n  show_progress: yes\n", "train.show_progress", None),  # YAML yes is true
    ("train:\n  show_progress: 'yes'\n", "train.show_progress", "expected true/false"),
    ("train:\n  epochs: true\n", "train.epochs", "expected an integer"),
    ("grouping:\n  n_groups: many\n", "grouping.n_groups", "expected an integer or null"),
    ("train:\n  learning_rate: -1e-3\n", "train", "learning_rate must be > 0"),
])
def test_bad_type_is_one_line_naming_section_field_and_type(tmp_path, text, key, words):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    if words is None:
        assert load_config(path).train.show_progress is True
        return
    with pytest.raises(PtychoInputError) as e:
        load_config(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: key '{key}': ") and words in msg, msg


def test_unknown_key_and_section_one_line_with_allowed(tmp_path, tiny_npz, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learnig_rate: 1e-3\n")
    code = main(["train", "--data", str(tiny_npz), "--out", str(tmp_path / "r"), "--config",
                 str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "key 'train.learnig_rate'" in err[0]
    assert "unknown key(s) ['learnig_rate'] in section 'train'" in err[0]
    assert "allowed: epochs, batch_size, learning_rate" in err[0]
    assert not (tmp_path / "r").exists()
    with pytest.raises(PtychoInputError, match="unknown key\\(s\\) \\['optim'\\] at the top "
                                               "level; allowed: model, grouping, train"):
        RunConfig.from_dict({"optim": {}})


def test_overrides_are_typed_too():
    cfg = RunConfig().with_overrides(train={"learning_rate": "5e-4", "epochs": 4})
    assert cfg.train.learning_rate == 5e-4 and cfg.train.epochs == 4
    with pytest.raises(PtychoInputError, match="key 'train.epochs': expected an integer"):
        RunConfig().with_overrides(train={"epochs": "four"})
