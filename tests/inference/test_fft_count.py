"""The reconstruction counts its work in FFTs per pattern, exactly (issue #22)."""

from __future__ import annotations

import pytest
import torch

from ptychopinn.config import RunConfig
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.training.api import train


@pytest.fixture(scope="module")
def unrolled_run(tmp_path_factory, tiny_data):
    out = tmp_path_factory.mktemp("fft") / "u"
    cfg = RunConfig().with_overrides(model={"kind": "unrolled", "n_iterations": 2},
                                     train={"epochs": 1, "show_progress": False})
    train(tiny_data, out, cfg)
    return out


@pytest.mark.parametrize(("groups", "extra", "obj_steps"),
                         [("partition", 0, 0), ("partition", 3, 0), ("cover", 1, 0),
                          ("partition", 0, 2)])
def test_reported_ffts_are_the_ffts_run(monkeypatch, unrolled_run, tiny_data, groups, extra,
                                        obj_steps):
    counted = [0]
    for name in ("fft2", "ifft2"):
        fn = getattr(torch.fft, name)

        def wrapped(x, *a, _fn=fn, **k):
            counted[0] += x.numel() // (x.shape[-1] * x.shape[-2])
            return _fn(x, *a, **k)

        monkeypatch.setattr(torch.fft, name, wrapped)
    r = reconstruct(unrolled_run, tiny_data,
                    InferConfig(show_progress=False, groups=groups, extra_steps=extra,
                                object_steps=obj_steps))
    m = tiny_data.n_patterns
    members = r.info["n_groups"] * r.info["gridsize"] ** 2
    assert r.info["ffts_per_pattern"] == pytest.approx(2 * (2 + extra) * members / m
                                                       + 2 * obj_steps)
    assert counted[0] / m == pytest.approx(r.info["ffts_per_pattern"])
    assert members >= m  # every pattern predicted at least once


def test_extra_steps_refused_for_a_cnn_and_a_negative_count(tmp_path, tiny_data):
    train(tiny_data, tmp_path / "p", RunConfig().with_overrides(
        train={"epochs": 1, "show_progress": False}))
    r = reconstruct(tmp_path / "p", tiny_data, InferConfig(show_progress=False))
    assert r.info["ffts_per_pattern"] == 0  # the CNN's inference runs no physics
    with pytest.raises(PtychoInputError, match="'pinn' has no data-consistency steps"):
        reconstruct(tmp_path / "p", tiny_data, InferConfig(show_progress=False, extra_steps=1))
    with pytest.raises(PtychoInputError, match="extra_steps must be >= 0, got -1"):
        InferConfig(extra_steps=-1)
    with pytest.raises(PtychoInputError, match="object_steps must be >= 0, got -2"):
        InferConfig(object_steps=-2)
    with pytest.raises(PtychoInputError, match=r"object_momentum must be in \[0, 1\), got 1"):
        InferConfig(object_momentum=1.0)
    # object steps are physics on the stitched object: any physics-trained model runs them
    r2 = reconstruct(tmp_path / "p", tiny_data, InferConfig(show_progress=False, object_steps=2))
    assert r2.info["ffts_per_pattern"] == 4 and r2.info["object_steps"] == 2


def test_object_steps_refused_for_a_supervised_model(tmp_path, tiny_data):
    train(tiny_data, tmp_path / "b", RunConfig().with_overrides(
        model={"kind": "baseline"}, grouping={"gridsize": 1},
        train={"epochs": 1, "show_progress": False}))
    with pytest.raises(PtychoInputError,
                       match="model.kind 'baseline' is supervised: its object has no physics "
                             "scale for object_steps"):
        reconstruct(tmp_path / "b", tiny_data, InferConfig(show_progress=False, object_steps=1))


@pytest.mark.parametrize(("option", "field"), [("inference_steps", "extra_steps"),
                                               ("object_steps", "object_steps")])
def test_the_bundle_sets_the_default_steps(unrolled_run, tiny_data, tmp_path, option, field):
    """``model.inference_steps`` / ``model.object_steps`` in a bundle are the defaults of
    ``InferConfig.extra_steps`` / ``object_steps`` (None); an explicit number overrides them;
    the shipped general model runs 20 object steps and no plain group steps."""
    from dataclasses import replace

    from ptychopinn.training.bundle import load_bundle, resave_bundle

    quiet = InferConfig(show_progress=False)
    bundle = load_bundle(unrolled_run)
    cfg = bundle.model.cfg
    bundle.model.cfg = replace(cfg, options=replace(cfg.options, **{option: 3}))
    resave_bundle(bundle, tmp_path / "k3.zip")
    assert load_bundle(tmp_path / "k3.zip").manifest["model_config"][option] == 3
    by_bundle = reconstruct(tmp_path / "k3.zip", tiny_data, quiet)
    explicit = reconstruct(unrolled_run, tiny_data, replace(quiet, **{field: 3}))
    assert by_bundle.info[field] == explicit.info[field] == 3
    torch.testing.assert_close(torch.from_numpy(by_bundle.object),
                               torch.from_numpy(explicit.object))
    off = reconstruct(tmp_path / "k3.zip", tiny_data, replace(quiet, **{field: 0}))
    plain = reconstruct(unrolled_run, tiny_data, quiet)
    assert off.info[field] == plain.info[field] == 0
    torch.testing.assert_close(torch.from_numpy(off.object), torch.from_numpy(plain.object))
    assert not torch.allclose(torch.from_numpy(off.object), torch.from_numpy(explicit.object))
    shipped = load_bundle("general").model.cfg.options
    assert (shipped.inference_steps, shipped.object_steps) == (0, 20)
