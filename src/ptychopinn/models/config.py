"""The network options of a run (``model`` section of a run config); torch-free, so reading a
config does not import torch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ptychopinn.errors import PtychoInputError
from ptychopinn.models.registry import check_kind

#: Model options that were removed, with the value that meant "off" (None: any value); older
#: configs and bundles holding them still load (:func:`drop_retired`).
RETIRED_KEYS: dict[str, object] = {"probe_trainable": False, "n_res_blocks": None}


def drop_retired(model: dict, *, source: object = "<dict>") -> dict:
    """``model`` (a ``model`` section) without :data:`RETIRED_KEYS`; a retired option that
    was switched on is refused in one line."""
    out = dict(model)
    for key, off in RETIRED_KEYS.items():
        if key in out:
            value = out.pop(key)
            if off is not None and value != off:
                raise PtychoInputError(f"model.{key} was removed; learn the probe with "
                                       "train.refine_probe (--refine-probe)", path=source,
                                       key=f"model.{key}")
    return out


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Network and physics options.

    ``kind`` one of :data:`ptychopinn.models.registry.KINDS`;
    ``n_filters_scale`` scales the base width of 16 filters; ``object_big`` merges the C
    patches per group; ``pad_object`` predicts the central N/2 region with the main decoder and
    the border with a small branch. ``n_iterations`` and ``refiner_width`` set the unrolled
    network (physics steps K, refiner channels, memory channels carried between steps;
    ``dose_input``: its refiners also see the scan's log mean counts, for a model that serves
    many doses). ``consistency``: the data-consistency step of the canvas network,
    ``"modulus"`` (replace the far-field modulus by the measured one: the gradient step of the
    amplitude (Gaussian) misfit) or ``"poisson"`` (half a gradient step of the Poisson
    likelihood in counts, (y/I − 1)/2 per far-field pixel, damped below one photon; the two
    agree at high counts).
    """

    kind: str = "pinn"
    n_filters_scale: float = 1.0
    amp_activation: Literal["sigmoid", "softplus", "exp"] = "sigmoid"
    object_big: bool = True
    pad_object: bool = True
    learn_scale: bool = True
    loss: Literal["poisson", "mae"] = "poisson"
    batch_norm: bool = True
    n_iterations: int = 6
    refiner_width: int = 16
    memory_channels: int = 4
    dose_input: bool = False
    consistency: Literal["modulus", "poisson"] = "modulus"

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if self.n_filters_scale <= 0:
            raise PtychoInputError(f"n_filters_scale must be > 0, got {self.n_filters_scale}")
        if self.amp_activation not in ("sigmoid", "softplus", "exp"):
            raise PtychoInputError(f"unknown amp_activation {self.amp_activation!r}")
        if self.loss not in ("poisson", "mae"):
            raise PtychoInputError(f"loss must be 'poisson' or 'mae', got {self.loss!r}")
        if self.consistency not in ("modulus", "poisson"):
            raise PtychoInputError("consistency must be 'modulus' or 'poisson', got "
                                   f"{self.consistency!r}")
        if self.n_iterations < 1:
            raise PtychoInputError(f"n_iterations must be >= 1, got {self.n_iterations}")
        if self.memory_channels < 0:
            raise PtychoInputError(f"memory_channels must be >= 0, got {self.memory_channels}")
        if self.refiner_width < 1:
            raise PtychoInputError(f"refiner_width must be >= 1, got {self.refiner_width}")

    def widths(self, n: int) -> list[int]:
        """Filters per encoder stage for N = ``n``: 3 stages for N = 64, one more per doubling."""
        base = max(4, int(round(16 * self.n_filters_scale)))
        return [base * 2**k for k in range(int(math.log2(n)) - 3)]
