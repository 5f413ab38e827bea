"""The service on a Dask cluster and on a shared PostgreSQL store, through the web API."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from sanchari_processes.errors import SettingsError
from sanchari_processes.service.app import create_app
from sanchari_processes.service.settings import ManagerSettings
from tests.service_fixtures import service_config, ticking_runner, wait_for_job

EXECUTE = "/processes/road-extraction/execution"
ROADS = {"outputs": {"roads": {}}}
ASYNC = {"Prefer": "respond-async"}
BODY = {"inputs": {"image": "utm.tif"}, **ROADS}


def _config(catalogue: Path, jobs: Path, weights: Path, **manager: Any) -> dict:
    config = service_config(catalogue, jobs, weights, workers=1)
    config["server"]["manager"].update(manager)
    return config


def _stop(*apps: Flask) -> None:
    for app in apps:
        app.extensions["sanchari.manager"].shutdown()


def _model_cache_hits() -> int:
    """Jobs of this worker that found their model already loaded."""
    from sanchari_processes.engine.build import _runner_cached

    return _runner_cached.cache_info().hits


def test_real_jobs_on_the_cluster_keep_the_model_per_worker(
    tmp_path: Path,
    catalogue_dir: Path,
    tiny_checkpoint: Path,
    dask_scheduler: str,
    dask_client: Any,
) -> None:
    config = _config(
        catalogue_dir, tmp_path / "jobs", tiny_checkpoint, dask_scheduler=dask_scheduler
    )
    app = create_app(config)
    try:
        client = app.test_client()
        before = sum(dask_client.run(_model_cache_hits).values())
        ids = [client.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"] for _ in range(3)]
        for job_id in ids:
            status = wait_for_job(client, job_id, timeout=120)
            assert status["status"] == "successful", status
            assert status["started"] >= status["created"] and status["progress"] == 100
            roads = client.get(f"/jobs/{job_id}/results/roads")
            assert roads.status_code == 200 and roads.get_json()["type"] == "FeatureCollection"
        # three jobs on two workers: at least one found its model loaded by an earlier job
        assert sum(dask_client.run(_model_cache_hits).values()) - before >= 1
    finally:
        _stop(app)


def test_restarted_server_reattaches_to_jobs_on_the_cluster(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, dask_scheduler: str
) -> None:
    """Two jobs run (one per worker) and one waits when the server stops: the next server
    follows the running ones to their end and queues the waiting one again."""
    config = _config(
        catalogue_dir, tmp_path / "jobs", tiny_checkpoint, dask_scheduler=dask_scheduler
    )
    first = create_app(config, runner=ticking_runner)
    client = first.test_client()
    ids = [client.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"] for _ in range(3)]
    deadline = time.monotonic() + 60
    while not client.get(f"/jobs/{ids[0]}").get_json()["message"].startswith("Counting"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _stop(first)

    second = create_app(config, runner=ticking_runner)
    try:
        client = second.test_client()
        assert client.get(f"/jobs/{ids[0]}").get_json()["status"] in ("running", "successful")
        for job_id in ids:
            done = wait_for_job(client, job_id)
            assert done["status"] == "successful", done
            assert client.get(f"/jobs/{job_id}/results").status_code == 200
        runs = tmp_path / "jobs" / "jobs" / f"{ids[0]}.runs"
        assert runs.read_text() == "run\n"  # followed to its end, never started again
    finally:
        _stop(second)


def test_dismissing_a_job_on_the_cluster_stops_it(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, dask_scheduler: str
) -> None:
    config = _config(
        catalogue_dir, tmp_path / "jobs", tiny_checkpoint, dask_scheduler=dask_scheduler
    )
    app = create_app(config, runner=ticking_runner)
    try:
        client = app.test_client()
        job_id = client.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"]
        wait_for_job(client, job_id, until=("running",))
        assert client.delete(f"/jobs/{job_id}").status_code == 200
        assert client.get(f"/jobs/{job_id}").get_json()["status"] == "dismissed"
        assert not (tmp_path / "jobs" / "jobs" / job_id).exists()
        again = client.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"]
        assert wait_for_job(client, again)["status"] == "successful"
    finally:
        _stop(app)


def test_two_servers_share_one_postgres_store_and_results_folder(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, pg_url: str
) -> None:
    config = _config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, jobs_db=pg_url)
    first = create_app(config, runner=ticking_runner)
    second = None
    try:
        one = first.test_client()
        job_id = one.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"]
        wait_for_job(one, job_id, until=("running",))
        # a second server on the same database and folder: no lock, and starting it leaves
        # the first one's running job alone
        second = create_app(config, runner=ticking_runner)
        two = second.test_client()
        assert two.get(f"/jobs/{job_id}").get_json()["status"] == "running"
        assert wait_for_job(two, job_id)["status"] == "successful"
        assert two.get(f"/jobs/{job_id}/results/roads").status_code == 200
        other = two.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"]
        assert wait_for_job(one, other)["status"] == "successful"
        listed = {job["jobID"] for job in one.get("/jobs").get_json()["jobs"]}
        assert {job_id, other} <= listed
    finally:
        _stop(first, *([second] if second else []))


def test_a_restarted_server_fails_the_jobs_its_predecessor_left_running(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, pg_url: str
) -> None:
    config = _config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, jobs_db=pg_url)
    first = create_app(config, runner=ticking_runner)
    job_id = first.test_client().post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"]
    wait_for_job(first.test_client(), job_id, until=("running",))
    _stop(first)  # its local worker (and the job) die with it
    second = create_app(config, runner=ticking_runner)
    try:
        status = second.test_client().get(f"/jobs/{job_id}").get_json()
        assert status["status"] == "failed" and "interrupted by a restart" in status["message"]
    finally:
        _stop(second)


def _coordinating(catalogue: Path, jobs: Path, weights: Path, pg_url: str) -> dict:
    """Servers on one PostgreSQL store with local workers, beating every second."""
    return _config(catalogue, jobs, weights, jobs_db=pg_url, heartbeat_s=1, server_timeout_s=3)


@contextlib.contextmanager
def _two_servers(config: dict) -> Iterator[tuple[Flask, Flask]]:
    """Two servers on one configuration (one store, one jobs folder), stopped after."""
    first = create_app(config, runner=ticking_runner)
    second = create_app(config, runner=ticking_runner)
    try:
        yield first, second
    finally:
        _stop(first, second)


def _manager(app: Flask) -> Any:
    return app.extensions["sanchari.manager"]


def _wait_counting(client: Any, job_id: str) -> None:
    """Until the job runs its steps (its worker has started it)."""
    deadline = time.monotonic() + 60
    while not client.get(f"/jobs/{job_id}").get_json()["message"].startswith("Counting"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _crash(app: Flask) -> None:
    """What other servers see of a crash: the heartbeat stops, the workers die, the job
    records stay as they were (nothing is shut down cleanly)."""
    manager = _manager(app)
    manager._recovery.stop()
    manager._executor.shutdown()


def test_a_job_dismissed_on_another_server_stops_where_it_runs(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, pg_url: str
) -> None:
    config = _coordinating(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, pg_url)
    with _two_servers(config) as (first, second):
        one, two = first.test_client(), second.test_client()
        job_id = one.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"]
        _wait_counting(two, job_id)
        assert two.delete(f"/jobs/{job_id}").status_code == 200
        deadline = time.monotonic() + 5  # the first server looks every second
        while _manager(first)._executor.active():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        ticks = tmp_path / "jobs" / "jobs" / f"{job_id}.ticks"
        stopped = ticks.read_text()
        time.sleep(0.5)
        assert ticks.read_text() == stopped and int(stopped) < 40
        assert one.get(f"/jobs/{job_id}").get_json()["status"] == "dismissed"
        assert not (tmp_path / "jobs" / "jobs" / job_id).exists()


def test_the_jobs_of_a_server_that_stopped_beating_are_settled_once(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, pg_url: str
) -> None:
    """Its running job fails as interrupted and its queued job runs on the other server, once."""
    config = _coordinating(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, pg_url)
    with _two_servers(config) as (first, second):
        one, two = first.test_client(), second.test_client()
        running, queued = (
            one.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"] for _ in range(2)
        )
        _wait_counting(one, running)
        assert one.get(f"/jobs/{queued}").get_json()["status"] == "accepted"  # one worker
        _crash(first)
        failed = wait_for_job(two, running, timeout=30)
        assert failed["status"] == "failed" and "interrupted" in failed["message"]
        assert wait_for_job(two, queued)["status"] == "successful"
        assert _manager(second).store.get(queued)["owner"] == _manager(second)._executor.owner
        folder = tmp_path / "jobs" / "jobs"
        assert (folder / f"{running}.runs").read_text() == "run\n"
        assert (folder / f"{queued}.runs").read_text() == "run\n"
        assert two.get(f"/jobs/{queued}/results/roads").status_code == 200


def test_a_live_servers_jobs_are_never_taken_over(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, pg_url: str
) -> None:
    """Two 4 s jobs on one worker outlive the 3 s timeout: the beating server keeps both."""
    config = _coordinating(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, pg_url)
    with _two_servers(config) as (first, second):
        one, two = first.test_client(), second.test_client()
        ids = [one.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"] for _ in range(2)]
        owner = _manager(first)._executor.owner
        for job_id in ids:
            assert wait_for_job(two, job_id)["status"] == "successful"
            assert _manager(second).store.get(job_id)["owner"] == owner
            runs = tmp_path / "jobs" / "jobs" / f"{job_id}.runs"
            assert runs.read_text() == "run\n"


def test_synchronous_execution_on_the_cluster(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, dask_scheduler: str
) -> None:
    config = _config(
        catalogue_dir, tmp_path / "jobs", tiny_checkpoint, dask_scheduler=dask_scheduler
    )
    app = create_app(config)
    try:
        answer = app.test_client().post(EXECUTE, json=BODY)
        assert answer.status_code == 200, answer.get_json()
        collection = answer.get_json()
        assert collection["type"] == "FeatureCollection"
        assert collection["sanchari"]["job"]["process"] == "road-extraction"
    finally:
        _stop(app)


def test_servers_sharing_postgres_and_a_cluster_dismiss_each_others_jobs(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, pg_url: str, dask_scheduler: str
) -> None:
    config = _config(
        catalogue_dir,
        tmp_path / "jobs",
        tiny_checkpoint,
        jobs_db=pg_url,
        dask_scheduler=dask_scheduler,
    )
    with _two_servers(config) as (first, second):
        one, two = first.test_client(), second.test_client()
        job_id = one.post(EXECUTE, json=BODY, headers=ASYNC).get_json()["jobID"]
        wait_for_job(two, job_id, until=("running",))
        ticks = tmp_path / "jobs" / "jobs" / f"{job_id}.ticks"
        assert two.delete(f"/jobs/{job_id}").status_code == 200
        time.sleep(1.5)  # the task looks at its cancel flag at least every 0.5 s
        stopped = ticks.read_text()
        time.sleep(1.0)
        assert ticks.read_text() == stopped and int(stopped) < 40
        assert one.get(f"/jobs/{job_id}").get_json()["status"] == "dismissed"


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"dask_scheduler": "localhost:8786"}, "SANCHARI_DASK_SCHEDULER"),
        ({"dask_scheduler": "http://x:1"}, "tcp://HOST:PORT"),
        ({"jobs_db": "sqlite:///jobs.db"}, "SANCHARI_JOBS_DB"),
        ({"heartbeat_s": "5", "server_timeout_s": "6"}, "server_timeout_s >= 2"),
        ({"heartbeat_s": "0"}, "heartbeat_s >= 1"),
    ],
)
def test_bad_cluster_settings_are_one_clear_error(block: dict, match: str) -> None:
    with pytest.raises(SettingsError, match=match) as err:
        ManagerSettings.from_mapping(block)
    assert "\n" not in err.value.message


def test_cluster_settings_default_to_one_machine() -> None:
    settings = ManagerSettings.from_mapping({"jobs_db": "", "dask_scheduler": ""})
    assert settings.jobs_db is None and settings.dask_scheduler is None
    tcp = ManagerSettings.from_mapping({"dask_scheduler": "tcp://10.0.0.5:8786"})
    assert tcp.dask_scheduler == "tcp://10.0.0.5:8786"
