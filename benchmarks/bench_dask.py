"""Dask benchmark: the model stage of ``predict --dask`` locally, on 1 worker and on 2.

Prints figures; it is not a test. On a synthetic ``size²`` GeoTIFF it times the streamed model
stage (``predict_probability``, what ``--dask`` spreads over the workers) in this process and
then on a throwaway local cluster of 1 and of 2 single-threaded worker processes, each reading
its own blocks from the file, and checks the three probability maps are identical. This
process runs one model thread too (``OMP_NUM_THREADS=1``), so the local figure is one
worker's work without a cluster. It also measures the scheduling overhead per block: the same
blocks through the cluster with a task that reads nothing and runs no model (task round trip
and the block's ``(h, w)`` float32 result).

    python benchmarks/bench_dask.py                             # 8192², the shipped model
    python benchmarks/bench_dask.py --size 4096 --tta none --backend torch
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

os.environ["OMP_NUM_THREADS"] = "1"  # before any runtime starts: one thread, as each worker

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import write_synthetic

from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import EngineOptions, build_engine
from sanchari_processes.engine.cluster import block_predictor
from sanchari_processes.engine.run import predict_probability
from sanchari_processes.inference.predictor import RawReader, RemoteBlocks
from sanchari_processes.inference.sliding import Block
from sanchari_processes.settings import SHIPPED_WEIGHTS
from sanchari_processes.sources import open_raster


def empty_block(options: Any, read: RawReader, shape: tuple[int, int], block: Block) -> np.ndarray:
    """A block's result without reading or a model: what scheduling alone costs."""
    return np.zeros(block.shape, np.float32)


def counted(blocks: RemoteBlocks, tally: dict[str, int]) -> RemoteBlocks:
    """``blocks``, counting the blocks it yields in ``tally["blocks"]``."""

    def for_grid(read: RawReader, shape: tuple[int, int]) -> Any:
        inner = blocks(read, shape)

        def run(work: Iterable[Block]) -> Iterator[np.ndarray]:
            for numerator in inner(work):
                tally["blocks"] += 1
                yield numerator

        return run

    return for_grid


def compute_seconds(tasks: list[dict]) -> list[float]:
    """Seconds each worker spent computing the recorded tasks: when the cores are shared, the
    per-block figures show whether the workers were starved or the client held them back."""
    busy: dict[str, float] = {}
    for task in tasks:
        for part in task["startstops"]:
            if part["action"] == "compute":
                busy[task["worker"]] = busy.get(task["worker"], 0.0) + part["stop"] - part["start"]
    return [round(seconds, 1) for seconds in busy.values()]


def timed_stage(
    raster: Path, predictor: Any, folder: Path, blocks: RemoteBlocks | None
) -> tuple[float, np.ndarray]:
    """Wall seconds and probabilities of the model stage (``blocks``: on a cluster)."""
    folder.mkdir()
    with open_raster(raster) as source:
        start = time.perf_counter()
        prob = predict_probability(source, predictor, folder, None, blocks)
        wall = time.perf_counter() - start
        return wall, prob[0 : source.height, 0 : source.width]


def on_cluster(
    raster: Path, options: EngineOptions, workers: int, work: Path
) -> tuple[float, np.ndarray, int, float]:
    """Wall seconds, probabilities and blocks of the model stage on ``workers`` workers, and
    the scheduling overhead per block there."""
    from distributed import Client, LocalCluster, get_task_stream

    predictor = build_engine(options).predictor
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", env=env
        ) as cluster,
        Client(cluster) as client,
    ):
        # each worker loads the model once, before the clock starts
        client.run(lambda: build_engine(options) and None)
        tally = {"blocks": 0}
        blocks = counted(block_predictor(client, options), tally)
        with get_task_stream(client) as stream:
            wall, values = timed_stage(raster, predictor, work / f"w{workers}", blocks)
        busy = compute_seconds(stream.data)
        print(f"  {workers} worker(s): seconds computing per worker {busy} (from the task stream)")
        empty = {"blocks": 0}
        idle = counted(block_predictor(client, options, task=empty_block), empty)
        overhead, _ = timed_stage(raster, predictor, work / f"idle{workers}", idle)
    return wall, values, tally["blocks"], overhead / max(empty["blocks"], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=SHIPPED_WEIGHTS)
    parser.add_argument("--size", type=int, default=8192, help="raster side in pixels")
    parser.add_argument("--tta", default="none", choices=["none", "flip4", "d4"])
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    inference = InferenceConfig(tta=args.tta, device="cpu", backend=args.backend, progress=False)
    options = EngineOptions(weights=args.weights, inference=inference)
    with tempfile.TemporaryDirectory(prefix="sanchari-bench-dask-") as tmp:
        work = Path(tmp)
        raster = write_synthetic(work / "big.tif", args.size)
        print(
            f"{args.size}² GeoTIFF, weights {args.weights}, tta {args.tta}, backend {args.backend}"
        )
        local, local_values = timed_stage(raster, build_engine(options).predictor, work / "l", None)
        print(f"local, 1 thread: model stage {local:.1f} s")
        results = {}
        for workers in (1, 2):
            wall, values, blocks, overhead = on_cluster(raster, options, workers, work)
            results[workers] = (wall, values)
            print(
                f"{workers} worker(s) x 1 thread: model stage {wall:.1f} s over {blocks} blocks "
                f"(x{local / wall:.2f} of local); scheduling overhead {overhead * 1000:.0f} ms "
                "per block (no read, no model)"
            )
        identical = all(np.array_equal(local_values, results[n][1]) for n in (1, 2))
        ratio = results[1][0] / results[2][0]
        print(
            f"speed-up 2 vs 1 worker: x{ratio:.2f}; "
            f"probability maps identical (local, 1 and 2 workers): {identical}"
        )


if __name__ == "__main__":
    main()
