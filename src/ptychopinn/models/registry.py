"""One registry of network families, chosen by ``model.kind``.

Each entry builds the ``nn.Module`` that maps a group's measured amplitudes to object patches;
:class:`ptychopinn.models.pinn.PINN` wraps it with the merge and the physics, so training,
bundles, inference, the study and the Ptychodus reconstructor work unchanged for every kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ptychopinn.errors import PtychoInputError
from ptychopinn.models.options import CNNOptions, NoOptions, UnrolledOptions

if TYPE_CHECKING:  # keep the CLI's import of KINDS free of torch
    from torch import nn

@dataclass(frozen=True)
class KindSpec:
    """Everything the package knows about one ``model.kind``, read everywhere instead of
    comparing kind names.

    ``build(cfg, n=, gridsize=)`` the network; ``supervised``: trained against ground-truth
    labels (no physics loss, no probe); ``canvas``: the weights act on the group canvas and take
    the probe as an input, so the network infers with other group sizes
    (``grouping.inference_gridsize``), serves other probes and trains on a corpus;
    ``recommended``: run-config sections it is best trained with when the user gives no config
    (measured, BENCHMARKS.md); ``fixed_gridsize``: the only group side it takes; ``display``:
    its name in tables and figures (SPEC §7), ``aliases`` other spellings that mean it
    (``compare --recon NAME=…``, study model names); ``study``: one of the default study's
    models (SPEC §8); ``ffts_per_member(cfg, extra_steps)``: 2-D FFTs (forward + inverse) one
    forward pass spends per group member (issue #22 counts the work in FFTs per pattern; 0 for
    the CNNs, whose inference runs no physics), ``extra_steps`` plain data-consistency steps
    added at inference (:class:`~ptychopinn.inference.predict.InferConfig`); ``options``:
    the frozen dataclass of its own ``model`` options (:mod:`ptychopinn.models.options`,
    ``cfg.options``; keys it does not hold are refused).
    """

    description: str
    build: Callable[..., nn.Module]
    display: str
    supervised: bool = False
    canvas: bool = False
    recommended: Mapping[str, Mapping] = field(default_factory=dict)
    fixed_gridsize: int | None = None
    aliases: tuple[str, ...] = ()
    study: bool = False
    ffts_per_member: Callable[..., int] = field(default=lambda cfg, extra_steps=0: 0)
    options: type = NoOptions


def _object_net(cfg, *, n: int, gridsize: int) -> nn.Module:
    from ptychopinn.models.cnn import ObjectNet

    return ObjectNet(cfg, n=n, channels=gridsize**2)


def _unrolled_net(cfg, *, n: int, gridsize: int) -> nn.Module:
    from ptychopinn.models.unrolled import UnrolledNet

    return UnrolledNet(cfg)  # weights act on the canvas: independent of N and C


#: The registry: one entry per kind (adding a kind is a module in ``models/`` and a line here).
REGISTRY: dict[str, KindSpec] = {
    # the unrolled network learns more per step from groups of 9 neighbours, infers better from
    # groups of 256 (every pattern constrains a whole region; issue #22: +0.014 phase SSIM over
    # groups of 25), generalises from the eight symmetries of each training group (+0.015) and
    # ends its inference with 20 steps on the whole stitched object (issue #21: +0.004 to
    # +0.108 for models trained on the scan's own conditions, BENCHMARKS "Object steps")
    "unrolled": KindSpec("unrolled physics network: K data-consistency steps on the group "
                         "canvas interleaved with small learned corrections, physics loss",
                         _unrolled_net, "PtychoPINN-Unrolled", canvas=True,
                         recommended={"model": {"object_steps": 20},
                                      "grouping": {"gridsize": 3, "neighbor_count": 12,
                                                   "inference_gridsize": 16},
                                      "train": {"augment": True}},
                         aliases=("ptychopinn-unrolled",), options=UnrolledOptions,
                         ffts_per_member=lambda cfg, extra_steps=0: 2 * (
                             cfg.options.n_iterations + extra_steps)),
    "pinn": KindSpec("faithful PtychoPINN CNN (encoder + amplitude/phase decoders), physics loss",
                     _object_net, "PtychoPINN", aliases=("ptychopinn",), study=True,
                     options=CNNOptions),
    "baseline": KindSpec("supervised PtychoNN-style CNN (gridsize 1), MAE against labels",
                         _object_net, "Baseline", supervised=True,
                         recommended={"grouping": {"gridsize": 1}}, fixed_gridsize=1,
                         aliases=("supervised", "ptychonn"), study=True,
                         options=CNNOptions),
}

#: The kind trained when none is named (``train`` without ``--model``, the Ptychodus plugin).
DEFAULT_KIND = "unrolled"

#: Kind -> one-line description (the CLI's help).
KINDS: dict[str, str] = {k: v.description for k, v in REGISTRY.items()}

#: Kinds whose weights act on the group canvas (:attr:`KindSpec.canvas`).
CANVAS_KINDS: frozenset[str] = frozenset(k for k, v in REGISTRY.items() if v.canvas)


def kind_spec(kind: str) -> KindSpec:
    """The registry entry of ``kind``; an unknown kind is refused in one line."""
    check_kind(kind)
    return REGISTRY[kind]


def recommended(kind: str) -> dict[str, dict]:
    """Sections of :class:`~ptychopinn.config.RunConfig` overrides recommended for ``kind``."""
    return {sec: dict(v) for sec, v in kind_spec(kind).recommended.items()}


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
    fixed = kind_spec(kind).fixed_gridsize
    if fixed is not None and gridsize != fixed:
        raise PtychoInputError(f"model.kind {kind!r} uses grouping.gridsize {fixed}, got "
                               f"{gridsize}")


def build_net(cfg, *, n: int, gridsize: int) -> nn.Module:
    """The network of ``cfg.kind`` (a :class:`~ptychopinn.models.config.ModelConfig`) for
    N×N patches (N from the data) in groups of C = ``gridsize``² (``grouping.gridsize``).

    Each builder is called as ``builder(cfg, n=n, gridsize=gridsize)``.
    """
    check_shape(cfg.kind, n, gridsize)
    return kind_spec(cfg.kind).build(cfg, n=n, gridsize=gridsize)
