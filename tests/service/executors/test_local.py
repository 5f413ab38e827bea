"""The local worker-process pool, on its own (stand-in runners, no model)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sanchari_processes.errors import QueueFullError
from sanchari_processes.service.executors.base import JobFailure
from sanchari_processes.service.executors.local import LocalProcessPool
from tests.service_fixtures import FakeJob, Recorder, dying_runner, slow_runner


def test_dead_worker_fails_its_job_and_is_replaced(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = LocalProcessPool(recorder, dying_runner, workers=1, queue_size=0)
    pool.start()
    try:
        pool.submit(FakeJob("a", tmp_path / "a"))
        assert recorder.done.wait(60)
        kind, job_id, failure = recorder.events[-1]
        assert (kind, job_id) == ("failed", "a")
        assert isinstance(failure, JobFailure) and failure.status == 500
        assert "unexpectedly" in failure.message
    finally:
        pool.shutdown()


def test_queue_bound_and_cancel_of_queued_job(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = LocalProcessPool(recorder, slow_runner, workers=1, queue_size=1)
    pool.start()
    try:
        pool.submit(FakeJob("run", tmp_path / "run"))
        pool.submit(FakeJob("wait", tmp_path / "wait"))
        with pytest.raises(QueueFullError):
            pool.submit(FakeJob("over", tmp_path / "over"))
        assert pool.cancel("wait") and pool.queued() == 0
        assert not pool.cancel("unknown")
        assert recorder.done.wait(60)
        time.sleep(0.2)
        kinds = [(k, j) for k, j, _ in recorder.events if k != "progress"]
        assert kinds == [("started", "run"), ("succeeded", "run")]
        fractions = [v[0] for k, _, v in recorder.events if k == "progress"]
        assert fractions == sorted(fractions) and len(fractions) >= 5
    finally:
        pool.shutdown()
