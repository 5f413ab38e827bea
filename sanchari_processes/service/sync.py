"""Synchronous executions: a few at once, each waiting for its job within a time limit and only
while its client is there, so that no web thread waits without end.

The web layer says whether a request's client has gone (:data:`CLIENT_GONE`, set around the
execute request); the manager says when a job ended (:meth:`SyncExecutions.wake`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar

from sanchari_processes.errors import QueueFullError, SanchariError, SyncTimeoutError

LOGGER = logging.getLogger(__name__)

#: Set by the web layer around an execute request: "has the client gone away?".
CLIENT_GONE: ContextVar[Callable[[], bool] | None] = ContextVar("client_gone", default=None)
#: Synchronous executions allowed at once when the server does not say (``sync_limit``).
DEFAULT_SYNC_LIMIT = 4
#: How often a waiting synchronous request looks at its client and the clock (seconds).
POLL_S = 0.2


class ClientGoneError(SanchariError):
    """The client of a synchronous execution disconnected; the job was stopped."""

    ogc_code = "ClientClosedRequest"
    http_status = 400


class SyncExecutions:
    """The synchronous executions in progress (state: the free slots, a waiter per job)."""

    def __init__(self, limit: int = DEFAULT_SYNC_LIMIT) -> None:
        self._slots = threading.BoundedSemaphore(max(1, limit))
        self._waiters: dict[str, threading.Event] = {}

    def resize(self, limit: int) -> None:
        """Allow ``limit`` at once (at start, before any execution)."""
        self._slots = threading.BoundedSemaphore(max(1, limit))

    def take_slot(self) -> None:
        """One more synchronous execution, or 503 when the limit is reached."""
        if not self._slots.acquire(blocking=False):
            raise QueueFullError(
                "too many synchronous executions are running; retry later, or run the job "
                "asynchronously (header 'Prefer: respond-async')"
            )

    def release_slot(self) -> None:
        self._slots.release()

    def expect(self, job_id: str) -> None:
        """Ready to :meth:`wait` for ``job_id`` (before the job can end)."""
        self._waiters[job_id] = threading.Event()

    def drop(self, job_id: str) -> None:
        self._waiters.pop(job_id, None)

    def wake(self, job_id: str) -> None:
        """``job_id`` ended (or stopped here): its execution stops waiting."""
        waiter = self._waiters.get(job_id)
        if waiter is not None:
            waiter.set()

    def wait(self, job_id: str, timeout_s: int) -> None:
        """Until ``job_id`` ends; :class:`ClientGoneError` when the client disconnects first,
        :class:`SyncTimeoutError` past ``timeout_s`` (the caller then stops the job)."""
        waiter = self._waiters[job_id]
        deadline = time.monotonic() + timeout_s
        gone = CLIENT_GONE.get()
        try:
            while not waiter.wait(POLL_S):
                if gone is not None and gone():
                    LOGGER.info("client of sync job %s disconnected; job stopped", job_id)
                    raise ClientGoneError("the client disconnected")
                if time.monotonic() >= deadline:
                    raise SyncTimeoutError(
                        f"the job ran longer than the {timeout_s} s allowed for synchronous "
                        "execution and was stopped; run it asynchronously (header 'Prefer: "
                        "respond-async') and poll /jobs/{jobId}"
                    )
        finally:
            self.drop(job_id)
