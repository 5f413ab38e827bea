"""Fixtures for the shared job store (PostgreSQL) and the Dask executor.

PostgreSQL comes from ``SANCHARI_TEST_PG_URL`` (``.ci/run`` starts one): each test gets a fresh
database, dropped afterwards; without the variable those tests skip. Dask comes from
``SANCHARI_TEST_DASK_SCHEDULER`` (``.ci/run`` starts a scheduler and two workers), else from a
throwaway local cluster of two worker processes, so the executor is always tested for real.
Tests that stop the scheduler start their own (:class:`OwnCluster`: ``dask scheduler`` and
``dask worker`` processes on 127.0.0.1, as ``.ci/services.sh`` does), never the shared one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
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


class OwnCluster:
    """A ``dask scheduler`` and its ``dask worker`` processes on a free port of 127.0.0.1, which
    a test may kill and start again at the same address (workers import this checkout)."""

    def __init__(self, folder: Path, workers: int = 1) -> None:
        self.folder = folder
        self.workers = workers
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{self.port}"
        self._scheduler: subprocess.Popen | None = None
        self._workers: list[subprocess.Popen] = []
        root = str(Path(__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH")
        self._env = {**os.environ, "PYTHONPATH": root + (f":{path}" if path else "")}
        self._env["OMP_NUM_THREADS"] = "1"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            ["dask", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env,
            start_new_session=True,  # its own process group: a nanny's worker goes with it
        )

    def start(self) -> None:
        """Start the scheduler, then its workers, and wait until they are all there."""
        from distributed import Client

        self._scheduler = self._spawn(
            "scheduler",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dashboard-address",
            ":0",
        )
        deadline = time.monotonic() + 60
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                break
            assert self._scheduler.poll() is None, (self.folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        for index in range(self.workers):
            self._workers.append(
                self._spawn(
                    f"worker-{index}",
                    "worker",
                    self.address,
                    "--name",
                    f"worker-{index}",
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--dashboard-address",
                    ":0",
                    "--local-directory",
                    str(self.folder / f"worker-{index}"),
                )
            )
        with Client(self.address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(self.workers, timeout=120)

    def kill(self) -> None:
        """Kill the scheduler (SIGKILL), then its workers, as a crash and a supervisor would."""
        for process in [self._scheduler, *self._workers]:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
        self._scheduler, self._workers = None, []

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnCluster]:
    """A cluster of this module's own (one worker), which its tests may kill and restart."""
    if shutil.which("dask") is None:
        pytest.skip("the dask command is not installed")
    cluster = OwnCluster(tmp_path_factory.mktemp("own-dask"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.kill()
