"""The Dask executor on a real cluster (CI's scheduler and two workers, else a local one)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from sanchari_processes.service.executors.dask import DaskExecutor
from sanchari_processes.service.executors.dask_task import ATTEMPT_FILE, task_key
from tests.service_fixtures import FakeJob, Recorder, dying_runner, ticking_runner


@pytest.fixture()
def executor_of(dask_scheduler: str) -> Any:
    made: list[DaskExecutor] = []

    def make(runner: Any, scheduler: str = dask_scheduler) -> tuple[DaskExecutor, Recorder]:
        recorder = Recorder()
        executor = DaskExecutor(recorder, runner, scheduler, queue_size=4)
        executor.start()
        made.append(executor)
        return executor, recorder

    yield make
    for executor in made:
        executor.shutdown()


def test_job_runs_on_a_worker_with_staged_progress(executor_of: Any, tmp_path: Path) -> None:
    executor, recorder = executor_of(ticking_runner)
    key = executor.submit(FakeJob("a", tmp_path / "a"))
    assert key and "a" in key
    assert recorder.done.wait(60), recorder.events
    assert recorder.kinds() == ["started", "succeeded"]
    assert recorder.events[-1][2] == tmp_path / "a" / "roads.geojson"
    progress = [value for kind, _, value in recorder.events if kind == "progress"]
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and len(fractions) >= 3
    assert {"Counting", "Counting again"} <= {stage for _, stage in progress}
    assert (tmp_path / "a.ticks").read_text() == "40"


def test_cancel_stops_a_running_job_within_seconds(executor_of: Any, tmp_path: Path) -> None:
    executor, recorder = executor_of(ticking_runner)
    executor.submit(FakeJob("c", tmp_path / "c"))
    recorder.wait_started()
    time.sleep(0.5)
    assert executor.cancel("c")
    time.sleep(1.5)  # the task looks at its cancel flag at least every 0.5 s
    ticks = int((tmp_path / "c.ticks").read_text())
    time.sleep(1.0)
    assert int((tmp_path / "c.ticks").read_text()) == ticks < 40
    assert recorder.kinds() == ["started"]  # no outcome is reported for a dismissed job
    assert not executor.cancel("c")


def test_a_worker_lost_mid_job_is_retried_elsewhere(
    executor_of: Any, dask_client: Any, tmp_path: Path
) -> None:
    executor, recorder = executor_of(ticking_runner)
    key = executor.submit(FakeJob("k", tmp_path / "k"))
    recorder.wait_started()
    worker = next(w for w, keys in dask_client.processing().items() if key in keys)
    pid = dask_client.run(os.getpid, workers=[worker])[worker]
    os.kill(pid, signal.SIGKILL)
    assert recorder.done.wait(90), recorder.events
    assert recorder.kinds()[-1] == "succeeded", recorder.events
    assert (tmp_path / "k.ticks").read_text() == "40"
    assert (tmp_path / "k.runs").read_text() == "run\n" * 2  # started again on a live worker


def test_a_job_that_kills_its_workers_fails_cleanly(executor_of: Any, tmp_path: Path) -> None:
    """No retries left (allowed-failures 0): the job fails with 500, it is never left running."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
    ):
        executor, recorder = executor_of(dying_runner, cluster.scheduler_address)
        executor.submit(FakeJob("d", tmp_path / "d"))
        assert recorder.done.wait(60), recorder.events
        kind, job_id, failure = recorder.events[-1]
        assert (kind, job_id) == ("failed", "d")
        assert failure.status == 500 and "unexpectedly" in failure.message
        executor.shutdown()


def test_a_superseded_attempt_stops_itself(executor_of: Any, tmp_path: Path) -> None:
    """The job's folder names another attempt (one submitted after a scheduler restart): the
    task stops at its next progress step and reports nothing; the listener hears it lost."""
    executor, recorder = executor_of(ticking_runner)
    executor.submit(FakeJob("s", tmp_path / "s"))
    recorder.wait_started()
    (tmp_path / "s" / ATTEMPT_FILE).write_text(task_key("s", 2))
    assert recorder.done.wait(30), recorder.events
    assert recorder.kinds() == ["started", "lost"]
    assert recorder.events[-1] == ("lost", "s", 1)
    assert int((tmp_path / "s.ticks").read_text()) < 40
    assert not (tmp_path / "s" / "roads.geojson").exists()


def test_a_dropped_connection_follows_the_job_again(executor_of: Any, tmp_path: Path) -> None:
    """Only the connection went (the scheduler lives on): once connected again, the server
    finds the job's task still running and follows it to its end; it never runs twice."""
    executor, recorder = executor_of(ticking_runner)
    executor.submit(FakeJob("r", tmp_path / "r"))
    recorder.wait_started()
    executor._client.close()  # as a network cut would leave it
    assert recorder.done.wait(60), recorder.events
    assert recorder.kinds() == ["started", "waiting", "succeeded"], recorder.events
    assert (tmp_path / "r.runs").read_text() == "run\n"
    assert (tmp_path / "r.ticks").read_text() == "40"
