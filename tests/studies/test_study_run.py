"""End-to-end tiny study on dask: outputs, resume after a kill, verification of damage."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ptychopinn.cli import main
from ptychopinn.evaluation.metrics import METRIC_NAMES
from ptychopinn.studies.artifacts import METRICS_COLUMNS
from ptychopinn.studies.jobs import build_jobs, job_dir
from ptychopinn.studies.runner import run_study
from ptychopinn.studies.spec import load_study

from .conftest import write_study


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_study_end_to_end(finished_study):
    spec, out, result, events = finished_study
    jobs = build_jobs(spec)
    assert result.ok, (result.errors, json.loads((out / "verification.json").read_text()))
    assert set(result.states.values()) == {"done"} and len(result.states) == len(jobs)
    # every job logged queued, running (an asynchronous worker event) and done
    for j in jobs:
        seq = [s for jid, s in events if jid == j.id]
        assert sorted(seq) == ["done", "queued", "running"], (j.id, seq)
        assert seq.index("queued") < seq.index("done")
        assert (job_dir(out, j.id) / "done.json").is_file()

    m = pd.read_csv(out / "metrics.csv")
    assert tuple(m.columns) == METRICS_COLUMNS
    n_models = len(spec.models)
    assert len(m) == 2 * 1 * n_models * 1 * len(METRIC_NAMES) * 2
    assert set(m["dose"]) == {1e4, 1e6} and set(m["part"]) == {"amplitude", "phase"}
    assert np.isfinite(m["value"]).all()
    pq = pd.read_parquet(out / "metrics.parquet")
    pd.testing.assert_frame_equal(pq, m, check_dtype=False)

    d = pd.read_csv(out / "deltas.csv")
    assert len(d) == 2 * (n_models - 1) * len(METRIC_NAMES) * 2
    key = ["dose", "view", "split", "metric", "part"]
    merged = d.merge(m[m.model == "PtychoPINN"], on=key).merge(
        m.rename(columns={"model": "other", "value": "value_o"}), on=[*key, "other"])
    assert np.allclose(merged["delta"], merged["value"] - merged["value_o"])

    ov = pd.read_csv(out / "overlap.csv")
    assert set(ov["part"]) == {"all", "train", "test"}
    full = ov[ov.part == "all"]
    assert (full["n_positions"] == spec.scene.n_positions).all()  # dense view keeps all
    assert (full["overlap_fraction"] > 0).all() and (full["mean_nn_px"] > 0).all()

    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert len(pngs) == len(METRIC_NAMES) + 1  # metric-vs-dose plots + one phase grid
    for name in pngs:
        assert f"(plots/{name})" in md
    assert page.count("src='data:image/png;base64,") == len(pngs)
    assert "src='plots/" not in page  # self-contained

    manifest = json.loads((out / "manifest.json").read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"manifest.json", ".study.lock"}  # the lock is no artifact
    for rel in ("metrics.parquet", "report.html", "jobs/simulate-d1e4/data.npz"):
        assert listed[rel]["sha256"] == _sha(out / rel)
        assert listed[rel]["size"] == (out / rel).stat().st_size


def test_rerun_skips_everything(finished_study, tmp_path):
    spec, out, _, _ = finished_study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    marks = {p: p.stat().st_mtime_ns for p in copy.glob("jobs/*/done.json")}
    events: list[tuple[str, str]] = []
    level = logging.getLogger("ptychopinn").level
    res = run_study(spec, copy, show_progress=False, on_event=lambda j, s: events.append((j, s)))
    assert logging.getLogger("ptychopinn").level == level  # in-process workers restore it
    assert res.ok and set(res.states.values()) == {"skipped"}
    assert {s for _, s in events} == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in marks} == marks


def test_second_run_on_the_same_folder_is_refused(finished_study, tmp_path, capsys):
    """While one run holds OUT/.study.lock, another is refused in one line; nothing changes."""
    import fcntl

    spec, out, _, _ = finished_study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = (copy / "manifest.json").read_bytes()
    with open(copy / ".study.lock", "a") as fh:  # another process would hold it like this
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="another 'study run' is using this folder"):
            run_study(spec, copy, show_progress=False)
        study_yaml = str(copy / "study.yaml")
        assert main(["study", "run", study_yaml, "--out", str(copy)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ".study.lock" in err[0]
    assert (copy / "manifest.json").read_bytes() == before
    assert run_study(spec, copy, show_progress=False).ok  # released: the rerun works


def test_verification_flags_deleted_and_truncated(finished_study, tmp_path, capsys):
    spec, out, _, _ = finished_study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    deleted = "jobs/infer-d1e4-dense-Baseline-test/reconstruction.npz"
    truncated = "jobs/train-d1e6-dense-PtychoPINN/model.zip"
    (copy / deleted).unlink()
    blob = (copy / truncated).read_bytes()
    (copy / truncated).write_bytes(blob[: len(blob) // 2])
    res = run_study(spec, copy, verify_only=True, show_progress=False)
    assert not res.ok
    ver = json.loads((copy / "verification.json").read_text())
    bad = {a["path"]: a["problem"] for a in ver["artifacts"] if not a["ok"]}
    assert set(bad) == {deleted, truncated}
    assert bad[deleted] == "missing"
    assert any(truncated in p and "manifest" in p for p in ver["problems"])
    # nothing was recomputed
    assert not (copy / deleted).exists()
    # the CLI says so in one line and exits 1
    assert main(["study", "run", str(spec.source), "--out", str(copy), "--verify-only"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ptychopinn study: verification failed")

    # a normal rerun redoes exactly the damaged jobs and what depends on them
    res = run_study(spec, copy, show_progress=False)
    assert res.ok
    redone = {j for j, s in res.states.items() if s == "done"}
    assert redone == {"infer-d1e4-dense-Baseline-test", "compare-d1e4-dense-test",
                      "train-d1e6-dense-PtychoPINN", "infer-d1e6-dense-PtychoPINN-test",
                      "compare-d1e6-dense-test"}


def test_changed_parameters_rerun_only_affected_jobs(finished_study, tmp_path):
    """The runner itself, given a longer training: training, inference and comparison are
    redone; simulation, split, views and the iterative reconstructions are skipped."""
    spec, out, _, _ = finished_study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    marks = {p.parent.name: p.stat().st_mtime_ns for p in copy.glob("jobs/*/done.json")}
    changed = replace(spec, training=replace(spec.training, epochs=2))
    events: list[tuple[str, str]] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # in-process jobs run with compute.torch_threads, then this again
    try:
        res = run_study(changed, copy, show_progress=False,
                        on_event=lambda j, s: events.append((j, s)))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
    assert res.ok
    kinds = {j.id: j.kind for j in build_jobs(changed)}
    redone = {j for j, s in res.states.items() if s == "done"}
    assert redone == {j for j, k in kinds.items() if k in ("train", "infer", "compare")}
    skipped = set(kinds) - redone
    assert {res.states[j] for j in skipped} == {"skipped"}
    assert {kinds[j] for j in skipped} >= {"simulate", "split", "view"}
    if any(m.kind == "iterative" for m in spec.models):
        assert "iterative" in {kinds[j] for j in skipped}
    assert not {j for j, s in events if s == "running"} & skipped
    for j in skipped:
        assert (copy / "jobs" / j / "done.json").stat().st_mtime_ns == marks[j], j
    for j in redone:
        assert (copy / "jobs" / j / "done.json").stat().st_mtime_ns != marks[j], j
    train = next(j for j in redone if kinds[j] == "train")
    rec = json.loads((copy / "jobs" / train / "done.json").read_text())
    assert rec["params"]["train"]["epochs"] == 2 and rec["result"]["epochs"] == 2


def test_resume_after_kill(tmp_path):
    """Kill the CLI process after its first finished job; the rerun skips that job."""
    spec_path = write_study(tmp_path, {"doses": [1e5], "models": ["Baseline"]})
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptychopinn.cli", "study", "run", str(spec_path), "--out",
         str(out), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        done: list[Path] = []
        while not done and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            done = list(out.glob("jobs/*/done.json"))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert done, "no job finished before the deadline"
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    marker = min(done, key=lambda p: p.stat().st_mtime_ns)  # the first finished job
    first = marker.parent.name
    assert first == "simulate-d1e5"
    mtime = marker.stat().st_mtime_ns
    assert not (out / "manifest.json").exists()  # the run really stopped early

    events: list[tuple[str, str]] = []
    res = run_study(load_study(spec_path), out, show_progress=False,
                    on_event=lambda j, s: events.append((j, s)))
    assert res.ok
    assert res.states[first] == "skipped" and (first, "skipped") in events
    assert (first, "running") not in events
    assert marker.stat().st_mtime_ns == mtime
    assert res.states["compare-d1e5-dense-test"] == "done"

    again = run_study(load_study(spec_path), out, clobber=True, show_progress=False)
    assert again.ok and set(again.states.values()) == {"done"}
    assert marker.stat().st_mtime_ns != mtime


def test_failed_job_and_its_dependants_are_reported(tmp_path, capsys):
    spec_path = write_study(tmp_path, {"doses": [1e5], "models": ["Baseline"],
                                       "views": {"sparse": {"min_spacing": 500}}})
    out = tmp_path / "out"
    assert main(["study", "run", str(spec_path), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ptychopinn study: 4 job(s) failed; first: view-d1e5-sparse: ")
    assert "keeps only 1 train positions" in err[-1]
    assert not (out / "jobs/view-d1e5-sparse/done.json").exists()
    assert (out / "jobs/split-d1e5/done.json").is_file()
    jobs = pd.read_csv(out / "jobs.csv").set_index("job")["state"].to_dict()
    assert jobs == {"simulate-d1e5": "done", "split-d1e5": "done", "view-d1e5-sparse": "failed",
                    "train-d1e5-sparse-Baseline": "failed",
                    "infer-d1e5-sparse-Baseline-test": "failed",
                    "compare-d1e5-sparse-test": "failed"}
    ver = json.loads((out / "verification.json").read_text())
    assert not ver["ok"]
    assert "jobs/view-d1e5-sparse/done.json: missing" in ver["problems"]
    assert "metrics.csv: no rows" in ver["problems"]


@pytest.mark.parametrize("flag", ["--clobber", "--verify-only"])
def test_cli_help_lists_options(capsys, flag):
    with pytest.raises(SystemExit) as e:
        main(["study", "run", "--help"])
    assert e.value.code == 0
    assert flag in capsys.readouterr().out
