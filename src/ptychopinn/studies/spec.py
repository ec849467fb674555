"""The study specification: frozen dataclasses read from a YAML file (unknown keys rejected).

A study is a grid over photon doses × overlap views; for every cell the scene is simulated,
split spatially, thinned to the view, reconstructed by every model and compared with the ground
truth (SPEC §8). Example (all sections optional; defaults shown in :class:`StudySpec`)::

    name: mini
    seed: 0
    doses: [1.0e3, 1.0e6, 1.0e9]          # mean photons per pattern
    views:                                 # name: thinning rule (none = every position)
      dense: {}
      sparse: {min_spacing: 10.0}          # px; or {target_overlap: 0.5}
    models: [PtychoPINN, Baseline, PtyChi-LSQML]
    scene: {object: lines, probe: disk, n_positions: 600, object_size: 160, patch_size: 64}
    split: {axis: y, fraction: 0.5}
    evaluate: [test]
    training: {epochs: 20, max_minutes: 2.0}
    iterative: {epochs: 50}
    compute: {processes: true, n_workers: 2, threads_per_worker: 1, torch_threads: 1}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ptychopinn.config import GroupingConfig, TrainConfig, migrate_legacy
from ptychopinn.data.simulate import SimulationConfig
from ptychopinn.errors import PtychoInputError
from ptychopinn.schema import build_section, check_keys, coerce, default_of, read_yaml

__all__ = [
    "DEFAULT_DOSES",
    "ComputeSpec",
    "IterativeSpec",
    "ModelSpec",
    "SceneSpec",
    "SplitSpec",
    "StudySpec",
    "TrainingSpec",
    "ViewSpec",
    "dose_label",
    "load_study",
    "seed_from_string",
    "study_from_dict",
]

#: Default dose ladder: 1e3 … 1e9 mean photons per pattern.
DEFAULT_DOSES: tuple[float, ...] = tuple(10.0**k for k in range(3, 10))

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_ITERATIVE_ALGORITHMS = {"lsqml": "LSQML", "epie": "ePIE", "rpie": "rPIE", "dm": "DM"}


def seed_from_string(text: str) -> int:
    """Deterministic 32-bit seed from a string (first 4 bytes of its SHA-256).

    Unlike Python's ``hash()`` this does not change between processes.

    Examples
    --------
    >>> seed_from_string("train-d1e3-dense-PtychoPINN")
    1806101256
    """
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")


def dose_label(dose: float) -> str:
    """Short filesystem-safe label of a dose: ``1e3`` for 1000, ``2.5e4`` for 25000.

    Examples
    --------
    >>> dose_label(1e3), dose_label(25000.0), dose_label(1e9)
    ('1e3', '2.5e4', '1e9')
    """
    exp = math.floor(math.log10(dose))
    mant = dose / 10.0**exp
    mant_s = str(int(round(mant))) if abs(mant - round(mant)) < 1e-09 else f"{mant:.6g}"
    return f"{mant_s}e{exp}"


# ------------------------------------------------------------------------------- sections
@dataclass(frozen=True, kw_only=True)
class SceneSpec:
    """The simulated scene shared by every dose (SPEC §6 ``simulate``).

    ``object`` is ``lines``, ``grf`` or a path (NPZ with ``objectGuess``, or an image);
    ``probe`` is ``disk`` or a path to an NPZ with ``probeGuess`` (N, N). Relative paths are
    resolved against the study file's folder. Lengths in object pixels; ``step`` wins over
    ``overlap`` (linear overlap of the probe diameter) for the dense scan. The fields and
    their defaults are those of :class:`~ptychopinn.data.simulate.SimulationConfig`.
    """

    object: str = default_of(SimulationConfig, "object")
    probe: str = default_of(SimulationConfig, "probe")
    scan: Literal["random", "raster", "spiral"] = default_of(SimulationConfig, "scan")
    n_positions: int | None = default_of(SimulationConfig, "n_positions")
    object_size: int = default_of(SimulationConfig, "object_size")
    patch_size: int = default_of(SimulationConfig, "patch_size")
    step: float | None = default_of(SimulationConfig, "step")
    overlap: float = default_of(SimulationConfig, "overlap")
    probe_defocus: float = default_of(SimulationConfig, "probe_defocus")


@dataclass(frozen=True, kw_only=True)
class ViewSpec:
    """An overlap view: the scan thinned to a minimum centre spacing.

    Give ``min_spacing`` (pixels) or ``target_overlap`` (linear overlap fraction
    ``1 - median nearest-neighbour spacing / probe diameter``, as reported by ``inspect``), or
    neither (every position is kept).
    """

    name: str
    min_spacing: float | None = None
    target_overlap: float | None = None

    def __post_init__(self) -> None:
        if self.min_spacing is not None and self.target_overlap is not None:
            raise PtychoInputError("give min_spacing or target_overlap, not both")
        if self.min_spacing is not None and not self.min_spacing >= 0:
            raise PtychoInputError(f"min_spacing must be >= 0 px, got {self.min_spacing}")
        if self.target_overlap is not None and not 0 <= self.target_overlap < 1:
            raise PtychoInputError(f"target_overlap must be in [0, 1), got {self.target_overlap}")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One reconstruction method.

    ``kind`` is a network kind of :data:`ptychopinn.models.registry.KINDS` (``pinn`` =
    PtychoPINN, ``baseline`` = supervised with gridsize 1, ``unrolled``, ...) or ``iterative``
    (pty-chi ``algorithm``). Names are table labels (``PtychoPINN``, ``Baseline``,
    ``PtyChi-LSQML``). ``overrides_json``: JSON of extra ``model``/``grouping`` config fields of
    a network (from the YAML keys ``model:`` and ``grouping:`` of the entry; the entry's
    ``gridsize:`` is stored as ``grouping.gridsize``).
    """

    name: str
    kind: str
    algorithm: str | None = None
    overrides_json: str = "{}"

    @property
    def is_network(self) -> bool:
        """True for the trained models (every registry kind)."""
        return self.kind != "iterative"

    @property
    def gridsize(self) -> int:
        """Group side of a network: its ``grouping.gridsize`` override, else 1 for the
        supervised baseline and :class:`~ptychopinn.data.grouping.GroupingConfig`'s default
        for the other kinds (1 for iterative models, which do not group)."""
        if not self.is_network:
            return 1
        gs = json.loads(self.overrides_json).get("grouping", {}).get("gridsize")
        if gs is not None:
            return int(gs)
        from ptychopinn.models.registry import kind_spec

        return kind_spec(self.kind).fixed_gridsize or default_of(GroupingConfig, "gridsize")


