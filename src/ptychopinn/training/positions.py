"""Scan-position refinement: learnable positions trained through the differentiable patches.

Real stage positions drift, scale and jitter. :class:`ScanPositions` holds the scan's nominal
positions and learns, by the physics loss's gradient through the bilinear patch geometry
(:class:`~ptychopinn.physics.patches.PatchGeometry`), a global affine map about the scan
centre (scale, rotation, shear), a linear drift over the scan order and bounded per-pattern
corrections. A global translation is not observable (it only moves the whole picture), so
the correction's mean is kept at zero: the refined scan keeps the nominal one's centre.
Units: object pixels; positions (row, col).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["PositionRefinement", "ScanPositions", "affine_fit", "position_rms"]


@dataclass(frozen=True)
class PositionRefinement:
    """Position refinement options: ``lr`` (Adam, pixels per step), ``warmup_epochs`` with the
    positions fixed, ``bound`` the largest per-pattern correction (pixels, on top of the global
    model), ``affine``: also learn the global affine map and drift, which get ``affine_epochs``
    epochs to themselves (the per-pattern corrections stay at zero) before the per-pattern
    corrections start."""

    lr: float = 0.05
    warmup_epochs: int = 1
    bound: float = 4.0
    affine: bool = True
    affine_epochs: int = 1

    @classmethod
    def from_train_config(cls, tc) -> PositionRefinement | None:
        """From a :class:`~ptychopinn.config.TrainConfig` (None unless ``refine_positions``)."""
        if not tc.refine_positions:
            return None
        return cls(lr=tc.position_lr, warmup_epochs=tc.position_warmup_epochs,
                   bound=tc.position_bound, affine=tc.position_affine,
                   affine_epochs=tc.position_affine_epochs if tc.position_affine else 0)


class ScanPositions(nn.Module):
    """Learnable scan positions (M, 2) (row, col), pixels.

    ``forward()`` = nominal + affine (``A`` (2, 2), pixels of displacement at the scan's RMS
    radius R: ``A @ (p - c) / R``) + drift (``d`` (2,), pixels from the first to the last
    pattern, linear in the scan order, zero-mean) + ``bound · tanh(raw / bound)`` per pattern,
    made zero-mean. All corrections start at zero.
    """

    def __init__(self, nominal: np.ndarray, *, bound: float = 4.0, affine: bool = True):
        super().__init__()
        nominal = np.asarray(nominal, np.float64)
        m = nominal.shape[0]
        centre = nominal.mean(axis=0)
        radius = max(float(np.sqrt(np.mean(np.sum((nominal - centre) ** 2, axis=1)))), 1.0)
        self.bound = float(bound)
        self.register_buffer("nominal", torch.from_numpy(nominal))
        self.register_buffer("centre", torch.from_numpy(centre))
        self.radius = radius
        t = np.linspace(-0.5, 0.5, m) if m > 1 else np.zeros(1)
        self.register_buffer("order", torch.from_numpy(t))
        self.raw = nn.Parameter(torch.zeros(m, 2, dtype=torch.float64))
        self.affine = nn.Parameter(torch.zeros(2, 2, dtype=torch.float64)) if affine else None
        self.drift = nn.Parameter(torch.zeros(2, dtype=torch.float64)) if affine else None

    def global_parameters(self) -> list[nn.Parameter]:
        """The affine map and drift (empty without ``affine``)."""
        return [p for p in (self.affine, self.drift) if p is not None]

    def linear(self) -> Tensor:
        """The global linear map L = I + A / R (2, 2) (identity without ``affine``)."""
        eye = torch.eye(2, dtype=torch.float64, device=self.nominal.device)
        return eye if self.affine is None else eye + self.affine / self.radius

    def local(self) -> Tensor:
        """The corrections that are not a linear map of the scan (M, 2): drift + per-pattern.
        Positions = c + L (nominal - c) + local."""
        d = self.bound * torch.tanh(self.raw / self.bound)
        d = d - d.mean(dim=0)
        return d if self.drift is None else d + self.order[:, None] * self.drift

    def forward(self) -> Tensor:
        return self.centre + (self.nominal - self.centre) @ self.linear().T + self.local()

    def offsets(self, index: Tensor) -> Tensor:
        """Member offsets from their group centre (B, C, 2) float32 for groups ``index`` (B, C)."""
        p = self()[index]
        return (p - p.mean(dim=1, keepdim=True)).to(torch.float32)

    def refined(self) -> np.ndarray:
        """The current positions (M, 2) float64 (detached)."""
        with torch.no_grad():
            return self().cpu().numpy()


def affine_fit(nominal: np.ndarray, refined: np.ndarray) -> dict[str, float]:
    """Least-squares affine map refined ≈ B (nominal − c) + c + t, as a readable summary.

    Returns ``scale_row``, ``scale_col`` (relative, 1 = none), ``rotation_deg``, ``shear``,
    ``shift_row``, ``shift_col`` (pixels) and ``residual_rms`` (pixels, what the affine map does
    not explain: per-pattern jitter and drift).
    """
    nominal, refined = np.asarray(nominal, np.float64), np.asarray(refined, np.float64)
    c = nominal.mean(axis=0)
    x = np.concatenate([nominal - c, np.ones((len(nominal), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(x, refined - c, rcond=None)
    b = coef[:2].T  # (2, 2): refined_rel = b @ nominal_rel
    resid = refined - c - x @ coef
    rot = math.degrees(math.atan2(b[1, 0] - b[0, 1], b[0, 0] + b[1, 1]))
    return {"scale_row": float(b[0, 0]), "scale_col": float(b[1, 1]), "rotation_deg": rot,
            "shear": float((b[0, 1] + b[1, 0]) / 2), "shift_row": float(coef[2, 0]),
            "shift_col": float(coef[2, 1]),
            "residual_rms": float(np.sqrt(np.mean(np.sum(resid**2, axis=1))))}


def position_rms(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance (pixels) between two position sets (M, 2) after removing their mean
    difference (a global translation is not observable in ptychography)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    d = d - d.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(d**2, axis=1))))
