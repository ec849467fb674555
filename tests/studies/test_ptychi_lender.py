"""The study's dask plugin lends pty-chi workers: one per running job, reused, closed at the end."""

from __future__ import annotations

from ptychopinn.iterative import PtychiWorker
from ptychopinn.studies import jobs
from ptychopinn.studies.runner import PtychiWorkers


def test_borrowed_workers_are_reused_one_per_running_job_and_closed_at_teardown(monkeypatch):
    lender = PtychiWorkers(threads=1)
    lender.setup(worker=None)
    with lender.borrow() as a:
        assert isinstance(a, PtychiWorker) and a.num_threads == 1
        with lender.borrow() as b:  # a second job running at the same time gets its own
            assert b is not a
    with lender.borrow() as again:  # a later job reuses an idle one
        assert again in (a, b)
    closed = []
    monkeypatch.setattr(PtychiWorker, "close", lambda self: closed.append(self))
    lender.teardown(worker=None)
    assert sorted(map(id, closed)) == sorted(map(id, (a, b)))
    assert PtychiWorkers.name == jobs.PTYCHI_LENDER


def test_outside_dask_a_run_starts_its_own_worker():
    with jobs._borrowed_ptychi_worker() as worker:
        assert worker is None


def test_a_worker_borrowed_during_teardown_is_closed_when_returned(monkeypatch):
    closed = []
    monkeypatch.setattr(PtychiWorker, "close", lambda self: closed.append(self))
    lender = PtychiWorkers(threads=1)
    lender.setup(worker=None)
    with lender.borrow() as w:  # a job still running when the study ends
        lender.teardown(worker=None)
        assert closed == []
    assert closed == [w]
