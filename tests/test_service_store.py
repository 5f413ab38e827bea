"""The SQLite job store."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from sanchari_processes.errors import JobNotFoundError
from sanchari_processes.service.store import FolderLock, JobStore, StoreBusyError


def test_life_cycle_and_conditional_updates(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.add("a", "road-extraction", {"latitude": 1.0})
    assert store.get("a")["status"] == "accepted"
    assert store.update("a", status="running", progress=10)
    assert store.update("a", only_live=False, status="dismissed")
    assert not store.update("a", status="successful")  # a dismissed job stays dismissed
    assert store.get("a")["status"] == "dismissed"
    store.add("b", "road-extraction", {})
    jobs, total = store.list(limit=1)
    assert total == 2 and [j["identifier"] for j in jobs] == ["b"]
    store.delete("b")
    with pytest.raises(JobNotFoundError):
        store.get("b")


def test_recover_requeues_queued_fails_running_drops_sync(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.add("run", "p", {}, inputs={"a": 1})
    store.update("run", status="running")
    store.add("queued", "p", {}, inputs={"a": 2})
    store.add("sync", "p", {}, inputs={"a": 3}, sync=True)
    store.add("done", "p", {}, inputs={"a": 4})
    store.update("done", status="successful", location="x")
    assert store.get("queued")["started"] is None
    recovered = JobStore(tmp_path / "jobs.sqlite3").recover()
    assert [r["identifier"] for r in recovered.requeue] == ["queued"]
    assert recovered.requeue[0]["inputs"] == {"a": 2}
    assert recovered.interrupted == ["run"] and recovered.dropped == ["sync"]
    failed = store.get("run")
    assert failed["status"] == "failed" and failed["error"]["status"] == 410
    assert failed["error"]["code"] == "JobInterrupted"
    assert store.get("queued")["status"] == "accepted"
    assert store.get("done")["status"] == "successful"
    with pytest.raises(JobNotFoundError):
        store.get("sync")


def test_list_filters_and_sync_jobs_hidden(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.add("a", "road-extraction", {})
    store.add("b", "road-extraction-gee", {})
    store.update("b", status="failed")
    store.add("c", "road-extraction", {}, sync=True)
    assert store.list()[1] == 2
    assert [j["identifier"] for j in store.list(statuses=["failed"])[0]] == ["b"]
    assert [j["identifier"] for j in store.list(process_ids=["road-extraction"])[0]] == ["a"]
    assert store.list(statuses=["running"]) == ([], 0)


def test_expire_by_age_and_count(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    for name, finished in [
        ("old", "2020-01-01T00:00:00.000000Z"),
        ("mid", "2030-01-01T00:00:00.000000Z"),
        ("new", "2031-01-01T00:00:00.000000Z"),
    ]:
        store.add(name, "p", {})
        store.update(name, status="successful", finished=finished)
    store.add("live", "p", {})
    assert store.expire("2025-01-01T00:00:00.000000Z", keep=100) == ["old"]
    assert store.expire("2025-01-01T00:00:00.000000Z", keep=1) == ["mid"]
    assert store.identifiers() == {"new", "live"}


def test_old_store_gains_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE jobs (identifier TEXT PRIMARY KEY, process_id TEXT NOT NULL,"
            " status TEXT NOT NULL, message TEXT, progress INTEGER NOT NULL DEFAULT 0,"
            " created TEXT NOT NULL, started TEXT, finished TEXT, updated TEXT NOT NULL,"
            " location TEXT, mimetype TEXT, parameters TEXT, error TEXT);"
            "INSERT INTO jobs VALUES ('q', 'p', 'accepted', '', 0, 'x', 'x', NULL, 'x', NULL,"
            " NULL, NULL, NULL);"
        )
    store = JobStore(path)
    recovered = store.recover()  # no inputs kept: cannot run again, so interrupted
    assert recovered.interrupted == ["q"] and recovered.requeue == []


def test_folder_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first = FolderLock(tmp_path / "jobs")
    first.acquire()
    with pytest.raises(StoreBusyError, match=f"pid {os.getpid()}"):
        FolderLock(tmp_path / "jobs").acquire()
    first.release()
    second = FolderLock(tmp_path / "jobs")
    second.acquire()
    assert second.held
    second.release()
