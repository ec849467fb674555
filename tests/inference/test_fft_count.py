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


@pytest.mark.parametrize(("groups", "extra"), [("partition", 0), ("partition", 3),
                                               ("cover", 1)])
def test_reported_ffts_are_the_ffts_run(monkeypatch, unrolled_run, tiny_data, groups, extra):
    counted = [0]
    for name in ("fft2", "ifft2"):
        fn = getattr(torch.fft, name)

        def wrapped(x, *a, _fn=fn, **k):
            counted[0] += x.numel() // (x.shape[-1] * x.shape[-2])
            return _fn(x, *a, **k)

        monkeypatch.setattr(torch.fft, name, wrapped)
    r = reconstruct(unrolled_run, tiny_data,
                    InferConfig(show_progress=False, groups=groups, extra_steps=extra))
    m = tiny_data.n_patterns
    members = r.info["n_groups"] * r.info["gridsize"] ** 2
    assert r.info["ffts_per_pattern"] == pytest.approx(2 * (2 + extra) * members / m)
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


def test_the_bundle_sets_the_default_extra_steps(unrolled_run, tiny_data, tmp_path):
    """``model.inference_steps`` in a bundle is the default of ``InferConfig.extra_steps``
    (None); an explicit number overrides it; the shipped general model's is 9."""
    from dataclasses import replace

    from ptychopinn.training.bundle import load_bundle, resave_bundle

    quiet = InferConfig(show_progress=False)
    bundle = load_bundle(unrolled_run)
    cfg = bundle.model.cfg
    bundle.model.cfg = replace(cfg, options=replace(cfg.options, inference_steps=3))
    resave_bundle(bundle, tmp_path / "k3.zip")
    assert load_bundle(tmp_path / "k3.zip").manifest["model_config"]["inference_steps"] == 3
    by_bundle = reconstruct(tmp_path / "k3.zip", tiny_data, quiet)
    explicit = reconstruct(unrolled_run, tiny_data, replace(quiet, extra_steps=3))
    assert by_bundle.info["extra_steps"] == explicit.info["extra_steps"] == 3
    torch.testing.assert_close(torch.from_numpy(by_bundle.object),
                               torch.from_numpy(explicit.object))
    off = reconstruct(tmp_path / "k3.zip", tiny_data, replace(quiet, extra_steps=0))
    plain = reconstruct(unrolled_run, tiny_data, quiet)
    assert off.info["extra_steps"] == plain.info["extra_steps"] == 0
    torch.testing.assert_close(torch.from_numpy(off.object), torch.from_numpy(plain.object))
    assert load_bundle("general").model.cfg.options.inference_steps == 9
