"""``sanchari predict --dask``: the engine's streamed blocks, predicted on a Dask cluster.

The client reads each block's region and blends the predictions exactly as a local run does
(:func:`~sanchari_processes.inference.sliding.stream_predict` with ``blocks``); workers only
run the model over a block's patches, in the same chunks, so the output is identical. A few
blocks run ahead (two per worker thread) to keep every worker busy with bounded memory; each
worker builds the model once and keeps it (``build_predictor``'s runner cache).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from sanchari_processes.build import EngineOptions
from sanchari_processes.errors import BackendUnavailableError
from sanchari_processes.inference.sliding import BlockPredictor, BlockWork, predict_patches

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
    client: Any, options: EngineOptions, batch_size: int, patch: int
) -> BlockPredictor:
    """Runs each block's patches on the cluster, yielding the predictions in block order."""
    ahead = max(2, 2 * sum(client.nthreads().values()))

    def run(work: Iterable[BlockWork]) -> Iterator[np.ndarray]:
        pending: deque[Any] = deque()
        for region, origins in work:
            # scattered, not embedded in the task: a block's region is tens of MB
            data = client.scatter(region, hash=False)
            pending.append(
                client.submit(predict_block, options, data, origins, batch_size, patch, pure=False)
            )
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    return run


def predict_block(
    options: EngineOptions,
    region: np.ndarray,
    origins: list[tuple[int, int]],
    batch_size: int,
    patch: int,
) -> np.ndarray:
    """On a worker: the ``(N, p, p)`` predictions of one block's patches."""
    from sanchari_processes.build import build_predictor

    runner = build_predictor(options).runner
    return np.concatenate(list(predict_patches(region, origins, runner, batch_size, patch)))
