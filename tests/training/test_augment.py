"""The training symmetries are exact symmetries of the far-field measurement."""

import pytest
import torch

from ptychopinn.physics.patches import extract_patches
from ptychopinn.physics.propagate import far_field
from ptychopinn.training.augment import centred_flip, dihedral


def _measure(obj, positions, probe):
    """|far field| of every patch of ``obj`` at ``positions`` (K, 2), (1, K, N, N)."""
    return far_field(extract_patches(obj, positions, probe.shape[-1]) * probe).abs()[None]


@pytest.mark.parametrize("k", range(8))
def test_dihedral_maps_measurements_of_the_transformed_experiment(k):
    g = torch.Generator().manual_seed(k)
    s, n = 48, 16
    obj = torch.polar(0.5 + torch.rand(s, s, generator=g),
                      torch.randn(s, s, generator=g)).to(torch.complex64)
    probe = torch.polar(torch.rand(n, n, generator=g),
                        torch.randn(n, n, generator=g)).to(torch.complex64)
    offsets = (torch.rand(1, 5, 2, generator=g) * 12 - 6).round()  # integer: no interpolation
    amp = _measure(obj, offsets[0] + s / 2, probe)
    # the transformed experiment: object mirrored pixel for pixel, or transposed
    obj_t = obj
    for bit, dim in ((1, 0), (2, 1)):
        if k & bit:
            obj_t = obj_t.flip(dim)
    if k & 4:
        obj_t = obj_t.T
    amp_t, off_t, probe_t = dihedral(amp, offsets, probe, k)
    assert torch.allclose(_measure(obj_t, off_t[0] + s / 2, probe_t), amp_t, atol=1e-4)
    if k:  # a real change, not the identity
        assert not torch.allclose(amp_t, amp, atol=1e-3)


def test_dihedral_refuses_an_unknown_element():
    with pytest.raises(ValueError, match="0..7"):
        dihedral(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2), torch.zeros(4, 4), 8)


def test_centred_flip_keeps_zero_frequency():
    x = torch.arange(8.0)
    assert centred_flip(x, 0).tolist() == [0, 7, 6, 5, 4, 3, 2, 1]


def test_augmented_training_learns_the_probe_and_cnns_refuse(tmp_path, tiny_data):
    """Augmentation keeps every gradient path (here the refined probe's) and is refused, in
    one line, for a network whose weights hold the training probe."""
    import numpy as np

    from ptychopinn.config import RunConfig
    from ptychopinn.errors import PtychoInputError
    from ptychopinn.physics.probe import normalize_probe
    from ptychopinn.training.api import train
    from ptychopinn.training.bundle import load_bundle

    cfg = RunConfig().with_overrides(
        model={"kind": "unrolled", "n_iterations": 2},
        train={"epochs": 2, "show_progress": False, "augment": True, "refine_probe": True,
               "probe_warmup_epochs": 0})
    train(tiny_data, tmp_path / "u", cfg)
    bundle = load_bundle(tmp_path / "u")
    assert bundle.manifest["train_config"]["augment"] is True
    start, _ = normalize_probe(tiny_data.probe)
    assert np.abs(bundle.model.physics.probe.numpy() - start).max() > 1e-3  # it moved
    with pytest.raises(PtychoInputError, match="train.augment needs a network that takes the "
                                               "probe as an input"):
        train(tiny_data, tmp_path / "p", RunConfig().with_overrides(
            train={"epochs": 1, "show_progress": False, "augment": True}))
    assert not (tmp_path / "p").exists()
