"""The job store's interface, and the records and SQL every implementation shares.

Both stores keep the same records with the same SQL (written with ``?`` marks); an
implementation only says how to connect and how to take the store's lock: SQLite
(:mod:`~sanchari_processes.service.store.sqlite`, one server) or PostgreSQL
(:mod:`~sanchari_processes.service.store.postgresql`, shared by servers). Status changes from
workers are conditional on the job still being live, so a late "finished" event can never
resurrect a dismissed job. At start a server settles what a previous run left
(:meth:`JobStore.recover`) — only jobs whose owner is gone — as servers sharing a store do for
those whose heartbeat stopped; finished jobs expire (:meth:`JobStore.expire`) so the store stays
bounded.
"""

from __future__ import annotations

import builtins
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sanchari_processes.errors import JobNotFoundError

LIVE = ("accepted", "running")
FINAL = ("successful", "failed", "dismissed")
STATUSES = LIVE + FINAL
#: Why a job that was running when the server stopped has no results (410: resubmit it).
INTERRUPTED: dict[str, Any] = {
    "code": "JobInterrupted",
    "status": 410,
    "message": "interrupted by a restart of the server while it was running; submit it again",
}
#: The columns of a job record.
COLUMNS = (
    "identifier",
    "process_id",
    "status",
    "message",
    "progress",
    "created",
    "started",
    "finished",
    "updated",
    "location",
    "mimetype",
    "parameters",
    "error",
    "inputs",
    "sync",
    "owner",
    "task",
)
#: The first release's table (every store runs it on open).
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
    identifier TEXT PRIMARY KEY,
    process_id TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    progress INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    updated TEXT NOT NULL,
    location TEXT,
    mimetype TEXT,
    parameters TEXT,
    error TEXT
)""",
    "CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created)",
)
#: Columns added after the first release (older stores get them on open). ``owner`` names the
#: executor holding a live job, ``task`` its key there (a Dask task, for re-attaching).
ADDED_COLUMNS = {
    "inputs": "TEXT",
    "sync": "INTEGER NOT NULL DEFAULT 0",
    "owner": "TEXT",
    "task": "TEXT",
}
#: Indexes on the columns added later (run after :data:`ADDED_COLUMNS`).
INDEXES = ("CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (status, finished)",)
#: A job still as recovery read it: same status and owner (``?`` marks: id, status, owner).
_AS_READ = "WHERE identifier = ? AND status = ? AND COALESCE(owner, '') = ?"
#: "No limit" for LIMIT clauses, in a form both databases accept.
_NO_LIMIT = 2**62


#: How stamps are written: ISO 8601 in UTC, to the microsecond, so they sort as text.
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def now() -> str:
    """Timestamps as pygeoapi writes them (ISO 8601, UTC)."""
    return datetime.now(UTC).strftime(_STAMP)


def stamp_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


def _parse_stamp(stamp: str) -> datetime:
    return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Recovered:
    """What :meth:`JobStore.recover` found: jobs to run again, jobs failed as interrupted,
    sync jobs dropped, and live jobs left alone because their owner still holds them."""

    requeue: list[dict]
    interrupted: list[str]
    dropped: list[str]
    held: list[dict]

    @property
    def settled(self) -> set[str]:
        return {r["identifier"] for r in self.requeue} | set(self.interrupted) | set(self.dropped)


class JobStore(ABC):
    """Job records; subclasses say how to connect (``?`` marks) and how to lock the store."""

    #: Whether several servers may use this store at once (else one owns it: FolderLock).
    shared = False

    @abstractmethod
    @contextmanager
    def _connect(self) -> Iterator[Any]:
        """A connection in autocommit mode whose rows read as mappings."""

    @abstractmethod
    @contextmanager
    def _locked(self) -> Iterator[Any]:
        """A connection inside a transaction that holds the store's write lock."""

    def _run(self, db: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        return db.execute(sql, tuple(params))

    def close(self) -> None:  # noqa: B027 - nothing to release for a file store
        """Release connections (the store can no longer be used)."""

    def add(
        self,
        identifier: str,
        process_id: str,
        parameters: dict[str, Any],
        *,
        inputs: Any = None,
        sync: bool = False,
        mimetype: str | None = None,
        owner: str | None = None,
    ) -> dict:
        """A new ``accepted`` job (``started`` stays empty until a worker starts it)."""
        stamp = now()
        with self._connect() as db:
            self._run(
                db,
                "INSERT INTO jobs (identifier, process_id, status, message, progress, created,"
                " updated, parameters, inputs, sync, mimetype, owner)"
                " VALUES (?, ?, 'accepted', ?, 0, ?, ?, ?, ?, ?, ?, ?)",
                (
                    identifier,
                    process_id,
                    "Job accepted",
                    stamp,
                    stamp,
                    json.dumps(parameters),
                    None if inputs is None else json.dumps(inputs),
                    int(sync),
                    mimetype,
                    owner,
                ),
            )
        return self.get(identifier)

    def get(self, identifier: str) -> dict:
        with self._connect() as db:
            row = self._run(db, "SELECT * FROM jobs WHERE identifier = ?", (identifier,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job {identifier}")
        return _record(row)

    def exists(self, identifier: str, statuses: Sequence[str] = STATUSES) -> bool:
        marks = ", ".join("?" * len(statuses))
        with self._connect() as db:
            row = self._run(
                db,
                f"SELECT 1 FROM jobs WHERE identifier = ? AND status IN ({marks})",
                (identifier, *statuses),
            ).fetchone()
        return row is not None

    def list(
        self,
        limit: int | None = None,
        offset: int = 0,
        *,
        statuses: Sequence[str] = (),
        process_ids: Sequence[str] = (),
        include_sync: bool = False,
        created: tuple[str | None, str | None] = (None, None),
        durations: tuple[float | None, float | None] | None = None,
    ) -> tuple[list[dict], int]:
        """Newest first: a page of jobs matching the filters, and how many match in all.

        ``created`` bounds the creation stamps (both ends included, ``None`` open);
        ``durations`` (seconds, ``None`` open) keeps jobs that ran that long: ``finished`` (or
        now, while running) minus ``started``; jobs without those times are left out, and so
        are queued ones unless ``statuses`` names them.
        """
        where = ["1 = 1"]
        params: list[Any] = []
        if not include_sync:
            where.append("sync = 0")
        for column, values in (("status", statuses), ("process_id", process_ids)):
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                params += list(values)
        for bound, sign in zip(created, (">=", "<="), strict=True):
            if bound is not None:
                where.append(f"created {sign} ?")
                params.append(bound)
        clause = " AND ".join(where)
        if durations is not None:
            return self._list_by_duration(clause, params, durations, limit, offset, statuses)
        with self._connect() as db:
            total = self._run(db, f"SELECT COUNT(*) AS n FROM jobs WHERE {clause}", params)
            total = _first(total.fetchone())
            rows = self._run(
                db,
                f"SELECT * FROM jobs WHERE {clause} ORDER BY created DESC LIMIT ? OFFSET ?",
                (*params, _NO_LIMIT if limit is None else int(limit), int(offset or 0)),
            ).fetchall()
        return [_record(r) for r in rows], int(total)

    def _list_by_duration(
        self,
        clause: str,
        params: builtins.list[Any],
        durations: tuple[float | None, float | None],
        limit: int | None,
        offset: int,
        statuses: Sequence[str],
    ) -> tuple[builtins.list[dict], int]:
        """:meth:`list` with a run-time range: the times of every match are read and measured
        here (the store is bounded), then one page of records is read."""
        low, high = durations
        moment = datetime.now(UTC)
        kept = statuses or ("running", *FINAL)
        with self._connect() as db:
            rows = self._run(
                db,
                "SELECT identifier, status, started, finished FROM jobs"
                f" WHERE {clause} AND started IS NOT NULL ORDER BY created DESC",
                params,
            ).fetchall()
        matched = []
        for row in rows:
            if row["status"] not in kept:
                continue
            end = row["finished"] or (moment.strftime(_STAMP) if row["status"] in LIVE else None)
            if end is None:
                continue
            try:
                seconds = (_parse_stamp(end) - _parse_stamp(row["started"])).total_seconds()
            except ValueError:  # not a stamp of ours: no run time to measure
                continue
            if (low is None or seconds >= low) and (high is None or seconds <= high):
                matched.append(row["identifier"])
        stop = None if limit is None else int(offset or 0) + int(limit)
        page = matched[int(offset or 0) : stop]
        if not page:
            return [], len(matched)
        with self._connect() as db:
            records = self._run(
                db,
                f"SELECT * FROM jobs WHERE identifier IN ({', '.join('?' * len(page))})",
                page,
            ).fetchall()
        by_id = {r["identifier"]: _record(r) for r in records}
        return [by_id[i] for i in page if i in by_id], len(matched)

    def update(self, identifier: str, *, only_live: bool = True, **values: Any) -> bool:
        """Set columns; with ``only_live`` only while the job is accepted or running."""
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown job columns {sorted(unknown)}")
        values.setdefault("updated", now())
        if "error" in values and values["error"] is not None:
            values["error"] = json.dumps(values["error"])
        assignments = ", ".join(f"{k} = ?" for k in values)
        sql = f"UPDATE jobs SET {assignments} WHERE identifier = ?"
        params: list[Any] = [*values.values(), identifier]
        if only_live:
            sql += " AND status IN (?, ?)"
            params += list(LIVE)
        with self._connect() as db:
            return self._run(db, sql, params).rowcount > 0

    def delete(self, identifier: str) -> None:
        with self._connect() as db:
            self._run(db, "DELETE FROM jobs WHERE identifier = ?", (identifier,))

    def recover(
        self, held: Callable[[str | None], bool] = lambda owner: False, claim: str | None = None
    ) -> Recovered:
        """Settle the live jobs whose owner is gone (at start-up, and with a shared store each
        time a server looks for servers that stopped).

        ``held(owner)`` says whether a live job's owner still holds it (another server, or a
        cluster this one re-attaches to): those are left alone. It is asked after the jobs were
        read, so an owner that started meanwhile is seen alive. Of the rest, async jobs that
        never started are returned to run again (now owned by ``claim``); async jobs that were
        running fail as interrupted (410, not a server error); sync jobs are dropped (their
        caller left with the old process). Each change is conditional on the job's status and
        owner as read, so a job dismissed meanwhile stays dismissed and no job is claimed twice.
        """
        stamp = now()
        settled = Recovered([], [], [], [])
        with self._locked() as db:
            rows = self._run(
                db, "SELECT * FROM jobs WHERE status IN (?, ?) ORDER BY created", LIVE
            ).fetchall()
            for record in map(_record, rows):
                job_id = record["identifier"]
                unchanged = (job_id, record["status"], record.get("owner") or "")
                if held(record.get("owner")):
                    settled.held.append(record)
                elif record["sync"]:
                    if self._run(db, f"DELETE FROM jobs {_AS_READ}", unchanged).rowcount:
                        settled.dropped.append(job_id)
                elif record["status"] == "running" or record["inputs"] is None:
                    failed = self._run(
                        db,
                        "UPDATE jobs SET status = 'failed', message = ?, error = ?,"
                        f" started = COALESCE(started, ?), finished = ?, updated = ? {_AS_READ}",
                        (
                            INTERRUPTED["message"],
                            json.dumps(INTERRUPTED),
                            stamp,
                            stamp,
                            stamp,
                            *unchanged,
                        ),
                    )
                    if failed.rowcount:
                        settled.interrupted.append(job_id)
                elif self._run(
                    db,
                    "UPDATE jobs SET message = 'Job accepted (queued again after a restart)',"
                    f" progress = 0, updated = ?, owner = ?, task = NULL {_AS_READ}",
                    (stamp, claim, *unchanged),
                ).rowcount:
                    settled.requeue.append(record)
        return settled

    def expire(self, finished_before: str, keep: int) -> builtins.list[str]:
        """Delete finished jobs older than ``finished_before``, and beyond the newest ``keep``."""
        final = ", ".join("?" * len(FINAL))
        with self._locked() as db:
            old = self._run(
                db,
                f"SELECT identifier FROM jobs WHERE status IN ({final}) AND"
                " COALESCE(finished, updated) < ?",
                (*FINAL, finished_before),
            ).fetchall()
            extra = self._run(
                db,
                f"SELECT identifier FROM jobs WHERE status IN ({final})"
                " ORDER BY COALESCE(finished, updated) DESC LIMIT ? OFFSET ?",
                (*FINAL, _NO_LIMIT, keep),
            ).fetchall()
            ids = sorted({_first(r) for r in old} | {_first(r) for r in extra})
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                self._run(
                    db,
                    f"DELETE FROM jobs WHERE identifier IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
        return ids

    def identifiers(self, statuses: Sequence[str] = STATUSES) -> set[str]:
        marks = ", ".join("?" * len(statuses))
        with self._connect() as db:
            rows = self._run(
                db, f"SELECT identifier FROM jobs WHERE status IN ({marks})", statuses
            ).fetchall()
            return {_first(r) for r in rows}

    def states(self, identifiers: Collection[str]) -> dict[str, tuple[str, str | None]]:
        """Status and owner of those of ``identifiers`` still stored."""
        ids = list(identifiers)
        found: dict[str, tuple[str, str | None]] = {}
        with self._connect() as db:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = self._run(
                    db,
                    "SELECT identifier, status, owner FROM jobs"
                    f" WHERE identifier IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                found.update((row["identifier"], (row["status"], row["owner"])) for row in rows)
        return found

    # -- heartbeats: only a shared store keeps them (one server owns any other) -------------------
    def beat(self, owners: Collection[str], timeout_s: float) -> None:  # noqa: B027
        """Say ``owners`` (this server's) are alive now, and forget servers silent for longer
        than ``timeout_s`` (they are gone either way)."""

    def forget_owners(self, owners: Collection[str]) -> None:  # noqa: B027
        """Say ``owners`` stopped cleanly (their jobs can be settled at once)."""

    def live_owners(self, timeout_s: float) -> set[str]:
        """Owners whose heartbeat is younger than ``timeout_s``."""
        return set()


def _first(row: Any) -> Any:
    """The first column of a row (a tuple, a sqlite3.Row or a dict)."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def _record(row: Any) -> dict:
    record = dict(row)
    record["type"] = "process"
    record["parameters"] = json.loads(record["parameters"]) if record["parameters"] else None
    record["error"] = json.loads(record["error"]) if record["error"] else None
    record["inputs"] = json.loads(record["inputs"]) if record.get("inputs") else None
    record["sync"] = bool(record.get("sync"))
    return record
