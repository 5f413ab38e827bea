"""An AOI over four adjacent scenes, on the shipped model: one road, one line, at every seam;
the same lines as one run over the mosaic; an interrupted run resumed gives the same file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from sanchari_processes.aoi import find_scenes, load_aoi, plan_aoi, run_aoi
from sanchari_processes.aoi.record import record_dir
from sanchari_processes.aoi.run import AoiPlan, RunSummary
from sanchari_processes.aoi.tasks import BlockResult, BlockTask, run_block
from sanchari_processes.engine.build import Engine, EngineOptions
from sanchari_processes.engine.run import run_source
from sanchari_processes.sources import open_raster
from tests.aoi_fixtures import BLOCK_M, GSD, MARGIN_M, write_mosaic

TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True)


def utm(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lambda xy: np.column_stack(TO_UTM.transform(*xy.T)))


@pytest.fixture(scope="module")
def plan(scenes_dir: Path, aoi_file: Path) -> AoiPlan:
    return plan_aoi(
        load_aoi(aoi_file), find_scenes([str(scenes_dir)]), GSD, block_m=BLOCK_M, margin_m=MARGIN_M
    )


def run(plan: AoiPlan, out: Path, options: EngineOptions, engine: Engine, **kw) -> RunSummary:
    sha = engine.metadata.weights_sha256
    return run_aoi(plan, out, options, model_sha=sha, engine=engine, **kw)


@pytest.fixture(scope="module")
def uninterrupted(
    tmp_path_factory: pytest.TempPathFactory,
    plan: AoiPlan,
    shipped_options: EngineOptions,
    shipped_engine: Engine,
) -> Path:
    out = tmp_path_factory.mktemp("whole") / "roads.geojson"
    summary = run(plan, out, shipped_options, shipped_engine)
    assert summary.blocks == len(plan.blocks) == 9 and summary.resumed == 0
    return out


def lines(path: Path) -> list[shapely.Geometry]:
    return [shape(f["geometry"]) for f in json.loads(path.read_text())["features"]]


def test_the_road_across_four_scenes_and_nine_blocks_is_one_line(
    plan: AoiPlan, uninterrupted: Path
) -> None:
    # the road crosses both scene seams and five block edges inside the AOI
    seams = {b.ix for b in plan.blocks}, {b.iy for b in plan.blocks}
    assert len(seams[0]) == 3 and len(seams[1]) == 3
    collection = json.loads(uninterrupted.read_text())
    record = collection["sanchari"]["aoi"]  # what made it: grid, scenes, model, options
    assert record["grid"]["crs"] == "EPSG:32633" and len(record["scenes"]) == 4
    assert record["model_sha256"] and record["inference"]["tta"] == "none"
    found = collection["features"]
    assert len(found) == 1, [f["properties"] for f in found]
    road = utm(shape(found[0]["geometry"]))
    assert found[0]["properties"]["blocks"] == 5  # the pieces of five blocks, joined
    # no gap and no duplicate: its length is the road's inside the AOI (259.4 m), ends trimmed
    # by at most a few metres where the vectorizer ends a line
    assert 250.0 <= road.length <= 260.5
    assert road.is_simple


def test_the_aoi_run_equals_the_single_mosaic_run_within_a_metre(
    tmp_path: Path, uninterrupted: Path, aoi_file: Path, shipped_engine: Engine
) -> None:
    mosaic = write_mosaic(tmp_path / "mosaic.tif")
    with open_raster(mosaic) as source:
        collection = run_source(
            source, shipped_engine.predictor, shipped_engine.vectorize, tmp_path
        )
    whole = shapely.union_all([utm(shape(f["geometry"])) for f in collection["features"]])
    whole = whole.intersection(utm(load_aoi(aoi_file)))
    blocks = shapely.union_all([utm(g) for g in lines(uninterrupted)])
    assert whole.length > 250
    assert shapely.hausdorff_distance(whole, blocks) <= 1.0


class Interrupted(RuntimeError):
    pass


def test_an_interrupted_run_resumed_writes_the_same_output(
    tmp_path: Path,
    plan: AoiPlan,
    uninterrupted: Path,
    shipped_options: EngineOptions,
    shipped_engine: Engine,
) -> None:
    out = tmp_path / "roads.geojson"
    ran: list[str] = []

    def dies_after_four(task: BlockTask, engine: Engine | None) -> BlockResult:
        if len(ran) == 4:
            raise Interrupted("the machine went away")
        ran.append(task.block.name)
        return run_block(task, engine)

    with pytest.raises(Interrupted):
        run(plan, out, shipped_options, shipped_engine, runner=dies_after_four)
    assert not out.exists()
    assert len(list(record_dir(out).glob("x*.json"))) == 4

    def counting(task: BlockTask, engine: Engine | None) -> BlockResult:
        ran.append(task.block.name)
        return run_block(task, engine)

    summary = run(plan, out, shipped_options, shipped_engine, runner=counting, resume=True)
    assert summary.resumed == 4 and len(ran) == 9 == len(set(ran))  # each block ran once
    assert (
        json.loads(out.read_text())["features"] == json.loads(uninterrupted.read_text())["features"]
    )
    # a resumed run of another AOI is refused, not mixed in
    other = plan_aoi(plan.aoi.buffer(1e-4), plan.scenes, GSD, block_m=BLOCK_M, margin_m=MARGIN_M)
    with pytest.raises(Exception, match="records a different run"):
        run(other, out, shipped_options, shipped_engine, resume=True)


@pytest.mark.parametrize("suffix", [".gpkg", ".fgb"])
def test_geopackage_and_flatgeobuf_hold_the_same_lines(
    tmp_path: Path, uninterrupted: Path, plan: AoiPlan, suffix: str,
    shipped_options: EngineOptions, shipped_engine: Engine,
) -> None:  # fmt: skip
    out = tmp_path / f"roads{suffix}"
    # the record of the uninterrupted run, copied: the file is written from it alone
    import shutil

    shutil.copytree(record_dir(uninterrupted), record_dir(out))
    summary = run(plan, out, shipped_options, shipped_engine, resume=True)
    assert summary.resumed == 9
    meta = pyogrio.read_info(out)
    assert meta["crs"] == "EPSG:4326" and meta["features"] == 1
    _, _, geometry, _fields = pyogrio.raw.read(out)
    got = shapely.from_wkb(geometry[0])
    expected = lines(uninterrupted)[0]
    assert shapely.equals_exact(got, expected, 1e-7)
    assert list(meta["fields"]) == ["length_m", "mean_probability", "blocks"]
