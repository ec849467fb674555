"""One registry of network families, chosen by ``model.kind``.

Each entry builds the ``nn.Module`` that maps a group's measured amplitudes to object patches;
:class:`ptychopinn.models.pinn.PINN` wraps it with the merge and the physics, so training,
bundles, inference, the study and the Ptychodus reconstructor work unchanged for every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ptychopinn.errors import PtychoInputError

if TYPE_CHECKING:  # keep the CLI's import of KINDS free of torch
    from torch import nn

KINDS: dict[str, str] = {
    "pinn": "faithful PtychoPINN CNN (encoder + amplitude/phase decoders), physics loss",
    "baseline": "supervised PtychoNN-style CNN (gridsize 1), MAE against labels",
    "unrolled": "unrolled physics network: K data-consistency steps on the group canvas "
                "interleaved with small learned corrections, physics loss",
    "physinit": "physics-initialised network: each pattern back-propagated with the probe's "
                "far-field phase and divided by the probe, refined by a shared U-Net, merged",
    "resnet": "residual generator (stem, 2 downsamplings, residual blocks, 2 upsamplings) in "
              "place of the faithful encoder-decoder, physics loss",
}


#: Kinds whose weights act on the group canvas, not on member channels: they can infer with
#: other group sizes than they trained with (``grouping.inference_gridsize``).
CANVAS_KINDS: frozenset[str] = frozenset({"unrolled", "physinit"})

#: Run-config sections a kind is best trained with when the user gives no config (measured on
#: the learning curve, BENCHMARKS.md): the unrolled network learns more per step from groups of
#: 9 neighbours and infers better from groups of 25 (more measurements per canvas).
RECOMMENDED: dict[str, dict[str, dict]] = {
    "unrolled": {"grouping": {"gridsize": 3, "neighbor_count": 12, "inference_gridsize": 5}},
    "baseline": {"grouping": {"gridsize": 1}},
}


def recommended(kind: str) -> dict[str, dict]:
    """Sections of :class:`~ptychopinn.config.RunConfig` overrides recommended for ``kind``."""
    check_kind(kind)
    return {sec: dict(v) for sec, v in RECOMMENDED.get(kind, {}).items()}


def check_kind(kind: str) -> None:
    """Refuse an unknown ``model.kind`` in one line naming the kinds that exist."""
    if kind not in KINDS:
        raise PtychoInputError(f"unknown model.kind {kind!r}; kinds: {', '.join(sorted(KINDS))}")


def check_shape(kind: str, n: int, gridsize: int) -> None:
    """Refuse (one line) a patch size or group side the network of ``kind`` cannot take."""
    if n < 16 or n & (n - 1):
        raise PtychoInputError(f"patch size n must be a power of two >= 16, got {n}")
    if gridsize < 1:
        raise PtychoInputError(f"gridsize must be >= 1, got {gridsize}")
    if kind == "baseline" and gridsize != 1:
        raise PtychoInputError(f"the supervised baseline uses grouping.gridsize 1, got {gridsize}")


def build_net(cfg, *, n: int, gridsize: int) -> nn.Module:
    """The network of ``cfg.kind`` (a :class:`~ptychopinn.models.pinn.ModelConfig`) for
    N×N patches (N from the data) in groups of C = ``gridsize``² (``grouping.gridsize``).

    Each builder is called as ``builder(cfg, n=n, gridsize=gridsize)``.
    """
    check_kind(cfg.kind)
    check_shape(cfg.kind, n, gridsize)
    return _builders()[cfg.kind](cfg, n=n, gridsize=gridsize)


def _object_net(cfg, *, n: int, gridsize: int) -> nn.Module:
    from ptychopinn.models.pinn import ObjectNet

    return ObjectNet(cfg, n=n, channels=gridsize**2)


def _unrolled_net(cfg, *, n: int, gridsize: int) -> nn.Module:
    from ptychopinn.models.unrolled import UnrolledNet

    return UnrolledNet(cfg)  # weights act on the canvas: independent of N and C


def _physinit_net(cfg, *, n: int, gridsize: int) -> nn.Module:
    from ptychopinn.models.physinit import PhysInitNet

    return PhysInitNet(cfg)  # weights shared by every member: independent of C


def _resnet_net(cfg, *, n: int, gridsize: int) -> nn.Module:
    from ptychopinn.models.resnet import ResNetGenerator

    return ResNetGenerator(cfg, channels=gridsize**2)


def _builders() -> dict[str, Callable]:
    return {"pinn": _object_net, "baseline": _object_net, "unrolled": _unrolled_net,
            "physinit": _physinit_net, "resnet": _resnet_net}
