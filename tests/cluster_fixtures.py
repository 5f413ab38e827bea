"""Fixtures for the shared job store (PostgreSQL) and the Dask executor.

PostgreSQL comes from ``SANCHARI_TEST_PG_URL`` (``.ci/run`` starts one): each test gets a fresh
database, dropped afterwards; without the variable those tests skip. Dask comes from
``SANCHARI_TEST_DASK_SCHEDULER`` (``.ci/run`` starts a scheduler and two workers), else from a
throwaway local cluster of two worker processes, so the executor is always tested for real.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sanchari_processes.service.store import JobStore, SqliteJobStore

PG_ENV = "SANCHARI_TEST_PG_URL"
DASK_ENV = "SANCHARI_TEST_DASK_SCHEDULER"


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database (dropped after the test)."""
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(f"{PG_ENV} is not set (.ci/run starts a PostgreSQL)")
    import psycopg

    name = f"sanchari_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    try:
        yield urlsplit(admin)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], JobStore]]:
    """Opens the test's store (every call opens it again, as a restarted server would)."""
    opened: list[JobStore] = []

    def sqlite() -> JobStore:
        return SqliteJobStore(tmp_path / "jobs.sqlite3")

    factory = sqlite
    if request.param == "postgresql":
        from sanchari_processes.service.store.postgresql import PostgresJobStore

        url = request.getfixturevalue("pg_url")

        def factory() -> JobStore:
            return PostgresJobStore(url)

    def opener() -> JobStore:
        opened.append(factory())
        return opened[-1]

    yield opener
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """The address of a Dask scheduler with two single-threaded worker processes (a local
    cluster's scratch space is a temporary folder, removed afterwards)."""
    address = os.environ.get(DASK_ENV)
    if address:
        yield address
        return
    import dask
    from distributed import LocalCluster

    with (
        tempfile.TemporaryDirectory(prefix="sanchari-dask-", ignore_cleanup_errors=True) as scratch,
        dask.config.set({"temporary-directory": scratch}),  # the scheduler's scratch space too
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            local_directory=scratch,
        ) as cluster,
    ):
        yield cluster.scheduler_address


@pytest.fixture()
def dask_client(dask_scheduler: str) -> Iterator[object]:
    from distributed import Client

    with Client(dask_scheduler, set_as_default=False) as client:
        yield client
