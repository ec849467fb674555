"""Model bundle: ``model.zip`` = ``manifest.json`` + ``weights.safetensors``. No pickle.

The archive (member names, format name and version, weights checksum) is owned by
:mod:`ptychopinn.io.bundle`, whose reader refuses anything else with one line; this module
fills the manifest's model fields and builds the network from them.

The manifest records the patch size (``patch_size``, from the training data) and the group
side (``grouping_config.gridsize``) the network was built for; bundles written before these
were recorded carry them as ``model_config.n`` and ``model_config.gridsize`` and still load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ptychopinn import __version__
from ptychopinn.config import LEGACY_MODEL_KEYS
from ptychopinn.errors import PtychoInputError
from ptychopinn.io.bundle import (
    FORMAT,
    FORMAT_VERSION,
    read_bundle_archive,
    resolve_bundle_path,
    write_bundle_archive,
)
from ptychopinn.models.config import ModelConfig, drop_retired
from ptychopinn.models.pinn import PINN

__all__ = ["FORMAT", "FORMAT_VERSION", "GENERAL", "GENERAL_SIZES", "Bundle", "bundle_for",
           "general_path",
           "load_bundle", "resolve_bundle_path", "save_bundle"]

#: ``--model general`` / ``load_bundle("general")``: the general model shipped with the package.
GENERAL = "general"
#: Patch sizes the shipped general model serves, and its file in ``ptychopinn.models.general``.
#: Its weights act on the object canvas (``unrolled``), so the 64-px model also serves 128 px.
GENERAL_SIZES: dict[int, str] = {64: "general_n64.zip", 128: "general_n64.zip"}


@dataclass(frozen=True)
class Bundle:
    """A loaded model with its manifest (normalisation constants, grouping, provenance)."""

    model: PINN
    manifest: dict[str, Any]

    @property
    def gridsize(self) -> int:
        """Group side g (C = g²) the network was trained with."""
        return self.model.gridsize


def save_bundle(model: PINN, path: str | os.PathLike, *, extra: dict[str, Any] | None = None
                ) -> Path:
    """Write ``model`` (config, patch size, group side, constants, weights) as a bundle zip,
    atomically. ``extra`` manifest entries are kept; its ``grouping_config`` (the run's
    grouping section) must have the model's gridsize."""
    path = Path(path)
    extra = dict(extra or {})
    grouping = dict(extra.pop("grouping_config", None) or {})
    if grouping.setdefault("gridsize", model.gridsize) != model.gridsize:
        raise ValueError(f"grouping_config.gridsize ({grouping['gridsize']}) differs from the "
                         f"model's ({model.gridsize})")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    blob = st_save(state)
    fields = {
        "package_version": __version__,
        "model_config": model.cfg.to_dict(),
        "patch_size": model.n,
        "grouping_config": grouping,
        "normalisation": {
            "input_scale": float(model.input_scale),
            "intensity_scale": float(model.physics.scale.detach()),
        },
        "probe_shape": list(model.physics.probe.shape),
    }
    return write_bundle_archive(path, fields, blob, extra=extra)


#: Manifest entries :func:`save_bundle` writes itself (the rest is provenance, kept by
#: :func:`resave_bundle`).
BUNDLE_OWN_KEYS = frozenset({"format", "format_version", "package_version", "model_config",
                             "patch_size", "normalisation", "probe_shape", "weights_sha256"})


def resave_bundle(bundle: Bundle, path: str | os.PathLike) -> Path:
    """Write a loaded (perhaps changed) ``bundle`` to ``path`` atomically, keeping its
    manifest's provenance (training data, grouping, normalisation constants, ...)."""
    extra = {k: v for k, v in bundle.manifest.items() if k not in BUNDLE_OWN_KEYS}
    return save_bundle(bundle.model, path, extra=extra)


@dataclass(frozen=True)
class ShippedModel:
    """The general model shipped with the package, whatever the working directory holds (what
    ``infer`` uses when no ``--model`` is given; the string ``"general"`` means it too unless
    a file or folder of that name exists)."""


#: The marker for the shipped general model (:class:`ShippedModel`).
SHIPPED = ShippedModel()


