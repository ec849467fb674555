"""gridsize lives in grouping only, the patch size comes from the data; older configs and
bundles (``model.n``, ``model.gridsize``) still load."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from ptychopinn.config import RunConfig, load_config
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.models.config import ModelConfig
from ptychopinn.training.api import build_model
from ptychopinn.training.bundle import load_bundle, save_bundle


def test_model_section_has_no_gridsize_or_patch_size():
    fields = set(RunConfig().to_dict()["model"])
    assert "gridsize" not in fields and "n" not in fields
    with pytest.raises(TypeError):
        ModelConfig(gridsize=2)


def test_older_config_moves_model_gridsize_to_grouping_and_drops_n(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("model:\n  n: 32\n  gridsize: 3\ngrouping:\n  neighbor_count: 12\n")
    cfg = load_config(path)
    assert cfg.grouping.gridsize == 3 and cfg.grouping.neighbor_count == 12
    assert RunConfig().with_overrides(model={"gridsize": 1}).grouping.gridsize == 1


def test_conflicting_model_and_grouping_gridsize_is_one_line(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text("model:\n  gridsize: 1\ngrouping:\n  gridsize: 2\n")
    with pytest.raises(PtychoInputError) as e:
        load_config(path)
    assert str(e.value) == (f"{path}: key 'model.gridsize': model.gridsize (1) and "
                            "grouping.gridsize (2) differ; gridsize belongs in grouping only")


def test_baseline_needs_grouping_gridsize_1():
    with pytest.raises(PtychoInputError, match="the supervised baseline uses grouping.gridsize "
                                               "1, got 2"):
        RunConfig.from_dict({"model": {"kind": "baseline"}})


def test_network_is_built_from_the_data_and_the_grouping(tiny_data):
    cfg = RunConfig().with_overrides(grouping={"gridsize": 3, "neighbor_count": 8})
    model, _ = build_model(cfg, tiny_data)
    assert (model.n, model.gridsize) == (tiny_data.patch_size, 3)
    assert model.net.encoder.net[0][0].in_channels == 9  # C = gridsize²
    assert cfg == RunConfig().with_overrides(grouping={"gridsize": 3, "neighbor_count": 8})


def test_patch_size_that_is_no_power_of_two_is_refused_naming_the_data(tiny_data):
    from dataclasses import replace

    odd = replace(tiny_data, diffraction=tiny_data.diffraction[:, :12, :12],
                  probe=tiny_data.probe[:12, :12], obj=None, ground_truth_patches=None)
    with pytest.raises(PtychoInputError, match="patch size n must be a power of two >= 16, "
                                               "got 12 \\(patterns are 12x12\\)"):
        build_model(RunConfig(), odd)


def _legacy_copy(src, dst):
    """``src`` bundle rewritten as before: n and gridsize in model_config, no patch_size and
    no grouping_config (weights and checksum unchanged)."""
    with zipfile.ZipFile(src) as z:
        man = json.loads(z.read("manifest.json"))
        blob = z.read("weights.safetensors")
    man["model_config"].update(n=man.pop("patch_size"),
                               gridsize=man.pop("grouping_config")["gridsize"])
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("manifest.json", json.dumps(man))
        z.writestr("weights.safetensors", blob)


def test_bundle_records_patch_size_and_gridsize_and_old_bundles_load(tmp_path, tiny_data):
    cfg = RunConfig().with_overrides(model={"n_filters_scale": 0.25},
                                     grouping={"gridsize": 1})
    torch.manual_seed(0)
    model, _ = build_model(cfg, tiny_data)
    path = save_bundle(model, tmp_path / "model.zip")
    man = load_bundle(path).manifest
    assert man["patch_size"] == 16 and man["grouping_config"] == {"gridsize": 1}
    assert "n" not in man["model_config"] and "gridsize" not in man["model_config"]
    _legacy_copy(path, tmp_path / "old.zip")
    old, new = load_bundle(tmp_path / "old.zip"), load_bundle(path)
    assert (old.model.n, old.gridsize, old.model.cfg) == (16, 1, new.model.cfg)
    infer = InferConfig(show_progress=False)
    np.testing.assert_array_equal(reconstruct(old, tiny_data, infer).object,
                                  reconstruct(new, tiny_data, infer).object)
    with pytest.raises(ValueError, match="grouping_config.gridsize \\(2\\) differs from the "
                                         "model's \\(1\\)"):
        save_bundle(model, tmp_path / "x.zip", extra={"grouping_config": {"gridsize": 2}})
