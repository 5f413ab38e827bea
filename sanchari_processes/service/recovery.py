"""Recovery and heartbeats: what a server does about the jobs whose owner is gone.

At start a server settles what its predecessor left (:meth:`Recovery.settle_at_start`): it runs
again the jobs that were queued, fails the ones that were running (410, "interrupted by a
restart"), drops synchronous ones (their caller left), and removes their scratch folders; jobs
still on a cluster are re-attached (:meth:`Recovery.resume`), even while its scheduler cannot be
reached: they wait for it, and run again if it forgot them. Finished jobs expire after
``job_retention_s``.

Servers sharing a PostgreSQL store coordinate through it: each keeps a heartbeat for the owners
of its local jobs; every ``heartbeat_s`` a server settles, as at start, the live jobs of servers
silent for ``server_timeout_s`` (a crash), and every second it stops the jobs of its own that
another server dismissed. All of this runs on one janitor thread. The manager owns a
:class:`Recovery` from its start to its shutdown, and plans and runs the jobs recovery gives
back to it (:class:`JobHost`).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sanchari_processes.service.events import JobEvents
from sanchari_processes.service.executors.base import JobExecutor, JobFailure, owner_alive
from sanchari_processes.service.settings import ManagerSettings
from sanchari_processes.service.store import INTERRUPTED, LIVE, JobStore, Recovered, stamp_of

LOGGER = logging.getLogger(__name__)

#: How often a server sharing its store looks for its jobs dismissed on another (seconds).
WATCH_S = 1.0


class JobHost(Protocol):
    """What recovery asks of the manager that plans and runs the jobs."""

    def resubmit(self, record: dict, attempt: int = 1) -> None:
        """Plan a stored job again and queue it (or fail it when that fails)."""

    def follow(self, record: dict) -> None:
        """Send the callbacks of a stored job again (it was re-attached)."""


class Recovery:
    """Settles the jobs whose owner is gone, keeps this server's heartbeat, expires finished
    jobs (state: the store and executor it looks after, the owners this server's heartbeat
    vouches for, the janitor thread)."""

    def __init__(
        self,
        settings: ManagerSettings,
        store: JobStore,
        executor: JobExecutor,
        sync_owner: str,
        host: JobHost,
        events: JobEvents,
    ) -> None:
        self.settings = settings
        self.store = store
        self.executor = executor
        self.host = host
        self.events = events
        #: Owners whose jobs die with this server: its heartbeat vouches for them.
        self.beating = (sync_owner,) + (() if executor.reattaches else (executor.owner,))
        self._stop = threading.Event()
        self._janitor: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------------
    def beat(self) -> None:
        """Say this server's owners are alive (at start: before any job is theirs)."""
        self.store.beat(self.beating, self.settings.server_timeout_s)

    def settle_at_start(self) -> Recovered:
        """Settle what a previous server left, and expire old jobs (the executor runs)."""
        recovered = self._settle()
        self._expire()
        if recovered.interrupted or recovered.requeue or recovered.held:
            LOGGER.warning(
                "after a restart: %d job(s) queued again, %d interrupted job(s) failed, "
                "%d job(s) still held by a cluster or another server",
                len(recovered.requeue),
                len(recovered.interrupted),
                len(recovered.held),
            )
        return recovered

    def resume(self, recovered: Recovered) -> None:
        """Follow again this executor's jobs still on the cluster, and queue the settled
        queued jobs (once the manager takes jobs)."""
        for record in recovered.held:
            if record.get("owner") == self.executor.owner:
                self._reattach(record)
        for record in recovered.requeue:
            self.host.resubmit(record)

    def start(self) -> None:
        """Start the janitor thread."""
        self._stop.clear()
        self._janitor = threading.Thread(
            target=self._janitor_loop, name="sanchari-janitor", daemon=True
        )
        self._janitor.start()

    def stop(self) -> None:
        """Stop the janitor thread (the heartbeat stays until :meth:`forget_heartbeat`)."""
        self._stop.set()
        if self._janitor is not None:
            self._janitor.join(10)

    def forget_heartbeat(self) -> None:
        """Remove this server's heartbeat; a database already gone (stopped before this
        server) only delays that: the heartbeat then expires after ``server_timeout_s``."""
        try:
            self.store.forget_owners(self.beating)
        except Exception as exc:  # any driver error: shutdown must finish
            LOGGER.warning(
                "could not remove this server's heartbeat (%s); other servers settle its "
                "jobs once it is %s s old",
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                self.settings.server_timeout_s,
            )

    # -- settling -------------------------------------------------------------------------------
    def _settle(self) -> Recovered:
        """Settle the live jobs whose owner is gone (:meth:`JobStore.recover`): at start what a
        predecessor left; later, with a shared store, what servers that stopped left."""
        recovered = self.store.recover(held=self._holder(), claim=self.executor.owner)
        for job_id in recovered.dropped:  # their callers left: stop them where they run
            self.executor.cancel(job_id)
        self._clean_scratch(recovered)
        return recovered

    def _holder(self) -> Callable[[str | None], bool]:
        """Whether a live job tagged ``owner`` is still held (so recovery leaves it alone): by
        this server, a cluster, or a server whose heartbeat is fresh. The heartbeats are read
        once, when first needed: after the jobs, so a server that started meanwhile is alive."""
        own = {self.executor.owner, *self.beating}
        beating: set[str] | None = None

        def held(owner: str | None) -> bool:
            nonlocal beating
            if not owner:
                return False
            if owner in own:
                return True
            if not self.store.shared:
                return False
            if beating is None:
                beating = self.store.live_owners(self.settings.server_timeout_s)
            return owner_alive(owner, beating)

        return held

    def _reattach(self, record: dict) -> None:
        """Follow again a job a previous server left on the cluster (or run it again when it
        never got there). The executor reports one the cluster forgot as lost (it is submitted
        again, :meth:`JobEvents.job_lost`); one that cannot be followed fails as interrupted."""
        job_id, task = record["identifier"], record.get("task")
        if task and self.executor.attach(job_id, task):
            self.host.follow(record)
            LOGGER.info("job %s: re-attached to its task %s", job_id, task)
            return
        if record["status"] == "accepted" and record["inputs"] is not None:
            self.host.resubmit(record)
            return
        self.events.job_failed(job_id, JobFailure(**INTERRUPTED))

    def _clean_scratch(self, recovered: Recovered) -> None:
        """Remove what settled jobs left. A server alone on its folder also removes every
        other folder but successful jobs' results (no ``work/``) and jobs a cluster holds."""
        root = self.settings.store_dir / "jobs"
        if not root.is_dir():
            return
        if self.store.shared:  # other servers' jobs live here too
            for job_id in recovered.settled:
                shutil.rmtree(root / job_id, ignore_errors=True)
            return
        requeued = {r["identifier"] for r in recovered.requeue}
        held = {r["identifier"] for r in recovered.held}
        kept = self.store.identifiers(["successful"])
        for folder in root.iterdir():
            if folder.name in held:
                continue
            if folder.name in requeued or folder.name not in kept:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                shutil.rmtree(folder / "work", ignore_errors=True)

    # -- the janitor ----------------------------------------------------------------------------
    def _janitor_loop(self) -> None:
        """Expire finished jobs; with a shared store also keep this server's heartbeat, take
        over the jobs of servers that stopped, and stop those dismissed on another server."""
        tasks: list[tuple[float, Callable[[], Any]]] = [
            (min(300.0, max(0.5, self.settings.job_retention_s / 4)), self._expire)
        ]
        if self.store.shared:
            tasks += [(self.settings.heartbeat_s, self._take_over), (WATCH_S, self._watch)]
        due = [time.monotonic() + interval for interval, _ in tasks]
        while not self._stop.wait(min(interval for interval, _ in tasks)):
            for index, (interval, task) in enumerate(tasks):
                if time.monotonic() < due[index]:
                    continue
                due[index] = time.monotonic() + interval
                try:
                    task()
                except Exception:
                    LOGGER.exception("janitor task %s failed", task.__name__)

    def _expire(self) -> list[str]:
        """Delete finished jobs past retention (or beyond ``max_jobs``) and their files."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.job_retention_s)
        expired = self.store.expire(stamp_of(cutoff), self.settings.max_jobs)
        for job_id in expired:
            shutil.rmtree(self.settings.job_dir(job_id), ignore_errors=True)
        if expired:
            LOGGER.info("expired %d finished job(s)", len(expired))
        return expired

    def _take_over(self) -> None:
        """Renew this server's heartbeat, then settle the jobs of servers whose heartbeat
        stopped: their queued jobs run here, their running ones fail as interrupted."""
        self.beat()
        recovered = self._settle()
        if recovered.settled:
            LOGGER.warning(
                "from stopped servers: %d job(s) queued again here, %d interrupted job(s) failed",
                len(recovered.requeue),
                len(recovered.interrupted),
            )
        for record in recovered.requeue:
            self.host.resubmit(record)

    def _watch(self) -> None:
        """Stop the local jobs whose record is no longer live (dismissed on another server) or
        no longer this server's (settled by another while this one was silent)."""
        if self.executor.reattaches:  # a cluster's jobs hear it from the cluster
            return
        here = self.executor.active()
        states = self.store.states(here) if here else {}
        for job_id in here:
            status, owner = states.get(job_id, (None, None))
            if status in LIVE and owner in self.beating:
                continue
            LOGGER.info("job %s: stopped here, its record is %s elsewhere", job_id, status)
            self.executor.cancel(job_id)
            if status not in LIVE:  # no server runs it: remove what it wrote since
                shutil.rmtree(self.settings.job_dir(job_id), ignore_errors=True)
            self.events.wake(job_id)