@dataclass(frozen=True, kw_only=True)
class SplitSpec:
    """Spatial train/test split (``ptychopinn split``)."""

    axis: Literal["y", "x"] = "y"
    fraction: float = 0.5


@dataclass(frozen=True, kw_only=True)
class TrainingSpec:
    """Training budget per network: ``epochs`` and an optional wall-time cap ``max_minutes``.

    Defaults are :class:`~ptychopinn.config.TrainConfig`'s.
    """

    epochs: int = default_of(TrainConfig, "epochs")
    max_minutes: float | None = default_of(TrainConfig, "max_minutes")
    batch_size: int = default_of(TrainConfig, "batch_size")
    learning_rate: float = default_of(TrainConfig, "learning_rate")


@dataclass(frozen=True, kw_only=True)
class IterativeSpec:
    """pty-chi budget (epochs, minibatch size) for the iterative models.

    ``snapshot_every`` = K also keeps the object every K epochs (``snapshots.npz`` in the
    iterative job); the compare job then scores every snapshot (quality against wall time) and
    the report gives each iterative model's quality at each network's inference time.
    """

    epochs: int = 50
    batch_size: int = 32
    snapshot_every: int | None = None


@dataclass(frozen=True, kw_only=True)
class ComputeSpec:
    """The local dask cluster (ignored for ``--scheduler``, except ``torch_threads``).

    ``processes`` runs each worker in its own process (torch's global state per job);
    ``n_workers`` defaults to min(2, CPU count); ``torch_threads`` is the number of threads
    each job gives torch and pty-chi (default 1: parallelism comes from running jobs side by
    side, and oversubscribed torch threads are many times slower on a busy CPU).
    """

    processes: bool = True
    n_workers: int | None = None
    threads_per_worker: int = 1
    torch_threads: int | None = None

    def resolved(self) -> tuple[int, int]:
        """(n_workers, torch_threads) with the defaults filled in."""
        cpus = os.cpu_count() or 1
        n = self.n_workers or max(1, min(2, cpus))
        return n, self.torch_threads or 1


