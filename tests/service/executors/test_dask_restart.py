"""Jobs outlive a restart of their Dask scheduler: on a cluster of the tests' own (real
``dask scheduler`` and ``dask worker`` processes), killed and started again mid-job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

pytest.importorskip("distributed")

from sanchari_processes.errors import JobNotFoundError
from sanchari_processes.service.app import create_app
from sanchari_processes.service.events import JobEvents
from sanchari_processes.service.executors.base import JobFailure
from sanchari_processes.service.executors.dask import (
    WAITING,
    DaskExecutor,
    attempt_of,
    task_key,
)
from sanchari_processes.service.settings import ManagerSettings
from sanchari_processes.service.store import SqliteJobStore
from tests.cluster_fixtures import OwnCluster
from tests.service_fixtures import (
    FakeJob,
    Recorder,
    late_road_runner,
    service_config,
    ticking_runner,
    wait_for_job,
)

EXECUTE = "/processes/road-extraction/execution"
ASYNC = {"Prefer": "respond-async"}
BODY = {"inputs": {"image": "utm.tif"}, "outputs": {"roads": {}}}


@pytest.fixture()
def app_of(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, own_cluster: OwnCluster
) -> Iterator[Any]:
    """Makes apps on the module's own cluster (all share the test's jobs folder)."""
    made: list[Flask] = []

    def make(runner: Any = ticking_runner, **manager: Any) -> Flask:
        config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
        config["server"]["manager"].update(dask_scheduler=own_cluster.address, **manager)
        made.append(create_app(config, runner=runner))
        return made[-1]

    yield make
    for app in made:
        app.extensions["sanchari.manager"].shutdown()


def _running(client: FlaskClient, job_id: str, timeout: float = 60) -> None:
    """Wait until the job's runner counts (it runs on a worker)."""
    deadline = time.monotonic() + timeout
    while client.get(f"/jobs/{job_id}").get_json()["message"] != "Counting":
        assert time.monotonic() < deadline, client.get(f"/jobs/{job_id}").get_json()
        time.sleep(0.05)


def _waiting(client: FlaskClient, job_id: str, timeout: float = 30) -> dict:
    """Wait until the job says it waits for the cluster; the service answers meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        began = time.monotonic()
        status = client.get(f"/jobs/{job_id}").get_json()
        assert client.get("/").status_code == 200
        assert time.monotonic() - began < 5  # nothing waits for the scheduler
        if status["message"] == WAITING:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def _runs(tmp_path: Path, job_id: str) -> str:
    return (tmp_path / "jobs" / "jobs" / f"{job_id}.runs").read_text()


def _results(client: FlaskClient, job_id: str) -> tuple[list, Any]:
    """A job's roads and its probability map."""
    from rasterio.io import MemoryFile

    roads = client.get(f"/jobs/{job_id}/results/roads")
    probability = client.get(f"/jobs/{job_id}/results/probability")
    assert roads.status_code == probability.status_code == 200
    with MemoryFile(probability.data) as memory, memory.open() as raster:
        return roads.get_json()["features"], raster.read()


@pytest.mark.slow
def test_a_job_survives_a_scheduler_restart_with_the_results_of_an_undisturbed_run(
    app_of: Any, own_cluster: OwnCluster, tmp_path: Path
) -> None:
    """Killed mid-job with its worker, the scheduler comes back: the running job and the one
    queued behind it, which waited meanwhile, run and give what an undisturbed run gives."""
    client = app_of(late_road_runner).test_client()
    body = {**BODY, "outputs": {"roads": {}, "probability": {}}}
    job_id, queued = (
        client.post(EXECUTE, json=body, headers=ASYNC).get_json()["jobID"] for _ in range(2)
    )
    _running(client, job_id)
    own_cluster.kill()
    assert _waiting(client, job_id)["status"] == "running"
    assert _waiting(client, queued)["status"] == "accepted"
    own_cluster.start()
    for done in (wait_for_job(client, job_id, timeout=120), wait_for_job(client, queued)):
        assert done["status"] == "successful", done
    assert _runs(tmp_path, job_id) == "run\n" * 2  # stopped by the restart, run again once
    assert _runs(tmp_path, queued) == "run\n"
    undisturbed = client.post(EXECUTE, json=body, headers=ASYNC).get_json()["jobID"]
    assert wait_for_job(client, undisturbed, timeout=120)["status"] == "successful"
    roads, probability = _results(client, undisturbed)
    assert probability.max() > 0
    for disturbed in (job_id, queued):
        same_roads, same_probability = _results(client, disturbed)
        assert same_roads == roads
        assert np.array_equal(same_probability, probability)


def test_jobs_wait_for_a_restarted_scheduler_and_a_dismissal_sticks(
    app_of: Any, own_cluster: OwnCluster, tmp_path: Path
) -> None:
    """One job runs on the cluster's worker and one is queued when the scheduler is killed
    with its worker; both wait, the queued one is dismissed meanwhile. Once the cluster is
    back, the running one runs again to its end and the dismissed one never runs."""
    client = app_of().test_client()
    running, queued = (
        client.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"] for _ in range(2)
    )
    _running(client, running)
    own_cluster.kill()
    assert _waiting(client, running)["status"] == "running"
    assert _waiting(client, queued)["status"] == "accepted"
    began = time.monotonic()
    assert client.delete(f"/jobs/{queued}").status_code == 200
    assert time.monotonic() - began < 5
    own_cluster.start()
    done = wait_for_job(client, running, timeout=60)
    assert done["status"] == "successful", done
    assert client.get(f"/jobs/{running}/results").status_code == 200
    assert _runs(tmp_path, running) == "run\n" * 2  # stopped by the restart, run again once
    assert (tmp_path / "jobs" / "jobs" / f"{running}.ticks").read_text() == "40"
    status = client.get(f"/jobs/{queued}").get_json()
    assert status["status"] == "dismissed", status
    assert not (tmp_path / "jobs" / "jobs" / f"{queued}.runs").exists()  # never submitted again
    assert not (tmp_path / "jobs" / "jobs" / queued).exists()


