"""The SQLite job store."""

from __future__ import annotations

from pathlib import Path

import pytest

from sanchari_processes.errors import JobNotFoundError
from sanchari_processes.service.store import JobStore


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


def test_restart_fails_live_jobs_and_keeps_others(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.add("run", "p", {})
    store.update("run", status="running")
    store.add("done", "p", {})
    store.update("done", status="successful", location="x")
    reopened = JobStore(tmp_path / "jobs.sqlite3")
    assert reopened.fail_interrupted() == ["run"]
    assert reopened.get("run")["status"] == "failed"
    assert reopened.get("run")["error"]["status"] == 500
    assert reopened.get("done")["status"] == "successful"
