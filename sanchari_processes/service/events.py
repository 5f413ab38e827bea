"""Job events: what an executor reports of a job, written to its record and passed on.

Executors report each job's start, progress (with its stage), success or failure from their
event thread (:class:`~sanchari_processes.service.executors.base.JobListener`). Each event
updates the job's record only while the job is live, so a late event never changes a dismissed
job; a job that ended wakes its synchronous execution, and its callbacks are sent once, even
when two servers follow it. A job its cluster lost (the scheduler restarted) runs again from its
stored inputs, as the same job, until ``cluster_retries`` re-submissions are spent; one
dismissed meanwhile stays dismissed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sanchari_processes.errors import JobNotFoundError
from sanchari_processes.service.callbacks import JobCallbacks
from sanchari_processes.service.executors.base import JobFailure
from sanchari_processes.service.jobs import RESULT_MIMETYPE
from sanchari_processes.service.settings import ManagerSettings
from sanchari_processes.service.store import LIVE, JobStore, now
from sanchari_processes.service.sync import SyncExecutions


class JobEvents:
    """The manager's :class:`JobListener` (no state of its own: the store, the synchronous
    executions and the callbacks are the manager's; ``store()`` gives its store)."""

    def __init__(
        self,
        settings: ManagerSettings,
        store: Callable[[], JobStore],
        sync: SyncExecutions,
        callbacks: JobCallbacks,
        rerun: Callable[[dict, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self.sync = sync
        self.callbacks = callbacks
        #: Submits a stored job again: ``rerun(record, attempt)`` (the manager's ``resubmit``).
        self.rerun = rerun

    def job_started(self, job_id: str) -> None:
        self._store().update(
            job_id, status="running", started=now(), progress=1, message="Reading imagery"
        )
        self.callbacks.progress(job_id, force=True)

    def job_progress(self, job_id: str, fraction: float, stage: str | None = None) -> None:
        percent = min(99, max(1, int(fraction * 100)))
        values: dict[str, Any] = {"status": "running", "progress": percent}
        if stage:
            values["message"] = stage
        self._store().update(job_id, **values)
        self.callbacks.progress(job_id)

    def job_succeeded(self, job_id: str, location: Path) -> None:
        changed = self._store().update(
            job_id,
            status="successful",
            progress=100,
            finished=now(),
            location=str(location),
            mimetype=RESULT_MIMETYPE,
            message="Job complete",
        )
        self.wake(job_id)
        if changed:  # a job two servers follow is reported once
            self.callbacks.final(job_id)

    def job_failed(self, job_id: str, failure: JobFailure) -> None:
        stamp = now()
        try:  # a job that failed before a worker started it (planning) starts as it fails
            started = self._store().get(job_id)["started"] or stamp
        except JobNotFoundError:  # forgotten: the update below changes nothing
            started = stamp
        changed = self._store().update(
            job_id,
            status="failed",
            started=started,
            finished=stamp,
            error=failure.to_dict(),
            message=f"{failure.code}: {failure.message}",
        )
        if changed:
            shutil.rmtree(self.settings.job_dir(job_id), ignore_errors=True)
        self.wake(job_id)
        if changed:
            self.callbacks.final(job_id)

    def job_waiting(self, job_id: str, message: str) -> None:
        self._store().update(job_id, message=message)

    def job_lost(self, job_id: str, attempts: int) -> None:
        """Submit again a live job the cluster lost, or fail it once its attempts are spent
        (a job that never started is queued again under the same key: it cost no attempt)."""
        try:
            record = self._store().get(job_id)
        except JobNotFoundError:
            return
        if record["status"] not in LIVE:
            return  # dismissed meanwhile: it stays so
        if self.rerun is not None and record["status"] == "accepted":  # it never ran: no attempt
            self._store().update(job_id, message="Queued again on the cluster (it lost the job)")
            self.rerun(record, attempts)
            return
        retries = self.settings.cluster_retries
        if attempts > retries or self.rerun is None:
            message = (
                f"the Dask cluster lost this job {attempts} time(s) while it ran (its scheduler "
                f"restarted; {retries} re-submission(s) allowed); submit it again"
            )
            self.job_failed(job_id, JobFailure("JobInterrupted", 410, message))
            return
        self._store().update(
            job_id,
            progress=0,
            message=f"Re-submitted after the cluster restarted (attempt {attempts + 1} of "
            f"{retries + 1})",
        )
        self.rerun(record, attempts + 1)

    def wake(self, job_id: str) -> None:
        """The job ended or stopped here: its synchronous execution stops waiting."""
        self.sync.wake(job_id)
