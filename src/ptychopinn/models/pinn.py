"""The PtychoPINN network: diffraction amplitudes of a group -> complex object patches.

Plain ``nn.Module``s (no Lightning, no I/O). Shapes: B groups, C = gridsize² members, N pixels.
The patch size N comes from the data (the probe's shape) and the group side from
``grouping.gridsize``; neither is part of :class:`ModelConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ptychopinn.errors import PtychoInputError
from ptychopinn.physics.forward import PtychoForward
from ptychopinn.physics.merge import merge_and_recut


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Network and physics options.

    ``kind`` one of :data:`ptychopinn.models.registry.KINDS`;
    ``n_filters_scale`` scales the base width of 16 filters; ``object_big`` merges the C
    patches per group; ``pad_object`` predicts the central N/2 region with the main decoder and
    the border with a small branch. ``n_iterations`` and ``refiner_width`` set the unrolled
    network (physics steps K, refiner channels, memory channels carried between steps;
    ``dose_input``: its refiners also see the scan's log mean counts, for a model that serves
    many doses);
    ``n_res_blocks`` the residual blocks of ``resnet``.
    """

    kind: str = "pinn"
    n_filters_scale: float = 1.0
    amp_activation: Literal["sigmoid", "softplus", "exp"] = "sigmoid"
    object_big: bool = True
    pad_object: bool = True
    probe_trainable: bool = False
    learn_scale: bool = True
    loss: Literal["poisson", "mae"] = "poisson"
    batch_norm: bool = True
    n_iterations: int = 6
    refiner_width: int = 16
    memory_channels: int = 4
    n_res_blocks: int = 6
    dose_input: bool = False

    def __post_init__(self) -> None:
        from ptychopinn.models.registry import check_kind

        check_kind(self.kind)
        if self.n_filters_scale <= 0:
            raise PtychoInputError(f"n_filters_scale must be > 0, got {self.n_filters_scale}")
        if self.amp_activation not in ("sigmoid", "softplus", "exp"):
            raise PtychoInputError(f"unknown amp_activation {self.amp_activation!r}")
        if self.loss not in ("poisson", "mae"):
            raise PtychoInputError(f"loss must be 'poisson' or 'mae', got {self.loss!r}")
        if self.n_iterations < 1:
            raise PtychoInputError(f"n_iterations must be >= 1, got {self.n_iterations}")
        if self.memory_channels < 0:
            raise PtychoInputError(f"memory_channels must be >= 0, got {self.memory_channels}")
        if self.refiner_width < 1:
            raise PtychoInputError(f"refiner_width must be >= 1, got {self.refiner_width}")
        if self.n_res_blocks < 0:
            raise PtychoInputError(f"n_res_blocks must be >= 0, got {self.n_res_blocks}")

    def widths(self, n: int) -> list[int]:
        """Filters per encoder stage for N = ``n``: 3 stages for N = 64, one more per doubling."""
        base = max(4, int(round(16 * self.n_filters_scale)))
        return [base * 2**k for k in range(int(math.log2(n)) - 3)]


