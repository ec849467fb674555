"""Study jobs: the dependency graph, one folder per job, atomic completion markers.

Every job writes into ``OUT/jobs/<job id>/`` and marks completion last, atomically, with
``done.json``::

    {"job": id, "kind": ..., "params": {...}, "params_digest": sha256,
     "inputs": {dependency id: its digest}, "outputs": {relative path: {"sha256", "size"}},
     "digest": sha256 of the outputs, "wall_time_s": ..., "finished": ISO time, ...}

A job counts as finished when its ``done.json`` exists, its parameters are unchanged, its
recorded inputs are the digests of its (finished) dependencies and every output still has the
recorded size and SHA-256. A job that starts removes its ``done.json`` first, then anything else
left in its folder (a killed run leaves at most unfinished folders behind).

Job kinds and their files:

============  =====================================  ==========================================
kind          depends on                             writes
============  =====================================  ==========================================
simulate      —                                      data.npz (the full scan, one dose; labels
                                                     are cut from objectGuess when needed)
split         simulate                               train.npz, test.npz
view          split                                  train.npz, test.npz, overlap.json
train         view                                   model.zip, summary.json, config.yaml, ...
infer         train, view                            reconstruction.npz, info.json, PNGs
iterative     view                                   reconstruction.npz, info.json, PNGs,
                                                     loss_history.csv, summary.json
compare       view, every infer/iterative of a cell  metrics.csv, metrics.json, comparison.png
============  =====================================  ==========================================
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ptychopinn.data.inspect import sha256_file
from ptychopinn.studies.spec import StudySpec, dose_label, seed_from_string

logger = logging.getLogger(__name__)

__all__ = [
    "DONE",
    "EVENT_TOPIC",
    "JOB_OUTPUTS",
    "Job",
    "build_jobs",
    "execute_job",
    "file_record",
    "is_finished",
    "job_dir",
    "read_done",
]

#: Completion marker written last in every job folder.
DONE = "done.json"
#: dask event topic on which workers announce that a job started running.
EVENT_TOPIC = "ptychopinn-study"
#: Files every finished job of a kind must hold (besides ``done.json``).
JOB_OUTPUTS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "simulate": ("data.npz",),
    "split": ("train.npz", "test.npz"),
    "view": ("train.npz", "test.npz", "overlap.json"),
    "train": ("model.zip", "summary.json"),
    "infer": ("reconstruction.npz", "info.json"),
    "iterative": ("reconstruction.npz", "info.json"),
    "compare": ("metrics.csv", "metrics.json"),
})


@dataclass(frozen=True, kw_only=True)
class Job:
    """One node of the study graph.

    ``params`` (JSON-able) define the job's result completely; its digest decides whether an
    existing ``done.json`` is still valid. ``deps`` are job ids.
    """

    id: str
    kind: str
    deps: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    dose: float | None = None
    view: str | None = None
    model: str | None = None
    split: str | None = None

    @property
    def params_digest(self) -> str:
        """SHA-256 of the canonical JSON of ``params``."""
        return _sha_text(json.dumps(self.params, sort_keys=True, default=str))


def _sha_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_record(path: Path) -> dict[str, Any]:
    """``{"sha256": hex digest, "size": bytes}`` of a file."""
    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def job_dir(out: str | Path, job_id: str) -> Path:
    """Folder of a job: ``OUT/jobs/<job id>``."""
    return Path(out) / "jobs" / job_id


# ---------------------------------------------------------------------------------- graph
def build_jobs(spec: StudySpec) -> list[Job]:
    """The study's jobs in a topological order (dependencies first)."""
    scene = spec.scene
    scene_seed = seed_from_string(f"{spec.seed}/scene")
    probe_sha = None if scene.probe == "disk" else sha256_file(Path(scene.probe))
    object_sha = None if scene.object in ("lines", "grf") else sha256_file(Path(scene.object))
    jobs: list[Job] = []
    # with a train_view its view comes first: the other views' inferences need its trainings
    views = sorted(spec.views, key=lambda v: v.name != spec.train_view)
    for dose in spec.doses:
        d = dose_label(dose)
        sim_id = f"simulate-d{d}"
        sim = {**asdict(scene), "photons": float(dose), "seed": scene_seed,
               "noise_seed": seed_from_string(f"{spec.seed}/{sim_id}"),
               "probe_sha256": probe_sha, "object_sha256": object_sha}
        jobs.append(Job(id=sim_id, kind="simulate", params=sim, dose=dose))
        split_id = f"split-d{d}"
        jobs.append(Job(id=split_id, kind="split", deps=(sim_id,), params=asdict(spec.split),
                        dose=dose))
        for view in views:
            view_id = f"view-d{d}-{view.name}"
            # Same thinning order at every dose: the views differ only in photons.
            vparams = {**asdict(view), "seed": seed_from_string(f"{spec.seed}/view/{view.name}")}
            jobs.append(Job(id=view_id, kind="view", deps=(split_id,), params=vparams,
                            dose=dose, view=view.name))
            recon_ids: dict[str, dict[str, str]] = {s: {} for s in spec.evaluate}
            for model in spec.models:
                cell = f"d{d}-{view.name}-{model.name}"
                train_id = f"train-d{d}-{spec.train_view or view.name}-{model.name}"
                if model.is_network and spec.train_view in (None, view.name):
                    jobs.append(Job(id=train_id, kind="train", deps=(view_id,),
                                    params=_train_params(spec, model, train_id), dose=dose,
                                    view=view.name, model=model.name))
                for s in spec.evaluate:
                    if model.is_network:
                        rid = f"infer-{cell}-{s}"
                        jobs.append(Job(id=rid, kind="infer", deps=(train_id, view_id),
                                        params={"split": s, "batch_size": 64}, dose=dose,
                                        view=view.name, model=model.name, split=s))
                    else:
                        rid = f"iterative-{cell}-{s}"
                        it = {"split": s, "algorithm": model.algorithm,
                              "epochs": spec.iterative.epochs,
                              "batch_size": spec.iterative.batch_size,
                              "seed": seed_from_string(f"{spec.seed}/{rid}")}
                        if spec.iterative.snapshot_every is not None:
                            it["snapshot_every"] = spec.iterative.snapshot_every
                        jobs.append(Job(id=rid, kind="iterative", deps=(view_id,), params=it,
                                        dose=dose, view=view.name, model=model.name, split=s))
                    recon_ids[s][model.name] = rid
            for s in spec.evaluate:
                cid = f"compare-d{d}-{view.name}-{s}"
                cparams: dict[str, Any] = {"split": s, "recons": recon_ids[s], "phase": "mean"}
                if spec.iterative.snapshot_every is not None:
                    cparams["trajectories"] = True
                jobs.append(Job(id=cid, kind="compare", deps=(view_id, *recon_ids[s].values()),
                                params=cparams, dose=dose, view=view.name, split=s))
    return jobs


