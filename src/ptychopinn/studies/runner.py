"""Run a study on dask.distributed: skip finished jobs, submit the rest as futures, report.

The client decides, in topological order, which jobs are finished (:func:`~ptychopinn.studies.
jobs.is_finished`); every other job is submitted with ``Client.submit`` and gets the futures of
its dependencies as arguments, so dask schedules the graph. A job whose dependency is recomputed
is recomputed too. Every state change (queued, running, done, skipped, failed) is logged as one
line; an overall tqdm bar counts finished jobs. After the graph: the report, ``verification.json``
and ``manifest.json`` (:mod:`ptychopinn.studies.report`, :mod:`ptychopinn.studies.verify`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from distributed.diagnostics.plugin import WorkerPlugin

from ptychopinn.studies.jobs import (
    EVENT_TOPIC,
    PTYCHI_LENDER,
    Job,
    build_jobs,
    execute_job,
    is_finished,
)
from ptychopinn.studies.spec import StudySpec

logger = logging.getLogger(__name__)

__all__ = ["StudyResult", "run_study"]

#: Called as ``on_event(job_id, state)`` after each logged state change (e.g. test hooks).
EventHook = Callable[[str, str], None]


@dataclass(frozen=True)
class StudyResult:
    """Outcome of :func:`run_study`.

    ``states`` maps job id to its final state (done, skipped, failed, or "not run" with
    ``--verify-only``); ``errors`` maps failed job ids to one-line messages.
    """

    out: Path
    states: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    verification_ok: bool = False
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        """No failed job and verification passed."""
        return not self.errors and self.verification_ok


@contextlib.contextmanager
def _client(spec: StudySpec, scheduler: str | None) -> Iterator[Any]:
    """A dask Client: connected to ``scheduler`` or to a fresh LocalCluster."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    n_workers, _ = spec.compute.resolved()
    cluster = LocalCluster(n_workers=n_workers,
                           threads_per_worker=spec.compute.threads_per_worker,
                           processes=spec.compute.processes,
                           # no dashboard; the scheduler's HTTP endpoint on a free port (the
                           # default 8787 may be taken by another cluster on this machine)
                           dashboard_address=":0", scheduler_kwargs={"dashboard": False})
    try:
        with Client(cluster) as client:
            yield client
    finally:
        nanny_log = logging.getLogger("distributed.nanny")
        quiet = _DropShutdownKill()
        nanny_log.addFilter(quiet)
        try:
            cluster.close()
        finally:
            nanny_log.removeFilter(quiet)


class QuietWorker(WorkerPlugin):
    """dask worker plugin: the jobs' library chatter (Lightning banners, per-job INFO lines)
    goes to WARNING on every worker, so the study log is one line per job state change.

    Lightning is imported first because its import installs its own log level.
    """

    name = "ptychopinn-quiet-worker"
    _NAMES = ("lightning", "lightning.pytorch", "lightning.fabric", "ptychopinn")
    _OURS = "ptychopinn.studies"

    def __init__(self, level: int = logging.WARNING):
        self.level = level

    def setup(self, worker: Any) -> None:  # noqa: D102
        import multiprocessing
        import warnings

        with contextlib.suppress(ImportError):
            import lightning.pytorch  # noqa: F401
        self._saved = {n: logging.getLogger(n).level for n in (*self._NAMES, self._OURS)}
        for name in self._NAMES:
            logging.getLogger(name).setLevel(self.level)
        logging.getLogger(self._OURS).setLevel(logging.INFO)
        if multiprocessing.parent_process() is not None:  # a worker process of our own
            # Lightning 2.6 calls a deprecated torch pytree API (also ignored in pyproject)
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")

    def teardown(self, worker: Any) -> None:
        """Restore the log levels (matters for in-process workers, ``processes: false``)."""
        for name, level in getattr(self, "_saved", {}).items():
            logging.getLogger(name).setLevel(level)


class TorchThreads(WorkerPlugin):
    """dask worker plugin: torch's thread count on every worker process of its own.

    Workers running in the client's process (``processes: false``) are skipped: there
    :func:`run_study` sets the count for the run and restores it afterwards.
    """

    name = "ptychopinn-torch-threads"

    def __init__(self, threads: int, client_process: tuple[str, int]):
        self.threads = threads
        self.client_process = client_process

    def setup(self, worker: Any) -> None:  # noqa: D102
        if (socket.gethostname(), os.getpid()) != self.client_process:
            import torch

            torch.set_num_threads(self.threads)


