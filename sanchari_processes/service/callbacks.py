"""Job callbacks (an execute request's ``subscriber``): what each says, and its delivery,
which never holds a job up.

:class:`JobCallbacks` knows which jobs asked for callbacks and composes them from the job's
record: an in-progress callback (the status document) at most every
:data:`PROGRESS_CALLBACK_S` per job, then one success (the results document) or failure (the
OGC exception) callback. Job events only *enqueue* a callback (a bounded queue; when it is full
the callback is dropped and logged). One delivery thread (:class:`CallbackNotifier`) POSTs them
as JSON through the address guard (:mod:`sanchari_processes.netguard`: the same allow-list as
remote imagery, checked addresses only, connect/read timeouts, a deadline per attempt). A
success or failure callback that does not get a 2xx answer is tried again later (``retries``
attempts in all, waiting 1, 2, 4 … s); in-progress callbacks are tried once, since a newer one
follows. Nothing here is persisted: a restart forgets callbacks not yet delivered.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sanchari_processes.errors import JobNotFoundError, SanchariError, exception_type
from sanchari_processes.netguard import BlockedURLError, NetPolicy, request
from sanchari_processes.service.executors.base import JobFailure
from sanchari_processes.service.jobs import result_files
from sanchari_processes.service.requests import Subscriber, results_document, stored_request
from sanchari_processes.service.status import job_document

if TYPE_CHECKING:
    from sanchari_processes.service.store import JobStore

LOGGER = logging.getLogger(__name__)

#: Least time between two in-progress callbacks of one job (seconds).
PROGRESS_CALLBACK_S = 2.0


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    uri: str = field(compare=False)
    body: bytes = field(compare=False)
    attempts_left: int = field(compare=False)
    attempt: int = field(compare=False, default=0)


class CallbackNotifier:
    """Delivers callbacks in the background (state: a queue of pending deliveries, a thread)."""

    def __init__(
        self,
        policy: NetPolicy,
        *,
        retries: int = 4,
        backoff_s: float = 1.0,
        deadline_s: float = 20.0,
        queue_size: int = 1000,
    ) -> None:
        self.policy = policy
        self.retries = max(1, retries)
        self.backoff_s = backoff_s
        self.deadline_s = deadline_s
        self.queue_size = queue_size
        #: Outcomes, newest last (``(uri, status or error text)``), for logs and tests.
        self.delivered: list[tuple[str, str]] = []
        self._heap: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(
                target=self._loop, name="sanchari-callbacks", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    def send(self, uri: str | None, payload: dict[str, Any], *, retry: bool = True) -> bool:
        """Queue one POST of ``payload`` to ``uri`` (never blocks; False when dropped)."""
        if not uri:
            return False
        body = json.dumps(payload, separators=(",", ":")).encode()
        with self._cond:
            if len(self._heap) >= self.queue_size:
                LOGGER.warning("callback queue full: dropped a callback to %s", uri[:200])
                return False
            attempts = self.retries if retry else 1
            heapq.heappush(
                self._heap, _Delivery(time.monotonic(), next(self._seq), uri, body, attempts)
            )
            self._cond.notify()
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                    not self._heap or self._heap[0].due > time.monotonic()
                ):
                    wait = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                delivery = heapq.heappop(self._heap)
            self._attempt(delivery)

    def _attempt(self, delivery: _Delivery) -> None:
        delivery.attempt += 1
        outcome, retry = self._post(delivery)
        if not retry or delivery.attempt >= delivery.attempts_left:
            self.delivered.append((delivery.uri, outcome))
            del self.delivered[:-100]
            if outcome.startswith("2"):
                LOGGER.info("callback to %s: %s", delivery.uri[:200], outcome)
            else:
                LOGGER.warning(
                    "callback to %s failed after %d attempt(s): %s",
                    delivery.uri[:200],
                    delivery.attempt,
                    outcome,
                )
            return
        delivery.due = time.monotonic() + self.backoff_s * 2 ** (delivery.attempt - 1)
        with self._cond:
            heapq.heappush(self._heap, delivery)
            self._cond.notify()

    def _post(self, delivery: _Delivery) -> tuple[str, bool]:
        """One attempt: ``(outcome, worth retrying)``."""
        try:
            response = request(
                delivery.uri,
                self.policy,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "sanchari-callback"},
                body=delivery.body,
                deadline_s=self.deadline_s,
                max_body_bytes=64 * 1024,
            )
        except BlockedURLError as exc:
            return f"refused: {exc.message}", False
        except SanchariError as exc:
            return f"error: {exc.message}", True
        status = str(response.status)
        return status, not status.startswith("2") and response.status not in (400, 404, 410)


class JobCallbacks:
    """The callbacks of the jobs that asked for them, composed from their records (state: the
    subscribers by job, and when each last had an in-progress callback); :attr:`notifier`
    delivers them. ``store()`` and ``base_url()`` give the manager's store and public URL."""

    def __init__(
        self,
        notifier: CallbackNotifier,
        store: Callable[[], JobStore],
        base_url: Callable[[], str],
    ) -> None:
        self.notifier = notifier
        self._store = store
        self._base_url = base_url
        self._subscribers: dict[str, dict] = {}
        self._last_progress: dict[str, float] = {}

    def start(self) -> None:
        self.notifier.start()

    def stop(self) -> None:
        self.notifier.stop()

    def subscribe(self, job_id: str, subscriber: Subscriber | None) -> None:
        """Send ``job_id``'s callbacks to ``subscriber`` (none: nothing to send)."""
        if subscriber is not None:
            self._subscribers[job_id] = subscriber.to_dict()

    def forget(self, job_id: str) -> None:
        """Send no more callbacks for ``job_id``."""
        self._subscribers.pop(job_id, None)
        self._last_progress.pop(job_id, None)

    def progress(self, job_id: str, *, force: bool = False) -> None:
        """An in-progress callback, at most every few seconds per job (queued, never waited)."""
        uri = self._subscribers.get(job_id, {}).get("inProgressUri")
        if not uri:
            return
        moment = time.monotonic()
        if not force and moment - self._last_progress.get(job_id, 0.0) < PROGRESS_CALLBACK_S:
            return
        self._last_progress[job_id] = moment
        try:
            record = self._store().get(job_id)
        except JobNotFoundError:
            return
        self.notifier.send(uri, job_document(self._base_url(), record), retry=False)

    def final(self, job_id: str) -> None:
        """The success (results document) or failure (exception) callback of a finished job."""
        subscriber = self._subscribers.pop(job_id, None)
        self._last_progress.pop(job_id, None)
        if not subscriber:
            return
        try:
            record = self._store().get(job_id)
            if record["status"] == "successful":
                _, execution = stored_request(record.get("inputs"), self.notifier.policy)
                files = result_files(Path(record["location"]))
                document = results_document(execution, files, self._base_url(), job_id)
                self.notifier.send(subscriber.get("successUri"), document)
            elif record["status"] == "failed":
                error = record.get("error") or JobFailure.internal().to_dict()
                exception = {
                    "type": exception_type(error["code"]),
                    "code": error["code"],
                    "status": error["status"],
                    "description": error["message"],
                    "jobID": job_id,
                }
                self.notifier.send(subscriber.get("failedUri"), exception)
        except (SanchariError, OSError, ValueError):
            LOGGER.exception("callback for job %s could not be prepared", job_id)
