"""Dask benchmark: the model stage of ``predict --dask`` on 1 worker vs 2 (1 thread each).

Prints figures; it is not a test. On a synthetic ``size²`` GeoTIFF it times the streamed model
stage (``predict_probability``, what ``--dask`` spreads over the workers) on a throwaway local
cluster of 1 and then 2 single-threaded worker processes, checks the probability maps are
identical, and measures the scheduling overhead per block: the same blocks through the cluster
with a model that does nothing (region transfer, task round trip and result transfer only).

    python benchmarks/bench_dask.py                             # 8192², the shipped model
    python benchmarks/bench_dask.py --size 4096 --tta none --backend torch
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import write_synthetic

from sanchari_processes.build import EngineOptions, build_engine
from sanchari_processes.cluster_blocks import block_predictor
from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine import predict_probability
from sanchari_processes.inference.sliding import BlockWork
from sanchari_processes.settings import SHIPPED_WEIGHTS
from sanchari_processes.sources import open_raster


def empty_block(region: np.ndarray, origins: list, patch: int) -> np.ndarray:
    """A block's "predictions" without a model: what scheduling alone costs."""
    return np.zeros((len(origins), patch, patch), np.float32)


def model_stage(
    raster: Path, options: EngineOptions, workers: int, work: Path
) -> tuple[float, np.ndarray, int, float]:
    """Wall seconds, probabilities and blocks of the model stage on ``workers`` workers, and
    the scheduling overhead per block there."""
    from distributed import Client, LocalCluster

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
        counted = {"blocks": 0}
        inner = block_predictor(client, options, predictor.batch_size, predictor.config.patch_size)

        def blocks(stream: Iterable[BlockWork]) -> Iterator[np.ndarray]:
            for preds in inner(stream):
                counted["blocks"] += 1
                yield preds

        (work / f"w{workers}").mkdir()
        with open_raster(raster) as source:
            start = time.perf_counter()
            prob = predict_probability(source, predictor, work / f"w{workers}", None, blocks)
            wall = time.perf_counter() - start
            values = prob[0 : source.height, 0 : source.width]
        overhead = scheduling_overhead(client, raster, options, predictor, work)
    return wall, values, counted["blocks"], overhead


def scheduling_overhead(
    client: Any, raster: Path, options: EngineOptions, predictor: Any, work: Path
) -> float:
    """Seconds per block to push the same blocks through the cluster with no model."""
    patch = predictor.config.patch_size
    n = {"blocks": 0}

    def blocks(stream: Iterable[BlockWork]) -> Iterator[np.ndarray]:
        pending = [  # as block_predictor sends them: the region scattered, then the task
            client.submit(
                empty_block, client.scatter(region, hash=False), origins, patch, pure=False
            )
            for region, origins in stream
        ]
        for future in pending:
            n["blocks"] += 1
            yield future.result()

    folder = work / f"overhead-{time.monotonic_ns()}"
    folder.mkdir()
    with open_raster(raster) as source:
        start = time.perf_counter()
        predict_probability(source, predictor, folder, None, blocks)
        wall = time.perf_counter() - start
    return wall / max(n["blocks"], 1)


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
        results = {}
        for workers in (1, 2):
            wall, values, blocks, overhead = model_stage(raster, options, workers, work)
            results[workers] = (wall, values)
            print(
                f"{workers} worker(s) x 1 thread: model stage {wall:.1f} s over {blocks} blocks; "
                f"scheduling overhead {overhead * 1000:.0f} ms per block (no model)"
            )
        identical = np.array_equal(results[1][1], results[2][1])
        ratio = results[1][0] / results[2][0]
        print(f"speed-up 2 vs 1 worker: x{ratio:.2f}; probability maps identical: {identical}")


if __name__ == "__main__":
    main()