def _default_views() -> tuple[ViewSpec, ...]:
    return (ViewSpec(name="dense"), ViewSpec(name="sparse", target_overlap=0.4))


def _default_models() -> tuple[ModelSpec, ...]:
    from ptychopinn.models.registry import REGISTRY

    return (*(ModelSpec(name=spec.display, kind=kind) for kind, spec in REGISTRY.items()
              if spec.study),
            ModelSpec(name="PtyChi-LSQML", kind="iterative", algorithm="lsqml"))


@dataclass(frozen=True, kw_only=True)
class StudySpec:
    """A dose × overlap-view study (SPEC §8). Build with :func:`load_study`.

    ``train_view``: None trains every network on each view's own (thinned) train half; a view
    name trains one network per dose and model on that view's train half (e.g. ``dense``) and
    reconstructs every view's test half with it.
    """

    name: str = "study"
    seed: int = 0
    doses: tuple[float, ...] = DEFAULT_DOSES
    views: tuple[ViewSpec, ...] = field(default_factory=_default_views)
    models: tuple[ModelSpec, ...] = field(default_factory=_default_models)
    scene: SceneSpec = field(default_factory=SceneSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    evaluate: tuple[Literal["train", "test"], ...] = ("test",)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    iterative: IterativeSpec = field(default_factory=IterativeSpec)
    compute: ComputeSpec = field(default_factory=ComputeSpec)
    train_view: str | None = None
    source: str = "<memory>"

    @property
    def reference_model(self) -> ModelSpec | None:
        """The model the deltas are taken from (first ``pinn`` model), if any."""
        return next((m for m in self.models if m.kind == "pinn"), None)

    def to_dict(self) -> dict[str, Any]:
        """YAML-able dict that :func:`study_from_dict` reads back (``source`` left out)."""
        d = asdict(self)
        d.pop("source")
        d["doses"] = [float(x) for x in self.doses]
        d["views"] = {v.name: {k: x for k, x in asdict(v).items() if k != "name" and x is not None}
                      for v in self.views}
        d["models"] = [{**{k: x for k, x in asdict(m).items()
                           if x is not None and k != "overrides_json"},
                        **json.loads(m.overrides_json)} for m in self.models]
        d["evaluate"] = list(self.evaluate)
        return d


# --------------------------------------------------------------------------------- parsing
class _Reader:
    """Validates one YAML document, raising one-line errors naming the file and key."""

    def __init__(self, source: str, base_dir: Path | None):
        self.source = source
        self.base_dir = base_dir

    def fail(self, key: str, message: str) -> PtychoInputError:
        return PtychoInputError(message, path=self.source, key=key)

    def mapping(self, value: Any, key: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        return value

    def section(self, klass: type, value: Any, key: str, **fixed: Any) -> Any:
        return build_section(klass, value, section=key, source=self.source, fixed=fixed)

    def number(self, value: Any, key: str) -> float:
        return coerce(float, value, key=key, source=self.source)

    def name(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not _NAME_RE.match(value):
            raise self.fail(key, f"names use letters, digits and _.+- only, got {value!r}")
        return value

    def path_or(self, value: str, builtin: tuple[str, ...], key: str) -> str:
        if value in builtin:
            return value
        p = Path(value).expanduser()
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        if not p.is_file():
            raise self.fail(key, f"expected {' | '.join(builtin)} or an existing file, "
                                 f"got {value!r}")
        return str(p.resolve())

    # ------------------------------------------------------------------------ sections
    def doses(self, value: Any) -> tuple[float, ...]:
        if value is None:
            return DEFAULT_DOSES
        if not isinstance(value, list) or not value:
            raise self.fail("doses", "expected a non-empty list of photons per pattern")
        out = []
        for i, v in enumerate(value):
            x = self.number(v, f"doses[{i}]")
            if not x > 0:
                raise self.fail(f"doses[{i}]", f"dose must be > 0 photons per pattern, got {v!r}")
            if any(dose_label(x) == dose_label(y) for y in out):
                raise self.fail(f"doses[{i}]", f"duplicate dose {v!r}")
            out.append(x)
        return tuple(out)

    def views(self, value: Any) -> tuple[ViewSpec, ...]:
        if value is None:
            return _default_views()
        views = self.mapping(value, "views")
        if not views:
            raise self.fail("views", "expected at least one view")
        return tuple(self.section(ViewSpec, v, f"views.{self.name(k, 'views')}", name=k)
                     for k, v in views.items())

    def models(self, value: Any) -> tuple[ModelSpec, ...]:
        if value is None:
            return _default_models()
        if not isinstance(value, list) or not value:
            raise self.fail("models", "expected a non-empty list, e.g. [PtychoPINN, Baseline]")
        out: list[ModelSpec] = []
        for i, item in enumerate(value):
            key = f"models[{i}]"
            entry = {"name": item} if isinstance(item, str) else self.mapping(item, key)
            check_keys(entry, ("name", "kind", "gridsize", "algorithm", "model", "grouping"),
                       section=key,
                       source=self.source)
            name = self.name(entry.get("name"), f"{key}.name")
            out.append(self.model(name, entry, key))
            if [m.name for m in out].count(name) > 1:
                raise self.fail(f"{key}.name", f"duplicate model {name!r}")
        return tuple(out)

    def model(self, name: str, entry: dict, key: str) -> ModelSpec:
        low = name.lower()
        kind = entry.get("kind")
        algo = entry.get("algorithm")
        from ptychopinn.models.registry import KINDS, REGISTRY

        if kind is None:  # from the name: a kind's display name or alias, longest first
            names = sorted(((n.lower(), k) for k, spec in REGISTRY.items()
                            for n in (spec.display, *spec.aliases)), key=lambda t: -len(t[0]))
            kind = next((k for n, k in names if low.startswith(n)), None)
            if low.startswith("ptychi-"):
                kind, algo = "iterative", algo or low.removeprefix("ptychi-")
            elif kind is None:
                raise self.fail(f"{key}.kind", f"model {name!r} needs kind: "
                                               f"{' | '.join(sorted(KINDS))} | iterative")

        kinds = (*sorted(KINDS), "iterative")
        if kind not in kinds:
            raise self.fail(f"{key}.kind", f"expected {' | '.join(kinds)}, got {kind!r}")
        gs = entry.get("gridsize")
        if gs is not None:
            gs = coerce(int, gs, key=f"{key}.gridsize", source=self.source)
            if gs < 1:
                raise self.fail(f"{key}.gridsize", f"expected an integer >= 1, got {gs!r}")
        if kind == "iterative":
            algo = algo or "lsqml"
            if not isinstance(algo, str) or algo.lower() not in _ITERATIVE_ALGORITHMS:
                raise self.fail(f"{key}.algorithm", f"expected one of "
                                f"{', '.join(_ITERATIVE_ALGORITHMS)}, got {algo!r}")
            return ModelSpec(name=name, kind="iterative", algorithm=algo.lower())
        if algo is not None:
            raise self.fail(f"{key}.algorithm", "only iterative models take an algorithm")
        over = {}
        for sec in ("model", "grouping"):
            if entry.get(sec) is not None:
                over[sec] = self.mapping(entry[sec], f"{key}.{sec}")
        where = f"{self.source}: {key}"
        try:  # older entries' model.gridsize / model.n (see config.migrate_legacy)
            over = migrate_legacy(over, source=where)
        except PtychoInputError as e:
            raise PtychoInputError(str(e)) from None
        if gs is not None:  # the entry's gridsize: shorthand for grouping.gridsize
            grouping = dict(over.get("grouping") or {})
            if grouping.setdefault("gridsize", gs) != gs:
                raise self.fail(f"{key}.gridsize", f"{gs} differs from {key}.grouping.gridsize "
                                                   f"({grouping['gridsize']})")
            over["grouping"] = grouping
        model = ModelSpec(name=name, kind=kind, overrides_json=json.dumps(over, sort_keys=True))
        fixed = REGISTRY[kind].fixed_gridsize if kind in REGISTRY else None
        if fixed is not None and model.gridsize != fixed:
            raise self.fail(f"{key}.gridsize", f"model.kind {kind!r} uses gridsize {fixed}")
        if over:
            from ptychopinn.config import RunConfig

            try:  # the same strict loader as run configs: unknown keys, bad types
                RunConfig.from_dict({**over, "model": {**over.get("model", {}), "kind": kind},
                                     "grouping": {**over.get("grouping", {}),
                                                  "gridsize": model.gridsize}},
                                    source=where)
            except PtychoInputError as e:
                raise PtychoInputError(str(e)) from None
        return model

    def evaluate(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ("test",)
        if not isinstance(value, list) or not value or any(v not in ("train", "test")
                                                            for v in value):
            raise self.fail("evaluate", f"expected a list of train/test, got {value!r}")
        return tuple(dict.fromkeys(value))


_TOP_KEYS = ("name", "seed", "doses", "views", "models", "scene", "split", "evaluate",
             "training", "iterative", "compute", "train_view")


def study_from_dict(d: Any, *, source: str = "<dict>",
                    base_dir: str | os.PathLike | None = None) -> StudySpec:
    """Build a :class:`StudySpec` from a parsed YAML mapping.

    Raises
    ------
    PtychoInputError
        One line naming ``source`` and the offending key (unknown key, bad value).
    """
    r = _Reader(source, None if base_dir is None else Path(base_dir))
    d = r.mapping(d, "<top level>")
    check_keys(d, _TOP_KEYS, section=None, source=source)
    name = r.name(d.get("name", "study"), "name")
    seed = coerce(int, d.get("seed", 0), key="seed", source=source)
    if seed < 0:
        raise r.fail("seed", f"expected an integer >= 0, got {seed!r}")
    scene = r.section(SceneSpec, d.get("scene"), "scene")
    scene = SceneSpec(**{**asdict(scene),
                         "object": r.path_or(scene.object, ("lines", "grf"), "scene.object"),
                         "probe": r.path_or(scene.probe, ("disk",), "scene.probe")})
    _check_scene(r, scene)
    split = r.section(SplitSpec, d.get("split"), "split")
    if not 0 < split.fraction < 1:
        raise r.fail("split.fraction", f"must be in (0, 1), got {split.fraction}")
    training = r.section(TrainingSpec, d.get("training"), "training")
    if training.epochs < 1 or training.batch_size < 1:
        raise r.fail("training", "epochs and batch_size must be >= 1")
    if training.max_minutes is not None and not training.max_minutes > 0:
        raise r.fail("training.max_minutes", f"must be > 0, got {training.max_minutes}")
    iterative = r.section(IterativeSpec, d.get("iterative"), "iterative")
    if iterative.epochs < 1 or iterative.batch_size < 1:
        raise r.fail("iterative", "epochs and batch_size must be >= 1")
    every = iterative.snapshot_every
    if every is not None and not 1 <= every <= iterative.epochs:
        raise r.fail("iterative.snapshot_every", f"must be an integer from 1 to epochs "
                                                 f"({iterative.epochs}), got {every}")
    compute = r.section(ComputeSpec, d.get("compute"), "compute")
    for k in ("n_workers", "threads_per_worker", "torch_threads"):
        v = getattr(compute, k)
        if v is not None and v < 1:
            raise r.fail(f"compute.{k}", f"must be >= 1, got {v}")
    views = r.views(d.get("views"))
    train_view = d.get("train_view")
    if train_view is not None and train_view not in [v.name for v in views]:
        raise r.fail("train_view", f"expected one of the views "
                                   f"({', '.join(v.name for v in views)}), got {train_view!r}")
    return StudySpec(name=name, seed=seed, doses=r.doses(d.get("doses")),
                     views=views, models=r.models(d.get("models")),
                     scene=scene, split=split, evaluate=r.evaluate(d.get("evaluate")),
                     training=training, iterative=iterative, compute=compute,
                     train_view=train_view, source=source)


def _check_scene(r: _Reader, s: SceneSpec) -> None:
    if s.patch_size < 16 or s.patch_size & (s.patch_size - 1):
        raise r.fail("scene.patch_size", f"must be a power of two >= 16, got {s.patch_size}")
    if s.n_positions is not None and s.n_positions < 8:
        raise r.fail("scene.n_positions", f"must be >= 8, got {s.n_positions}")
    if s.object_size < s.patch_size + 2:
        raise r.fail("scene.object_size", f"must exceed patch_size + 2, got {s.object_size}")
    if not 0 <= s.overlap < 1:
        raise r.fail("scene.overlap", f"must be in [0, 1), got {s.overlap}")
    if s.step is not None and not s.step > 0:
        raise r.fail("scene.step", f"must be > 0 px, got {s.step}")


def load_study(path: str | os.PathLike) -> StudySpec:
    """Read a study YAML file; unknown keys and bad values give a one-line error.

    Relative ``scene.object`` / ``scene.probe`` paths are resolved against the file's folder.
    """
    path = Path(path)
    d = read_yaml(path, what="study file")
    return study_from_dict(d, source=str(path), base_dir=path.parent)
