"""Run configuration: frozen dataclasses, typed YAML load (unknown keys rejected) and save."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml

from ptychopinn.data.grouping import GroupingConfig
from ptychopinn.errors import PtychoInputError
from ptychopinn.models.config import ModelConfig
from ptychopinn.schema import build_section, check_keys, read_yaml

logger = logging.getLogger(__name__)

#: Keys that older configs and bundles carry in the model section: ``gridsize`` now lives in
#: ``grouping`` only, the patch size ``n`` comes from the data (recorded in the bundle).
LEGACY_MODEL_KEYS: tuple[str, ...] = ("n", "gridsize")


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
    plateau_monitor: str = "train"  # which epoch loss lowers the LR: "train" or "val"
    #: with a validation set, the bundle holds the weights of the epoch with the lowest
    #: validation (physics) loss, not the last epoch's: a late loss spike cannot spoil a run
    keep_best: bool = True
    #: probe refinement (issue #16): the probe becomes a learnable parameter with its own
    #: learning rate after ``probe_warmup_epochs``; its total power stays fixed, and it is zero
    #: outside ``probe_support_radius`` pixels of the centre (None: 1.25 × the radius holding
    #: 99.9% of the initial probe's power; ≥ N/√2: no support)
    refine_probe: bool = False
    probe_lr: float = 1e-2
    probe_warmup_epochs: int = 1
    probe_support_radius: float | None = None
    #: position refinement (issue #23): the scan positions become learnable
    #: (:class:`~ptychopinn.training.positions.ScanPositions`): Adam at ``position_lr``
    #: pixels per step after ``position_warmup_epochs``; with ``position_affine`` a global
    #: affine map and drift first (alone for ``position_affine_epochs``), then per-pattern
    #: corrections of at most ``position_bound`` pixels
    refine_positions: bool = False
    #: augmentation (issue #22): each batch of a canvas network's training sees one of the
    #: eight mirror/transpose symmetries of the whole experiment (object, probe, positions and
    #: patterns together; :mod:`ptychopinn.training.augment`)
    augment: bool = False
    position_lr: float = 0.05
    position_warmup_epochs: int = 1
    position_bound: float = 4.0
    position_affine: bool = True
    position_affine_epochs: int = 1

    def __post_init__(self) -> None:
        import math

        if not (isinstance(self.position_lr, int | float) and math.isfinite(self.position_lr)
                and self.position_lr > 0):
            raise PtychoInputError(f"position_lr must be > 0 pixels per step, got "
                                   f"{self.position_lr}")
        if not (isinstance(self.position_bound, int | float)
                and math.isfinite(self.position_bound) and self.position_bound > 0):
            raise PtychoInputError(f"position_bound must be > 0 pixels, got "
                                   f"{self.position_bound}")
        for name in ("position_warmup_epochs", "position_affine_epochs"):
            if getattr(self, name) < 0:
                raise PtychoInputError(f"{name} must be >= 0, got {getattr(self, name)}")

        if not (math.isfinite(self.probe_lr) and self.probe_lr > 0):
            raise PtychoInputError(f"probe_lr must be > 0, got {self.probe_lr}")
        if self.probe_warmup_epochs < 0:
            raise PtychoInputError(f"probe_warmup_epochs must be >= 0, got "
                                   f"{self.probe_warmup_epochs}")
        if self.probe_support_radius is not None and not (
                math.isfinite(self.probe_support_radius) and self.probe_support_radius > 0):
            raise PtychoInputError(f"probe_support_radius must be > 0 pixels, got "
                             f"{self.probe_support_radius}")
        if self.plateau_monitor not in ("train", "val"):
            raise PtychoInputError("plateau_monitor must be 'train' or 'val', got "
                             f"{self.plateau_monitor!r}")
        if self.epochs < 1:
            raise PtychoInputError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise PtychoInputError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise PtychoInputError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise PtychoInputError(f"max_minutes must be > 0, got {self.max_minutes}")
        if not 0 <= self.val_fraction < 0.5:
            raise PtychoInputError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything a training run needs: model, grouping and training sections.

    The group side lives in ``grouping.gridsize`` only (the network's C = gridsize² channels are
    derived from it where the model is built); the patch size comes from the data.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    grouping: GroupingConfig = field(default_factory=GroupingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        from ptychopinn.models.registry import CANVAS_KINDS, kind_spec

        spec = kind_spec(self.model.kind)
        kind = self.model.kind
        if spec.fixed_gridsize is not None and self.grouping.gridsize != spec.fixed_gridsize:
            what = "the supervised baseline" if spec.supervised else f"model.kind {kind!r}"
            raise PtychoInputError(f"{what} uses grouping.gridsize {spec.fixed_gridsize}, got "
                                   f"{self.grouping.gridsize}")
        if self.train.refine_probe and spec.supervised:
            raise PtychoInputError("train.refine_probe needs a physics-loss model; the supervised "
                                   f"{kind} does not use the probe")
        if self.train.refine_positions and spec.supervised:
            raise PtychoInputError("train.refine_positions needs a physics-loss model; the "
                                   f"supervised {kind} does not use the positions")
        if self.train.augment and not spec.canvas:
            raise PtychoInputError("train.augment needs a network that takes the probe as an "
                                   f"input ({', '.join(sorted(CANVAS_KINDS))}), not {kind!r}: "
                                   "its weights hold the training probe")
        gi = self.grouping.inference_gridsize
        if gi is not None and gi != self.grouping.gridsize and not spec.canvas:
            raise PtychoInputError(f"grouping.inference_gridsize ({gi}) differs from gridsize "
                                   f"({self.grouping.gridsize}); only the networks whose "
                                   "weights do not depend on C (model.kind "
                                   f"{', '.join(sorted(CANVAS_KINDS))}) can infer with other "
                                   "groups")

    @classmethod
    def for_kind(cls, kind: str) -> RunConfig:
        """The defaults of ``model.kind`` = ``kind``: its registry entry's recommended sections
        (:attr:`~ptychopinn.models.registry.KindSpec.recommended`) over the global defaults.
        The one place a kind's defaults are built (CLI without a config, demo, scripts)."""
        from ptychopinn.models.registry import recommended

        rec = recommended(kind)
        return cls().with_overrides(model={**rec.pop("model", {}), "kind": kind}, **rec)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-able); the model section flat
        (:meth:`~ptychopinn.models.config.ModelConfig.to_dict`)."""
        return _plain({**asdict(self), "model": self.model.to_dict()})

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "<dict>") -> RunConfig:
        """Build from a nested dict: values coerced to the field types (YAML's ``1e-3`` is a
        float), unknown sections/keys and bad values refused with one line.

        Older configs' ``model.gridsize`` moves to ``grouping.gridsize`` (refused if both are
        given and differ); their ``model.n`` is dropped (the patch size comes from the data).
        """
        sections = {"model": ModelConfig, "grouping": GroupingConfig, "train": TrainConfig}
        if not isinstance(d, dict):
            raise PtychoInputError("expected a mapping with sections model/grouping/train",
                                   path=source)
        check_keys(d, sections, section=None, source=source)
        d = migrate_legacy(d, source=source)
        kwargs = {name: (ModelConfig.from_dict(d.get(name), source=source) if name == "model"
                         else build_section(klass, d.get(name), section=name, source=source))
                  for name, klass in sections.items()}
        try:
            return cls(**kwargs)
        except ValueError as e:
            raise PtychoInputError(str(e), path=source) from None

    def with_overrides(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some fields replaced (None values ignored), e.g.
        ``grouping={"gridsize": 1}``; an older ``model={"gridsize": g}`` sets grouping's."""
        d = self.to_dict()
        given = {name: {k: v for k, v in upd.items() if v is not None}
                 for name, upd in sections.items()}
        for name, upd in migrate_legacy(given, source="overrides").items():
            if name == "model" and upd.get("kind", self.model.kind) != self.model.kind:
                # another kind: its own options' defaults, not the previous kind's options
                common = {f.name for f in fields(ModelConfig)} - {"kind", "options"}
                d[name] = {k: v for k, v in d[name].items() if k in common}
            d[name].update(upd)
        return RunConfig.from_dict(d)


