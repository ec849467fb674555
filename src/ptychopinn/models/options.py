"""Per-kind network options: one frozen dataclass per family of ``model.kind``, named by its
registry entry (:attr:`~ptychopinn.models.registry.KindSpec.options`).

Torch-free, so reading a config imports no torch. In a run config's ``model`` section the
options sit beside ``kind`` (flat YAML); :class:`~ptychopinn.models.config.ModelConfig` keeps
them as ``cfg.options``, and a key that the kind does not take is refused in one line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ptychopinn.errors import PtychoInputError


@dataclass(frozen=True, kw_only=True)
class NoOptions:
    """A kind without options of its own."""


@dataclass(frozen=True, kw_only=True)
class CNNOptions:
    """The CNN kinds' (``pinn``, ``baseline``) options.

    ``n_filters_scale`` scales the base width of 16 filters; ``amp_activation`` maps the
    amplitude decoder's output to amplitude; ``object_big`` merges the C patches of a group
    (and cuts them out again); ``pad_object`` predicts the central N/2 region with the main
    decoder and the border with a small branch; ``batch_norm`` in encoder and decoders.
    """

    n_filters_scale: float = 1.0
    amp_activation: Literal["sigmoid", "softplus", "exp"] = "sigmoid"
    object_big: bool = True
    pad_object: bool = True
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if self.n_filters_scale <= 0:
            raise PtychoInputError(f"n_filters_scale must be > 0, got {self.n_filters_scale}")
        if self.amp_activation not in ("sigmoid", "softplus", "exp"):
            raise PtychoInputError(f"unknown amp_activation {self.amp_activation!r}")

    def widths(self, n: int) -> list[int]:
        """Filters per encoder stage for N = ``n``: 3 stages for N = 64, one more per doubling."""
        base = max(4, int(round(16 * self.n_filters_scale)))
        return [base * 2**k for k in range(int(math.log2(n)) - 3)]


@dataclass(frozen=True, kw_only=True)
class UnrolledOptions:
    """The unrolled network's options.

    ``n_iterations`` physics steps K; ``refiner_width`` refiner channels; ``memory_channels``
    channels carried between steps; ``dose_input``: the refiners also see the scan's log mean
    counts (a model that serves many doses); ``consistency``: the data-consistency step,
    ``"modulus"`` (replace the far-field modulus by the measured one: the gradient step of the
    amplitude (Gaussian) misfit) or ``"poisson"`` (half a gradient step of the Poisson
    likelihood in counts, (y/I − 1)/2 per far-field pixel, damped below one photon; the two
    agree at high counts). ``step_map``: each refiner also predicts a per-pixel step-size
    factor in (0, 2) (starting at 1) for its data-consistency step, seeing the canvas, the update
    and the probe coverage before the step (a learned, spatially varying relaxation; issue #22
    candidate (d)); off: one learned scalar step per iteration. ``refiner_scales``: 2 adds a
    half-resolution branch to each refiner (receptive field 15 px -> ~45 px: slowly varying
    phase errors that the full-resolution layers cannot see); 1 = none. ``inference_steps``:
    plain data-consistency steps (unit step, no learned correction) after the learned ones at
    inference, unless the inference asks for another number
    (:class:`~ptychopinn.inference.predict.InferConfig` ``extra_steps``); training never runs
    them. ``object_steps``: data-consistency steps on the whole stitched object at inference,
    with every pattern of the scan at once (:func:`~ptychopinn.physics.consistency.
    scan_consistency_steps`; unless the inference asks for another number, InferConfig
    ``object_steps``): they remove what the groups, each reconstructed from its C patterns
    alone, cannot — seams, phase offsets, pixels few members cover. The shipped general model
    uses 20 after no plain group steps (BENCHMARKS "Object steps").
    """

    n_iterations: int = 6
    refiner_width: int = 16
    memory_channels: int = 4
    dose_input: bool = False
    consistency: Literal["modulus", "poisson"] = "modulus"
    step_map: bool = False
    refiner_scales: int = 1
    inference_steps: int = 0
    object_steps: int = 0

    def __post_init__(self) -> None:
        if self.object_steps < 0:
            raise PtychoInputError(f"object_steps must be >= 0, got {self.object_steps}")
        if self.inference_steps < 0:
            raise PtychoInputError(f"inference_steps must be >= 0, got {self.inference_steps}")
        if self.refiner_scales not in (1, 2):
            raise PtychoInputError(f"refiner_scales must be 1 or 2, got {self.refiner_scales}")
        if self.consistency not in ("modulus", "poisson"):
            raise PtychoInputError("consistency must be 'modulus' or 'poisson', got "
                                   f"{self.consistency!r}")
        if self.n_iterations < 1:
            raise PtychoInputError(f"n_iterations must be >= 1, got {self.n_iterations}")
        if self.memory_channels < 0:
            raise PtychoInputError(f"memory_channels must be >= 0, got {self.memory_channels}")
        if self.refiner_width < 1:
            raise PtychoInputError(f"refiner_width must be >= 1, got {self.refiner_width}")