def _train_params(spec: StudySpec, model: Any, job_id: str) -> dict[str, Any]:
    t = spec.training
    over = json.loads(getattr(model, "overrides_json", "{}"))
    # the network's group side in the grouping section only; its patch size is the data's
    return {"model": {**over.get("model", {}), "kind": model.kind},
            "grouping": {**over.get("grouping", {}), "gridsize": model.gridsize},
            "train": {"epochs": t.epochs, "max_minutes": t.max_minutes,
                      "batch_size": t.batch_size, "learning_rate": t.learning_rate,
                      "seed": seed_from_string(f"{spec.seed}/{job_id}"),
                      "show_progress": False}}


# ---------------------------------------------------------------------------- done markers
def read_done(out: str | Path, job_id: str) -> dict[str, Any] | None:
    """The parsed ``done.json`` of a job, or None when missing or unreadable."""
    path = job_dir(out, job_id) / DONE
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def outputs_problem(out: str | Path, rec: Mapping[str, Any]) -> str | None:
    """First output of a done record that is missing or changed (size or SHA-256), else None."""
    base = job_dir(out, rec["job"])
    for rel, meta in rec.get("outputs", {}).items():
        p = base / rel
        if not p.is_file():
            return f"{rel} is missing"
        if p.stat().st_size != meta.get("size"):
            return f"{rel} has {p.stat().st_size} bytes, recorded {meta.get('size')}"
        if sha256_file(p) != meta.get("sha256"):
            return f"{rel} changed (SHA-256 differs from done.json)"
    return None


def is_finished(out: str | Path, job: Job, dep_digests: Mapping[str, str]) -> dict | None:
    """The job's done record if it can be skipped, else None.

    Parameters
    ----------
    dep_digests : mapping of str to str
        Digest of every dependency as it stands now (all of them finished earlier).
    """
    rec = read_done(out, job.id)
    if rec is None or rec.get("job") != job.id or rec.get("params_digest") != job.params_digest:
        return None
    if rec.get("inputs") != {d: dep_digests.get(d) for d in job.deps}:
        return None
    missing = [f for f in JOB_OUTPUTS[job.kind] if f not in rec.get("outputs", {})]
    if missing or outputs_problem(out, rec) is not None:
        return None
    return rec


