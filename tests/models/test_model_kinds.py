"""Every model kind trains, bundles, loads and infers; unknown kinds are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychopinn.cli import main
from ptychopinn.config import RunConfig
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.predict import InferConfig, load_reconstruction, reconstruct
from ptychopinn.models.config import ModelConfig
from ptychopinn.models.registry import KINDS
from ptychopinn.training.api import build_model, train
from ptychopinn.training.bundle import load_bundle

NETWORK_KINDS = sorted(KINDS)


def test_unknown_kind_refused_in_one_line_naming_the_kinds():
    with pytest.raises(PtychoInputError) as e:
        RunConfig.from_dict({"model": {"kind": "transformer"}}, source="cfg.yaml")
    msg = str(e.value)
    assert "\n" not in msg
    assert "unknown model.kind 'transformer'; kinds: baseline, pinn, unrolled" in msg
    assert msg.startswith("cfg.yaml")


def test_unknown_kind_on_the_cli_exits_2(tmp_path, tiny_npz, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", str(tiny_npz), "--out", str(tmp_path / "r"), "--model", "nope"])
    assert e.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_each_kind_trains_bundles_and_infers(kind, tmp_path, tiny_data, tiny_npz):
    gs = 1 if kind == "baseline" else 2
    cfg = RunConfig().with_overrides(model={"kind": kind}, grouping={"gridsize": gs},
                                     train={"epochs": 1, "show_progress": False})
    run = tmp_path / kind
    train(tiny_data, run, cfg)
    b = load_bundle(run)
    assert b.model.cfg.kind == kind
    # Python API
    r = reconstruct(b, tiny_data, InferConfig(show_progress=False))
    assert r.object.shape == tiny_data.obj.shape and np.isfinite(r.object).all()
    assert r.info["model_kind"] == kind
    # the CLI gives the same object
    assert main(["infer", "--model", str(run), "--data", str(tiny_npz), "--out",
                 str(tmp_path / "inf")]) == 0
    np.testing.assert_allclose(load_reconstruction(tmp_path / "inf").object, r.object,
                               rtol=1e-5, atol=1e-6)


def test_unrolled_gradient_reaches_every_parameter(tiny_data):
    cfg = RunConfig().with_overrides(model={"kind": "unrolled", "n_iterations": 2})
    model, _ = build_model(cfg, tiny_data)
    amp = torch.from_numpy(tiny_data.diffraction[:8].reshape(2, 4, 16, 16))
    offsets = torch.randn(2, 4, 2)
    out = model(amp, offsets)
    (out["pred_amplitude"] ** 2 - amp**2).abs().mean().backward()
    # the refiners' heads start at zero, so at step 0 only they (not the layers before them)
    # receive a gradient; the heads, the step sizes and the intensity scale must
    grads = dict(model.named_parameters())
    for name in ("net.step", "physics.log_scale"):
        assert grads[name].grad is not None and torch.any(grads[name].grad != 0), name
    heads = [p for n, p in model.named_parameters() if n.endswith("net.6.weight")]
    assert heads and all(torch.any(h.grad != 0) for h in heads)


def test_unrolled_patches_agree_on_overlaps(tiny_data):
    """All members are cut from one canvas: merging them changes nothing."""
    from ptychopinn.physics.merge import merge_and_recut

    cfg = RunConfig().with_overrides(model={"kind": "unrolled", "n_iterations": 2})
    model, _ = build_model(cfg, tiny_data)
    amp = torch.from_numpy(tiny_data.diffraction[:8].reshape(2, 4, 16, 16))
    offsets = torch.tensor([[[-2.0, -2], [-2, 2], [2, -2], [2, 2]]] * 2)
    with torch.no_grad():
        raw, merged = model.predict_patches(amp, offsets)
    np.testing.assert_allclose(merge_and_recut(raw, offsets).numpy(), raw.numpy(), atol=1e-5)
    assert torch.equal(raw, merged)


def test_unrolled_does_not_depend_on_member_count():
    """Weights act on the canvas: one network serves groups of 4 and of 9 members."""
    from ptychopinn.models.unrolled import UnrolledNet

    net = UnrolledNet(ModelConfig.from_dict({"kind": "unrolled", "n_iterations": 2}))
    probe = torch.ones(16, 16, dtype=torch.complex64)
    for c in (1, 4, 9):
        out = net(torch.rand(3, c, 16, 16), torch.randn(3, c, 2), probe)
        assert out.shape == (3, c, 16, 16) and out.is_complex()


def test_unrolled_infers_with_larger_groups_and_others_refuse(tmp_path, tiny_data):
    cfg = RunConfig().with_overrides(
        model={"kind": "unrolled", "n_iterations": 2},
        grouping={"inference_gridsize": 3}, train={"epochs": 1, "show_progress": False})
    train(tiny_data, tmp_path / "u", cfg)
    r = reconstruct(tmp_path / "u", tiny_data, InferConfig(show_progress=False))
    assert r.info["gridsize"] == 3 and r.info["n_groups"] < tiny_data.n_patterns / 4
    r2 = reconstruct(tmp_path / "u", tiny_data, InferConfig(show_progress=False, gridsize=2))
    assert r2.info["gridsize"] == 2 and r2.info["n_groups"] > r.info["n_groups"]
    with pytest.raises(PtychoInputError,
                       match=r"not depend on C \(model.kind unrolled\)"):
        RunConfig.from_dict({"grouping": {"inference_gridsize": 3}})
    pinn = RunConfig().with_overrides(train={"epochs": 1, "show_progress": False})
    train(tiny_data, tmp_path / "p", pinn)
    with pytest.raises(PtychoInputError, match="trained for gridsize 2 and cannot infer"):
        reconstruct(tmp_path / "p", tiny_data, InferConfig(show_progress=False, gridsize=3))


def test_cli_train_unrolled_uses_the_recommended_grouping_and_config_kind_is_kept(
        tmp_path, tiny_npz):
    import yaml

    assert main(["train", "--data", str(tiny_npz), "--out", str(tmp_path / "u"), "--model",
                 "unrolled", "--epochs", "1"]) == 0
    cfg = yaml.safe_load((tmp_path / "u" / "config.yaml").read_text())
    assert cfg["model"]["kind"] == "unrolled" and cfg["grouping"]["gridsize"] == 3
    assert "gridsize" not in cfg["model"] and load_bundle(tmp_path / "u").gridsize == 3
    assert cfg["grouping"]["inference_gridsize"] == 16 and cfg["train"]["augment"] is True
    # a config file's kind is not overridden by the CLI's default
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(
        {"model": {"kind": "unrolled", "n_iterations": 2}, "train": {"epochs": 1}}))
    assert main(["train", "--data", str(tiny_npz), "--out", str(tmp_path / "c"), "--config",
                 str(tmp_path / "c.yaml")]) == 0
    assert load_bundle(tmp_path / "c").model.cfg.kind == "unrolled"


def test_scan_with_fewer_patterns_than_a_group(tmp_path, tiny_data):
    """A sparse scan: the canvas network shrinks its groups; a CNN refuses in one line."""
    small = tiny_data.subset(np.arange(6))
    cfg = RunConfig().with_overrides(
        model={"kind": "unrolled", "n_iterations": 2},
        grouping={"gridsize": 3, "neighbor_count": 8, "inference_gridsize": 5},
        train={"epochs": 1, "show_progress": False})
    train(tiny_data, tmp_path / "u", cfg)
    r = reconstruct(tmp_path / "u", small, InferConfig(show_progress=False))
    assert r.info["gridsize"] == 2 and np.isfinite(r.object).all()
    pinn = RunConfig().with_overrides(grouping={"gridsize": 3, "neighbor_count": 8},
                                      train={"epochs": 1, "show_progress": False})
    train(tiny_data, tmp_path / "p", pinn)
    with pytest.raises(PtychoInputError, match="only 6 patterns but the model groups 9"):
        reconstruct(tmp_path / "p", small, InferConfig(show_progress=False))


@pytest.mark.parametrize("gridsize, words", [("0", "gridsize must be >= 1, got 0"),
                                             ("3", "trained for gridsize 2 and cannot infer")])
def test_cli_infer_bad_gridsize_is_one_line_and_writes_nothing(gridsize, words, tmp_path,
                                                               tiny_data, tiny_npz, capsys):
    run = tmp_path / "p"
    train(tiny_data, run, RunConfig().with_overrides(
        train={"epochs": 1, "show_progress": False}))
    capsys.readouterr()
    code = main(["infer", "--model", str(run), "--data", str(tiny_npz), "--out",
                 str(tmp_path / "out"), "--gridsize", gridsize])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("section, key, value, words", [
    ("train", "plateau_monitor", "loss", "plateau_monitor must be 'train' or 'val', got 'loss'"),
    ("model", "memory_channels", -1, "memory_channels must be >= 0, got -1"),
])
def test_new_options_refuse_bad_values_in_one_line(section, key, value, words):
    with pytest.raises(PtychoInputError) as e:
        # memory_channels is an option of the unrolled network
        kind = {"kind": "unrolled"} if section == "model" else {}
        RunConfig.from_dict({section: {**kind, key: value}}, source="cfg.yaml")
    msg = str(e.value)
    assert "\n" not in msg and words in msg and msg.startswith("cfg.yaml")



def test_retired_options_still_load_and_refuse_when_on():
    """Configs and bundles written before physinit/resnet/probe_trainable were removed load; a
    probe_trainable that was on is refused in one line (train.refine_probe replaces it)."""
    cfg = RunConfig.from_dict({"model": {"kind": "unrolled", "probe_trainable": False,
                                         "n_res_blocks": 6}}, source="old.yaml")
    assert cfg.model.kind == "unrolled"
    with pytest.raises(PtychoInputError) as e:
        RunConfig.from_dict({"model": {"probe_trainable": True}}, source="old.yaml")
    assert str(e.value) == ("old.yaml: key 'model.probe_trainable': model.probe_trainable was "
                            "removed; learn the probe with train.refine_probe (--refine-probe)")


def test_each_kind_has_its_own_options_and_older_flat_sections_load(tmp_path):
    """``model`` options live in the kind's options class (``cfg.options``), flat in YAML; a
    section written before options were per kind (every kind's options, the other kinds' at
    their defaults) still loads, and switching kind in ``with_overrides`` starts from the new
    kind's defaults."""
    from ptychopinn.config import load_config, save_config
    from ptychopinn.models.options import CNNOptions, UnrolledOptions
    from ptychopinn.models.registry import REGISTRY

    assert {k: v.options for k, v in REGISTRY.items()} == {
        "unrolled": UnrolledOptions, "pinn": CNNOptions, "baseline": CNNOptions}
    cfg = RunConfig.from_dict({"model": {"kind": "unrolled", "n_iterations": 3}})
    assert cfg.model.options == UnrolledOptions(n_iterations=3)
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert "n_filters_scale" not in cfg.to_dict()["model"]
    old = {"kind": "unrolled", "n_filters_scale": 1.0, "amp_activation": "sigmoid",
           "object_big": True, "pad_object": True, "learn_scale": True, "loss": "poisson",
           "batch_norm": True, "n_iterations": 3, "refiner_width": 16, "memory_channels": 4,
           "dose_input": False, "consistency": "modulus"}
    assert RunConfig.from_dict({"model": old}) == cfg
    small = RunConfig().with_overrides(model={"n_filters_scale": 0.25})
    assert small.model.options.n_filters_scale == 0.25
    switched = small.with_overrides(model={"kind": "unrolled"})
    assert switched.model.options == UnrolledOptions()


