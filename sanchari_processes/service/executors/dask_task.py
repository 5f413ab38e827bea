"""What a Dask worker runs for a job of the service (:func:`run_task`), and the names it shares
with the server's :class:`~sanchari_processes.service.executors.dask.DaskExecutor`.

A task is keyed by its job and attempt (:func:`task_key`). It publishes itself on the scheduler,
reports progress in a per-attempt ``Variable`` and stops when its job's cancel ``Event`` is set.
It also stops when its job's folder names another attempt in :data:`ATTEMPT_FILE` (the server
writes it before each submission), or no longer exists (the job was dismissed): an attempt that
outlived a restart of its scheduler never reports a result beside the attempt that replaced it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sanchari_processes.service.executors.base import JobCancelled, Runner, run_job

LOGGER = logging.getLogger(__name__)

#: Least time between two looks at a job's cancel flag and attempt, on the worker (s).
_CANCEL_CHECK_S = 0.5
#: The file in a job's folder naming the task key of its current attempt.
ATTEMPT_FILE = ".attempt"


def task_key(job_id: str, attempt: int = 1) -> str:
    """A job's task key: ``sanchari-job-ID``, then ``sanchari-job-ID-attempt-N``."""
    base = f"sanchari-job-{job_id}"
    return base if attempt <= 1 else f"{base}-attempt-{attempt}"


def attempt_of(key: str) -> int:
    """Which submission of its job a task key names (1 for the first)."""
    _, sep, tail = key.rpartition("-attempt-")
    return int(tail) if sep and tail.isdigit() else 1


def progress_name(key: str) -> str:
    return f"sanchari-progress-{key.removeprefix('sanchari-job-')}"


def cancel_name(job_id: str) -> str:
    return f"sanchari-cancel-{job_id}"


def _attempt_guard(job: Any, key: str, guarded: bool) -> Callable[[], bool]:
    """Whether ``key`` is still its job's current attempt (:data:`ATTEMPT_FILE` names it)."""
    if not guarded:
        return lambda: True
    token = Path(job.job_dir) / ATTEMPT_FILE

    def current() -> bool:
        try:
            return token.read_text(encoding="utf-8") == key
        except FileNotFoundError:  # the folder was removed: the job was dismissed
            return False
        except OSError:  # unreadable for a moment: not a reason to stop a job
            return True

    return current


def run_task(job: Any, runner: Runner, key: str | None = None, guarded: bool = False) -> Any:
    """The task a worker runs: the job, with progress out and the cancel flag in. It stops
    (``cancelled``) when dismissed or when a newer attempt of its job replaced it."""
    from distributed import Event, Future, Variable, get_client

    client = get_client()
    key = key or task_key(job.job_id)
    client.publish_dataset(Future(key, client=client), name=key, override=True)
    progress = Variable(progress_name(key), client=client)
    cancel = Event(cancel_name(job.job_id), client=client)
    current = _attempt_guard(job, key, guarded)
    last_check = [time.monotonic()]

    def check() -> None:
        if time.monotonic() - last_check[0] < _CANCEL_CHECK_S:
            return
        last_check[0] = time.monotonic()
        if cancel.is_set():
            cancel.clear()
            raise JobCancelled
        if not current():
            LOGGER.info("job %s: task %s is no longer its current attempt", job.job_id, key)
            raise JobCancelled

    progress.set((0.0, None))  # "started"
    outcome = run_job(job, runner, lambda f, stage: progress.set((f, stage)), check)
    if outcome[0] == "succeeded" and not current():
        outcome = ("cancelled", None)  # a newer attempt reports the job's result
    if outcome[0] == "cancelled":  # nobody collects it
        with contextlib.suppress(Exception):
            client.unpublish_dataset(key)
    return outcome