def test_a_job_fails_once_its_attempts_are_spent(
    app_of: Any, own_cluster: OwnCluster, tmp_path: Path
) -> None:
    client = app_of(cluster_retries=0).test_client()
    job_id = client.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"]
    _running(client, job_id)
    own_cluster.kill()
    _waiting(client, job_id)
    own_cluster.start()
    done = wait_for_job(client, job_id, timeout=60)
    assert done["status"] == "failed", done
    assert "Dask cluster lost this job 1 time(s)" in done["message"]
    assert "0 re-submission(s) allowed" in done["message"]
    assert _runs(tmp_path, job_id) == "run\n"


@pytest.mark.slow
def test_a_server_restarted_while_the_scheduler_is_away_waits_for_it(
    app_of: Any, own_cluster: OwnCluster, tmp_path: Path
) -> None:
    first = app_of()
    client = first.test_client()
    job_id = client.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"]
    _running(client, job_id)
    first.extensions["sanchari.manager"].shutdown()
    own_cluster.kill()
    began = time.monotonic()
    client = app_of().test_client()
    assert client.get("/").status_code == 200
    assert time.monotonic() - began < 30  # one connection try, then it waits in the background
    assert _waiting(client, job_id)["status"] == "running"
    own_cluster.start()
    done = wait_for_job(client, job_id, timeout=120)
    assert done["status"] == "successful", done
    assert _runs(tmp_path, job_id) == "run\n" * 2


def test_an_unreachable_scheduler_is_waited_for(tmp_path: Path) -> None:
    """No scheduler at the address: the executor starts, queues jobs that wait, and neither
    submitting nor cancelling waits for the scheduler."""
    recorder = Recorder()
    executor = DaskExecutor(recorder, ticking_runner, "tcp://127.0.0.1:1", connect_timeout_s=1)
    executor.start()
    try:
        began = time.monotonic()
        assert executor.submit(FakeJob("w", tmp_path / "w")) == task_key("w")
        assert executor.active() == {"w"} and not executor.connected
        assert executor.cancel("w") and not executor.active()
        assert time.monotonic() - began < 1
        assert recorder.events == [("waiting", "w", WAITING)]
    finally:
        executor.shutdown()


def test_attempts_are_counted_in_the_task_key() -> None:
    assert [attempt_of(task_key("j", n)) for n in (1, 2, 7)] == [1, 2, 7]
    assert task_key("j") == "sanchari-job-j" and attempt_of("sanchari-job-j") == 1


def test_a_lost_job_is_submitted_again_until_its_retries_are_spent(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    reruns: list[tuple[str, int]] = []
    settings = ManagerSettings(store_dir=tmp_path, cluster_retries=2)
    callbacks = type("NoCallbacks", (), {"final": lambda *a: None, "progress": lambda *a: None})
    sync = type("NoSync", (), {"wake": lambda *a: None})
    events = JobEvents(
        settings,
        lambda: store,
        sync(),  # type: ignore[arg-type]
        callbacks(),  # type: ignore[arg-type]
        rerun=lambda record, attempt: reruns.append((record["identifier"], attempt)),
    )
    for job_id in ("a", "b", "c", "q"):
        store.add(job_id, "road-extraction", {})
    for job_id in ("a", "b"):
        store.update(job_id, status="running", progress=40)
    events.job_lost("a", 1)
    events.job_lost("b", 2)
    events.job_lost("q", 2)  # never started: queued again, no attempt spent
    store.update("c", status="dismissed")
    events.job_lost("c", 1)
    events.job_lost("gone", 1)
    assert reruns == [("a", 2), ("b", 3), ("q", 2)]
    assert store.get("a")["message"] == "Re-submitted after the cluster restarted (attempt 2 of 3)"
    assert store.get("b")["status"] == "running" and store.get("b")["progress"] == 0
    assert store.get("q")["status"] == "accepted"
    assert store.get("c")["status"] == "dismissed"
    events.job_lost("b", 3)
    failed = store.get("b")
    assert failed["status"] == "failed" and failed["error"]["status"] == 410
    assert "lost this job 3 time(s)" in failed["message"]
    assert reruns == [("a", 2), ("b", 3), ("q", 2)]
    with pytest.raises(JobNotFoundError):
        store.get("gone")
    assert JobFailure(**failed["error"]).code == "JobInterrupted"
    store.close()


def test_cluster_retries_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from sanchari_processes.errors import SettingsError
    from sanchari_processes.service.settings import load_config
    from sanchari_processes.settings import DEFAULT_CONFIG

    assert ManagerSettings.from_mapping({}).cluster_retries == 3
    monkeypatch.setenv("SANCHARI_CLUSTER_RETRIES", "5")
    manager = load_config(DEFAULT_CONFIG)["server"]["manager"]
    assert ManagerSettings.from_mapping(manager).cluster_retries == 5
    for bad in ("-1", "many"):
        with pytest.raises(SettingsError, match="cluster_retries"):
            ManagerSettings.from_mapping({"cluster_retries": bad})