def is_general(path: object) -> bool:
    """Whether ``path`` names the shipped general model (:data:`SHIPPED`, or ``"general"``
    when no such path exists)."""
    if isinstance(path, ShippedModel):
        return True
    return isinstance(path, str | Path) and str(path) == GENERAL and not Path(path).exists()


def general_path(patch_size: int = 64) -> Path:
    """The shipped general model's bundle for ``patch_size`` px patterns; refused in one line
    (naming the sizes that exist) for other sizes or when the package holds no weights."""
    from importlib.resources import files

    if patch_size not in GENERAL_SIZES:
        sizes = ", ".join(f"{k}x{k}" for k in sorted(GENERAL_SIZES))
        raise PtychoInputError(f"no general model ships for {patch_size}x{patch_size} patterns "
                               f"(sizes: {sizes}); train one (ptychopinn train --data ...) and "
                               "pass --model RUN_DIR")
    path = Path(str(files("ptychopinn.models.general").joinpath(GENERAL_SIZES[patch_size])))
    if not path.is_file():
        raise PtychoInputError("the general model's weights are missing from this install "
                               "(produce them with scripts/train_general.py)", path=path)
    return path


def bundle_for(model: Bundle | str | os.PathLike, patch_size: int) -> Bundle:
    """``model`` as a :class:`Bundle`: loaded from a run directory or zip, or the shipped
    general model for ``patch_size`` px patterns when ``model`` is ``"general"``."""
    if isinstance(model, Bundle):
        return model
    return load_bundle(model, patch_size=patch_size if is_general(model) else None)


def load_bundle(path: str | os.PathLike, *, map_location: str | torch.device = "cpu",
                patch_size: int | None = None) -> Bundle:
    """Load and verify a bundle written by :func:`save_bundle`.

    ``path`` ``"general"``: the general model shipped with the package (:func:`general_path`),
    for ``patch_size`` px patterns (default 64). A network whose weights act on the canvas is
    rebuilt for another patch size than it was saved with (its stored probe, of the old size,
    is dropped: such a model takes each scan's probe).
    """
    if is_general(path):
        patch_size = patch_size or 64
        path = general_path(patch_size)
    manifest, blob, path = read_bundle_archive(path)
    try:
        n, gridsize, cfg = _shape_and_config(manifest)
        state = st_load(blob)
        if patch_size is not None and patch_size != n:
            from ptychopinn.models.registry import kind_spec

            if not kind_spec(cfg.kind).canvas:
                raise PtychoInputError(f"the model expects {n}x{n} patterns, not "
                                       f"{patch_size}x{patch_size}", path=path)
            n = patch_size
            state["physics.probe"] = torch.zeros(n, n, dtype=torch.complex64)
            manifest = {**manifest, "patch_size": n, "resized_from": manifest.get("patch_size")}
        model = PINN(cfg, torch.zeros(n, n, dtype=torch.complex64), gridsize=gridsize,
                     input_scale=1.0, intensity_scale=1.0)
        model.load_state_dict(state, strict=True)
    except PtychoInputError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        msg = " ".join(str(e).split())[:300]
        raise PtychoInputError(f"bundle content does not match its manifest ({msg})",
                               path=path) from None
    model.to(map_location).eval()
    return Bundle(model=model, manifest=manifest)


def _shape_and_config(manifest: dict[str, Any]) -> tuple[int, int, ModelConfig]:
    """Patch size, group side and model config of a manifest, old (``model_config.n`` and
    ``.gridsize``) or new (``patch_size``, ``grouping_config.gridsize``)."""
    mc = drop_retired(manifest["model_config"], source="bundle manifest")
    legacy = {k: mc.pop(k) for k in LEGACY_MODEL_KEYS if k in mc}
    n = manifest.get("patch_size", legacy.get("n"))
    gridsize = (manifest.get("grouping_config") or {}).get("gridsize", legacy.get("gridsize"))
    if n is None or gridsize is None:
        raise KeyError("patch_size" if n is None else "grouping_config.gridsize")
    return int(n), int(gridsize), ModelConfig.from_dict(mc, source="bundle manifest")
