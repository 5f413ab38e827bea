"""The embedded job store: one SQLite file, so jobs and their results survive a restart.

SQLite (stdlib, WAL mode, a connection per call) is safe across the web server's threads and
the executor's event thread. Status changes from workers are conditional on the job still being
live, so a late "finished" event can never resurrect a dismissed job.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sanchari_processes.errors import JobNotFoundError

LIVE = ("accepted", "running")
FINAL = ("successful", "failed", "dismissed")
_COLUMNS = (
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
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
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
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
"""


def now() -> str:
    """Timestamps as pygeoapi writes them (ISO 8601, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JobStore:
    """Job records (state: the SQLite file at ``path``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    def add(self, identifier: str, process_id: str, parameters: dict[str, Any]) -> dict:
        stamp = now()
        with self._connect() as db:
            db.execute(
                "INSERT INTO jobs (identifier, process_id, status, message, progress, created,"
                " started, updated, parameters) VALUES (?, ?, 'accepted', ?, 0, ?, ?, ?, ?)",
                (
                    identifier,
                    process_id,
                    "Job accepted",
                    stamp,
                    stamp,
                    stamp,
                    json.dumps(parameters),
                ),
            )
        return self.get(identifier)

    def get(self, identifier: str) -> dict:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE identifier = ?", (identifier,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job {identifier}")
        return _record(row)

    def list(self, limit: int | None = None, offset: int = 0) -> tuple[list[dict], int]:
        """Newest first: a page of jobs and the total count."""
        with self._connect() as db:
            total = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            rows = db.execute(
                "SELECT * FROM jobs ORDER BY created DESC LIMIT ? OFFSET ?",
                (-1 if limit is None else int(limit), int(offset or 0)),
            ).fetchall()
        return [_record(r) for r in rows], int(total)

    def update(self, identifier: str, *, only_live: bool = True, **values: Any) -> bool:
        """Set columns; with ``only_live`` only while the job is accepted or running."""
        unknown = set(values) - set(_COLUMNS)
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
            return db.execute(sql, params).rowcount > 0

    def delete(self, identifier: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM jobs WHERE identifier = ?", (identifier,))

    def fail_interrupted(self) -> list[str]:
        """Mark jobs left live by a previous server process as failed (called at start-up)."""
        stamp = now()
        error = {
            "code": "NoApplicableCode",
            "status": 500,
            "message": "the server restarted while this job was queued or running; submit again",
        }
        with self._connect() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT identifier FROM jobs WHERE status IN (?, ?)", LIVE
                ).fetchall()
            ]
            db.execute(
                "UPDATE jobs SET status = 'failed', message = ?, error = ?, finished = ?,"
                " updated = ? WHERE status IN (?, ?)",
                (error["message"], json.dumps(error), stamp, stamp, *LIVE),
            )
        return ids


def _record(row: sqlite3.Row) -> dict:
    record = dict(row)
    record["type"] = "process"
    record["parameters"] = json.loads(record["parameters"]) if record["parameters"] else None
    record["error"] = json.loads(record["error"]) if record["error"] else None
    return record