class PtychiWorkers(WorkerPlugin):
    """dask worker plugin: pty-chi worker processes kept open across a worker's iterative jobs.

    Each start-up of a pty-chi worker costs ~13 s of imports on a CPU
    (:class:`~ptychopinn.iterative.PtychiWorker`); a study runs many short iterative jobs. The
    plugin lends one per running job (:meth:`borrow`; as many as run at once) and closes them
    when the plugin is removed (the end of the study) or the worker closes.
    """

    name = PTYCHI_LENDER

    def __init__(self, threads: int):
        self.threads = threads

    def setup(self, worker: Any) -> None:  # noqa: D102
        import threading

        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    def teardown(self, worker: Any) -> None:  # noqa: D102
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for w in idle:  # each exits as soon as its stdin closes
            w.close()

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Any]:
        """An idle pty-chi worker (or a new one) for one job; returned afterwards (closed
        instead when the plugin was torn down meanwhile)."""
        from ptychopinn.iterative import PtychiWorker

        with self._lock:
            w = self._idle.pop() if self._idle else PtychiWorker(num_threads=self.threads)
        try:
            yield w
        finally:
            with self._lock:
                keep = not self._closed
                if keep:
                    self._idle.append(w)
            if not keep:
                w.close()


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's thread count set to ``threads`` (None: unchanged) and restored on exit."""
    if threads is None:
        yield
        return
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


class _DropShutdownKill(logging.Filter):
    """Hide the nanny's "worker still alive, killing" line while *we* close the cluster
    (workers that imported torch/Lightning take seconds to exit; all results are written)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "still alive after" not in record.getMessage()


def _log_state(job_id: str, state: str, detail: str = "", hook: EventHook | None = None) -> None:
    logger.info("%-9s %s%s", state, job_id, f" ({detail})" if detail else "")
    if hook is not None:
        hook(job_id, state)


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out/.study.lock`` for the run: a second ``study run`` on the
    same folder (which would race on the same job folders) is refused with one line. The OS
    releases the lock when the process dies, so a killed run never blocks its resume."""
    import fcntl

    from ptychopinn.studies.artifacts import LOCK

    with open(out / LOCK, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{out}: another 'study run' is using this folder (lock "
                               f"{out / LOCK} is held); wait for it or choose another --out"
                               ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_study(spec: StudySpec, out: str | Path, *, clobber: bool = False,
              verify_only: bool = False, scheduler: str | None = None,
              show_progress: bool = True, on_event: EventHook | None = None,
              quiet_workers: bool = True) -> StudyResult:
    """Run (or resume, or only verify) a study into ``out``.

    Parameters
    ----------
    spec : StudySpec
        The study (:func:`~ptychopinn.studies.spec.load_study`).
    out : path
        Output folder; ``out/jobs/<job id>/`` per job, tables, plots and reports at the top.
    clobber : bool
        Redo every job even when finished.
    verify_only : bool
        Compute nothing: re-check the artifacts and rewrite ``verification.json``.
    scheduler : str, optional
        Address of a running dask scheduler (e.g. ``tcp://host:8786``); default: a
        LocalCluster described by ``spec.compute``.
    show_progress : bool
        Overall tqdm progress bar (stderr).
    on_event : callable, optional
        ``on_event(job_id, state)`` after every state change; an exception raised there
        stops the run (the cluster is shut down; finished jobs stay finished).
    quiet_workers : bool
        Lower the jobs' library logging to WARNING on the workers (:class:`QuietWorker`).

    Returns
    -------
    StudyResult
    """
    from ptychopinn.studies.report import write_report
    from ptychopinn.studies.verify import verify_study, write_manifest

    t0 = time.perf_counter()
    out = Path(out)
    jobs = build_jobs(spec)
    if verify_only:
        if not out.is_dir():
            raise FileNotFoundError(f"{out}: no study output folder to verify")
        ver = verify_study(spec, jobs, out, check_manifest=True)
        logger.info("verification %s: %d artifacts checked, %d problem(s) -> %s",
                    "passed" if ver["ok"] else "FAILED", ver["n_checked"],
                    len(ver["problems"]), out / "verification.json")
        return StudyResult(out, {j.id: "not run" for j in jobs}, {}, ver["ok"],
                           time.perf_counter() - t0)
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        _write_spec(spec, out / "study.yaml")
        states, errors = _run_graph(spec, jobs, out, clobber=clobber, scheduler=scheduler,
                                    show_progress=show_progress, on_event=on_event,
                                    quiet_workers=quiet_workers)
        write_report(spec, jobs, out, states=states)
        ver = verify_study(spec, jobs, out, check_manifest=False)
        write_manifest(out)
    n = {s: sum(v == s for v in states.values()) for s in ("done", "skipped", "failed")}
    logger.info("study %s: %d done, %d skipped, %d failed in %.1f s; verification %s -> %s",
                spec.name, n["done"], n["skipped"], n["failed"], time.perf_counter() - t0,
                "passed" if ver["ok"] else f"FAILED ({len(ver['problems'])} problem(s))",
                out / "report.md")
    return StudyResult(out, states, errors, ver["ok"], time.perf_counter() - t0)


def _write_spec(spec: StudySpec, path: Path) -> None:
    from ptychopinn.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))