def _collect_outputs(folder: Path) -> dict[str, dict[str, Any]]:
    outs = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name == DONE or p.name.endswith(".tmp"):
            continue
        outs[p.relative_to(folder).as_posix()] = file_record(p)
    return outs


def _write_json_atomic(path: Path, obj: Any) -> None:
    from ptychopinn.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str))


# ------------------------------------------------------------------------------- execution
def execute_job(job: Job, out: str, torch_threads: int, *deps: Mapping[str, Any]) -> dict:
    """Run one job in its folder and write its ``done.json``; returns the done record.

    Called on a dask worker. ``deps`` are the done records of ``job.deps`` (dask passes the
    results of the dependency futures), used to record the input digests. torch's thread count
    is the worker's (set by the runner), not changed here.
    """
    t0 = time.perf_counter()
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    _announce(job.id)
    folder = job_dir(out, job.id)
    with contextlib.suppress(FileNotFoundError):
        (folder / DONE).unlink()  # invalidate first, then clear leftovers
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    dep_dirs = {d["job"]: job_dir(out, d["job"]) for d in deps}
    extra = _RUNNERS[job.kind](job, folder, dep_dirs, torch_threads)
    outputs = _collect_outputs(folder)
    missing = [f for f in JOB_OUTPUTS[job.kind] if f not in outputs]
    if missing:
        raise RuntimeError(f"job {job.id} did not write {', '.join(missing)}")
    from ptychopinn import __version__

    rec = {
        "job": job.id,
        "kind": job.kind,
        "dose": job.dose, "view": job.view, "model": job.model, "split": job.split,
        "params": dict(job.params),
        "params_digest": job.params_digest,
        "inputs": {d["job"]: d["digest"] for d in deps},
        "outputs": outputs,
        "digest": _sha_text(json.dumps(outputs, sort_keys=True)),
        "result": extra or {},
        "started": started,
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "wall_time_s": time.perf_counter() - t0,
        "torch_threads": torch_threads,
        "package_version": __version__,
    }
    _write_json_atomic(folder / DONE, rec)
    return rec


def _announce(job_id: str) -> None:
    """Tell the client (dask event log) that the job is running; no-op outside a worker."""
    try:
        from distributed import get_worker

        get_worker().log_event(EVENT_TOPIC, {"job": job_id, "state": "running"})
    except (ImportError, ValueError):
        pass


def _by_kind(dep_dirs: Mapping[str, Path], kind: str) -> list[Path]:
    return [p for j, p in dep_dirs.items() if j.startswith(f"{kind}-")]


def _run_simulate(job: Job, folder: Path, dep_dirs: Mapping[str, Path], threads: int) -> dict:
    """Noise-free simulation of the shared scene, then Poisson noise seeded by the job."""
    from dataclasses import replace

    from ptychopinn.data.simulate import SimulationConfig, simulate
    from ptychopinn.io.dataset import save_dataset
    from ptychopinn.physics.noise import sample_poisson

    p = dict(job.params)
    noise_seed = p.pop("noise_seed")
    p.pop("probe_sha256")
    p.pop("object_sha256")
    data = simulate(SimulationConfig(**p, noise=False))
    expected = np.asarray(data.diffraction, np.float64) ** 2
    counts = sample_poisson(expected, np.random.default_rng(noise_seed))
    meta = {**data.metadata, "noise": "poisson", "noise_seed": noise_seed}
    meta["simulation"] = {**meta["simulation"], "noise": True}
    # no ground_truth_patches (2/3 of the file): the baseline cuts its labels from objectGuess
    data = replace(data, diffraction=np.sqrt(counts).astype(np.float32), metadata=meta,
                   ground_truth_patches=None)
    save_dataset(data, folder / "data.npz")
    return {"n_patterns": data.n_patterns,
            "mean_counts": float(np.mean(np.sum(counts, axis=(1, 2))))}


def _run_split(job: Job, folder: Path, dep_dirs: Mapping[str, Path], threads: int) -> dict:
    from ptychopinn.data.split import split_dataset
    from ptychopinn.io.dataset import load_dataset, save_dataset

    (sim,) = _by_kind(dep_dirs, "simulate")
    train, test = split_dataset(load_dataset(sim / "data.npz"), axis=job.params["axis"],
                                fraction=job.params["fraction"])
    save_dataset(train, folder / "train.npz")
    save_dataset(test, folder / "test.npz")
    return {"n_train": train.n_patterns, "n_test": test.n_patterns}


