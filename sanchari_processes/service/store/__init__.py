"""The job store: one small interface (:mod:`.base`) on SQLite (default) or PostgreSQL (shared).

:func:`open_store` picks the implementation from the configuration, in this one place; the
PostgreSQL driver is imported only when a database URL is configured.
"""

from __future__ import annotations

from pathlib import Path

from sanchari_processes.service.store.base import (
    FINAL,
    INTERRUPTED,
    LIVE,
    STATUSES,
    JobStore,
    Recovered,
    now,
    stamp_of,
)
from sanchari_processes.service.store.sqlite import FolderLock, SqliteJobStore, StoreBusyError

__all__ = [
    "FINAL",
    "INTERRUPTED",
    "LIVE",
    "STATUSES",
    "FolderLock",
    "JobStore",
    "Recovered",
    "SqliteJobStore",
    "StoreBusyError",
    "now",
    "open_store",
    "stamp_of",
]


def open_store(folder: Path, url: str | None = None) -> JobStore:
    """The PostgreSQL store at ``url`` when given, else ``jobs.sqlite3`` in ``folder``."""
    if url:
        from sanchari_processes.service.store.postgresql import PostgresJobStore

        return PostgresJobStore(url)
    return SqliteJobStore(Path(folder) / "jobs.sqlite3")
