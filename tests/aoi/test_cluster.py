"""An AOI run on a real Dask cluster writes what a local run writes; the workers read their
own windows of the scenes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from sanchari_processes.aoi import find_scenes, load_aoi, plan_aoi, run_aoi
from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import EngineOptions, build_engine
from sanchari_processes.engine.cluster import connect
from tests.aoi_fixtures import GSD, MARGIN_M


def test_blocks_on_the_cluster_write_the_local_output(
    tmp_path: Path, scenes_dir: Path, aoi_file: Path, tiny_checkpoint: Path, dask_scheduler: str
) -> None:
    # the tiny random model: the lines are noise, but many of them, across every seam
    inference = InferenceConfig(tta="none", device="cpu", backend="torch", patch_size=64)
    options = EngineOptions(weights=tiny_checkpoint, inference=inference, threshold=0.52)
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