def _run_view(job: Job, folder: Path, dep_dirs: Mapping[str, Path], threads: int) -> dict:
    """Thin the whole scan (train ∪ test) once, then keep each part's surviving positions."""
    from ptychopinn.data.simulate import probe_diameter
    from ptychopinn.io.dataset import load_dataset, save_dataset
    from ptychopinn.studies.views import overlap_stats, spacing_for_overlap, thin_positions

    (split,) = _by_kind(dep_dirs, "split")
    parts = {s: load_dataset(split / f"{s}.npz") for s in ("train", "test")}
    pos = np.concatenate([parts["train"].positions, parts["test"].positions])
    diam = probe_diameter(parts["train"].probe)
    p = job.params
    if p["target_overlap"] is not None:
        spacing = spacing_for_overlap(pos, diam, p["target_overlap"], p["seed"])
    else:
        spacing = float(p["min_spacing"] or 0.0)
    keep = np.zeros(len(pos), dtype=bool)
    keep[thin_positions(pos, spacing, p["seed"])] = True
    n_train = parts["train"].n_patterns
    masks = {"train": keep[:n_train], "test": keep[n_train:]}
    report: dict[str, Any] = {"view": job.view, "min_spacing_px": spacing,
                              "target_overlap": p["target_overlap"],
                              "all": overlap_stats(pos[keep], diam)}
    for s, data in parts.items():
        idx = np.flatnonzero(masks[s])
        if idx.size < 4:
            raise RuntimeError(f"view {job.view!r} keeps only {idx.size} {s} positions; "
                               "lower min_spacing/target_overlap or simulate more positions")
        sub = data.subset(idx)
        sub.metadata["view"] = {"name": job.view, "min_spacing_px": spacing}
        save_dataset(sub, folder / f"{s}.npz")
        report[s] = overlap_stats(sub.positions, diam)
    _write_json_atomic(folder / "overlap.json", report)
    return {"min_spacing_px": spacing, "overlap_fraction": report["all"]["overlap_fraction"],
            "n_positions": report["all"]["n_positions"]}


def _run_train(job: Job, folder: Path, dep_dirs: Mapping[str, Path], threads: int) -> dict:
    from ptychopinn.config import RunConfig
    from ptychopinn.io.dataset import load_dataset
    from ptychopinn.training.api import train

    (view,) = _by_kind(dep_dirs, "view")
    # the kind's recommended run (as `ptychopinn train`), then the study entry's settings
    cfg = RunConfig.for_kind(job.params["model"]["kind"]).with_overrides(
        **{k: dict(v) for k, v in job.params.items()})
    data = load_dataset(view / "train.npz")
    res = train(data, folder, cfg, data_path=view / "train.npz")
    return {"epochs": res.epochs_completed, "train_seconds": res.train_seconds,
            "patterns_per_second": res.patterns_per_second, "final_loss": res.final_loss}


def _run_infer(job: Job, folder: Path, dep_dirs: Mapping[str, Path], threads: int) -> dict:
    from ptychopinn.inference.predict import InferConfig, reconstruct, save_reconstruction
    from ptychopinn.io.dataset import load_dataset
    from ptychopinn.viz import object_pngs

    (run,) = _by_kind(dep_dirs, "train")
    (view,) = _by_kind(dep_dirs, "view")
    data = load_dataset(view / f"{job.params['split']}.npz")
    cfg = InferConfig(batch_size=job.params["batch_size"], device="auto", show_progress=False)
    recon = reconstruct(run / "model.zip", data, cfg)
    save_reconstruction(recon, folder)
    object_pngs(recon.object, recon.coverage, folder)
    _write_json_atomic(folder / "info.json", recon.info)
    return {"seconds": recon.info.get("seconds")}


#: Name of the dask worker plugin that lends pty-chi workers (``runner.PtychiWorkers``).
PTYCHI_LENDER = "ptychopinn-ptychi-workers"


def _borrowed_ptychi_worker() -> contextlib.AbstractContextManager:
    """The dask worker's pty-chi worker lender (a context giving a PtychiWorker), or one
    giving None (a worker started for the run) outside dask or without the plugin."""
    try:
        from distributed import get_worker

        lender = get_worker().plugins.get(PTYCHI_LENDER)
    except (ImportError, ValueError):  # not on a dask worker
        lender = None
    return lender.borrow() if lender is not None else contextlib.nullcontext(None)


