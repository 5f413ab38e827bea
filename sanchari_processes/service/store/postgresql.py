"""The job store on PostgreSQL, so several web servers can share one set of jobs.

The records and SQL are :class:`~sanchari_processes.service.store.base.JobStore`'s; this adds a
small connection pool (psycopg 3), ``?`` marks rewritten as ``%s``, and the store's lock as a
transaction-scoped advisory lock, taken for schema changes, recovery and expiry so two servers
starting at once never race. The schema is created, or brought up to date, on open. Each server
keeps a heartbeat in ``servers`` (times are the database's, so servers' clocks may differ): a
server whose heartbeat stopped is gone, and the others settle its jobs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from sanchari_processes.errors import BackendUnavailableError, SettingsError
from sanchari_processes.service.store.base import ADDED_COLUMNS, INDEXES, SCHEMA, JobStore

#: The advisory lock key of the job store (any constant shared by every server).
_LOCK_KEY = 0x5A4C_0B5
#: Connections kept per server (HTTP threads plus the executor's and janitor's).
_POOL_SIZE = 8
#: Seconds to wait for the database on open and for a free connection.
_CONNECT_TIMEOUT_S = 10
#: Servers (their job owner tags) and when each last said it was alive.
_SERVERS = """CREATE TABLE IF NOT EXISTS servers (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat TIMESTAMPTZ NOT NULL
)"""
#: ``heartbeat`` is younger than ``%s`` seconds.
_FRESH = "heartbeat >= now() - %s::float8 * interval '1 second'"


class StoreUnavailableError(BackendUnavailableError):
    """The job database cannot be reached or refused us."""


def redacted(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class PostgresJobStore(JobStore):
    """Job records in PostgreSQL (state: a pool of connections to ``url``)."""

    shared = True

    def __init__(self, url: str) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError:
            raise SettingsError(
                "SANCHARI_JOBS_DB needs psycopg: pip install 'sanchari-processes[postgresql]'"
            ) from None
        self.url = url
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S) as db:
                _migrate(db)
        except (psycopg.Error, OSError) as exc:
            raise StoreUnavailableError(
                f"cannot use the job database {redacted(url)}: {_first_line(exc)}"
            ) from None
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=_POOL_SIZE,
            kwargs={"autocommit": True, "row_factory": dict_row},
            timeout=_CONNECT_TIMEOUT_S,
            # a connection the database dropped (it restarted) is replaced before it is lent
            check=ConnectionPool.check_connection,
            open=True,
        )
        self._lost: tuple[type[BaseException], ...] = (psycopg.OperationalError, PoolTimeout)

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        with self._unavailable(), self._pool.connection() as db:
            yield db

    @contextmanager
    def _locked(self) -> Iterator[Any]:
        with self._unavailable(), self._pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            yield db

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        """A database that is down or went away mid-query is a 503 for the caller, not a 500."""
        try:
            yield
        except self._lost as exc:
            raise StoreUnavailableError(
                f"the job database {redacted(self.url)} cannot be reached: {_first_line(exc)}"
            ) from None

    def _run(self, db: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        return db.execute(sql.replace("?", "%s"), tuple(params))

    def beat(self, owners: Collection[str], timeout_s: float) -> None:
        host, pid = socket.gethostname(), os.getpid()
        with self._connect() as db:
            for owner in owners:
                db.execute(
                    "INSERT INTO servers (owner, host, pid, heartbeat) VALUES (%s, %s, %s, now())"
                    " ON CONFLICT (owner) DO UPDATE SET heartbeat = now()",
                    (owner, host, pid),
                )
            db.execute(f"DELETE FROM servers WHERE NOT {_FRESH}", (timeout_s,))

    def forget_owners(self, owners: Collection[str]) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM servers WHERE owner = ANY(%s)", (list(owners),))

    def live_owners(self, timeout_s: float) -> set[str]:
        with self._connect() as db:
            rows = db.execute(f"SELECT owner FROM servers WHERE {_FRESH}", (timeout_s,))
            return {row["owner"] for row in rows.fetchall()}

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()


def _migrate(db: Any) -> None:
    """Create the schema, or bring it up to date, holding the store's lock."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        for statement in SCHEMA:
            db.execute(statement)
        for column, kind in ADDED_COLUMNS.items():
            db.execute(f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {column} {kind}")
        for statement in INDEXES:
            db.execute(statement)
        db.execute(_SERVERS)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
