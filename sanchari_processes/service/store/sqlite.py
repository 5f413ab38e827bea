"""The job store in one SQLite file: the default, for one server per jobs folder.

SQLite (stdlib, WAL mode, a connection per call) is safe across the web server's threads and the
executor's event thread. The file belongs to one server: :class:`FolderLock` is taken on the
jobs folder before the store is opened, and the kernel drops it when that server dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sanchari_processes.errors import SanchariError
from sanchari_processes.service.store.base import ADDED_COLUMNS, INDEXES, SCHEMA, JobStore


class SqliteJobStore(JobStore):
    """Job records in one SQLite file (state: the file at ``path``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                db.execute(statement)
            have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for column, kind in ADDED_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
            for statement in INDEXES:
                db.execute(statement)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


class StoreBusyError(SanchariError):
    """Another server owns this jobs folder."""


class FolderLock:
    """An exclusive lock on a jobs folder, held for the server's lifetime (``flock``).

    The kernel drops it when the process dies, however it dies, so a crash never leaves a
    stale lock; the file holds the owner's pid for the error message.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "server.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreBusyError(
                f"another sanchari server (pid {owner}) is using the jobs folder {self.folder}; "
                "stop it first, or give this one its own folder (SANCHARI_JOBS_DIR)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor releases the flock

    @property
    def held(self) -> bool:
        return self._fd is not None