def _run_iterative(job: Job, folder: Path, dep_dirs: Mapping[str, Path], threads: int) -> dict:
    from ptychopinn.iterative import IterativeConfig, is_available
    from ptychopinn.iterative.run import run_iterative_on_dataset

    if not is_available():
        raise RuntimeError("pty-chi is not installed: pip install 'ptychopinn[ptychi]'")
    (view,) = _by_kind(dep_dirs, "view")
    p = job.params
    cfg = IterativeConfig(algorithm=p["algorithm"], epochs=p["epochs"],
                          batch_size=p["batch_size"], seed=p["seed"], num_threads=threads,
                          device="auto", snapshot_every=p.get("snapshot_every"))
    # the one pty-chi run on a dataset (also `ptychopinn iterative`): reconstruction.npz,
    # snapshots.npz when asked, loss_history.csv and summary.json; through a pty-chi worker
    # the dask worker keeps open (runner.PtychiWorkers) when the runner registered one
    with _borrowed_ptychi_worker() as worker:
        recon = run_iterative_on_dataset(view / f"{p['split']}.npz", folder, cfg,
                                         show_progress=False, worker=worker)
    _write_json_atomic(folder / "info.json", recon.info)
    return {"wall_time_s": recon.info["wall_time_s"]}


def _run_compare(job: Job, folder: Path, dep_dirs: Mapping[str, Path], threads: int) -> dict:
    from ptychopinn.evaluation.compare import compare_reconstructions
    from ptychopinn.inference.predict import load_reconstruction
    from ptychopinn.io.dataset import load_dataset

    (view,) = _by_kind(dep_dirs, "view")
    reference = load_dataset(view / f"{job.params['split']}.npz").obj
    if reference is None:
        raise RuntimeError(f"{view}: the dataset has no objectGuess to compare against")
    recons = {}
    for name, rid in job.params["recons"].items():
        r = load_reconstruction(dep_dirs[rid] / "reconstruction.npz")
        recons[name] = (r.object, r.coverage)
    rows = compare_reconstructions(reference, recons, folder, phase=job.params["phase"])
    if job.params.get("trajectories"):
        _write_trajectories(job, folder, dep_dirs, reference, recons)
    return {"n_rows": len(rows)}


#: Quality-against-time table of a compare job with iterative snapshots.
TRAJECTORY_CSV = "trajectory.csv"


def _write_trajectories(job: Job, folder: Path, dep_dirs: Mapping[str, Path],
                        reference: np.ndarray, recons: Mapping[str, tuple]) -> None:
    """Score every snapshot of each iterative model in the region ``compare`` used.

    Writes ``trajectory.csv``: ``model, epoch, seconds, part, metric, value`` (metric ssim,
    psnr; seconds = cumulative reconstruction time of that snapshot).
    """
    from ptychopinn.evaluation.registration import scanned_region
    from ptychopinn.evaluation.snapshots import trajectory
    from ptychopinn.files import atomic_path
    from ptychopinn.iterative.run import SNAPSHOTS_FILE

    rows, cols = (0, reference.shape[0]), (0, reference.shape[1])
    for _, cov in recons.values():  # the intersection of all scanned regions, like compare
        if cov is not None:
            r, c = scanned_region(np.asarray(cov), threshold=0.5)
            rows = (max(rows[0], r.start), min(rows[1], r.stop))
            cols = (max(cols[0], c.start), min(cols[1], c.stop))
    region = (slice(*rows), slice(*cols))
    lines = ["model,epoch,seconds,part,metric,value"]
    for name, rid in job.params["recons"].items():
        snaps = dep_dirs[rid] / SNAPSHOTS_FILE
        if not snaps.is_file():
            continue
        traj = trajectory(reference, snaps, region=region, phase=job.params["phase"])
        for part, per in traj.metrics.items():
            for metric, values in per.items():
                lines += [f"{name},{int(e)},{float(t)!r},{part},{metric},{float(v)!r}"
                          for e, t, v in zip(traj.epochs, traj.seconds, values, strict=True)]
    with atomic_path(folder / TRAJECTORY_CSV) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


_RUNNERS: Mapping[str, Any] = MappingProxyType({
    "simulate": _run_simulate,
    "split": _run_split,
    "view": _run_view,
    "train": _run_train,
    "infer": _run_infer,
    "iterative": _run_iterative,
    "compare": _run_compare,
})