def migrate_legacy(d: dict[str, Any], *, source: object = "<dict>") -> dict[str, Any]:
    """Run-config sections ``d`` with the model section's :data:`LEGACY_MODEL_KEYS` moved
    (``gridsize`` to ``grouping``; refused in one line if both differ) or dropped (``n``)."""
    from ptychopinn.models.config import drop_retired

    model = d.get("model")
    if not isinstance(model, dict):
        return d
    model = drop_retired(model, source=source)
    if not any(k in model for k in LEGACY_MODEL_KEYS):
        return {**d, "model": model}
    out = {**d, "model": model}
    if "n" in model:
        logger.info("%s: model.n ignored (the patch size comes from the data)", source)
        del model["n"]
    if "gridsize" in model:
        gs = model.pop("gridsize")
        grouping = d.get("grouping")
        grouping = dict(grouping) if isinstance(grouping, dict) else {}
        if "gridsize" in grouping and grouping["gridsize"] != gs:
            raise PtychoInputError(f"model.gridsize ({gs}) and grouping.gridsize "
                                   f"({grouping['gridsize']}) differ; gridsize belongs in "
                                   "grouping only", path=source, key="model.gridsize")
        grouping.setdefault("gridsize", gs)
        out["grouping"] = grouping
        logger.info("%s: model.gridsize read as grouping.gridsize", source)
    return out


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a YAML run config (typed: see :func:`ptychopinn.schema.build_section`)."""
    return RunConfig.from_dict(read_yaml(path, what="config file") or {}, source=str(path))


def save_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write exactly what ran as YAML (atomic)."""
    from ptychopinn.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


__all__ = ["LEGACY_MODEL_KEYS", "GroupingConfig", "ModelConfig", "RunConfig", "TrainConfig",
           "load_config", "migrate_legacy", "save_config"]
