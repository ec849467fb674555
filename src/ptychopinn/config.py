"""Run configuration: frozen dataclasses, YAML load (unknown keys rejected) and save."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ptychopinn.data.grouping import GroupingConfig
from ptychopinn.errors import PtychoInputError
from ptychopinn.models.pinn import ModelConfig


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation and device options. ``max_minutes`` caps wall time (None = no cap)."""

    epochs: int = 30
    batch_size: int = 8  # groups; more, smaller steps won at equal time (BENCHMARKS.md)
    learning_rate: float = 2e-3
    max_minutes: float | None = None
    val_fraction: float = 0.05
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_workers: int = 0
    seed: int = 0
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes}")
        if not 0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything a training run needs: model, grouping and training sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    grouping: GroupingConfig = field(default_factory=GroupingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.model.gridsize != self.grouping.gridsize:
            raise ValueError(f"model.gridsize ({self.model.gridsize}) and grouping.gridsize "
                             f"({self.grouping.gridsize}) differ")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-able)."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "<dict>") -> RunConfig:
        """Build from a nested dict, rejecting unknown sections/keys with one line."""
        sections = {"model": ModelConfig, "grouping": GroupingConfig, "train": TrainConfig}
        if not isinstance(d, dict):
            raise PtychoInputError("expected a mapping with sections model/grouping/train",
                                   path=source)
        unknown = set(d) - set(sections)
        if unknown:
            raise PtychoInputError(f"unknown section(s) {sorted(unknown)}; allowed: "
                                   f"{sorted(sections)}", path=source)
        kwargs = {}
        for name, klass in sections.items():
            kwargs[name] = _build_section(klass, d.get(name) or {}, name, source)
        try:
            return cls(**kwargs)
        except ValueError as e:
            raise PtychoInputError(str(e), path=source) from None

    def with_overrides(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some fields replaced, e.g. ``model={"gridsize": 1}``."""
        d = self.to_dict()
        for name, upd in sections.items():
            d[name].update({k: v for k, v in upd.items() if v is not None})
        return RunConfig.from_dict(d)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _build_section(klass: type, values: dict, name: str, source: str) -> Any:
    if not isinstance(values, dict):
        raise PtychoInputError(f"section '{name}' must be a mapping", path=source)
    allowed = {f.name for f in fields(klass)}
    unknown = set(values) - allowed
    if unknown:
        raise PtychoInputError(f"unknown key(s) {sorted(unknown)} in section '{name}'; "
                               f"allowed: {sorted(allowed)}", path=source)
    try:
        return klass(**values)
    except (TypeError, ValueError) as e:
        raise PtychoInputError(f"section '{name}': {e}", path=source) from None


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a YAML run config; unknown keys are rejected."""
    path = Path(path)
    if not path.exists():
        raise PtychoInputError("config file not found", path=path)
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise PtychoInputError(f"invalid YAML ({' '.join(str(e).split())})", path=path) from None
    return RunConfig.from_dict(d, source=str(path))


def save_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write exactly what ran as YAML (atomic)."""
    from ptychopinn.data.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


__all__ = ["GroupingConfig", "ModelConfig", "RunConfig", "TrainConfig", "load_config",
           "save_config"]
