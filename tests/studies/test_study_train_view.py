"""train_view (one training per dose and model, reused by every view) and iterative snapshots
(equal-time table and regime map) on a tiny study."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ptychopinn.errors import PtychoInputError
from ptychopinn.iterative import is_available
from ptychopinn.studies.jobs import build_jobs, job_dir
from ptychopinn.studies.runner import PtychiWorkers, run_study
from ptychopinn.studies.spec import load_study

from .conftest import write_study

VIEWS = {"dense": {}, "half": {"target_overlap": 0.5}}


def test_train_view_plans_one_training_per_dose_and_model(tmp_path):
    spec = load_study(write_study(tmp_path, {"views": VIEWS, "train_view": "dense",
                                             "models": ["PtychoPINN", "Baseline"]}))
    jobs = {j.id: j for j in build_jobs(spec)}
    trains = sorted(j for j in jobs if j.startswith("train-"))
    assert trains == ["train-d1e4-dense-Baseline", "train-d1e4-dense-PtychoPINN",
                      "train-d1e6-dense-Baseline", "train-d1e6-dense-PtychoPINN"]
    assert jobs["infer-d1e4-half-PtychoPINN-test"].deps == ("train-d1e4-dense-PtychoPINN",
                                                            "view-d1e4-half")
    order = list(jobs)
    for j in jobs.values():  # still a topological order
        assert all(order.index(d) < order.index(j.id) for d in j.deps), j.id
    # without train_view each view trains its own networks (today's behaviour)
    per_view = load_study(write_study(tmp_path, {"views": VIEWS}, name="b.yaml"))
    assert sum(j.kind == "train" for j in build_jobs(per_view)) == 2 * 2 * 2


def test_train_view_and_snapshot_every_are_checked(tmp_path):
    with pytest.raises(PtychoInputError, match=r"train_view.*expected one of the views "
                                               r"\(dense, half\), got 'sparse'"):
        load_study(write_study(tmp_path, {"views": VIEWS, "train_view": "sparse"}))
    with pytest.raises(PtychoInputError, match=r"iterative.snapshot_every.*from 1 to epochs "
                                               r"\(3\), got 4"):
        load_study(write_study(tmp_path, {"iterative": {"epochs": 3, "snapshot_every": 4}}))


def _ptychi_worker_processes() -> set[int]:
    """Live children of this process that are pty-chi workers (empty without Linux /proc)."""
    found = set()
    tasks = Path(f"/proc/{os.getpid()}/task")
    for task in tasks.iterdir() if tasks.exists() else ():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                if b"ptychopinn.iterative._worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(int(pid))
    return found


@pytest.mark.skipif(not is_available(), reason="pty-chi not installed")
def test_dense_trained_network_and_equal_time_regime_map(tmp_path, monkeypatch):
    spec = load_study(write_study(tmp_path, {
        "doses": [1.0e6], "views": VIEWS, "train_view": "dense",
        "models": ["PtychoPINN", "PtyChi-LSQML"],
        "iterative": {"epochs": 3, "snapshot_every": 1}}))
    out = tmp_path / "out"
    lent = []
    borrow = PtychiWorkers.borrow
    monkeypatch.setattr(PtychiWorkers, "borrow", lambda self: lent.append(1) or borrow(self))
    before = _ptychi_worker_processes()
    result = run_study(spec, out, show_progress=False)
    assert result.ok, result.errors
    # the iterative jobs ran through pty-chi workers the study lent, closed at its end
    assert len(lent) == sum(j.kind == "iterative" for j in build_jobs(spec)) == 2
    assert _ptychi_worker_processes() <= before
    assert sorted(j for j in result.states if j.startswith("train-")) == [
        "train-d1e6-dense-PtychoPINN"]
    # the half view's test half was reconstructed by the dense-trained bundle
    info = json.loads((job_dir(out, "infer-d1e6-half-PtychoPINN-test") / "info.json").read_text())
    assert info["n_patterns"] == json.loads(
        (job_dir(out, "view-d1e6-half") / "overlap.json").read_text())["test"]["n_positions"]
    snaps = np.load(job_dir(out, "iterative-d1e6-half-PtyChi-LSQML-test") / "snapshots.npz")
    assert snaps["epochs"].tolist() == [1, 2, 3]
    traj = pd.read_csv(job_dir(out, "compare-d1e6-half-test") / "trajectory.csv")
    assert set(traj["epoch"]) == {1, 2, 3}
    eq = pd.read_csv(out / "equal_time.csv")
    metrics = pd.read_csv(out / "metrics.csv")
    for r in eq.itertuples():
        phase = metrics[(metrics.view == r.view) & (metrics.metric == "ssim")
                        & (metrics.part == "phase")].set_index("model")["value"]
        assert r.network_phase_ssim == pytest.approx(phase["PtychoPINN"], abs=1e-6)
        assert r.iterative_phase_ssim == pytest.approx(phase["PtyChi-LSQML"], abs=1e-6)
        # the last snapshot is the final object, scored in the same region
        last = traj[(traj.epoch == 3) & (traj.part == "phase") & (traj.metric == "ssim")
                    & (traj.model == "PtyChi-LSQML")]
        if r.view == "half":
            assert float(last["value"].iloc[0]) == pytest.approx(r.iterative_phase_ssim,
                                                                 abs=1e-6)
    reg = pd.read_csv(out / "regime_map.csv")
    assert sorted(reg["view"]) == ["dense", "half"]
    for r in reg.itertuples():
        e = eq[eq.view == r.view].iloc[0]
        assert r.margin_convergence == pytest.approx(e.network_phase_ssim   # 6 digits in csv
                                                     - e.iterative_phase_ssim, abs=1e-5)
        assert r.winner_convergence == ("PtychoPINN" if r.margin_convergence > 0
                                        else "PtyChi-LSQML")
    assert (out / "plots" / "regime_map_test.png").stat().st_size > 0
    assert "Regime map" in (out / "report.md").read_text()
    # resume: nothing runs again
    again = run_study(spec, out, show_progress=False)
    assert again.ok and set(again.states.values()) == {"skipped"}
