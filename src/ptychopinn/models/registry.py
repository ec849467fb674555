"""One registry of network families, chosen by ``model.kind``.

Each entry builds the ``nn.Module`` that maps a group's measured amplitudes to object patches;
:class:`ptychopinn.models.pinn.PINN` wraps it with the merge and the physics, so training,
bundles, inference, the study and the Ptychodus reconstructor work unchanged for every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep the CLI's import of KINDS free of torch
    from torch import nn

KINDS: dict[str, str] = {
    "pinn": "faithful PtychoPINN CNN (encoder + amplitude/phase decoders), physics loss",
    "baseline": "supervised PtychoNN-style CNN (gridsize 1), MAE against labels",
    "unrolled": "unrolled physics network: K data-consistency steps on the group canvas "
                "interleaved with small learned corrections, physics loss",
}


#: Kinds whose weights act on the group canvas, not on member channels: they can infer with
#: other group sizes than they trained with (``grouping.inference_gridsize``).
CANVAS_KINDS: frozenset[str] = frozenset({"unrolled"})

#: Run-config sections a kind is best trained with when the user gives no config (measured on
#: the learning curve, BENCHMARKS.md): the unrolled network learns more per step from groups of
#: 9 neighbours and infers better from groups of 25 (more measurements per canvas).
RECOMMENDED: dict[str, dict[str, dict]] = {
    "unrolled": {"model": {"gridsize": 3},
                 "grouping": {"gridsize": 3, "neighbor_count": 12, "inference_gridsize": 5}},
    "baseline": {"model": {"gridsize": 1}, "grouping": {"gridsize": 1}},
}


def recommended(kind: str) -> dict[str, dict]:
    """Sections of :class:`~ptychopinn.config.RunConfig` overrides recommended for ``kind``."""
    check_kind(kind)
    return {sec: dict(v) for sec, v in RECOMMENDED.get(kind, {}).items()}


def check_kind(kind: str) -> None:
    """Refuse an unknown ``model.kind`` in one line naming the kinds that exist."""
    if kind not in KINDS:
        raise ValueError(f"unknown model.kind {kind!r}; kinds: {', '.join(sorted(KINDS))}")


def build_net(cfg) -> nn.Module:
    """The network of ``cfg.kind`` (a :class:`~ptychopinn.models.pinn.ModelConfig`)."""
    check_kind(cfg.kind)
    return _builders()[cfg.kind](cfg)


def _builders() -> dict[str, Callable]:
    from ptychopinn.models.pinn import ObjectNet
    from ptychopinn.models.unrolled import UnrolledNet

    return {"pinn": ObjectNet, "baseline": ObjectNet, "unrolled": UnrolledNet}
