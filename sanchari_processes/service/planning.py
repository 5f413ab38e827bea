"""The planning pool: jobs whose plan reads a remote image's header wait for it here, so that
no web thread ever waits on the network.

Each process has a few threads (its processor's ``network_slots``); beyond ``network_slots +
queue_size`` jobs planning at once new ones get 503, while jobs already accepted (queued again
after a restart) are always taken.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sanchari_processes.errors import QueueFullError


class PlanningPool:
    """Threads that finish plans needing the network (state: a thread pool per process, the
    number of jobs planning)."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._planning = 0

    def reserve(self, process_id: str, slots: int, *, force: bool = False) -> ThreadPoolExecutor:
        """Count one more job planning and give its process's pool (503 when too many)."""
        with self._lock:
            if not force and self._planning >= slots + self.queue_size:
                raise QueueFullError("too many remote images are being checked; retry later")
            self._planning += 1
            pool = self._pools.get(process_id)
            if pool is None:
                pool = ThreadPoolExecutor(slots, thread_name_prefix=f"sanchari-plan-{process_id}")
                self._pools[process_id] = pool
            return pool

    def run(self, pool: ThreadPoolExecutor, plan: Callable[[], None]) -> None:
        """Run ``plan`` (a job :meth:`reserve` counted) in ``pool``."""
        pool.submit(self._planned, plan)

    def _planned(self, plan: Callable[[], None]) -> None:
        try:
            plan()
        finally:
            with self._lock:
                self._planning -= 1

    def shutdown(self) -> None:
        """Drop the jobs still waiting (a restarted server plans them again)."""
        with self._lock:
            pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
