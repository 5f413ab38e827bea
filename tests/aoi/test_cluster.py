"""An AOI run on a real Dask cluster writes what a local run writes; the workers read their
own windows of the scenes."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from sanchari_processes.aoi import find_scenes, load_aoi, plan_aoi, run_aoi
from sanchari_processes.aoi.tasks import BlockResult, BlockTask, run_block
from sanchari_processes.engine.build import Engine, build_engine
from sanchari_processes.engine.cluster import connect
from tests.aoi_fixtures import GSD, MARGIN_M, tiny_options


def test_blocks_on_the_cluster_write_the_local_output(
    tmp_path: Path, scenes_dir: Path, aoi_file: Path, tiny_checkpoint: Path, dask_scheduler: str
) -> None:
    options = tiny_options(tiny_checkpoint)
    engine = build_engine(options)
    sha = engine.metadata.weights_sha256
    plan = plan_aoi(
        load_aoi(aoi_file), find_scenes([str(scenes_dir)]), GSD, block_m=120, margin_m=MARGIN_M
    )
    local = run_aoi(plan, tmp_path / "local.geojson", options, model_sha=sha, engine=engine)
    with connect(dask_scheduler) as client:
        remote = run_aoi(plan, tmp_path / "cluster.geojson", options, model_sha=sha, client=client)
    assert remote.workers == 2 and remote.blocks == local.blocks == len(plan.blocks) >= 4
    features = json.loads((tmp_path / "local.geojson").read_text())["features"]
    assert len(features) > 3
    assert json.loads((tmp_path / "cluster.geojson").read_text())["features"] == features


def dies_once(marker: Path, task: BlockTask, engine: Engine | None) -> BlockResult:
    """A block whose first attempt kills its worker process outright (no exception, no
    cleanup: as a machine lost mid-block)."""
    if not marker.exists():
        marker.write_text(task.block.name)
        os._exit(1)
    return run_block(task, engine)


@pytest.mark.slow  # a cluster of its own (one of its workers dies): ~15 s idle
def test_a_worker_killed_mid_run_costs_only_its_block(
    tmp_path: Path, scenes_dir: Path, aoi_file: Path, tiny_checkpoint: Path
) -> None:
    from distributed import Client, LocalCluster

    options = tiny_options(tiny_checkpoint)
    engine = build_engine(options)
    sha = engine.metadata.weights_sha256
    plan = plan_aoi(
        load_aoi(aoi_file), find_scenes([str(scenes_dir)]), GSD, block_m=120, margin_m=MARGIN_M
    )
    local = tmp_path / "local.geojson"
    run_aoi(plan, local, options, model_sha=sha, engine=engine)
    marker = tmp_path / "killed"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
            local_directory=str(tmp_path / "dask"),
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        out = tmp_path / "cluster.geojson"
        summary = run_aoi(
            plan, out, options, model_sha=sha, client=client,
            runner=functools.partial(dies_once, marker),
        )  # fmt: skip
    assert marker.exists()  # a worker died, holding a block
    assert summary.blocks == len(plan.blocks) and summary.resumed == 0
    assert json.loads(out.read_text())["features"] == json.loads(local.read_text())["features"]
