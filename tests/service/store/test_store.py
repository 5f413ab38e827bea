"""The job store, on SQLite and on PostgreSQL (the same tests for both)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sanchari_processes.errors import JobNotFoundError
from sanchari_processes.service.store import (
    FolderLock,
    JobStore,
    SqliteJobStore,
    StoreBusyError,
    open_store,
)

Opener = Callable[[], JobStore]


def test_life_cycle_and_conditional_updates(open_store: Opener) -> None:
    store = open_store()
    store.add("a", "road-extraction", {"latitude": 1.0}, owner="me")
    assert store.get("a")["status"] == "accepted" and store.get("a")["owner"] == "me"
    assert store.update("a", status="running", progress=10, task="key-a")
    assert store.get("a")["task"] == "key-a"
    assert store.update("a", only_live=False, status="dismissed")
    assert not store.update("a", status="successful")  # a dismissed job stays dismissed
    assert store.get("a")["status"] == "dismissed"
    store.add("b", "road-extraction", {})
    jobs, total = store.list(limit=1)
    assert total == 2 and [j["identifier"] for j in jobs] == ["b"]
    assert [j["identifier"] for j in store.list()[0]] == ["b", "a"]
    assert store.exists("b") and not store.exists("a", ["running"])
    store.delete("b")
    with pytest.raises(JobNotFoundError):
        store.get("b")
    with pytest.raises(ValueError, match="unknown job columns"):
        store.update("a", nonsense=1)


def test_recover_requeues_queued_fails_running_drops_sync(open_store: Opener) -> None:
    store = open_store()
    store.add("run", "p", {}, inputs={"a": 1})
    store.update("run", status="running")
    store.add("queued", "p", {}, inputs={"a": 2})
    store.add("sync", "p", {}, inputs={"a": 3}, sync=True)
    store.add("done", "p", {}, inputs={"a": 4})
    store.update("done", status="successful", location="x")
    assert store.get("queued")["started"] is None
    recovered = open_store().recover(claim="new-owner")
    assert [r["identifier"] for r in recovered.requeue] == ["queued"]
    assert recovered.requeue[0]["inputs"] == {"a": 2}
    assert recovered.interrupted == ["run"] and recovered.dropped == ["sync"]
    assert recovered.held == [] and recovered.settled == {"queued", "run", "sync"}
    failed = store.get("run")
    assert failed["status"] == "failed" and failed["error"]["status"] == 410
    assert failed["error"]["code"] == "JobInterrupted"
    assert store.get("queued")["status"] == "accepted"
    assert store.get("queued")["owner"] == "new-owner"
    assert store.get("done")["status"] == "successful"
    with pytest.raises(JobNotFoundError):
        store.get("sync")


def test_recover_leaves_jobs_whose_owner_still_holds_them(open_store: Opener) -> None:
    store = open_store()
    store.add("theirs", "p", {}, inputs={"a": 1}, owner="alive")
    store.update("theirs", status="running", task="t1")
    store.add("orphan", "p", {}, inputs={"a": 2}, owner="gone")
    store.update("orphan", status="running")
    recovered = open_store().recover(held=lambda owner: owner == "alive")
    assert [r["identifier"] for r in recovered.held] == ["theirs"]
    assert recovered.held[0]["task"] == "t1"
    assert recovered.interrupted == ["orphan"]
    assert store.get("theirs")["status"] == "running"


def test_list_filters_and_sync_jobs_hidden(open_store: Opener) -> None:
    store = open_store()
    store.add("a", "road-extraction", {})
    store.add("b", "road-extraction-gee", {})
    store.update("b", status="failed")
    store.add("c", "road-extraction", {}, sync=True)
    assert store.list()[1] == 2
    assert store.list(include_sync=True)[1] == 3
    assert [j["identifier"] for j in store.list(statuses=["failed"])[0]] == ["b"]
    assert [j["identifier"] for j in store.list(process_ids=["road-extraction"])[0]] == ["a"]
    assert store.list(statuses=["running"]) == ([], 0)


def test_list_by_creation_time_and_run_time(open_store: Opener) -> None:
    """``created`` bounds (both ends included) and run times: finished (or now) - started."""
    store = open_store()
    stamps = {
        "queued": ("2024-01-01T10:00:00.000000Z", None, None, "accepted"),
        "quick": ("2024-01-01T11:00:00.000000Z", "11:00:01", "11:00:03", "successful"),
        "slow": ("2024-01-01T12:00:00.000000Z", "12:00:00", "12:10:00", "failed"),
        "running": ("2024-01-01T13:00:00.000000Z", "13:00:00", None, "running"),
    }
    for name, (created, started, finished, status) in stamps.items():
        store.add(name, "p", {})
        values = {"created": created, "status": status}
        for key, clock in (("started", started), ("finished", finished)):
            if clock:
                values[key] = f"2024-01-01T{clock}.000000Z"
        store.update(name, only_live=False, **values)

    def ids(**filters: object) -> list[str]:
        jobs, total = store.list(**filters)  # type: ignore[arg-type]
        assert total == len(jobs)
        return [j["identifier"] for j in jobs]

    assert ids(created=("2024-01-01T11:00:00.000000Z", None)) == ["running", "slow", "quick"]
    assert ids(created=(None, "2024-01-01T11:00:00.000000Z")) == ["quick", "queued"]
    assert ids(created=("2024-01-01T11:30:00.000000Z", "2024-01-01T12:00:00.000000Z")) == ["slow"]
    assert ids(durations=(None, None)) == ["running", "slow", "quick"]  # not the queued one
    assert ids(durations=(5, None)) == ["running", "slow"]  # running: measured until now
    assert ids(durations=(None, 60)) == ["quick"]
    assert ids(durations=(1, 600), statuses=["failed"]) == ["slow"]
    page, total = store.list(limit=1, offset=1, durations=(0, None))
    assert total == 3 and [j["identifier"] for j in page] == ["slow"]


def test_expire_by_age_and_count(open_store: Opener) -> None:
    store = open_store()
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


def test_concurrent_recoveries_settle_each_job_once(open_store: Opener) -> None:
    """Two servers starting at once: the store's lock lets only one settle a job."""
    store = open_store()
    for n in range(20):
        store.add(f"q{n}", "p", {}, inputs={"n": n})
    stores = [open_store(), open_store()]
    found: list[list[str]] = [[], []]

    def recover(i: int) -> None:
        found[i] = [r["identifier"] for r in stores[i].recover(claim=f"s{i}").requeue]

    threads = [threading.Thread(target=recover, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # a requeued job stays accepted, so the second recovery claims it again: the lock makes
    # the claims whole (every job has exactly one owner, and it is one of the two)
    owners = {store.get(f"q{n}")["owner"] for n in range(20)}
    assert len(owners) == 1 and owners <= {"s0", "s1"}
    assert sorted(found[0]) == sorted(found[1]) == sorted(f"q{n}" for n in range(20))


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
    store = SqliteJobStore(path)
    recovered = store.recover()  # no inputs kept: cannot run again, so interrupted
    assert recovered.interrupted == ["q"] and recovered.requeue == []


def test_old_postgres_store_gains_new_columns(pg_url: str) -> None:
    import psycopg

    from sanchari_processes.service.store.postgresql import PostgresJobStore

    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute(
            "CREATE TABLE jobs (identifier TEXT PRIMARY KEY, process_id TEXT NOT NULL,"
            " status TEXT NOT NULL, message TEXT, progress INTEGER NOT NULL DEFAULT 0,"
            " created TEXT NOT NULL, started TEXT, finished TEXT, updated TEXT NOT NULL,"
            " location TEXT, mimetype TEXT, parameters TEXT, error TEXT)"
        )
        db.execute(
            "INSERT INTO jobs (identifier, process_id, status, created, updated)"
            " VALUES ('q', 'p', 'accepted', 'x', 'x')"
        )
    store = PostgresJobStore(pg_url)
    try:
        assert store.get("q")["owner"] is None and store.get("q")["sync"] is False
        assert store.recover().interrupted == ["q"]
    finally:
        store.close()


def test_heartbeats_say_which_servers_are_alive(pg_url: str) -> None:
    import psycopg

    from sanchari_processes.service.store.postgresql import PostgresJobStore

    store, other = PostgresJobStore(pg_url), PostgresJobStore(pg_url)
    try:
        store.beat(["a", "b"], timeout_s=30)
        assert other.live_owners(30) == {"a", "b"}
        store.forget_owners(["a"])  # a clean shutdown
        assert other.live_owners(30) == {"b"}
        with psycopg.connect(pg_url, autocommit=True) as db:  # b went silent a minute ago
            db.execute("UPDATE servers SET heartbeat = now() - interval '1 minute'")
            assert other.live_owners(30) == set() and other.live_owners(120) == {"b"}
            other.beat(["c"], timeout_s=30)  # and forgets servers silent for longer
            owners = {row[0] for row in db.execute("SELECT owner FROM servers").fetchall()}
        assert owners == {"c"}
    finally:
        store.close()
        other.close()


def test_connections_the_database_dropped_are_replaced(pg_url: str) -> None:
    """After a database restart (here: every connection of the store ended by the server) the
    next call works; a database that is gone is a 503 error, not a driver traceback."""
    import psycopg

    from sanchari_processes.service.store.postgresql import (
        PostgresJobStore,
        StoreUnavailableError,
    )

    store = PostgresJobStore(pg_url)
    try:
        store.beat(["a"], timeout_s=30)
        name = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_url, autocommit=True) as db:
            ended = db.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
        assert ended is not None and ended[0] >= 1
        assert store.live_owners(30) == {"a"}
        with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as db:
            db.execute(f"DROP DATABASE {name} WITH (FORCE)")
        with pytest.raises(StoreUnavailableError) as caught:
            store.live_owners(30)
        assert caught.value.http_status == 503 and "cannot be reached" in str(caught.value)
    finally:
        store.close()


def test_a_store_one_server_owns_keeps_no_heartbeats(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    store.beat(["a"], timeout_s=30)
    assert store.live_owners(30) == set()


def test_states_of_jobs_by_id(open_store: Opener) -> None:
    store = open_store()
    store.add("a", "p", {}, owner="me")
    store.add("b", "p", {})
    store.update("b", status="dismissed")
    assert store.states(["a", "b", "gone"]) == {"a": ("accepted", "me"), "b": ("dismissed", None)}
    assert store.states([]) == {}


def test_recovery_leaves_a_job_that_changed_after_it_was_read(pg_url: str) -> None:
    """A job dismissed (or claimed) by another server while recovery decides stays so."""
    from sanchari_processes.service.store.postgresql import PostgresJobStore

    store = PostgresJobStore(pg_url)
    try:
        store.add("run", "p", {}, inputs={"a": 1}, owner="gone")
        store.update("run", status="running")
        store.add("queued", "p", {}, inputs={"a": 2}, owner="gone")

        def held(owner: str | None) -> bool:  # meanwhile, elsewhere:
            store.update("run", only_live=False, status="dismissed")
            store.update("queued", owner="other")
            return False

        recovered = store.recover(held=held, claim="me")
        assert recovered.settled == set()
        assert store.get("run")["status"] == "dismissed"
        assert store.get("queued")["owner"] == "other"
    finally:
        store.close()


def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    from sanchari_processes.service.store.postgresql import StoreUnavailableError

    with pytest.raises(StoreUnavailableError, match=r"cannot .*job database .*:\*\*\*@") as err:
        open_store(tmp_path, "postgresql://u:secret@127.0.0.1:1/jobs?connect_timeout=2")
    assert "secret" not in err.value.message and "\n" not in err.value.message


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
