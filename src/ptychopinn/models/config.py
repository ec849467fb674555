"""The network options of a run (``model`` section of a run config); torch-free, so reading a
config does not import torch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from ptychopinn.errors import PtychoInputError
from ptychopinn.models.registry import REGISTRY, kind_spec
from ptychopinn.schema import build_section, check_keys, default_of

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

    ``kind`` one of :data:`ptychopinn.models.registry.KINDS`; ``learn_scale`` learns the
    intensity scale s (model amplitude -> sqrt(counts)); ``loss`` the physics loss (Poisson
    NLL in counts or amplitude MAE). ``options``: the kind's own options
    (:attr:`~ptychopinn.models.registry.KindSpec.options`, e.g.
    :class:`~ptychopinn.models.options.UnrolledOptions`; None: its defaults). In YAML and
    manifests they sit flat beside ``kind`` (:meth:`to_dict`, :meth:`from_dict`).
    """

    kind: str = "pinn"
    learn_scale: bool = True
    loss: Literal["poisson", "mae"] = "poisson"
    options: Any = None

    def __post_init__(self) -> None:
        klass = kind_spec(self.kind).options  # refuses an unknown kind
        if self.loss not in ("poisson", "mae"):
            raise PtychoInputError(f"loss must be 'poisson' or 'mae', got {self.loss!r}")
        if self.options is None:
            object.__setattr__(self, "options", klass())
        elif type(self.options) is not klass:
            raise PtychoInputError(f"model.kind {self.kind!r} takes {klass.__name__}, not "
                                   f"{type(self.options).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """The flat ``model`` section: ``kind``, ``learn_scale``, ``loss`` and the kind's
        options."""
        return {"kind": self.kind, "learn_scale": self.learn_scale, "loss": self.loss,
                **asdict(self.options)}

    @classmethod
    def from_dict(cls, values: Any, *, source: object = "<dict>") -> ModelConfig:
        """Build from a flat ``model`` section, values coerced to the field types.

        A key no kind knows is refused in one line naming the keys ``kind`` takes; an option of
        another kind is refused too, unless it has that kind's default value (configs and
        bundles written before options were per kind list every kind's options: dropped).
        """
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise PtychoInputError(f"expected a mapping, got {type(values).__name__}",
                                   path=source, key="model")
        kind = values.get("kind", default_of(cls, "kind"))
        if not isinstance(kind, str):
            raise PtychoInputError(f"expected a string, got {kind!r}", path=source,
                                   key="model.kind")
        try:
            klass = kind_spec(kind).options
        except PtychoInputError as e:
            raise PtychoInputError(str(e), path=source, key="model.kind") from None
        common = [f.name for f in fields(cls) if f.name != "options"]
        own = [f.name for f in fields(klass)]
        values = {k: v for k, v in values.items() if k in common + own
                  or not _default_elsewhere(k, v, klass)}
        for k in values:
            owner = _owner(k, klass)
            if k not in common + own and owner is not None:
                raise PtychoInputError(f"an option of {owner}, not of model.kind "
                                       f"{kind!r} (its options: {', '.join(own) or 'none'})",
                                       path=source, key=f"model.{k}")
        check_keys(values, common + own, section="model", source=source)
        opts = build_section(klass, {k: v for k, v in values.items() if k in own},
                             section="model", source=source)
        return build_section(cls, {k: v for k, v in values.items() if k in common},
                             section="model", source=source, fixed={"options": opts})


def _option_classes() -> dict[type, list[str]]:
    """Options class -> the kinds that take it."""
    out: dict[type, list[str]] = {}
    for kind, spec in REGISTRY.items():
        out.setdefault(spec.options, []).append(kind)
    return out


def _owner(key: str, exclude: type) -> str | None:
    """Words naming the kinds whose options (other than ``exclude``) hold ``key``."""
    for klass, kinds in _option_classes().items():
        if klass is not exclude and key in {f.name for f in fields(klass)}:
            return "model.kind " + " / ".join(kinds)
    return None


def _default_elsewhere(key: str, value: Any, exclude: type) -> bool:
    """True when ``key`` is an option of another kind's class and ``value`` its default."""
    for klass in _option_classes():
        if klass is not exclude and key in {f.name for f in fields(klass)}:
            return value == default_of(klass, key)
    return False
