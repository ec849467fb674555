"""Scan conditioning: a bundle's probe and count scale set from the scan it reconstructs.

A network whose physics steps take the probe as an input (``unrolled``) can serve scans with
other probes, and every network can serve scans at other doses, if inference feeds it the
scan's own probe and the scan's own count scale instead of the training data's. Both are
set here, on a copy of the model, once per scan:

* probe: the scan's ``probeGuess`` normalised as in training (total power (N/2)²), the
  bundle's own, or one read from a file (``probe="scan" | "bundle" | PATH.npz``);
* count scale: the intensity scale ``s`` (model amplitude -> sqrt(counts)) and the input
  scale are rescaled by sqrt(mean counts of the scan / the reference mean counts), the
  reference being ``((N/2) / input_scale)²`` — the training data's mean counts for a model
  trained on one scan, (N/2)² for a model trained on a corpus of doses. Conditioning the
  conditioned model on the same scan changes nothing.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.models.registry import kind_spec
from ptychopinn.physics.probe import normalize_probe, probe_error
from ptychopinn.training.bundle import Bundle

logger = logging.getLogger(__name__)

__all__ = ["PROBE_CHOICES", "condition_on_scan", "default_probe_choice", "reference_counts"]

#: ``infer --probe`` keywords (anything else is a path to an NPZ with ``probeGuess``).
PROBE_CHOICES = ("scan", "bundle")
#: Normalised probe distance above which the faithful CNN warns that its weights embed
#: another probe than the scan's.
PROBE_WARN = 0.05


def reference_counts(bundle: Bundle) -> float:
    """Mean total counts per pattern the model's scales refer to: ((N/2) / input_scale)²."""
    n = bundle.model.n
    return float(((n / 2) / float(bundle.model.input_scale)) ** 2)


def default_probe_choice(bundle: Bundle) -> str:
    """``"bundle"`` when the bundle's probe was refined on a scan (``probe_refinement`` in its
    manifest), else ``"scan"``."""
    return "bundle" if bundle.manifest.get("probe_refinement") else "scan"


def condition_on_scan(bundle: Bundle, data: PtychoData, probe: str | Path | None = None
                      ) -> tuple[Bundle, dict]:
    """A copy of ``bundle`` whose probe and count scale are ``data``'s.

    ``probe``: ``"scan"`` (``data.probe``), ``"bundle"`` (keep the bundle's) or a path to an
    NPZ holding ``probeGuess``; None: :func:`default_probe_choice`. Networks with the physics
    inside take the chosen probe as an input; the faithful CNN's weights embed its training
    probe, so a scan probe that differs from it by more than 5 % (normalised distance,
    :func:`~ptychopinn.physics.probe.probe_error`) is reported in one warning line (the
    probe still serves the physics loss of an adaptation).

    Returns the conditioned bundle and a JSON-able description (``probe_source``,
    ``probe_error`` against the bundle's probe, ``count_scale`` = sqrt(scan / reference
    mean counts), ``mean_counts``).
    """
    model = bundle.model
    n = model.n
    choice = default_probe_choice(bundle) if probe is None else probe
    old_probe = model.physics.probe.detach().cpu().numpy()
    if isinstance(choice, str) and choice == "bundle":
        if not np.any(old_probe):
            raise PtychoInputError(f"this model holds no probe for {n}x{n} patterns; use the "
                                   "scan's (--probe scan) or a file (--probe PATH.npz)")
        new_probe = old_probe.astype(np.complex64)
    elif isinstance(choice, str) and choice == "scan":
        new_probe = normalize_probe(np.asarray(data.probe))[0]
    else:
        from ptychopinn.data.simulate import load_probe

        new_probe = normalize_probe(load_probe(Path(choice), n))[0]
        choice = str(choice)
    mean_counts = data.mean_total_counts()
    if not (math.isfinite(mean_counts) and mean_counts > 0):
        raise PtychoInputError("all patterns are empty (zero counts)", path=data.source)
    factor = math.sqrt(mean_counts / reference_counts(bundle))
    err = probe_error(new_probe, old_probe) if np.any(old_probe) else 1.0
    spec = kind_spec(model.cfg.kind)
    if not spec.canvas and not spec.supervised and err > PROBE_WARN:
        logger.warning("the scan's probe differs from the one model.kind %r was trained with "
                       "(probe_error %.3f); its weights embed the training probe — adapt "
                       "(--adapt-minutes) or use an unrolled model", model.cfg.kind, err)
    new = copy.deepcopy(model)
    with torch.no_grad():
        dev = new.physics.probe.device
        if not spec.supervised:
            new.physics.probe.copy_(torch.from_numpy(new_probe).to(dev))
        new.input_scale.fill_(float(model.input_scale) / factor)
        new.physics.log_scale.add_(math.log(factor))
    man = dict(bundle.manifest)
    consts = dict(man.get("normalisation_constants") or {})
    consts.update(mean_total_counts=mean_counts, input_scale=float(new.input_scale))
    man["normalisation_constants"] = consts
    info = {"probe_source": choice, "probe_error": float(err), "count_scale": factor,
            "mean_counts": mean_counts}
    man["conditioned_on"] = {**info, "data": str(data.source)}
    return replace(bundle, model=new, manifest=man), info
