"""The engine's streamed blocks, predicted on a Dask cluster: ``sanchari predict --dask``, and
a service job on a Dask worker whose window spans several blocks (:func:`worker_blocks`).

Each task is a block's description (its window of the model grid and its patch origins) and
the engine's reader of the raster; the worker opens the raster itself (local path on a shared
filesystem), reads and prepares the block's window, runs its patches and blends them
(:meth:`Predictor.predict_block`, the very code a local run uses), and returns one ``(h, w)``
float32 array. The client adds it to what the neighbouring blocks spilled in and divides by the
weights it computes itself, so the output is identical to a local run's. A few blocks run ahead
(two per worker thread) to keep every worker busy with bounded memory; each worker builds the
model once and keeps it (``build_predictor``'s runner cache).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from sanchari_processes.engine.build import EngineOptions
from sanchari_processes.errors import BackendUnavailableError
from sanchari_processes.inference.predictor import RawReader, RemoteBlocks
from sanchari_processes.inference.sliding import Block, BlockPredictor

#: Seconds to wait for the scheduler when connecting.
CONNECT_TIMEOUT_S = 10


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A client of the scheduler at ``address`` (one clear error when it cannot be reached)."""
    try:
        from distributed import Client
    except ImportError:
        raise BackendUnavailableError(
            "--dask needs dask.distributed: pip install 'sanchari-processes[dask]'"
        ) from None
    try:
        return Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, ValueError, TypeError) as exc:
        raise BackendUnavailableError(
            f"cannot reach the Dask scheduler at {address}: {exc}"
        ) from None


def block_predictor(
    client: Any, options: EngineOptions, task: Callable[..., np.ndarray] | None = None
) -> RemoteBlocks:
    """Runs each block on the cluster, reading its own window; yields them in block order.

    ``task`` stands in for :func:`predict_block` (same arguments; benchmarks time the
    scheduling alone with one that runs no model).
    """
    task = task or predict_block

    def for_grid(read: RawReader, shape: tuple[int, int]) -> BlockPredictor:
        def run(blocks: Iterable[Block]) -> Iterator[np.ndarray]:
            ahead = max(2, 2 * sum(client.nthreads().values()))
            pending: deque[Any] = deque()
            for block in blocks:
                pending.append(client.submit(task, options, read, shape, block, pure=False))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

        return run

    return for_grid


def predict_block(
    options: EngineOptions, read: RawReader, shape: tuple[int, int], block: Block
) -> np.ndarray:
    """On a worker: one block's weighted sum of patch predictions (``(h, w)`` float32)."""
    from sanchari_processes.engine.build import build_predictor

    return build_predictor(options).predict_block(read, shape, block)


@contextlib.contextmanager
def worker_blocks(options: EngineOptions, several: bool) -> Iterator[RemoteBlocks | None]:
    """Inside a Dask worker (a service job on the cluster), for a raster of ``several``
    blocks: its blocks spread over the whole cluster; anywhere else, or for one block, ``None``
    (the blocks run here).

    The job's task secedes from its worker's threads while it waits (``worker_client``), so
    that worker runs blocks too; each block reads its window of the job's imagery, which
    lies in the jobs folder every worker sees at the same path.
    """
    if not several:
        yield None
        return
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except (ImportError, ValueError):  # not on a Dask worker
        yield None
        return
    with worker_client() as client:
        yield block_predictor(client, options)
