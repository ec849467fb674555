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
        kept = {}
        for k, v in values.items():
            other = None if k in common + own else _other_kinds_option(k, klass)
            if other is None:  # ours, or unknown to every kind (check_keys refuses it)
                kept[k] = v
            # another kind's option: dropped at its default (an older flat section holds
            # every kind's options), refused otherwise
            elif v != default_of(other[0], k):
                raise PtychoInputError(f"an option of model.kind {' / '.join(other[1])}, not "
                                       f"of model.kind {kind!r} (its options: "
                                       f"{', '.join(own) or 'none'})", path=source,
                                       key=f"model.{k}")
        values = kept
        check_keys(values, common + own, section="model", source=source)
        opts = build_section(klass, {k: v for k, v in values.items() if k in own},
                             section="model", source=source)
        return build_section(cls, {k: v for k, v in values.items() if k in common},
                             section="model", source=source, fixed={"options": opts})


def _other_kinds_option(key: str, exclude: type) -> tuple[type, list[str]] | None:
    """The options class (other than ``exclude``) that holds ``key``, with the kinds that
    take it; None when no other kind has such an option."""
    for spec in REGISTRY.values():
        if spec.options is not exclude and key in {f.name for f in fields(spec.options)}:
            return spec.options, [k for k, v in REGISTRY.items() if v.options is spec.options]
    return None