def _block(cin: int, cout: int, norm: bool = False) -> nn.Sequential:
    if not norm:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
        )
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Encoder(nn.Module):
    """conv-conv-pool stages: (B, C, N, N) -> (B, F, N/2^s, N/2^s)."""

    def __init__(self, cin: int, widths: list[int], norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        for w in widths:
            layers += [_block(cin, w, norm), nn.MaxPool2d(2)]
            cin = w
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Upsampling decoder to (B, C, N/2, N/2) (centre) plus a border branch to (B, C, N, N)."""

    def __init__(self, widths: list[int], cout: int, *, pad_object: bool, norm: bool = False):
        super().__init__()
        self.pad_object = pad_object
        rev = widths[::-1]
        n_up = len(widths) - (1 if pad_object else 0)  # to N/2 or to N
        layers: list[nn.Module] = []
        cin = rev[0]
        for k in range(n_up):
            w = rev[min(k + 1, len(rev) - 1)]
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _block(cin, w, norm)]
            cin = w
        self.main = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, cout, 3, padding=1)
        if pad_object:
            bw = max(4, widths[0] // 2)
            self.border = nn.Sequential(
                nn.Conv2d(rev[0], bw, 1), nn.ReLU(inplace=True),
                nn.Upsample(scale_factor=2 ** len(widths), mode="bilinear", align_corners=False),
                nn.Conv2d(bw, bw, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(bw, cout, 3, padding=1),
            )
        for m in (self.head, *(self.border[-1:] if pad_object else [])):
            nn.init.normal_(m.weight, std=1e-3)
            nn.init.zeros_(m.bias)

    def forward(self, z: Tensor) -> Tensor:
        centre = self.head(self.main(z))  # (B, C, N/2, N/2) or (B, C, N, N)
        if not self.pad_object:
            return centre
        full = self.border(z)  # (B, C, N, N)
        n = full.shape[-1]
        q = n // 4
        return torch.cat([
            full[..., :q, :],
            torch.cat([full[..., q : n - q, :q], centre, full[..., q : n - q, n - q :]], -1),
            full[..., n - q :, :],
        ], -2)


class ObjectNet(nn.Module):
    """Encoder + amplitude and phase decoders: amplitudes (B, C, N, N) -> patches complex.

    ``n`` patch size N; ``channels`` C = gridsize² (both from the data and the grouping).
    """

    def __init__(self, cfg: ModelConfig, *, n: int, channels: int):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths(n)
        c = channels
        self.encoder = Encoder(c, w, cfg.batch_norm)
        self.amp = Decoder(w, c, pad_object=cfg.pad_object, norm=cfg.batch_norm)
        self.phase = Decoder(w, c, pad_object=cfg.pad_object, norm=cfg.batch_norm)
        if cfg.amp_activation == "sigmoid":  # start near amplitude 0.8
            self.amp.head.bias.data.fill_(math.log(4.0))

    def amplitude_phase(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, N, N) normalised amplitudes -> amplitude, phase (B, C, N, N) float.

        The convolutions run in channels-last memory format (CPU: 1.7× faster inference, 1.25×
        faster training steps; ``benchmarks/cpu_efficiency.py``)."""
        z = self.encoder(x.contiguous(memory_format=torch.channels_last))
        a = self.amp(z)
        act = self.cfg.amp_activation
        amp = torch.sigmoid(a) if act == "sigmoid" else (
            nn.functional.softplus(a) if act == "softplus" else torch.exp(a))
        phase = math.pi * torch.tanh(self.phase(z))
        return amp, phase

    def forward(self, x: Tensor) -> Tensor:
        amp, phase = self.amplitude_phase(x)
        return torch.polar(amp, phase)


class PINN(nn.Module):
    """Network + per-group merge + physics.

    Parameters
    ----------
    cfg : ModelConfig
    probe : Tensor (N, N) complex
        Normalised probe (total power (N/2)²); its size is the patch size N (:attr:`n`).
    gridsize : int
        Group side g (C = g² members per group), ``grouping.gridsize`` of the run.
    input_scale : float
        Multiplies measured amplitudes so the mean total energy per pattern is (N/2)².
    intensity_scale : float
        Initial s (model amplitude -> sqrt(counts)).
    """

    def __init__(self, cfg: ModelConfig, probe: Tensor, *, gridsize: int, input_scale: float,
                 intensity_scale: float):
        super().__init__()
        self.cfg = cfg
        self.gridsize = int(gridsize)
        from ptychopinn.models.registry import build_net

        self.net = build_net(cfg, n=int(probe.shape[-1]), gridsize=self.gridsize)
        self.physics = PtychoForward(probe, intensity_scale, learn_scale=cfg.learn_scale,
                                     probe_trainable=cfg.probe_trainable)
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))

    @property
    def n(self) -> int:
        """Patch size N (pixels), the probe's."""
        return int(self.physics.probe.shape[-1])

    def predict_patches(self, amplitude: Tensor, offsets: Tensor, *,
                        probe: Tensor | None = None, count_scale: Tensor | None = None
                        ) -> tuple[Tensor, Tensor]:
        """Raw and (for object_big) merged patches, both (B, C, N, N) complex.

        ``amplitude`` is in sqrt(counts) (un-normalised); ``offsets`` (B, C, 2). Optional
        per-group conditioning (a training corpus mixes scans): ``probe`` (B, N, N) complex
        normalised probes and ``count_scale`` (B,) = sqrt(mean counts of the group's scan /
        the reference mean counts ``((N/2) / input_scale)²``); without them the model's own
        probe and scales serve every group.
        """
        if getattr(self.net, "physics_inside", False):
            # measured modulus in model units; patches come from one canvas per group
            s = self.physics.scale
            cs = amplitude.new_ones(amplitude.shape[0]) if count_scale is None else count_scale
            s = s * cs[:, None, None, None]
            # mean counts of each group's scan: reference counts × count scale²
            counts = (self.n / 2 / self.input_scale) ** 2 * cs**2
            raw = self.net(amplitude / s, offsets,
                           self.physics.probe if probe is None else probe, counts)
            return raw, raw
        x = amplitude * self.input_scale
        if count_scale is not None:
            x = x / count_scale[:, None, None, None]
        raw = self.net(x)
        merged = merge_and_recut(raw, offsets) if self.cfg.object_big else raw
        return raw, merged

    def forward(self, amplitude: Tensor, offsets: Tensor, *, probe: Tensor | None = None,
                count_scale: Tensor | None = None) -> dict[str, Tensor]:
        """Patches and predicted amplitudes sqrt(counts), all (B, C, N, N); conditioning as
        in :meth:`predict_patches`."""
        raw, merged = self.predict_patches(amplitude, offsets, probe=probe,
                                           count_scale=count_scale)
        pred = self.physics.amplitude(merged, probe=probe, count_scale=count_scale)
        return {"raw": raw, "patches": merged, "pred_amplitude": pred}