@pytest.mark.parametrize("option, value, head_channels", [("step_map", True, 2 + 4 + 1),
                                                          ("refiner_scales", 2, 2 + 4)])
def test_refiner_options_start_as_the_plain_network_and_learn(option, value, head_channels):
    """``step_map`` (a per-pixel step factor) and ``refiner_scales`` (a half-resolution
    branch): untrained, the network is the plain one (factor 1, zero head); the new weights get
    a gradient, and once trained they change the output."""
    from ptychopinn.models.unrolled import UnrolledNet

    torch.manual_seed(1)
    target, offsets = torch.rand(2, 4, 32, 32), torch.randn(2, 4, 2) * 3
    probe = torch.ones(32, 32, dtype=torch.complex64)
    nets = []
    for opts in ({}, {option: value}):
        torch.manual_seed(0)
        nets.append(UnrolledNet(ModelConfig.from_dict(
            {"kind": "unrolled", "n_iterations": 2, **opts})))
    plain, changed = (net(target, offsets, probe) for net in nets)
    assert torch.allclose(plain, changed, atol=1e-6)
    changed.abs().sum().backward()
    refiner = nets[1].refiners[0]
    head = refiner.net[-1]
    assert head.out_channels == head_channels
    if option == "step_map":
        assert float(head.weight.grad[-1].abs().sum()) > 0
    with torch.no_grad():
        if option == "step_map":
            head.bias[-1] = 1.0  # factor 2σ(1) ≈ 1.46 in the first step
        else:
            head.weight.normal_(0, 0.1)
    assert not torch.allclose(nets[1](target, offsets, probe), plain, atol=1e-4)
    if option == "refiner_scales":  # the coarse branch learns once the head is not zero
        nets[1].zero_grad()
        nets[1](target, offsets, probe).abs().sum().backward()
        assert float(refiner.coarse[0].weight.grad.abs().sum()) > 0
