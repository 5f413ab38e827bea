"""An AOI run: plan the blocks, run them here or on a Dask cluster, record, stitch, write.

Blocks run one at a time here, or spread over a Dask cluster a few ahead of the workers (two
per worker thread), so memory stays bounded on both sides; a worker that dies costs only the
blocks it held (Dask runs them again elsewhere). Each finished block is recorded at once
(:mod:`.record`); when all are done the output is written from the record, block by block in
plan order (lines that touch no seam straight away, the seam lines stitched at the end), so
the result never depends on the order blocks finished in, and a resumed run writes the same
file as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer
from shapely.geometry.base import BaseGeometry
from tqdm import tqdm

from sanchari_processes.aoi.grid import BlockRef, Grid, make_grid, plan_blocks, to_grid
from sanchari_processes.aoi.record import BlockRecord
from sanchari_processes.aoi.scenes import Scene
from sanchari_processes.aoi.stitch import Line, Piece, stitch
from sanchari_processes.aoi.tasks import BlockResult, BlockTask, run_block
from sanchari_processes.engine.build import Engine, EngineOptions
from sanchari_processes.errors import OutsideCoverageError
from sanchari_processes.results.vector import LineWriter
from sanchari_processes.sources.settings import RemoteSettings

#: Default block core side and margin (metres).
DEFAULT_BLOCK_M = 1024.0
DEFAULT_MARGIN_M = 64.0
#: Seam ends of neighbouring blocks this close (model pixels) are one road.
SEAM_TOLERANCE_PX = 4
#: Fields of the output's features.
FIELDS = (("length_m", np.float64), ("mean_probability", np.float64), ("blocks", np.int64))
#: The area the cost projection is made for (km²).
PROJECTION_KM2 = 10_000.0

#: What runs a block: ``(task, engine built here or None) -> result``.
BlockRunner = Callable[[BlockTask, Engine | None], BlockResult]


@dataclass(frozen=True)
class AoiPlan:
    """A planned run: the grid, its blocks (in a fixed order) and the scenes they read."""

    aoi: BaseGeometry
    grid: Grid
    blocks: list[BlockRef]
    scenes: list[Scene]

    @property
    def km2(self) -> float:
        return sum(b.km2 for b in self.blocks)

    def task(self, block: BlockRef, options: EngineOptions, remote: RemoteSettings) -> BlockTask:
        scenes = tuple(self.scenes[i] for i in block.scenes)
        return BlockTask(block, self.grid, scenes, options, remote)

    def describe(self, options: EngineOptions, model_sha: str) -> dict[str, Any]:
        """What identifies the run (a resumed run must match it)."""
        inference = asdict(options.inference)
        for volatile in ("progress", "device", "backend", "batch_size"):
            inference.pop(volatile, None)
        return {
            "aoi_sha256": hashlib.sha256(shapely.to_wkb(self.aoi, output_dimension=2)).hexdigest(),
            "grid": self.grid.describe(),
            "blocks": len(self.blocks),
            "scenes": [s.location for s in self.scenes],
            "model_sha256": model_sha,
            "inference": inference,
            "threshold": options.threshold,
            "simplify_m": options.simplify_m,
        }


def plan_aoi(
    aoi: BaseGeometry,
    scenes: list[Scene],
    gsd_m: float,
    *,
    block_m: float = DEFAULT_BLOCK_M,
    margin_m: float = DEFAULT_MARGIN_M,
    crs: CRS | None = None,
) -> AoiPlan:
    """The blocks of ``aoi`` (EPSG:4326) that some scene covers; 404-style error when none."""
    grid = make_grid(aoi, gsd_m, block_m, margin_m, crs)
    area = to_grid(aoi, grid)
    footprints = [to_grid(s.footprint, grid) for s in scenes]
    blocks = plan_blocks(area, grid, footprints)
    if not blocks:
        raise OutsideCoverageError("the area of interest does not overlap any of the scenes")
    return AoiPlan(aoi, grid, blocks, scenes)


@dataclass
class RunSummary:
    """What a run did and what it cost (printed at the end of the CLI's run)."""

    blocks: int
    resumed: int
    km2: float
    lines: int
    workers: int
    cpu_s: float = 0.0
    block_wall_s: float = 0.0
    wall_s: float = 0.0
    peak_rss_mib: float = 0.0
    output: Path | None = None
    costs: list[dict[str, float]] = field(default_factory=list, repr=False)

    def lines_of_text(self) -> list[str]:
        per_km2 = self.cpu_s / self.km2 if self.km2 else float("nan")
        wall_per_km2 = self.block_wall_s / self.km2 if self.km2 else float("nan")
        projected_h = wall_per_km2 * PROJECTION_KM2 / max(self.workers, 1) / 3600.0
        return [
            f"{self.blocks} blocks ({self.resumed} from the record), {self.km2:.3f} km², "
            f"{self.lines} lines → {self.output}",
            f"CPU-seconds per km²: {per_km2:.1f}; block seconds per km² on one worker: "
            f"{wall_per_km2:.1f}; peak RSS per worker: {self.peak_rss_mib:.0f} MiB",
            f"projection to {PROJECTION_KM2:,.0f} km² on {self.workers} worker(s): "
            f"{projected_h:.1f} h (blocks only, from this run's block times)",
        ]


def run_aoi(
    plan: AoiPlan,
    output: Path,
    options: EngineOptions,
    *,
    model_sha: str,
    engine: Engine | None = None,
    client: Any = None,
    resume: bool = False,
    remote: RemoteSettings | None = None,
    show_progress: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    runner: BlockRunner = run_block,
) -> RunSummary:
    """Run every block not yet recorded (here, or on ``client``'s cluster), then write
    ``output`` (``.gpkg``, ``.fgb`` or ``.geojson``) from the record.

    ``progress(blocks done, blocks, km² done)`` follows the blocks (a service job's status).
    """
    started = time.perf_counter()
    remote = remote or RemoteSettings()
    record = BlockRecord.open(output, plan.describe(options, model_sha), resume=resume)
    done = record.done()
    todo = [b for b in plan.blocks if b.name not in done]
    tasks = [plan.task(b, options, remote) for b in todo]
    resumed = len(plan.blocks) - len(todo)
    bar = tqdm(total=len(plan.blocks), initial=resumed, unit="block", disable=not show_progress)
    km2 = sum(b.km2 for b in plan.blocks if b.name in done)
    workers = 1
    try:
        if client is None:
            results: Iterator[BlockResult] = (runner(t, engine) for t in tasks)
        else:
            workers = max(1, len(client.nthreads()))
            results = _on_cluster(client, tasks, runner)
        for result in results:
            record.add(result)
            km2 += result.km2
            bar.set_postfix_str(f"{km2:.2f} km²", refresh=False)
            bar.update(1)
            if progress is not None:
                progress(bar.n, len(plan.blocks), km2)
    finally:
        bar.close()
    summary = write_output(plan, record, output)
    summary.resumed, summary.workers = resumed, workers
    summary.wall_s = time.perf_counter() - started
    return summary


def _on_cluster(client: Any, tasks: list[BlockTask], runner: BlockRunner) -> Iterator[BlockResult]:
    """The blocks' results as they finish on the cluster, a few tasks ahead of the workers."""
    from distributed import as_completed

    ahead = max(2, 2 * sum(client.nthreads().values()))
    queue = deque(tasks)
    if not queue:
        return
    first = [client.submit(runner, queue.popleft(), None, pure=False)]
    while queue and len(first) < ahead:
        first.append(client.submit(runner, queue.popleft(), None, pure=False))
    running = as_completed(first, loop=client.loop)
    try:
        for future in running:
            result = future.result()
            future.release()
            if queue:
                running.add(client.submit(runner, queue.popleft(), None, pure=False))
            yield result
    finally:
        for future in list(running.futures):
            future.cancel()


def write_output(plan: AoiPlan, record: BlockRecord, output: Path) -> RunSummary:
    """Stitch the recorded blocks into ``output``, streaming the lines that touch no seam."""
    to_wgs84 = Transformer.from_crs(plan.grid.crs, "EPSG:4326", always_xy=True)
    geod = Geod(ellps="WGS84")
    extra = {"sanchari": {"aoi": {**record.run, "km2": round(plan.km2, 6)}}}
    writer = LineWriter(output, FIELDS, extra)
    summary = RunSummary(len(plan.blocks), 0, plan.km2, 0, 1, output=output)
    seams: list[list[Piece]] = []
    try:
        for block in plan.blocks:
            pieces, costs = record.load(block.name)
            summary.costs.append(costs)
            summary.cpu_s += costs.get("cpu_s", 0.0)
            summary.block_wall_s += costs.get("wall_s", 0.0)
            summary.peak_rss_mib = max(summary.peak_rss_mib, costs.get("rss_mib", 0.0))
            inner = [Line(p.coords, p.probability, 1) for p in pieces if not any(p.seam_ends)]
            writer.write(_features(inner, to_wgs84, geod))
            seams.append([p for p in pieces if any(p.seam_ends)])
        tolerance = SEAM_TOLERANCE_PX * plan.grid.gsd_m
        writer.write(_features(stitch(seams, tolerance), to_wgs84, geod))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    summary.lines = writer.count
    return summary


def _features(
    lines: Sequence[Line], to_wgs84: Transformer, geod: Geod
) -> list[tuple[Any, dict[str, Any]]]:
    features = []
    for line in lines:
        lon, lat = to_wgs84.transform(line.coords[:, 0], line.coords[:, 1])
        coords = np.round(np.column_stack([lon, lat]), 7)
        keep = np.ones(len(coords), bool)
        keep[1:] = np.any(np.diff(coords, axis=0) != 0, axis=1)
        coords = coords[keep]
        if len(coords) < 2:
            continue
        length = float(geod.line_length(coords[:, 0], coords[:, 1]))
        properties = {
            "length_m": round(length, 3),
            "mean_probability": round(line.probability, 4),
            "blocks": line.pieces,
        }
        features.append((shapely.linestrings(coords), properties))
    return features