def _run_graph(spec: StudySpec, jobs: list[Job], out: Path, *, clobber: bool,
               scheduler: str | None, show_progress: bool,
               on_event: EventHook | None,
               quiet_workers: bool) -> tuple[dict[str, str], dict[str, str]]:
    from distributed import as_completed
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    states: dict[str, str] = {}
    errors: dict[str, str] = {}
    records: dict[str, dict] = {}
    _, torch_threads = spec.compute.resolved()
    bar = tqdm(total=len(jobs), desc=f"study {spec.name}", unit="job", disable=not show_progress)
    in_process = scheduler is None and not spec.compute.processes
    with (logging_redirect_tqdm(), bar, _torch_threads(torch_threads if in_process else None),
          _client(spec, scheduler) as client):
        client.register_plugin(TorchThreads(torch_threads, (socket.gethostname(), os.getpid())))
        if quiet_workers:
            client.register_plugin(QuietWorker())
        lend_ptychi = any(j.kind == "iterative" for j in jobs)
        if lend_ptychi:
            client.register_plugin(PtychiWorkers(torch_threads))
        client.subscribe_topic(EVENT_TOPIC, _running_handler(on_event))
        futures: dict[str, Any] = {}
        by_key: dict[str, Job] = {}
        for i, job in enumerate(jobs):
            rec = None
            if not clobber and all(states.get(d) == "skipped" for d in job.deps):
                rec = is_finished(out, job, {d: records[d]["digest"] for d in job.deps})
            if rec is not None:
                records[job.id] = rec
                states[job.id] = "skipped"
                bar.update()
                _log_state(job.id, "skipped", "finished earlier", on_event)
                continue
            args = [records[d] if d in records else futures[d] for d in job.deps]
            key = f"{job.id}-{uuid.uuid4().hex[:8]}"
            # earlier in the (dose-major) job list = more urgent: cells finish one by one
            fut = client.submit(execute_job, job, str(out), torch_threads, *args, key=key,
                                pure=False, priority=len(jobs) - i)
            futures[job.id] = fut
            by_key[fut.key] = job
            states[job.id] = "queued"
            _log_state(job.id, "queued", "", on_event)
        try:
            for fut in as_completed(list(futures.values())):
                job = by_key[fut.key]
                if fut.status == "finished":
                    rec = fut.result()
                    records[job.id] = rec
                    states[job.id] = "done"
                    detail = f"{rec['wall_time_s']:.1f} s"
                else:
                    failed_dep = next((d for d in job.deps if states.get(d) == "failed"), None)
                    if failed_dep is not None:
                        msg = f"dependency {failed_dep} failed"
                    else:
                        exc = fut.exception()
                        msg = " ".join(str(exc).split()) or type(exc).__name__
                    states[job.id] = "failed"
                    errors[job.id] = msg
                    detail = msg
                bar.update()
                _log_state(job.id, states[job.id], detail, on_event)
        finally:
            pending = [f for f in futures.values() if not f.done()]
            if pending:
                client.cancel(pending)
            client.unsubscribe_topic(EVENT_TOPIC)
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(TorchThreads.name)
            if quiet_workers:
                with contextlib.suppress(Exception):  # e.g. the scheduler went away
                    client.unregister_worker_plugin(QuietWorker.name)
            if lend_ptychi:  # its teardown closes the pty-chi worker processes
                with contextlib.suppress(Exception):
                    client.unregister_worker_plugin(PtychiWorkers.name)
    return states, errors


def _running_handler(on_event: EventHook | None) -> Callable[[Any], None]:
    def handler(event: Any) -> None:
        _, msg = event
        if isinstance(msg, dict) and "job" in msg:
            _log_state(str(msg["job"]), "running", "", None)
            if on_event is not None:
                with contextlib.suppress(Exception):  # never break dask's event loop
                    on_event(str(msg["job"]), "running")

    return handler
