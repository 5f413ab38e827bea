"""``predict --dask``: the engine's blocks on a real Dask cluster give the local output, each
worker reading its own window of the input."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine

pytest.importorskip("distributed")

from sanchari_processes.cli import main
from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import EngineOptions, build_engine
from sanchari_processes.engine.cluster import block_predictor, connect
from sanchari_processes.engine.run import predict_probability
from sanchari_processes.errors import BackendUnavailableError, InvalidInputError
from sanchari_processes.sources import open_raster
from tests.synthetic import road_image, write_geotiff


@pytest.mark.parametrize("gsd_m", [0.5, 0.35])  # the model's grid, and resampled to it
def test_blocks_on_the_cluster_give_the_local_probabilities(
    tmp_path: Path, tiny_checkpoint: Path, dask_scheduler: str, gsd_m: float
) -> None:
    transform = Affine(gsd_m, 0, 500000.0, 0, -gsd_m, 4649776.0)
    path = write_geotiff(tmp_path / "scene.tif", road_image(300, 420), transform=transform)
    inference = InferenceConfig(
        patch_size=64, stride=32, batch_size=3, tta="flip4", device="cpu", stream_window=96
    )
    options = EngineOptions(weights=tiny_checkpoint, inference=inference)
    predictor = build_engine(options).predictor
    for name in ("local", "remote"):
        (tmp_path / name).mkdir()
    with open_raster(path) as source:
        local = predict_probability(source, predictor, tmp_path / "local")[0:300, 0:420]
        with connect(dask_scheduler) as client:
            recording = _Recording(client)
            blocks = block_predictor(recording, options)
            seen: list[float] = []
            remote = predict_probability(
                source, predictor, tmp_path / "remote", seen.append, blocks
            )[0:300, 0:420]
    np.testing.assert_array_equal(remote, local)
    assert local.max() > 0 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 5
    # the workers read their own windows: a task is a block's description, not its pixels
    # (a block's region here alone would be 3 x 160 x 160 float32, 300 kB)
    assert len(recording.sizes) > 5 and max(recording.sizes) < 20_000


class _Recording:
    """A client that records how many bytes each task's arguments take."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.sizes: list[int] = []

    def nthreads(self) -> dict:
        return self._client.nthreads()

    def submit(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        import cloudpickle

        self.sizes.append(len(cloudpickle.dumps(args)))
        return self._client.submit(func, *args, **kwargs)


@pytest.mark.parametrize(
    ("change", "message"),
    [("remove", "cannot open the input .*input not found"), ("touch", "sees a different file")],
)
def test_a_worker_that_cannot_see_the_input_is_one_clear_error(
    tmp_path: Path, tiny_checkpoint: Path, dask_scheduler: str, change: str, message: str
) -> None:
    path = write_geotiff(tmp_path / "gone.tif", road_image(100, 120))
    inference = InferenceConfig(patch_size=64, stride=32, tta="none", device="cpu")
    options = EngineOptions(weights=tiny_checkpoint, inference=inference)
    predictor = build_engine(options).predictor
    with open_raster(path) as source, connect(dask_scheduler) as client:
        if change == "remove":
            path.unlink()  # still open here, as on a client whose workers lack the file
        else:
            os.utime(path, ns=(1, 1))
        with pytest.raises(InvalidInputError, match=message):
            predict_probability(source, predictor, tmp_path, None, block_predictor(client, options))


def test_blocks_on_the_cluster_give_bit_identical_float_probabilities(
    tiny_checkpoint: Path, dask_scheduler: str
) -> None:
    image = np.ascontiguousarray(road_image(230, 310, seed=3))
    inference = InferenceConfig(
        patch_size=64, stride=32, batch_size=4, tta="none", device="cpu", stream_window=64
    )
    options = EngineOptions(weights=tiny_checkpoint, inference=inference)
    predictor = build_engine(options).predictor
    runs = {}
    with connect(dask_scheduler) as client:
        for name, blocks in (
            ("local", None),
            ("dask", block_predictor(client, options)),
        ):
            out = np.full(image.shape[1:], np.nan, np.float32)

            def write(row: int, col: int, prob: np.ndarray, out: np.ndarray = out) -> None:
                out[row : row + prob.shape[0], col : col + prob.shape[1]] = prob

            predictor.predict_stream(
                image.shape[1:], lambda r, c: (image[:, r, c], None), write, None, blocks
            )
            runs[name] = out
    assert not np.isnan(runs["local"]).any()
    assert np.array_equal(runs["dask"], runs["local"])


def test_predict_with_dask_writes_the_same_roads(
    capsys: pytest.CaptureFixture, tmp_path: Path, tiny_checkpoint: Path, dask_scheduler: str
) -> None:
    path = write_geotiff(tmp_path / "scene.tif", road_image(200, 260))
    common = ["--weights", str(tiny_checkpoint), "--tta", "none", "--no-progress"]
    outputs = {}
    for name, extra in (("local", []), ("dask", ["--dask", dask_scheduler])):
        out = tmp_path / f"{name}.geojson"
        code = main(["predict", str(path), "-o", str(out), *common, *extra])
        assert code == 0, capsys.readouterr().err
        outputs[name] = json.loads(out.read_text())
    assert outputs["dask"]["features"] == outputs["local"]["features"]


def test_unreachable_scheduler_is_one_clear_error() -> None:
    with pytest.raises(BackendUnavailableError, match="cannot reach the Dask scheduler"):
        connect("tcp://127.0.0.1:1", timeout_s=1)


def _job_on_a_worker(path: Path, options: EngineOptions, workdir: Path) -> np.ndarray:
    """What a service job on a Dask worker does with its imagery (``run_road_job``)."""
    from sanchari_processes.engine.cluster import worker_blocks
    from sanchari_processes.engine.run import several_blocks

    predictor = build_engine(options).predictor
    with (
        open_raster(path) as source,
        worker_blocks(options, several_blocks(source, predictor)) as blocks,
    ):
        assert blocks is not None  # on a worker, several blocks: spread over the cluster
        prob = predict_probability(source, predictor, workdir, None, blocks)
        return np.array(prob[0 : source.height, 0 : source.width])


def test_a_job_on_a_worker_spreads_its_blocks_over_the_cluster(
    tmp_path: Path, tiny_checkpoint: Path, dask_scheduler: str
) -> None:
    from distributed import get_task_stream

    path = write_geotiff(tmp_path / "scene.tif", road_image(300, 420))
    inference = InferenceConfig(
        patch_size=64, stride=32, tta="none", device="cpu", stream_window=64
    )
    options = EngineOptions(weights=tiny_checkpoint, inference=inference)
    (tmp_path / "local").mkdir()
    (tmp_path / "job").mkdir()
    with open_raster(path) as source:
        predictor = build_engine(options).predictor
        local = predict_probability(source, predictor, tmp_path / "local")[0:300, 0:420]
    with connect(dask_scheduler) as client, get_task_stream(client) as stream:
        remote = client.submit(_job_on_a_worker, path, options, tmp_path / "job").result(120)
        cluster = set(client.nthreads())
    np.testing.assert_array_equal(remote, local)
    workers = {task["worker"] for task in stream.data if task["key"].startswith("predict_block")}
    assert workers == cluster and len(cluster) == 2


def test_blocks_stay_here_for_one_block_or_outside_a_worker(tiny_checkpoint: Path) -> None:
    from sanchari_processes.engine.cluster import worker_blocks

    options = EngineOptions(weights=tiny_checkpoint)
    for several in (False, True):
        with worker_blocks(options, several) as blocks:
            assert blocks is None
